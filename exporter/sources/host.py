"""Host sampling: CPU and memory of pipelines' processes (psutil) and GPUs (NVML).

Runs in the ingest thread between batches; scrapes read the last sample. A missing NVML
library, no GPU, or an NVML call that fails is reported (``mlpipe_gpu_up 0``, one log line)
and never raises. A per-GPU reading that the device does not support (power on some
boards) is left out for that GPU only.

GPU memory is NVML's v2 reading (what nvidia-smi and DCGM show: without the driver's
reserved memory), v1 where the driver lacks v2. Per process, NVML's utilisation samples
(SM and memory-controller busy, sampled by the driver) are averaged since the previous
sample. NVML reports processes by their PIDs in the host's PID namespace: where the exporter
runs in another PID namespace (a container without ``hostPID``) those PIDs could name
unrelated processes here, so per-pipeline GPU attribution is switched off and said so
(``mlpipe_gpu_process_attribution_available 0``) rather than risk a wrong pipeline.
"""

from __future__ import annotations

import logging
import os
import re

import psutil

from exporter.config import Pipeline
from exporter.state.host import GpuReading, HostSample

log = logging.getLogger(__name__)


# Only this much of a command line is matched against cmdline_regex.
CMDLINE_MATCH_CHARS = 4096


class ProcessSampler:
    """Matches processes to pipelines and accumulates their CPU time as deltas.

    A process seen for the first time contributes all CPU time since it started; a process
    that exits between two samples loses its last interval (its times are gone).
    """

    def __init__(self, pipelines: list[Pipeline]):
        self.matchers = []
        for p in pipelines:
            if p.processes is None:
                continue
            regex = re.compile(p.processes.cmdline_regex) if p.processes.cmdline_regex else None
            self.matchers.append((p.name, regex, p.processes.pid_file))
        self.last_cpu: dict[tuple[int, float], float] = {}  # (pid, create_time) -> cpu

    def _pid_file(self, path: str) -> int | None:
        try:
            with open(path, encoding="ascii") as fh:
                return int(fh.read().strip())
        except (OSError, ValueError):
            return None

    def sample(self, out: HostSample) -> None:
        if not self.matchers:
            return
        pid_files = {name: self._pid_file(pf) for name, _, pf in self.matchers if pf}
        seen: dict[tuple[int, float], float] = {}
        for name, *_ in self.matchers:
            out.cpu_seconds_delta[name] = 0.0
            out.memory_bytes[name] = 0.0
            out.processes[name] = 0
            out.pids[name] = set()
        own = os.getpid()
        for proc in psutil.process_iter(["pid", "cmdline", "create_time"]):
            try:
                pid, cmdline = proc.info["pid"], proc.info["cmdline"] or []
                if pid == own:
                    continue
                # Bounded: a regex with backtracking over a local process's 120 KB command
                # line must not stall sampling (what identifies a pipeline is near the start).
                text = " ".join(cmdline)[:CMDLINE_MATCH_CHARS]
                owner = None
                for name, regex, pid_file in self.matchers:
                    if (pid_file and pid_files.get(name) == pid) or (regex and regex.search(text)):
                        owner = name
                        break
                if owner is None:
                    continue
                with proc.oneshot():
                    times = proc.cpu_times()
                    rss = proc.memory_info().rss
                cpu = times.user + times.system
                key = (pid, proc.info["create_time"])
                seen[key] = cpu
                out.cpu_seconds_delta[owner] += max(0.0, cpu - self.last_cpu.get(key, 0.0))
                out.memory_bytes[owner] += rss
                out.processes[owner] += 1
                out.pids[owner].add(pid)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        self.last_cpu = seen


# /proc/self/ns/pid of a process in the initial (host) PID namespace (PROC_PID_INIT_INO).
INIT_PID_NAMESPACE = "pid:[4026531836]"


def in_host_pid_namespace() -> bool:
    try:
        return os.readlink("/proc/self/ns/pid") == INIT_PID_NAMESPACE
    except OSError:
        return False


class GpuSampler:
    """NVML readings per GPU; initialises NVML once and reports why it cannot."""

    def __init__(self):
        self.nvml = None
        self.error = ""
        self._warned = False
        self._last_util_ts: dict[int, int] = {}  # gpu index -> last sample time (µs)
        self.attribution = in_host_pid_namespace()
        if not self.attribution:
            log.warning(
                "not in the host's PID namespace: GPU processes are not attributed to "
                "pipelines (run with hostPID to attribute them)"
            )
        try:
            import pynvml
        except ImportError as exc:  # the package itself is missing
            self.error = f"pynvml not importable: {exc}"
        else:
            try:
                pynvml.nvmlInit()
                self.nvml = pynvml
            except pynvml.NVMLError as exc:
                self.error = f"NVML unavailable: {exc}"
            except OSError as exc:
                self.error = f"NVML library not loadable: {exc}"
        if self.error:
            log.info("GPU metrics off: %s", self.error)

    def _read(self, fn, *args):
        try:
            return fn(*args)
        except self.nvml.NVMLError:
            return None

    def sample(self, out: HostSample) -> None:
        if self.nvml is None:
            out.gpu_up, out.gpu_error = False, self.error
            return
        nv = self.nvml
        try:
            count = nv.nvmlDeviceGetCount()
            for i in range(count):
                h = nv.nvmlDeviceGetHandleByIndex(i)
                g = GpuReading(i)
                name = self._read(nv.nvmlDeviceGetName, h)
                g.name = name.decode() if isinstance(name, bytes) else str(name or "")
                uuid = self._read(nv.nvmlDeviceGetUUID, h)
                g.uuid = uuid.decode() if isinstance(uuid, bytes) else str(uuid or "")
                util = self._read(nv.nvmlDeviceGetUtilizationRates, h)
                g.utilization = util.gpu / 100.0 if util is not None else None
                mem = self._memory(h)
                if mem is not None:
                    g.memory_used, g.memory_total = float(mem.used), float(mem.total)
                power = self._read(nv.nvmlDeviceGetPowerUsage, h)
                g.power_watts = power / 1000.0 if power is not None else None
                temp = self._read(nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU)
                g.temperature = float(temp) if temp is not None else None
                for p in self._read(nv.nvmlDeviceGetComputeRunningProcesses, h) or []:
                    used = getattr(p, "usedGpuMemory", None)
                    if used is not None:
                        g.processes[int(p.pid)] = float(used)
                self._process_utilization(i, h, g)
                out.gpus.append(g)
            out.gpu_up = True
            out.gpu_attribution = self.attribution
        except nv.NVMLError as exc:
            out.gpu_up, out.gpu_error, out.gpus = False, f"NVML call failed: {exc}", []
            if not self._warned:
                log.error("GPU sampling failed: %s", exc)
                self._warned = True

    def _memory(self, handle):
        """v2 memory info (used excludes the driver's reservation); v1 on older drivers."""
        nv = self.nvml
        version = getattr(nv, "nvmlMemory_v2", None)
        if version is not None:
            try:
                return nv.nvmlDeviceGetMemoryInfo(handle, version=version)
            except (nv.NVMLError, AttributeError, TypeError):
                pass
        return self._read(nv.nvmlDeviceGetMemoryInfo, handle)

    def _process_utilization(self, index: int, handle, g: GpuReading) -> None:
        """Mean SM and memory busy per process over the samples since the last call."""
        nv = self.nvml
        since = self._last_util_ts.get(index, 0)
        try:
            samples = nv.nvmlDeviceGetProcessUtilization(handle, since)
        except nv.NVMLError:
            samples = []  # NOT_FOUND: no sample since then; NOT_SUPPORTED: none at all
        sums: dict[int, list[float]] = {}
        for s in samples:
            self._last_util_ts[index] = max(self._last_util_ts.get(index, 0), int(s.timeStamp))
            acc = sums.setdefault(int(s.pid), [0.0, 0.0, 0])
            acc[0] += s.smUtil
            acc[1] += s.memUtil
            acc[2] += 1
        for pid in g.processes:
            sm, memory, n = sums.get(pid, (0.0, 0.0, 0))
            g.process_sm[pid] = min(1.0, sm / n / 100.0) if n else 0.0
            g.process_memory_util[pid] = min(1.0, memory / n / 100.0) if n else 0.0


class HostSampler:
    def __init__(self, pipelines: list[Pipeline], gpu: bool = True):
        self.processes = ProcessSampler(pipelines)
        self.gpu = GpuSampler() if gpu else None

    def sample(self) -> HostSample:
        out = HostSample()
        self.processes.sample(out)
        if self.gpu is not None:
            self.gpu.sample(out)
        return out
