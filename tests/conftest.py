"""Checks every in-process rendering of /metrics: parseable, and no series twice."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.app import Exporter


def assert_unique_series(text: str, parse: bool = False) -> None:
    """No sample line (name and labels) twice; ``parse`` also runs the reference parser."""
    samples = [line.rsplit(" ", 1)[0] for line in text.splitlines() if line and line[0] != "#"]
    if len(set(samples)) != len(samples):
        seen: set = set()
        dup = next(x for x in samples if x in seen or seen.add(x))
        raise AssertionError(f"duplicate series in one exposition: {dup}")
    if parse:
        list(text_string_to_metric_families(text))


@pytest.fixture(autouse=True)
def _every_rendering_has_unique_series(monkeypatch):
    render = Exporter.render

    def checked(self):
        rendering = render(self)
        assert_unique_series(rendering.text.decode())
        return rendering

    monkeypatch.setattr(Exporter, "render", checked)
