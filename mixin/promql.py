"""Rewrites of PromQL expressions with the mixin's settings. Pure functions on strings.

- ``select``: every exporter metric (``mlpipe_*``, not recording rules, whose names hold a
  colon) gets the exporter's selector, so the rules read only the exporter's series;
- ``keep_label``: every non-empty ``by (...)`` and ``on (...)`` list gets the cluster label,
  so aggregations and matches stay within one cluster (kubernetes-mixin's clusterLabel).
"""

from __future__ import annotations

import re

# A metric name not preceded by a name character or colon, not followed by one (recording
# rule names such as model:mlpipe_serving_errors:ratio_rate5m are left alone), with its
# optional label matchers.
METRIC = re.compile(r"(?<![\w:])(mlpipe_[a-zA-Z0-9_]*)(?![\w:(])(\{([^}]*)\})?")
GROUPING = re.compile(r"\b(by|on)\s*\(([^()]*)\)")


def select(expr: str, selector: str) -> str:
    def add(m: re.Match) -> str:
        name, inner = m.group(1), m.group(3)
        if inner is None or not inner.strip():
            return f"{name}{{{selector}}}"
        if selector in inner:
            return m.group(0)
        return f"{name}{{{selector},{inner}}}"

    return METRIC.sub(add, expr)


def keep_label(expr: str, label: str) -> str:
    if not label:
        return expr

    def add(m: re.Match) -> str:
        names = [n.strip() for n in m.group(2).split(",") if n.strip()]
        if not names or label in names:
            return m.group(0)
        return f"{m.group(1)} ({', '.join([label, *names])})"

    return GROUPING.sub(add, expr)


def rewrite(expr: str, selector: str, cluster_label: str) -> str:
    return keep_label(select(expr, selector), cluster_label)


# A recording rule's series (level:metric:operations, a colon in the name).
RECORDED = re.compile(r"(?<![\w:\"])([a-zA-Z_]\w*:[\w:]*\w)(?![\w:(])(\{([^}]*)\})?")


def select_recorded(expr: str, matcher: str) -> str:
    """Add ``matcher`` to every recorded series (they keep only the labels their rules
    aggregate by: the cluster, never the job or instance)."""

    def add(m: re.Match) -> str:
        name, inner = m.group(1), m.group(3)
        if inner is None or not inner.strip():
            return f"{name}{{{matcher}}}"
        return f"{name}{{{matcher},{inner}}}"

    return RECORDED.sub(add, expr)
