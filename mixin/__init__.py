"""The monitoring mixin: rules, dashboards and the PrometheusRule from mixin/config.yaml."""
