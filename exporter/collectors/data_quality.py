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

from prometheus_client.core import Metric

from exporter.collectors.blocks import BlockFamily, LayoutCache, gauge_layout
from exporter.state.profiles import STATUSES
from exporter.state.store import State


class DataQualityCollector:
    name = "data_quality"

    def __init__(self):
        self._layouts = LayoutCache()

    def collect(self, state: State) -> Iterable[Metric]:
        name = "mlpipe_feature_values"
        values = BlockFamily(
            name, "Feature values seen in serving logs, by data-quality status.", "counter"
        )
        for model, ms in state.models.items():
            features = tuple(ms.features.names)
            layout = self._layouts.get((model, features), self._layout, model, features)
            # status: (features, statuses), row by row as the layout.
            values.add_run(layout, ms.features.status.ravel())
        yield values

    @staticmethod
    def _layout(model: str, features: tuple[str, ...]):
        labels = [(model, f, status) for f in features for status in STATUSES]
        return gauge_layout(
            model, "mlpipe_feature_values_total", ("model", "feature", "status"), labels
        )
