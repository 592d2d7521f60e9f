"""Self-metrics of one input source, and the vocabularies they are counted in (small fixed
sets: the label values of mlpipe_source_*_total). Sources count into them; collectors
export them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# Why a line was not used, for every tailed source; a small fixed set (label values of
# mlpipe_source_invalid_lines_total).
INVALID_REASONS = (
    "not_json",  # not a JSON object (includes empty lines and non-standard tokens like NaN)
    "not_utf8",  # bytes that are not UTF-8 (JSON text must be UTF-8)
    "missing_field",  # a required field is absent
    "wrong_type",  # a field of the wrong JSON type, or an unknown run status
    "bad_timestamp",  # neither RFC 3339 nor epoch seconds
    "unknown_model",  # a model name not in the config
    "unknown_pipeline",  # a pipeline name not in the config
    "too_long",  # longer than serving_log.max_line_bytes
    "internal_error",  # the exporter failed on the line's chunk (a bug; logged with a traceback)
    "bad_envelope",  # not a line of the configured envelope (serving_log.format cri/docker)
    "bad_body",  # a pushed request body that cannot be read (answered 400)
)

# Records read but not for the exporter, not broken either: label values of
# mlpipe_source_ignored_lines_total.
IGNORED_REASONS = (
    "not_json_payload",  # a container's non-JSON output (an access log beside the records)
    "stream",  # a container stream not in serving_log.streams
)

# The push endpoints' sources (POST /api/v1/records, POST /api/v1/kserve).
PUSH_SOURCES = ("push", "kserve")

# Why a file could not be read: label values of mlpipe_source_file_errors_total.
FILE_ERROR_REASONS = ("permission_denied", "io_error", "too_many_open_files", "other")


@dataclass
class SourceStats:
    """Self-metrics of one input source."""

    lines: Counter = field(default_factory=Counter)  # parsed / invalid
    invalid: Counter = field(default_factory=Counter)  # by reason
    ignored: Counter = field(default_factory=Counter)  # by IGNORED_REASONS
    rejected: Counter = field(default_factory=Counter)  # values of used lines, by field
    bytes_read: int = 0
    lag_bytes: int = 0
    files: int = 0
    checkpoint_failures: int = 0
    checkpoint_ok: bool = True
    file_errors: Counter = field(default_factory=Counter)  # by tail.FILE_ERROR_REASONS
    files_skipped: Counter = field(default_factory=Counter)  # by reason ("compressed")
