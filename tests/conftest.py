"""Checks every in-process rendering of /metrics: parseable, and no series twice."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.app import Exporter


def assert_unique_series(text: str) -> None:
    seen: set = set()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in seen, f"duplicate series in one exposition: {key}"
            seen.add(key)


@pytest.fixture(autouse=True)
def _every_rendering_has_unique_series(monkeypatch):
    render = Exporter.render

    def checked(self):
        rendering = render(self)
        assert_unique_series(rendering.text.decode())
        return rendering

    monkeypatch.setattr(Exporter, "render", checked)
