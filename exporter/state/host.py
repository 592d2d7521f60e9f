"""What a host sample holds: pipelines' processes (psutil) and GPUs (NVML), as
sources/host.py reads them and state keeps the latest."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class GpuReading:
    index: int
    name: str = ""
    uuid: str = ""
    utilization: float | None = None  # ratio 0-1
    memory_used: float | None = None  # bytes
    memory_total: float | None = None
    power_watts: float | None = None
    temperature: float | None = None  # celsius
    processes: dict[int, float] = field(default_factory=dict)  # pid -> GPU memory bytes
    process_sm: dict[int, float] = field(default_factory=dict)  # pid -> SM busy ratio 0-1
    process_memory_util: dict[int, float] = field(default_factory=dict)  # pid -> ratio 0-1


@dataclass
class HostSample:
    cpu_seconds_delta: dict[str, float] = field(default_factory=dict)  # pipeline -> seconds
    memory_bytes: dict[str, float] = field(default_factory=dict)
    processes: dict[str, int] = field(default_factory=dict)
    pids: dict[str, set] = field(default_factory=dict)
    gpu_up: bool = False
    gpu_error: str = ""
    gpus: list[GpuReading] = field(default_factory=list)
    # False where NVML's PIDs cannot be matched to ours (another PID namespace).
    gpu_attribution: bool = True
