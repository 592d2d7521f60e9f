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
from tests.helpers import sample, wait_for

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
    procs = {"train": psutil.Process(by_regex.pid), "etl": psutil.Process(by_pid.pid)}
    before, after = {}, {}

    def sampled() -> bool:
        # Passes sample the host at most once a second: pass until a sample shows both
        # children past 0.3 s of CPU, reading their CPU just before and after that pass.
        before.update({k: sum(p.cpu_times()[:2]) for k, p in procs.items()})
        e.ingest_pass()
        after.update({k: sum(p.cpu_times()[:2]) for k, p in procs.items()})
        cpu = [sample(e, "mlpipe_pipeline_cpu_seconds_total", pipeline=k) for k in procs]
        return all(c is not None and c > 0.3 for c in cpu)

    wait_for(sampled, interval=0.05, what="a sample with the children's CPU")
    for pipeline in ("train", "etl"):
        assert sample(e, "mlpipe_pipeline_processes", pipeline=pipeline) == 1
        # The exporter's sample lies between two independent readings of the child's CPU.
        cpu = sample(e, "mlpipe_pipeline_cpu_seconds_total", pipeline=pipeline)
        assert before[pipeline] - 0.011 <= cpu <= after[pipeline] + 0.011, (cpu, before, after)
        assert cpu > 0.3  # it did burn CPU
        assert sample(e, "mlpipe_pipeline_memory_bytes", pipeline=pipeline) > 1 << 20


def test_no_nvml_library_is_a_gauge_not_a_traceback(caplog, monkeypatch):
    # The real pynvml, made to look for a library that exists nowhere, as on a host without
    # an NVIDIA driver (whatever this host has): it raises NVMLError_LibraryNotFound.
    import ctypes

    import pynvml

    def no_library(name, *args, **kwargs):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(pynvml, "nvmlLib", None)
    monkeypatch.setattr(pynvml, "CDLL", no_library)
    assert ctypes.CDLL is not no_library  # only pynvml's lookup is changed
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


class _NVMLError(Exception):
    pass


def _fake_nvml(v2: bool = True, samples=()):
    """An NVML stand-in with one GPU, one process (pid 4242) and utilisation samples."""
    mem = types.SimpleNamespace(used=9587 << 20, total=143771 << 20, reserved=1 << 30)
    v1 = types.SimpleNamespace(used=(9587 << 20) + (1 << 30), total=143771 << 20)

    def memory(h, version=None):
        if version is None:
            return v1
        if not v2:
            raise _NVMLError("Function Not Found")
        return mem

    def utilization(h, since):
        out = [s for s in samples if s.timeStamp > since]
        if not out:
            raise _NVMLError("Not Found")
        return out

    return types.SimpleNamespace(
        NVMLError=_NVMLError,
        NVML_TEMPERATURE_GPU=0,
        nvmlMemory_v2=0x2000028,
        nvmlInit=lambda: None,
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda h: "NVIDIA H200",
        nvmlDeviceGetUUID=lambda h: "GPU-1",
        nvmlDeviceGetUtilizationRates=lambda h: types.SimpleNamespace(gpu=40),
        nvmlDeviceGetMemoryInfo=memory,
        nvmlDeviceGetPowerUsage=lambda h: 150_000,
        nvmlDeviceGetTemperature=lambda h, kind: 40,
        nvmlDeviceGetComputeRunningProcesses=lambda h: [
            types.SimpleNamespace(pid=4242, usedGpuMemory=8 << 30)
        ],
        nvmlDeviceGetProcessUtilization=utilization,
    )


def _util(ts, sm, mem=10, pid=4242):
    return types.SimpleNamespace(pid=pid, timeStamp=ts, smUtil=sm, memUtil=mem)


@pytest.mark.parametrize(
    ("v2", "expected"), [(True, 9587 << 20), (False, (9587 << 20) + (1 << 30))]
)
def test_gpu_memory_is_the_v2_reading_without_the_drivers_reservation(monkeypatch, v2, expected):
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(v2=v2))
    out = host.HostSample()
    host.GpuSampler().sample(out)
    assert out.gpus[0].memory_used == expected


def test_process_utilisation_is_the_mean_of_new_samples(monkeypatch):
    samples = [_util(1, 20), _util(2, 40), _util(3, 90, pid=7)]
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(samples=samples))
    sampler = host.GpuSampler()
    out = host.HostSample()
    sampler.sample(out)
    assert out.gpus[0].process_sm == {4242: pytest.approx(0.30)}
    samples.append(_util(4, 80))
    out = host.HostSample()
    sampler.sample(out)  # only the sample newer than the last one seen
    assert out.gpus[0].process_sm == {4242: pytest.approx(0.80)}
    out = host.HostSample()
    sampler.sample(out)  # none new: idle
    assert out.gpus[0].process_sm == {4242: 0.0}


def _exporter_with_process_4242(monkeypatch):
    """An exporter whose pipeline `train` is process 4242 (the host sampler stubbed)."""
    cfg = parse_config({"pipelines": [{"name": "train", "processes": {"pid_file": "/x"}}]})
    e = Exporter(cfg, collectors=("compute", "gpu", "exporter"))
    ingest = next(i for i in e.ingests if i.source == "host")

    def one_process(out):
        out.cpu_seconds_delta["train"], out.memory_bytes["train"] = 0.0, 0.0
        out.processes["train"], out.pids["train"] = 1, {4242}

    monkeypatch.setattr(ingest.sampler.processes, "sample", one_process)
    return e, ingest


def test_gpu_seconds_and_utilisation_per_pipeline(monkeypatch):
    samples = [_util(i, 50) for i in range(1, 4)]
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(samples=samples))
    monkeypatch.setattr(host, "in_host_pid_namespace", lambda: True)
    e, ingest = _exporter_with_process_4242(monkeypatch)
    ingest.step(e.state)
    ingest.last -= 2.0  # two seconds later
    samples += [_util(i, 50) for i in range(4, 8)]
    ingest.step(e.state)
    e.render()
    assert sample(e, "mlpipe_pipeline_gpu_utilization_ratio", pipeline="train") == 0.5
    assert sample(e, "mlpipe_pipeline_gpu_seconds_total", pipeline="train") == pytest.approx(
        1.0, abs=0.05
    )
    assert sample(e, "mlpipe_pipeline_gpu_memory_bytes", pipeline="train") == 8 << 30
    assert sample(e, "mlpipe_gpu_process_attribution_available") == 1


def test_no_attribution_outside_the_host_pid_namespace(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(samples=[_util(1, 50)]))
    monkeypatch.setattr(host, "in_host_pid_namespace", lambda: False)
    e, ingest = _exporter_with_process_4242(monkeypatch)  # 4242 may be any process
    ingest.step(e.state)
    assert sample(e, "mlpipe_gpu_process_attribution_available") == 0
    assert sample(e, "mlpipe_pipeline_gpu_memory_bytes", pipeline="train") is None
    assert sample(e, "mlpipe_pipeline_gpu_utilization_ratio", pipeline="train") is None
    assert sample(e, "mlpipe_gpu_up") == 1


def test_a_huge_command_line_cannot_stall_sampling_with_a_backtracking_regex(tmp_path):
    # "a*Q" searched in "aaa...ab" is quadratic: 12 s over a 120 KB command line (every
    # second, per process), 0.02 s over the first 4096 characters, which is all we match.
    arg = "a" * 120_000 + "b"
    script = tmp_path / "long.py"
    script.write_text("import time\ntime.sleep(30)\n")
    proc = subprocess.Popen([sys.executable, str(script), arg])
    try:
        cfg = parse_config({"pipelines": [{"name": "p", "processes": {"cmdline_regex": "a*Q"}}]})
        e = Exporter(cfg, collectors=("compute", "exporter"))
        started = time.monotonic()
        e.ingest_pass()
        assert time.monotonic() - started < 2
    finally:
        proc.kill()
        proc.wait()
