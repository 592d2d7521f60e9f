"""Label values that come from data are bounded, and no series appears twice."""

import json

from exporter.app import Exporter
from exporter.config import parse_config
from exporter.state.versions import MAX_LABEL_CHARS, bounded_label
from tests.conftest import assert_unique_series
from tests.helpers import sample, serving_line


def test_a_huge_version_string_is_cut_to_a_bounded_distinct_label(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    cfg = {"models": [{"name": "fraud", "serving_logs": [str(logs / "*.jsonl")]}]}
    exporter = Exporter(parse_config(cfg))
    huge_a, huge_b = "a" * 900_000, "a" * 899_999 + "b"
    with open(logs / "a.jsonl", "w") as fh:
        for i in range(30):
            fh.write(serving_line(i, version=[huge_a, huge_b, "other"][i % 3]))
    exporter.ingest_pass()
    text = exporter.render().text
    assert len(text) < 200_000  # was 91 MB with a 900 KB version in every series
    assert_unique_series(text.decode(), parse=True)
    la, lb = bounded_label(huge_a), bounded_label(huge_b)
    assert la != lb and len(la) == len(lb) == MAX_LABEL_CHARS
    for version in (la, lb, "other"):
        got = sample(
            exporter,
            "mlpipe_serving_requests_total",
            model="fraud",
            version=version,
            outcome="success",
        )
        assert got == 10, version


def test_a_version_named_other_is_counted_once_with_the_untracked_versions(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    cfg = {
        "models": [{"name": "fraud", "serving_logs": [str(logs / "*.jsonl")], "max_versions": 1}]
    }
    exporter = Exporter(parse_config(cfg))
    with open(logs / "a.jsonl", "w") as fh:
        for i, v in enumerate(["v1"] * 10 + ["v2"] * 10 + ["other"] * 10):
            fh.write(json.dumps(json.loads(serving_line(i, version=v))) + "\n")
    exporter.ingest_pass()
    assert_unique_series(exporter.render().text.decode())
    got = sample(
        exporter, "mlpipe_serving_requests_total", model="fraud", version="other", outcome="success"
    )
    assert got == 20
