"""Host sampling against real processes; GPU sampling without a GPU."""

import subprocess
import sys
import time
import types
import uuid

import psutil
import pytest

from exporter.app import Exporter
from exporter.config import parse_config
from exporter.sources import host
from tests.helpers import sample

BURN = "import time, sys\nt = time.time()\nwhile time.time() - t < float(sys.argv[1]): pass"


@pytest.fixture
def burner():
    procs = []

    def start(seconds: float, marker: str):
        p = subprocess.Popen([sys.executable, "-c", BURN, str(seconds), marker])
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.kill()
        p.wait()


def test_cpu_of_a_real_child_is_attributed_to_its_pipeline(tmp_path, burner):
    marker = f"mlpipe-burner-{uuid.uuid4().hex[:8]}"
    by_pid = burner(5, "other")
    (tmp_path / "etl.pid").write_text(str(by_pid.pid))
    by_regex = burner(5, marker)
    cfg = parse_config(
        {
            "pipelines": [
                {"name": "train", "processes": {"cmdline_regex": marker}},
                {"name": "etl", "processes": {"pid_file": str(tmp_path / "etl.pid")}},
            ]
        }
    )
    e = Exporter(cfg, collectors=("compute", "gpu", "exporter"))
    e.ingest_pass()
    time.sleep(1.6)
    procs = {"train": psutil.Process(by_regex.pid), "etl": psutil.Process(by_pid.pid)}
    before = {k: sum(p.cpu_times()[:2]) for k, p in procs.items()}
    e.ingest_pass()
    after = {k: sum(p.cpu_times()[:2]) for k, p in procs.items()}
    for pipeline in ("train", "etl"):
        assert sample(e, "mlpipe_pipeline_processes", pipeline=pipeline) == 1
        # The exporter's sample lies between two independent readings of the child's CPU.
        cpu = sample(e, "mlpipe_pipeline_cpu_seconds_total", pipeline=pipeline)
        assert before[pipeline] - 0.011 <= cpu <= after[pipeline] + 0.011, (cpu, before, after)
        assert cpu > 0.3  # it did burn CPU
        assert sample(e, "mlpipe_pipeline_memory_bytes", pipeline=pipeline) > 1 << 20


def test_no_nvml_library_is_a_gauge_not_a_traceback(caplog):
    # This machine has no NVIDIA driver: the real pynvml raises NVMLError_LibraryNotFound.
    e = Exporter(parse_config({}), collectors=("gpu", "exporter"))
    e.ingest_pass()
    assert sample(e, "mlpipe_gpu_up") == 0
    assert sample(e, "mlpipe_scrape_collector_success", collector="gpu") == 1
    assert sample(e, "mlpipe_gpu_memory_used_bytes", gpu="0") is None


def test_pynvml_not_importable(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    sampler = host.GpuSampler()
    out = host.HostSample()
    sampler.sample(out)
    assert out.gpu_up is False and "pynvml not importable" in out.gpu_error


def test_nvml_failing_after_init_is_reported_once(monkeypatch, caplog):
    class NVMLError(Exception):
        pass

    def broken():
        raise NVMLError("GPU is lost")

    fake = types.SimpleNamespace(
        NVMLError=NVMLError, nvmlInit=lambda: None, nvmlDeviceGetCount=broken
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    sampler = host.GpuSampler()
    for _ in range(3):
        out = host.HostSample()
        sampler.sample(out)
        assert out.gpu_up is False and "GPU is lost" in out.gpu_error
    assert sum("GPU sampling failed" in r.message for r in caplog.records) == 1


def test_gpu_collector_can_be_disabled():
    e = Exporter(parse_config({}), collectors=("exporter",))
    assert sample(e, "mlpipe_gpu_up") is None
    assert not any(type(i).__name__ == "HostIngest" for i in e.ingests)
