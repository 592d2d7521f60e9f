"""Inputs: files tailed or watched, hosts sampled."""

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
)
