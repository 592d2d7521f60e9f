"""CPU and memory of pipelines' processes (psutil), and GPUs (NVML).

Example output::

    # TYPE mlpipe_pipeline_cpu_seconds_total counter
    mlpipe_pipeline_cpu_seconds_total{pipeline="train-fraud"} 5123.4
    # TYPE mlpipe_gpu_up gauge
    mlpipe_gpu_up 0.0
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.state.store import State


class ComputeCollector:
    name = "compute"

    def collect(self, state: State) -> Iterable[Metric]:
        cpu = CounterMetricFamily(
            "mlpipe_pipeline_cpu_seconds",
            "CPU time of the pipeline's matched processes (psutil).",
            labels=["pipeline"],
        )
        mem = GaugeMetricFamily(
            "mlpipe_pipeline_memory_bytes",
            "Resident memory of the pipeline's matched processes.",
            labels=["pipeline"],
        )
        procs = GaugeMetricFamily(
            "mlpipe_pipeline_processes", "Processes matched to the pipeline.", labels=["pipeline"]
        )
        for name, ps in state.pipelines.items():
            if ps.pipeline.processes is None:
                continue
            cpu.add_metric([name], ps.cpu_seconds)
            mem.add_metric([name], ps.memory_bytes)
            procs.add_metric([name], ps.processes)
        yield from (cpu, mem, procs)


class GpuCollector:
    name = "gpu"

    def collect(self, state: State) -> Iterable[Metric]:
        host = state.host
        yield GaugeMetricFamily(
            "mlpipe_gpu_up",
            "1 if NVML answered on the last sample; 0: no GPU, no NVML "
            "library, or an NVML error (see the exporter's log).",
            value=1.0 if host.gpu_up else 0.0,
        )
        info = GaugeMetricFamily(
            "mlpipe_gpu_info", "GPU identity; always 1.", labels=["gpu", "name", "uuid"]
        )
        util = GaugeMetricFamily(
            "mlpipe_gpu_utilization_ratio",
            "Share of time a kernel ran over NVML's sample period.",
            labels=["gpu"],
        )
        used = GaugeMetricFamily(
            "mlpipe_gpu_memory_used_bytes", "GPU memory in use.", labels=["gpu"]
        )
        total = GaugeMetricFamily(
            "mlpipe_gpu_memory_total_bytes", "GPU memory in all.", labels=["gpu"]
        )
        power = GaugeMetricFamily("mlpipe_gpu_power_watts", "Power draw.", labels=["gpu"])
        temp = GaugeMetricFamily(
            "mlpipe_gpu_temperature_celsius", "GPU temperature.", labels=["gpu"]
        )
        per_pipeline = GaugeMetricFamily(
            "mlpipe_pipeline_gpu_memory_bytes",
            "GPU memory of the pipeline's matched processes.",
            labels=["pipeline"],
        )
        pipeline_util = GaugeMetricFamily(
            "mlpipe_pipeline_gpu_utilization_ratio",
            "SM busy share of the pipeline's processes, summed over GPUs (1 = one whole GPU).",
            labels=["pipeline"],
        )
        pipeline_seconds = CounterMetricFamily(
            "mlpipe_pipeline_gpu_seconds",
            "GPU-busy seconds of the pipeline's processes (utilisation integrated over time).",
            labels=["pipeline"],
        )
        for g in host.gpus:
            i = str(g.index)
            info.add_metric([i, g.name, g.uuid], 1.0)
            for family, value in (
                (util, g.utilization),
                (used, g.memory_used),
                (total, g.memory_total),
                (power, g.power_watts),
                (temp, g.temperature),
            ):
                if value is not None:
                    family.add_metric([i], value)
        yield GaugeMetricFamily(
            "mlpipe_gpu_process_attribution_available",
            "1 if GPU processes can be matched to pipelines; 0 in another PID namespace "
            "(a container without hostPID), where no per-pipeline GPU figure is exported.",
            value=1.0 if host.gpu_attribution else 0.0,
        )
        if host.gpu_up and host.gpu_attribution:
            for name, ps in state.pipelines.items():
                if ps.pipeline.processes is not None:
                    per_pipeline.add_metric([name], ps.gpu_memory_bytes)
                    pipeline_util.add_metric([name], ps.gpu_utilization)
                    pipeline_seconds.add_metric([name], ps.gpu_seconds)
        yield from (info, util, used, total, power, temp, per_pipeline)
        yield from (pipeline_util, pipeline_seconds)
