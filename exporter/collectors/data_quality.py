"""Feature values by data-quality status.

Example output::

    # TYPE mlpipe_feature_values_total counter
    mlpipe_feature_values_total{model="fraud",feature="amount",status="malformed"} 12.0

``status``: valid, missing (absent or null), malformed (wrong JSON type; unparsable),
out_of_range (outside the reference's range widened by ``out_of_range_margin``), unseen
(a category the reference never had). Every value has exactly one status.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, Metric

from exporter.state.profiles import STATUSES
from exporter.state.store import State


class DataQualityCollector:
    name = "data_quality"

    def collect(self, state: State) -> Iterable[Metric]:
        values = CounterMetricFamily(
            "mlpipe_feature_values",
            "Feature values seen in serving logs, by data-quality status.",
            labels=["model", "feature", "status"],
        )
        for name, ms in state.models.items():
            for j, feature in enumerate(ms.features.names):
                for k, status in enumerate(STATUSES):
                    values.add_metric([name, feature, status], float(ms.features.status[j, k]))
        yield values
