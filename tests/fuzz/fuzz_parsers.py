"""Coverage-guided fuzzing (atheris/libFuzzer) of the line parsers.

    python tests/fuzz/fuzz_parsers.py -runs=50000

Each input is split into lines and fed to the serving, label and run-log parsers; any
exception, or a line not accounted for, is a crash. The lines also go straight to the
compiled feature reader as raw objects (never valid JSON there: memory, not results).
"""

import sys

import atheris

with atheris.instrument_imports():
    from exporter.config import LabelJoin, ServingLogFormat
    from exporter.sources import feature_objects
    from exporter.sources.envelopes import Cri, Docker
    from exporter.sources.labels import LabelParser
    from exporter.sources.runs import RunLogParser
    from exporter.sources.serving_log import ServingLogParser

SERVING = ServingLogParser(ServingLogFormat(), ["fraud"], ["amount"], ["country"])
LABELS = LabelParser(LabelJoin())
RUNS = RunLogParser(["train"])
ENVELOPED = ServingLogParser(
    ServingLogFormat(), ["fraud"], ["amount"], ["country"], model="fraud", envelope=True
)


def one_input(data: bytes) -> None:
    if not data.endswith(b"\n"):
        data += b"\n"
    n = data.count(b"\n")
    s = SERVING.parse(data)
    assert s.lines == n and s.records + sum(s.invalid.values()) == n
    lab = LABELS.parse(data)
    assert len(lab.request_ids) + sum(lab.invalid.values()) == n
    run = RUNS.parse(data)
    assert len(run.records) + sum(run.invalid.values()) == n
    if feature_objects.COMPILED:
        raws = data.split(b"\n")
        numeric, categorical, fallback = feature_objects.read(raws, (b"amount", b"country"), 1)
        assert numeric.shape == (len(raws), 1) and len(categorical[0]) == len(raws)
        assert all(0 <= r < len(raws) for r in fallback)
    for envelope in (Cri(), Cri(("stdout",)), Docker()):
        out = envelope.unwrap(data, final=True)
        assert out.data.count(b"\n") + out.dropped <= n
        p = ENVELOPED.parse(out.data)
        accounted = p.records + sum(p.invalid.values()) + sum(p.ignored.values())
        assert accounted == p.lines == out.data.count(b"\n")


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
