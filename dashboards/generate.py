"""Generate the Grafana dashboards (classic JSON, schemaVersion 39) from one description,
with the selectors, cluster label and SLO of mixin/config.yaml.

    python -m mixin.generate           # rewrite dashboards/*.json (and the rest of the mixin)
    python dashboards/generate.py      # the same
    python -m mixin.generate --check   # exit 1 if a generated file is out of date

Every panel queries the `datasource` variable; rates use $__rate_interval. Every query of
the exporter's series carries the mixin's selector and the `cluster` and `instance`
variables; of a recording rule's, the `cluster` variable.
"""

from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from mixin import promql  # noqa: E402
from mixin.settings import Settings, load, percent  # noqa: E402

DS = {"type": "prometheus", "uid": "${datasource}"}
# Set by ``render``: the mixin's settings the dashboards are built for.
SETTINGS: Settings | None = None


def var(name: str, query: str, multi: bool = True, label: str | None = None) -> dict:
    return {
        "name": name,
        "label": label or name.capitalize(),
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": f"{name}-var"},
        "definition": query,
        "refresh": 2,
        "includeAll": multi,
        "multi": multi,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if multi else {},
        "sort": 1,
    }


DATASOURCE = {
    "name": "datasource",
    "label": "Data source",
    "type": "datasource",
    "query": "prometheus",
    "current": {},
    "hide": 0,
}
MODEL = var("model", "label_values(mlpipe_serving_requests_total, model)")
VERSION = var("version", 'label_values(mlpipe_serving_requests_total{model=~"$model"}, version)')
FEATURE = var("feature", 'label_values(mlpipe_feature_skew{model=~"$model"}, feature)')
DATASET = var("dataset", "label_values(mlpipe_dataset_info, dataset)")
PIPELINE = var("pipeline", "label_values(mlpipe_pipeline_runs_total, pipeline)")
QUOTA = var("quota", "label_values(mlpipe_quota_limit, quota)")


# What each panel shows and what to look for, for the on-call who did not build it (a
# panel given its own ``desc`` keeps that).
DESCRIPTIONS = {
    "Traffic share by version": "Each version's share of the model's requests: the canary's "
    "ramp. A canary judged on a tiny share is judged on little data.",
    "Stable version": "1 for the version canaries are compared with (canary.stable_version, "
    "else the busiest in the window).",
    "Error ratio by version": "Failed requests over all, per version. The canary page fires "
    "when the canary fails over twice the stable version plus one point.",
    "p99 latency by version": "Slowest 1 % of requests per version. The canary page fires at "
    "over 1.5x the stable version plus 10 ms.",
    "Prediction divergence from stable": "How differently each version predicts than the "
    "stable one on the same window (per method); above the model's threshold the canary is "
    "changing decisions.",
    "Canary divergence beyond chance (p-value)": "The two-sample test of each canary's "
    "predictions against the stable version's, same window (comparison stable), beside "
    "the p-value the model's false-alarm rate allows: below it the canary predicts "
    "differently beyond chance, and the canary check fails if its distance is also over "
    "threshold. A young canary far from stable by luck stays above it.",
    "Quality by version": "Quality measured on joined labels, per version: the canary should "
    "not be worse once labels arrive.",
    "Rows in latest partition": "Rows of each dataset's newest partition; a sudden drop is a "
    "broken upstream job.",
    "Hours since last update": "Time since a dataset's newest partition landed "
    "(MlpipeDatasetStale pages past its expected interval).",
    "Dataset skew vs training (PSI)": "Each column of the newest partition against the "
    "training reference (PSI, an effect size; 0.2 is the usual line).",
    "Dataset drift vs previous partition (PSI)": "Each column against the partition before: a "
    "step here is a change in the data pipeline.",
    "Files failed": "Partition files that could not be read, by reason (MlpipeDatasetFilesFailing).",
    "Pipeline runs by status": "Runs started, succeeded and failed per pipeline, from the run log.",
    "Last run duration": "How long each pipeline's last finished run took (MlpipePipelineRunSlow).",
    "Time since last success vs expected": "Seconds since each pipeline last succeeded; "
    "beyond its expected_interval MlpipePipelineNoRecentSuccess pages.",
    "Running runs": "Runs in progress per pipeline; one stuck past its expected time is "
    "MlpipePipelineRunStuck.",
    "Skew heatmap (PSI) by feature": "Every feature's distance from training over time: where "
    "and when the traffic moved.",
    "Feature skew (PSI, an effect size)": "How far each feature's window is from training. An "
    "effect size for triage: pages come from the verdicts (MlpipeModelSkew), not this line.",
    "Feature drift, window vs previous (PSI)": "Each feature's window against the one before: "
    "a step change shows for about one window length (MlpipeModelDrift).",
    "Prediction skew by version (JS)": "Each version's predictions against the reference's "
    "(Jensen-Shannon, bits).",
    "Label skew (PSI)": "Joined labels against the reference's: the base rate moved.",
    "Feature values by status": "Missing, malformed, out-of-range and unseen values per "
    "second, per feature (the data-quality alerts).",
    "Window samples": "Records per version in the current window; below min_samples no "
    "statistic is exported.",
    "Model quality": "Quality from joined ground-truth labels over the window, beside each "
    "metric's floor (quality_thresholds): below it MlpipeModelQualityBelowFloor fires.",
    "Labels joined / s": "Labels matched to predictions, expired or evicted (MlpipeLabelsNotArriving).",
    "Distribution over time ($feature)": "The feature's histogram over time (fleet-wide, "
    "every exporter): where the mass sits and when it moved.",
    "Requests / s": "Requests per second from the serving logs.",
    "Error ratio": "Failed requests over all (status error-like or HTTP >= 500), against the "
    "availability SLO's error budget (orange) and its fast-burn page line (red).",
    "Firing mlpipe alerts": "Alerts of this bundle firing now (Prometheus' ALERTS).",
    "Collectors failing": "Collectors whose last run failed (MlpipeCollectorFailing): their "
    "metrics are missing from this scrape.",
    "Requests / s by model": "Requests per second per model.",
    "p99 latency by model": "Slowest 1 % of requests per model.",
    "Worst feature skew by model (PSI)": "Each model's most skewed feature: where to look first.",
    "Time since last pipeline success": "Seconds since each pipeline last succeeded.",
    "Quota used": "Use over limit per quota: 1 is exhausted.",
    "Quota used / limit": "Use over limit per quota and resource (MlpipeQuotaNearLimit at 0.9).",
    "Hours to exhaustion at current rate": "When the quota runs out at the recent rate "
    "(MlpipeQuotaExhaustionForecast); +Inf: not at this rate.",
    "Share of a shared quota by pipeline": "Each pipeline's part of a shared quota's use "
    "(MlpipeQuotaHog when one takes most).",
    "Pipeline CPU (cores)": "CPU of each pipeline's processes, in cores.",
    "Pipeline memory": "Resident memory of each pipeline's processes.",
    "GPU metrics available": "1 if NVML answers on this host; 0: no GPU or no driver, and "
    "the GPU panels stay empty.",
    "GPU utilisation": "Share of time each GPU's SMs were busy.",
    "GPU memory used": "Used over total memory per GPU (MlpipeGpuMemoryNearFull).",
    "Pipeline GPU busy (SM share; 1 = one GPU)": "GPU time of each pipeline's processes, in "
    "GPUs (MlpipeAcceleratorUnderused when low while holding GPUs).",
    "Latency p50 / p99": "Median and slowest 1 % of requests per version.",
    "Seconds since last request": "Time since each model's last logged request "
    "(MlpipeServingNoTraffic).",
    "Peak requests / s (window)": "p99 of the per-bucket request rates in the window: what "
    "the replica estimate plans for.",
}


# Panels with a line to read against: (value, color) steps above a green base, from the
# alert that fires there (or, for PSI, the usual effect-size lines: they do not page).
PSI_STEPS = ((0.1, "orange"), (0.2, "red"))
QUOTA_STEPS = ((0.9, "orange"), (1.0, "red"))  # MlpipeQuotaNearLimit; exhausted
THRESHOLDS = {
    "Worst feature skew by model (PSI)": PSI_STEPS,
    "Feature skew (PSI, an effect size)": PSI_STEPS,
    "Feature drift, window vs previous (PSI)": PSI_STEPS,
    "Label skew (PSI)": PSI_STEPS,
    "Dataset skew vs training (PSI)": PSI_STEPS,
    "Dataset drift vs previous partition (PSI)": PSI_STEPS,
    "Fleet skew (PSI), all instances merged": PSI_STEPS,
    "Fleet verdicts (1 = drifted)": ((1.0, "red"),),
    "Quota used": QUOTA_STEPS,
    "Quota used / limit": QUOTA_STEPS,
    "Share of a shared quota by pipeline": ((0.8, "orange"),),  # MlpipeQuotaHog
    "Hours to exhaustion at current rate": ((24.0, "green"),),  # set below: red under 24 h
    "GPU memory used": ((0.95, "red"),),  # MlpipeGpuMemoryNearFull
    "Seconds since last request": ((600.0, "red"),),  # MlpipeServingNoTraffic
    "Firing mlpipe alerts": ((1.0, "red"),),
    "Collectors failing": ((1.0, "red"),),  # MlpipeCollectorFailing
}


def slo_thresholds(s: Settings) -> dict[str, tuple]:
    """The SLO panels' lines, from the mixin's SLO."""
    factors = sorted(b.factor for b in s.page)
    burn = ((factors[0], "orange"), (factors[-1], "red"))
    latency = ((s.latency_threshold, "red"),)
    return {
        "Error ratio": ((s.error_budget, "orange"), (factors[0] * s.error_budget, "red")),
        error_burn_title(s): burn,
        latency_burn_title(s): burn,
        "p99 latency by model": latency,
        "Latency p50 / p99": latency,
    }


def error_burn_title(s: Settings) -> str:
    return f"Error budget burn rate ({s.page[0].long}, SLO {percent(s.availability)} %)"


def latency_burn_title(s: Settings) -> str:
    ms = f"{s.latency_threshold * 1000:g} ms"
    return (
        f"Latency budget burn rate ({s.page[0].long}, SLO {percent(s.latency_target)} % under {ms})"
    )


def thresholds(steps: tuple) -> dict:
    out = [{"color": "green", "value": None}]
    out += [{"color": color, "value": value} for value, color in steps]
    return {"mode": "absolute", "steps": out}


def panel(title, exprs, kind="timeseries", unit="short", w=12, h=8, legend=None, desc=""):
    desc = desc or DESCRIPTIONS.get(title, "")
    if isinstance(exprs, str):
        exprs = [exprs]
    legends = legend if isinstance(legend, list) else [legend] * len(exprs)
    targets = [
        {
            "refId": chr(65 + i),
            "datasource": DS,
            "expr": e,
            "legendFormat": lg or "__auto",
            # One or the other: Grafana answers both with two frames, and a stat, bar or
            # table panel wants the value now.
            "range": kind not in ("stat", "bargauge", "table"),
            "instant": kind in ("stat", "bargauge", "table"),
        }
        for i, (e, lg) in enumerate(zip(exprs, legends, strict=True))
    ]
    p = {
        "type": kind,
        "title": title,
        "description": desc,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "gridPos": {"w": w, "h": h},
    }
    if kind == "heatmap":
        p["options"] = {
            "calculate": False,
            "yAxis": {"axisPlacement": "left"},
            "color": {"scheme": "Oranges", "mode": "scheme"},
        }
    if kind == "bargauge":
        p["options"] = {"orientation": "horizontal", "displayMode": "gradient"}
    steps = {**THRESHOLDS, **slo_thresholds(SETTINGS)}.get(title)
    if steps:
        defaults = p["fieldConfig"]["defaults"]
        defaults["thresholds"] = thresholds(steps)
        if title == "Hours to exhaustion at current rate":  # fewer hours is worse
            defaults["thresholds"]["steps"][0]["color"] = "red"
        if kind == "timeseries":
            defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
    return p


def row(title):
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "panels": [],
        "gridPos": {"w": 24, "h": 1},
    }


def scope_variables(s: Settings) -> list[dict]:
    """Cluster and instance variables, before the dashboard's own."""
    up = f"up{{{s.selector}}}"
    out = []
    if s.cluster_label:
        out.append(var("cluster", f"label_values({up}, {s.cluster_label})"))
        up = f'up{{{s.selector},{s.cluster_label}=~"$cluster"}}'
    out.append(var("instance", f"label_values({up}, {s.instance_label})"))
    return out


def scoped(expr: str, s: Settings) -> str:
    """An expression reading only the selected exporters (and cluster)."""
    raw = [s.selector, f'{s.instance_label}=~"$instance"']
    if s.cluster_label:
        raw.insert(1, f'{s.cluster_label}=~"$cluster"')
        expr = promql.select_recorded(expr, f'{s.cluster_label}=~"$cluster"')
    return promql.select(expr, ",".join(raw))


def dashboard(uid, title, description, variables, panels, tags=("mlpipe",)):
    s = SETTINGS
    own = [dict(v) for v in variables]
    for v in own:
        v["query"] = {**v["query"], "query": scoped(v["query"]["query"], s)}
        v["definition"] = v["query"]["query"]
    variables = [*scope_variables(s), *own]
    for p in panels:
        for t in p.get("targets", ()):
            t["expr"] = scoped(t["expr"], s)
    x = y = 0
    line_h = 0
    for i, p in enumerate(panels, start=1):
        p["id"] = i
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if x + w > 24 or p["type"] == "row":
            x, y = 0, y + line_h
            line_h = 0
        p["gridPos"].update({"x": x, "y": y})
        x += w
        line_h = max(line_h, h)
        if p["type"] == "row":
            x, y, line_h = 0, y + 1, 0
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": list(tags),
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "timezone": "browser",
        "graphTooltip": 1,
        "templating": {"list": [DATASOURCE, *variables]},
        "annotations": {
            "list": [
                {
                    "name": "Alerts",
                    "datasource": DS,
                    "enable": True,
                    "iconColor": "red",
                    "expr": 'ALERTS{alertname=~"Mlpipe.+", alertstate="firing"}',
                    "titleFormat": "{{alertname}}",
                    "step": "60s",
                }
            ]
        },
        "links": [
            {
                "title": "mlpipe dashboards",
                "type": "dashboards",
                "tags": ["mlpipe"],
                "asDropdown": True,
            }
        ],
        "panels": panels,
    }


M = 'model=~"$model"'
MV = 'model=~"$model",version=~"$version"'
RI = "$__rate_interval"


def overview():
    return dashboard(
        "mlpipe-overview",
        "mlpipe / Overview",
        "Every model, dataset, pipeline and quota at a glance.",
        [MODEL],
        [
            panel(
                "Requests / s",
                f"sum(rate(mlpipe_serving_requests_total{{{M}}}[{RI}]))",
                "stat",
                "reqps",
                6,
                4,
            ),
            panel(
                "Error ratio",
                f'sum(rate(mlpipe_serving_requests_total{{{M},outcome="error"}}[{RI}])) / sum(rate(mlpipe_serving_requests_total{{{M}}}[{RI}]))',
                "stat",
                "percentunit",
                6,
                4,
            ),
            panel(
                "Firing mlpipe alerts",
                'count(ALERTS{alertname=~"Mlpipe.+",alertstate="firing"}) or vector(0)',
                "stat",
                "short",
                6,
                4,
            ),
            panel(
                "Collectors failing",
                "count(mlpipe_scrape_collector_success == 0) or vector(0)",
                "stat",
                "short",
                6,
                4,
            ),
            panel(
                "Requests / s by model",
                f"sum by (model) (rate(mlpipe_serving_requests_total{{{M}}}[{RI}]))",
                unit="reqps",
                legend="{{model}}",
            ),
            panel(
                "p99 latency by model",
                f"histogram_quantile(0.99, sum by (model, le) (rate(mlpipe_serving_request_duration_seconds_bucket{{{M}}}[{RI}])))",
                unit="s",
                legend="{{model}}",
            ),
            panel(
                "Worst feature skew by model (PSI)",
                f'max by (model) (mlpipe_feature_skew{{{M},method="psi"}})',
                legend="{{model}}",
            ),
            panel(
                "Model quality",
                [f"mlpipe_model_quality{{{M}}}", f"mlpipe_model_quality_threshold{{{M}}}"],
                legend=["{{model}} {{version}} {{metric}}", "{{model}} {{metric}} floor"],
            ),
            panel(
                "Time since last pipeline success",
                "time() - mlpipe_pipeline_last_success_timestamp_seconds",
                "bargauge",
                "s",
                legend="{{pipeline}}",
            ),
            panel(
                "Quota used",
                "mlpipe_quota_used / on (quota, resource) mlpipe_quota_limit",
                "bargauge",
                "percentunit",
                legend="{{quota}}",
            ),
        ],
    )


def serving():
    burn = SETTINGS.page[0].long
    pages = f"{max(b.factor for b in SETTINGS.page):g}"
    return dashboard(
        "mlpipe-serving",
        "mlpipe / Serving",
        "Traffic, errors, latency and SLO burn per model and version.",
        [MODEL, VERSION],
        [
            panel(
                "Requests / s",
                f"sum by (model, version) (rate(mlpipe_serving_requests_total{{{MV}}}[{RI}]))",
                unit="reqps",
                legend="{{model}} {{version}}",
            ),
            panel(
                "Error ratio",
                f'sum by (model, version) (rate(mlpipe_serving_requests_total{{{MV},outcome="error"}}[{RI}])) / sum by (model, version) (rate(mlpipe_serving_requests_total{{{MV}}}[{RI}]))',
                unit="percentunit",
                legend="{{model}} {{version}}",
            ),
            panel(
                "Latency p50 / p99",
                [
                    f"histogram_quantile(0.5, sum by (model, version, le) (rate(mlpipe_serving_request_duration_seconds_bucket{{{MV}}}[{RI}])))",
                    f"histogram_quantile(0.99, sum by (model, version, le) (rate(mlpipe_serving_request_duration_seconds_bucket{{{MV}}}[{RI}])))",
                ],
                unit="s",
                legend=["p50 {{model}} {{version}}", "p99 {{model}} {{version}}"],
            ),
            panel(
                error_burn_title(SETTINGS),
                f"model:mlpipe_serving_errors:ratio_rate{burn}{{{M}}} / {SETTINGS.error_budget:g}",
                legend="{{model}}",
                desc=f"1 = spending the budget exactly over the SLO period; {pages} pages.",
            ),
            panel(
                latency_burn_title(SETTINGS),
                f"model:mlpipe_serving_slow:ratio_rate{burn}{{{M}}} / {SETTINGS.slow_budget:g}",
                legend="{{model}}",
                desc="How fast slow requests spend the latency budget: 1 spends it exactly "
                f"over the SLO period; the fast-burn page is at {pages}.",
            ),
            panel(
                "Seconds since last request",
                f"time() - max by (model) (mlpipe_serving_last_request_timestamp_seconds{{{M}}})",
                "bargauge",
                "s",
                legend="{{model}}",
            ),
            panel(
                "Estimated replicas needed",
                f"mlpipe_serving_estimated_replicas{{{M}}}",
                "stat",
                legend="{{model}}",
                desc="Little's law over the window (docs/capacity.md).",
            ),
            panel(
                "Peak requests / s (window)",
                f"mlpipe_serving_peak_requests_per_second{{{M}}}",
                "stat",
                "reqps",
                legend="{{model}}",
            ),
        ],
    )


FEATURE_LINK = {
    "title": "How ${__field.labels.feature} moved",
    "url": "/d/mlpipe-drift?var-model=${__field.labels.model}"
    "&var-feature=${__field.labels.feature}&${__url_time_range}",
}


def fleet_panels() -> list[dict]:
    """Fleet scores (every exporter's counters merged by Prometheus) and, per feature, how
    its distribution moved: shares by bucket or category, quantiles, a heatmap."""
    MF = f'{M},feature=~"$feature"'
    quantiles = [
        f"histogram_quantile({q}, sum by (le, feature) "
        f"(rate(mlpipe_feature_value_bucket{{{MF}}}[{RI}])))"
        for q in (0.1, 0.5, 0.9)
    ] + [
        f"histogram_quantile({q}, max by (le, feature) "
        f"(mlpipe_reference_feature_bucket_ratio{{{MF}}}))"
        for q in (0.1, 0.5, 0.9)
    ]
    scores = panel(
        "Fleet skew (PSI), all instances merged",
        f'mlpipe:feature_skew:fleet{{{MF},method="psi"}}',
        legend="{{model}} {{feature}}",
        desc="Computed by Prometheus from every exporter's distribution counters "
        "(alert_rules/fleet.yaml): correct at any number of replicas. Click a feature for "
        "its distribution.",
    )
    scores["fieldConfig"]["defaults"]["links"] = [FEATURE_LINK]
    verdicts = panel(
        "Fleet verdicts (1 = drifted)",
        f"mlpipe:feature_drifted:fleet{{{MF}}}",
        legend="{{model}} {{feature}} {{comparison}}",
        desc="What pages for models several exporters export (MlpipeModelSkew/Drift).",
    )
    verdicts["fieldConfig"]["defaults"]["links"] = [FEATURE_LINK]
    shares = panel(
        "Shares by bucket or category: reference vs this window ($feature)",
        f'mlpipe:feature_bin:share{{{MF},window=~"reference|current"}}',
        "bargauge",
        unit="percentunit",
        w=8,
        legend="{{feature}} {{bin}} {{window}}",
        desc="Which values moved, and where to: each bucket's (le: its upper edge) or "
        "category's share in the reference and in the fleet's current window.",
    )
    moved = panel(
        "Quantiles over time vs the reference's ($feature)",
        quantiles,
        w=8,
        legend=[f"{{{{feature}}}} p{q} now" for q in (10, 50, 90)]
        + [f"{{{{feature}}}} p{q} reference" for q in (10, 50, 90)],
        desc="From the merged histogram (interpolated within a bucket) against the "
        "reference's quantiles from its bucket shares.",
    )
    heat = panel(
        "Distribution over time ($feature)",
        f"sum by (le) (increase(mlpipe_feature_value_bucket{{{MF}}}[{RI}]))",
        "heatmap",
        w=8,
        legend="{{le}}",
    )
    heat["targets"][0]["format"] = "heatmap"
    for p in (shares, moved, heat):
        p["repeat"], p["repeatDirection"] = "feature", "h"
    return [scores, verdicts], [row("Distributions (fleet)"), shares, moved, heat]


def drift():
    fleet_scores, distributions = fleet_panels()
    return dashboard(
        "mlpipe-drift",
        "mlpipe / Skew, drift and data quality",
        "Training-serving skew, window drift and the data quality of every feature.",
        [MODEL, VERSION, FEATURE],
        [
            panel(
                "Drifted columns per model",
                f"mlpipe_model_drifted_features{{{M}}}",
                legend="{{model}} {{comparison}}",
                desc="Features decided drifted (skew: vs training; drift: vs the previous "
                "window), at the model's false-alarm rate (mlpipe_drift_false_alarm_rate) "
                "whatever the traffic. This is what pages (MlpipeModelSkew, MlpipeModelDrift).",
            ),
            panel(
                "Share of traffic moved, by feature",
                f'mlpipe_feature_drift_effect{{{M},feature=~"$feature"}}',
                unit="percentunit",
                legend="{{feature}} {{comparison}}",
                desc="The effect size: KS statistic (numbers) or total variation (categories).",
            ),
            panel(
                "Skew p-value vs the threshold in force",
                [
                    f'mlpipe_feature_drift_pvalue{{{M},feature=~"$feature",comparison="skew"}}',
                    f'mlpipe_drift_pvalue_threshold{{{M},comparison="skew"}}',
                ],
                legend=["{{feature}}", "threshold"],
                desc="Below the threshold (Benjamini-Hochberg at the false-alarm rate): drifted.",
            ),
            *fleet_scores,
            panel(
                "Worst features by skew (PSI)",
                f'topk(10, mlpipe_feature_skew{{{M},method="psi"}})',
                "bargauge",
                legend="{{model}} {{feature}}",
                desc="Worst first.",
            ),
            panel(
                "Skew heatmap (PSI) by feature",
                f'mlpipe_feature_skew{{{M},feature=~"$feature",method="psi"}}',
                "heatmap",
                legend="{{feature}}",
            ),
            panel(
                "Feature skew (PSI, an effect size)",
                f'mlpipe_feature_skew{{{M},feature=~"$feature",method="psi"}}',
                legend="{{feature}}",
            ),
            panel(
                "Feature drift, window vs previous (PSI)",
                f'mlpipe_feature_drift{{{M},feature=~"$feature",method="psi"}}',
                legend="{{feature}}",
            ),
            panel(
                "Prediction skew by version (JS)",
                f'mlpipe_prediction_skew{{{MV},method="js"}}',
                legend="{{model}} {{version}}",
            ),
            panel("Label skew (PSI)", f'mlpipe_label_skew{{{M},method="psi"}}', legend="{{model}}"),
            panel(
                "Feature values by status",
                f'sum by (feature, status) (rate(mlpipe_feature_values_total{{{M},feature=~"$feature",status!="valid"}}[{RI}]))',
                unit="short",
                legend="{{feature}} {{status}}",
            ),
            panel(
                "Window samples", f"mlpipe_window_samples{{{MV}}}", legend="{{model}} {{version}}"
            ),
            panel(
                "Model quality",
                [f"mlpipe_model_quality{{{M}}}", f"mlpipe_model_quality_threshold{{{M}}}"],
                legend=["{{version}} {{metric}}", "{{metric}} floor"],
            ),
            panel(
                "Model quality: estimated before labels, and realized",
                [
                    f"mlpipe_model_quality_estimated{{{M}}}",
                    f"mlpipe_model_quality_estimated{{{M}}} - mlpipe_model_quality_estimated_halfwidth{{{M}}}",
                    f"mlpipe_model_quality{{{M}}}",
                ],
                legend=[
                    "{{version}} {{metric}} estimated",
                    "{{version}} {{metric}} lower 95 %",
                    "{{version}} {{metric}} realized",
                ],
                desc="Estimated from the prediction scores through the reference's calibration "
                "(no labels needed; binary classification), its lower 95 % bound, and the "
                "value measured once labels arrive. Realized outside the band: the estimate's "
                "assumptions do not hold (MlpipeQualityEstimateUnreliable).",
            ),
            panel(
                "Labels joined / s",
                f"sum by (model, result) (rate(mlpipe_label_join_total{{{M}}}[{RI}]))",
                legend="{{model}} {{result}}",
            ),
            *distributions,
        ],
    )


def datasets_training():
    return dashboard(
        "mlpipe-datasets-training",
        "mlpipe / Datasets and training",
        "Partitions, their skew and freshness; pipeline runs.",
        [DATASET, PIPELINE],
        [
            panel(
                "Rows in latest partition",
                'mlpipe_dataset_rows{dataset=~"$dataset"}',
                "bargauge",
                legend="{{dataset}}",
            ),
            panel(
                "Hours since last update",
                '(time() - mlpipe_dataset_last_update_timestamp_seconds{dataset=~"$dataset"}) / 3600',
                "bargauge",
                "h",
                legend="{{dataset}}",
            ),
            panel(
                "Dataset skew vs training (PSI)",
                'mlpipe_dataset_feature_skew{dataset=~"$dataset",method="psi"}',
                legend="{{dataset}} {{feature}}",
            ),
            panel(
                "Dataset drift vs previous partition (PSI)",
                'mlpipe_dataset_feature_drift{dataset=~"$dataset",method="psi"}',
                legend="{{dataset}} {{feature}}",
            ),
            panel(
                "Files failed",
                'sum by (dataset, reason) (mlpipe_dataset_files_failed_total{dataset=~"$dataset"})',
                "table",
                legend="{{dataset}} {{reason}}",
            ),
            panel(
                "Pipeline runs by status",
                'sum by (pipeline, status) (mlpipe_pipeline_runs_total{pipeline=~"$pipeline"})',
                "bargauge",
                legend="{{pipeline}} {{status}}",
            ),
            panel(
                "Last run duration",
                'mlpipe_pipeline_last_run_duration_seconds{pipeline=~"$pipeline"}',
                unit="s",
                legend="{{pipeline}}",
            ),
            panel(
                "Time since last success vs expected",
                [
                    'time() - mlpipe_pipeline_last_success_timestamp_seconds{pipeline=~"$pipeline"}',
                    'mlpipe_pipeline_expected_interval_seconds{pipeline=~"$pipeline"}',
                ],
                unit="s",
                legend=["{{pipeline}}", "expected {{pipeline}}"],
            ),
            panel(
                "Running runs",
                'mlpipe_pipeline_running_runs{pipeline=~"$pipeline"}',
                legend="{{pipeline}}",
            ),
        ],
    )


def quota_compute():
    return dashboard(
        "mlpipe-quota-compute",
        "mlpipe / Quota and compute",
        "Quota use, forecast and shares; CPU, memory and GPU of pipelines.",
        [QUOTA, PIPELINE],
        [
            panel(
                "Quota used / limit",
                'mlpipe_quota_used{quota=~"$quota"} / on (quota, resource) mlpipe_quota_limit',
                unit="percentunit",
                legend="{{quota}}",
            ),
            panel(
                "Hours to exhaustion at current rate",
                'mlpipe_quota_exhaustion_seconds{quota=~"$quota"} / 3600',
                "bargauge",
                "h",
                legend="{{quota}}",
            ),
            panel(
                "Planned need vs limit (per period)",
                [
                    'mlpipe_quota_planned{quota=~"$quota"} / on (instance, quota, resource) mlpipe_quota_limit',
                ],
                "bargauge",
                "percentunit",
                legend="{{quota}} {{resource}}",
                desc="The pipelines' planned need (p95 cost per run x runs per period x headroom) as a share of the limit; over 100 % runs out before the period ends.",
            ),
            panel(
                "Share of a shared quota by pipeline",
                'mlpipe_quota_pipeline_used{quota=~"$quota"} / on (quota) group_left sum by (quota) (mlpipe_quota_pipeline_used)',
                "bargauge",
                "percentunit",
                legend="{{quota}} {{pipeline}}",
            ),
            panel(
                "Pipeline CPU (cores)",
                f'rate(mlpipe_pipeline_cpu_seconds_total{{pipeline=~"$pipeline"}}[{RI}])',
                legend="{{pipeline}}",
            ),
            panel(
                "Pipeline memory",
                'mlpipe_pipeline_memory_bytes{pipeline=~"$pipeline"}',
                unit="bytes",
                legend="{{pipeline}}",
            ),
            panel("GPU metrics available", "mlpipe_gpu_up", "stat", legend="{{instance}}"),
            panel(
                "GPU utilisation",
                "mlpipe_gpu_utilization_ratio",
                unit="percentunit",
                legend="{{instance}} gpu {{gpu}}",
            ),
            panel(
                "GPU memory used",
                "mlpipe_gpu_memory_used_bytes / mlpipe_gpu_memory_total_bytes",
                unit="percentunit",
                legend="{{instance}} gpu {{gpu}}",
            ),
            panel(
                "Pipeline GPU busy (SM share; 1 = one GPU)",
                'mlpipe_pipeline_gpu_utilization_ratio{pipeline=~"$pipeline"}',
                unit="percentunit",
                legend="{{instance}} {{pipeline}}",
            ),
        ],
    )


def canary():
    stable = "mlpipe_model_stable_version"
    return dashboard(
        "mlpipe-canary",
        "mlpipe / Canary vs stable",
        "Each version against the stable one on the same traffic.",
        [MODEL, VERSION],
        [
            panel(
                "Traffic share by version",
                f"sum by (model, version) (rate(mlpipe_serving_requests_total{{{MV}}}[{RI}])) / on (model) group_left sum by (model) (rate(mlpipe_serving_requests_total{{{M}}}[{RI}]))",
                unit="percentunit",
                legend="{{model}} {{version}}",
            ),
            panel("Stable version", f"{stable}{{{M}}}", "table", legend="{{model}} {{version}}"),
            panel(
                "Error ratio by version",
                f'sum by (model, version) (rate(mlpipe_serving_requests_total{{{MV},outcome="error"}}[{RI}])) / sum by (model, version) (rate(mlpipe_serving_requests_total{{{MV}}}[{RI}]))',
                unit="percentunit",
                legend="{{model}} {{version}}",
            ),
            panel(
                "p99 latency by version",
                f"histogram_quantile(0.99, sum by (model, version, le) (rate(mlpipe_serving_request_duration_seconds_bucket{{{MV}}}[{RI}])))",
                unit="s",
                legend="{{model}} {{version}}",
            ),
            panel(
                "Prediction divergence from stable",
                f"mlpipe_prediction_version_divergence{{{MV}}}",
                legend="{{model}} {{version}} {{method}}",
            ),
            panel(
                "Canary divergence beyond chance (p-value)",
                [
                    f'mlpipe_prediction_drift_pvalue{{{MV},comparison="stable"}}',
                    f'mlpipe_drift_pvalue_threshold{{{M},comparison="stable"}}',
                ],
                legend=["{{model}} {{version}}", "{{model}} threshold in force"],
            ),
            panel(
                "Quality by version",
                f"mlpipe_model_quality{{{MV}}}",
                legend="{{version}} {{metric}}",
            ),
        ],
    )


DASHBOARDS = {
    "overview.json": overview,
    "serving.json": serving,
    "drift.json": drift,
    "datasets-training.json": datasets_training,
    "quota-compute.json": quota_compute,
    "canary.json": canary,
}


def render(settings: Settings | None = None) -> dict[str, str]:
    """Path -> JSON text of every dashboard, for the mixin's settings."""
    global SETTINGS
    SETTINGS = settings or load()
    return {
        os.path.join(HERE, name): json.dumps(fn(), indent=2) + "\n"
        for name, fn in DASHBOARDS.items()
    }


if __name__ == "__main__":
    from mixin.generate import main

    sys.exit(main(sys.argv[1:]))
