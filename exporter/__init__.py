"""mlpipe-exporter: a Prometheus exporter for production ML pipelines."""

__version__ = "0.1.0"
