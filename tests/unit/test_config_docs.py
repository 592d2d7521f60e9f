"""Every key of the config schema has a row in docs/config.md."""

import dataclasses
import os
import typing

from exporter.config import Config

DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "config.md")


def key_paths(cls, prefix=""):
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):
        if f.name == "source":
            continue
        path = prefix + f.name
        yield path
        tp = hints[f.name]
        for t in (tp, *typing.get_args(tp)):
            for u in (t, *typing.get_args(t)):
                if dataclasses.is_dataclass(u):
                    yield from key_paths(u, path + ".")


def test_every_config_key_is_documented():
    with open(DOCS, encoding="utf-8") as fh:
        text = fh.read()
    missing = [p for p in dict.fromkeys(key_paths(Config)) if f"| `{p}` |" not in text]
    assert not missing, f"docs/config.md has no row for: {missing}"
