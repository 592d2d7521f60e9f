"""The exporter's own health: sources, checkpoints, ingestion, config reloads."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter import __version__
from exporter.state.source_stats import (
    FILE_ERROR_REASONS,
    IGNORED_REASONS,
    INVALID_REASONS,
    PUSH_SOURCES,
)
from exporter.state.store import State


def _revision() -> str:
    """The git revision of the package's checkout, or "unknown" (an installed wheel)."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(
            ["git", "-C", here, "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    rev = out.stdout.strip()
    return rev if out.returncode == 0 and rev.isalnum() else "unknown"


REVISION = _revision()


class ExporterCollector:
    name = "exporter"

    def __init__(self, app_status):
        # Callable returning a dict: ready, reload_ok, reload_timestamp.
        self.app_status = app_status

    def collect(self, state: State) -> Iterable[Metric]:
        info = GaugeMetricFamily(
            "mlpipe_exporter_build_info",
            "Build information; always 1 (python_info has the interpreter).",
            labels=["version", "revision"],
        )
        info.add_metric([__version__, REVISION], 1.0)
        yield info
        lines = CounterMetricFamily(
            "mlpipe_source_lines",
            "Records read, by result (a record split over several "
            "container-log lines counts once).",
            labels=["source", "result"],
        )
        invalid = CounterMetricFamily(
            "mlpipe_source_invalid_lines",
            "Lines skipped as invalid, by reason.",
            labels=["source", "reason"],
        )
        rejected = CounterMetricFamily(
            "mlpipe_source_rejected_values",
            "Values of otherwise valid lines that were not used, by field (a latency below 0 "
            "or above a day: the request counts, its latency is not observed).",
            labels=["source", "field"],
        )
        ignored = CounterMetricFamily(
            "mlpipe_source_ignored_lines",
            "Records read that are not for the exporter and not broken, by reason (a "
            "container's non-JSON output, a stream not configured); not in result=invalid.",
            labels=["source", "reason"],
        )
        read = CounterMetricFamily(
            "mlpipe_source_read_bytes", "Bytes of complete lines read.", labels=["source"]
        )
        lag = GaugeMetricFamily(
            "mlpipe_source_lag_bytes",
            "Bytes written to followed files but not yet ingested.",
            labels=["source"],
        )
        files = GaugeMetricFamily(
            "mlpipe_source_files", "Files currently followed.", labels=["source"]
        )
        file_errors = CounterMetricFamily(
            "mlpipe_source_file_errors",
            "Errors opening or reading a followed file, by reason (the file is retried).",
            labels=["source", "reason"],
        )
        skipped = CounterMetricFamily(
            "mlpipe_source_files_skipped",
            "Matched files not read, by reason (compressed).",
            labels=["source", "reason"],
        )
        ck_fail = CounterMetricFamily(
            "mlpipe_checkpoint_write_failures",
            "Failed checkpoint writes (state dir unwritable or full).",
            labels=["source"],
        )
        ck_ok = GaugeMetricFamily(
            "mlpipe_checkpoint_last_write_success",
            "Whether the last checkpoint write succeeded.",
            labels=["source"],
        )
        for source, stats in sorted(state.sources.items()):
            for result in ("parsed", "invalid", "ignored"):
                lines.add_metric([source, result], float(stats.lines[result]))
            for reason in INVALID_REASONS:
                invalid.add_metric([source, reason], float(stats.invalid[reason]))
            for reason in IGNORED_REASONS:
                ignored.add_metric([source, reason], float(stats.ignored[reason]))
            if source.startswith("serving") or source in PUSH_SOURCES:
                rejected.add_metric([source, "latency"], float(stats.rejected["latency"]))
            read.add_metric([source], float(stats.bytes_read))
            lag.add_metric([source], float(stats.lag_bytes))
            files.add_metric([source], float(stats.files))
            for reason in FILE_ERROR_REASONS:
                file_errors.add_metric([source, reason], float(stats.file_errors[reason]))
            skipped.add_metric([source, "compressed"], float(stats.files_skipped["compressed"]))
            ck_fail.add_metric([source], float(stats.checkpoint_failures))
            ck_ok.add_metric([source], 1.0 if stats.checkpoint_ok else 0.0)
        yield from (
            lines,
            invalid,
            ignored,
            rejected,
            read,
            lag,
            files,
            file_errors,
            skipped,
            ck_fail,
            ck_ok,
        )
        status = self.app_status()
        yield GaugeMetricFamily(
            "mlpipe_ready", "Whether the first ingest pass has completed.", value=status["ready"]
        )
        yield CounterMetricFamily(
            "mlpipe_ingest_passes", "Completed ingest passes.", value=state.ingest_passes
        )
        yield GaugeMetricFamily(
            "mlpipe_ingest_last_pass_timestamp_seconds",
            "When the last ingest pass completed.",
            value=state.last_ingest_timestamp,
        )
        errors = CounterMetricFamily(
            "mlpipe_ingest_errors",
            "Failures inside the ingest loop by stage (ingest, stats, render; compress: the "
            "gzip thread's); each is logged with a traceback and the loop goes on.",
            labels=["stage"],
        )
        for stage in ("ingest", "stats", "render", "compress"):
            errors.add_metric([stage], float(status["loop_errors"].get(stage, 0)))
        yield errors
        replies = status.get("push_replies")
        if replies is not None:
            pushes = CounterMetricFamily(
                "mlpipe_push_requests",
                "Requests to the push endpoints, by endpoint (records, kserve) and status code "
                "(429: saturated, retry; 400: a body that cannot be read; 413: too large).",
                labels=["endpoint", "code"],
            )
            for (endpoint, code), n in sorted(replies.items()):
                pushes.add_metric([endpoint, str(code)], float(n))
            yield pushes
            yield GaugeMetricFamily(
                "mlpipe_push_queued_records",
                "Records accepted by the push endpoints and not yet applied.",
                value=float(status["push_queued"]),
            )
            yield GaugeMetricFamily(
                "mlpipe_kserve_pending_events",
                "KServe request or response events waiting for their other half.",
                value=float(status["kserve_pending"]),
            )
            unpaired = CounterMetricFamily(
                "mlpipe_kserve_unpaired_events",
                "KServe events whose other half never came, by type: a request without a "
                "response is a failed inference (counted as an error), a response without a "
                "request a success without features.",
                labels=["type"],
            )
            for kind in ("request", "response"):
                unpaired.add_metric([kind], float(status["kserve_unpaired"][kind]))
            yield unpaired
        yield GaugeMetricFamily(
            "mlpipe_config_last_reload_successful",
            "Whether the last configuration reload succeeded.",
            value=1.0 if status["reload_ok"] else 0.0,
        )
        yield GaugeMetricFamily(
            "mlpipe_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully.",
            value=status["reload_timestamp"],
        )
