"""The fleet equals the whole: three exporters each tail a third of the traffic, a fourth
tails all of it; a real Prometheus with the shipped fleet rules scrapes the three, another
the fourth. The fleet's skew and drift from the three equal the fourth's (and the fourth
exporter's own in-process distances), while each shard alone sees something else.

The rules are the shipped ones, generated with a 30 s window instead of 1 h
(scripts/generate_fleet_rules.py --window): the test would otherwise last two hours.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
import yaml

from tests.helpers import scraped, wait_for
from tests.integration.conftest import ROOT, ExporterProcess, Prometheus

WINDOW = 30  # seconds: room for a slow CI machine between the two batches
COUNTRIES = ["DE", "FR", "US", "GB", "IT", "ES"]
P_COUNTRY = [0.3, 0.25, 0.2, 0.1, 0.1, 0.05]
P_SHIFTED = [0.2, 0.2, 0.3, 0.1, 0.1, 0.1]


def draw(rng, n, shifted):
    return {
        "amount": rng.normal(110 if shifted else 100, 20, n),
        "age": rng.integers(18, 80, n),
        "country": rng.choice(COUNTRIES, n, p=P_SHIFTED if shifted else P_COUNTRY),
    }


def lines(cols, now, start, canary=False):
    n = len(cols["amount"])
    out = []
    for i in range(n):
        country = str(cols["country"][i]) if i % 97 else "ZZ"  # a few never in training
        # A canary takes every fifth request and scores lower than the stable version.
        version = "v2" if canary and i % 5 == 0 else "v1"
        prediction = rng_pred(start + i) ** (2 if version == "v2" else 1)
        record = {
            "timestamp": now,
            "model": "fraud",
            "model_version": version,
            "request_id": f"r{start + i}",
            "features": {
                "amount": float(cols["amount"][i]),
                "age": int(cols["age"][i]),
                "country": country,
            },
            "prediction": float(prediction),
        }
        out.append(json.dumps(record) + "\n")
    return out


def rng_pred(i):
    return (i * 0.6180339887) % 1.0


def values(prom, expr, by):
    return {
        tuple(r["metric"].get(k, "") for k in by): float(r["value"][1]) for r in prom.query(expr)
    }


@pytest.fixture
def fleet(tmp_path):
    rng = np.random.default_rng(7)
    ref = draw(rng, 20_000, shifted=False)
    (tmp_path / "train").mkdir()
    pq.write_table(pa.table(ref), tmp_path / "train" / "part-0.parquet")
    model = {
        "name": "fraud",
        "reference": {"path": str(tmp_path / "train")},
        "windows": {"length": f"{WINDOW}s", "bucket": "1s"},
        "distribution": {"top_k": 3},
    }
    build = tmp_path / "build.yaml"
    build.write_text(yaml.safe_dump({"models": [{**model, "serving_logs": ["/dev/null"]}]}))
    profile = tmp_path / "fraud.profile"
    subprocess.run(
        [sys.executable, "-m", "exporter.cli", "profile", f"--config.file={build}",
         f"--output={profile}"],
        check=True, cwd=ROOT, capture_output=True,
    )  # fmt: skip
    model["reference"] = {"profile": str(profile)}
    exporters = {}
    for name in ("a", "b", "c", "whole"):
        d = tmp_path / name
        d.mkdir()
        (d / "logs").mkdir()
        cfg = d / "config.yaml"
        cfg.write_text(
            yaml.safe_dump({"models": [{**model, "serving_logs": [str(d / "logs" / "*.jsonl")]}]})
        )
        exporters[name] = ExporterProcess(
            str(cfg), str(d / "state"), str(d / "exporter.log"), "--stats.interval=500ms"
        )
    rules = tmp_path / "fleet.yaml"
    subprocess.run(
        [sys.executable, "scripts/generate_fleet_rules.py", f"--window={WINDOW}s", "--interval=1s",
         f"--output={rules}"],
        check=True, cwd=ROOT,
    )  # fmt: skip
    shards = [exporters[n].url.removeprefix("http://") for n in ("a", "b", "c")]
    proms = {}
    try:
        (tmp_path / "p3").mkdir()
        (tmp_path / "p1").mkdir()
        proms["three"] = Prometheus(str(tmp_path / "p3"), shards, [rules])
        proms["whole"] = Prometheus(
            str(tmp_path / "p1"), [exporters["whole"].url.removeprefix("http://")], [rules]
        )
        yield rng, ref, exporters, proms, tmp_path
    finally:
        for p in proms.values():
            p.stop()
        for e in exporters.values():
            e.stop()


def write(tmp_path, batch):
    """Round-robin to the three shards, everything to the whole."""
    for k, name in enumerate(("a", "b", "c")):
        with open(tmp_path / name / "logs" / "s.jsonl", "a") as fh:
            fh.writelines(batch[k::3])
    with open(tmp_path / "whole" / "logs" / "s.jsonl", "a") as fh:
        fh.writelines(batch)


def wait_count(prom, total):
    wait_for(
        lambda: prom.value('sum(mlpipe_feature_value_count{feature="amount"})') == total,
        timeout=30,
        what=f"{total} values scraped",
    )


def test_fleet_skew_and_drift_equal_the_whole(fleet):
    rng, ref, exporters, proms, tmp_path = fleet
    # Every series exists at zero before traffic (label values come from the reference).
    for prom, n in ((proms["three"], 3), (proms["whole"], 1)):
        wait_for(lambda p=prom, n=n: p.value("count(mlpipe_reference_info)") == n, timeout=30)
    n = 3000
    first, second = draw(rng, n, shifted=False), draw(rng, n, shifted=True)
    write(tmp_path, lines(first, time.time(), 0, canary=True))
    for prom in proms.values():
        wait_count(prom, n)
    written_first = time.time()
    time.sleep(max(0.0, written_first + WINDOW + 2 - time.time()))
    write(tmp_path, lines(second, time.time(), n, canary=True))
    for prom in proms.values():
        wait_count(prom, 2 * n)
    time.sleep(4)  # a few rule evaluations on both servers
    at = time.time()
    assert at < written_first + 2 * WINDOW - 2  # the first batch is still the previous window

    # Every shipped fleet rule evaluates without error on both servers.
    for prom in proms.values():
        groups = requests.get(f"{prom.url}/api/v1/rules", timeout=5).json()["data"]["groups"]
        bad = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"]
               if r["health"] != "ok"]  # fmt: skip
        assert not bad and groups, bad

    by = ("feature", "method")
    got = {k: values(p, "mlpipe:feature_skew:fleet", by) for k, p in proms.items()}
    drift = {k: values(p, "mlpipe:feature_drift:fleet", by) for k, p in proms.items()}
    expected_keys = (
        {("amount", m) for m in ("psi", "js", "ks")}
        | {("age", m) for m in ("psi", "js", "ks")}
        | {("country", m) for m in ("psi", "js", "linf")}
    )
    assert set(got["three"]) == set(got["whole"]) == expected_keys
    assert set(drift["three"]) == expected_keys
    # Fleet of three = fleet of one over the same records, up to increase()'s extrapolation
    # (each instance's counts scaled by its own factor, 1 to 1 + 1/29 at a 1 s scrape).
    for key, value in got["whole"].items():
        assert got["three"][key] == pytest.approx(value, rel=0.03, abs=0.002), key
    for key, value in drift["whole"].items():
        assert drift["three"][key] == pytest.approx(value, rel=0.03, abs=0.002), key

    # Independently: numpy on the raw records of the current window (the second batch).
    le = sorted(
        float(r["metric"]["le"])
        for r in proms["whole"].query('mlpipe_reference_feature_bucket_ratio{feature="amount"}')
        if r["metric"]["le"] != "+Inf"
    )
    cur = np.array([(second["amount"] <= e).mean() for e in le] + [1.0])
    base = np.array([(ref["amount"] <= e).mean() for e in le] + [1.0])
    prev = np.array([(first["amount"] <= e).mean() for e in le] + [1.0])
    p, q, r = np.diff(cur, prepend=0), np.diff(base, prepend=0), np.diff(prev, prepend=0)

    def psi(a, b):
        a, b = np.maximum(a, 1e-4), np.maximum(b, 1e-4)
        return float(np.sum((a - b) * np.log(a / b)))

    from scipy.spatial.distance import jensenshannon

    assert got["whole"][("amount", "psi")] == pytest.approx(psi(p, q), rel=0.02)
    assert got["whole"][("amount", "js")] == pytest.approx(jensenshannon(p, q, base=2), rel=0.02)
    assert got["whole"][("amount", "ks")] == pytest.approx(np.abs(cur - base).max(), rel=0.02)
    assert drift["whole"][("amount", "psi")] == pytest.approx(psi(p, r), rel=0.03)
    # The reference's shares are exact.
    ratios = values(
        proms["whole"], 'mlpipe_reference_feature_bucket_ratio{feature="amount"}', ("le",)
    )
    for e, share in zip(le, base, strict=False):
        assert ratios[(repr(e),)] == pytest.approx(share, abs=1e-12)

    # The whole exporter's own distances over the same records (no increase() in between).
    text = exporters["whole"].metrics()
    for key in (("amount", "psi"), ("amount", "js")):
        own = scraped(text, "mlpipe_feature_skew", feature=key[0], method=key[1])
        assert len(own) == 1, key
        assert got["three"][key] == pytest.approx(own[0], rel=0.03, abs=0.002), key

    # Categories: over the exported ones (distribution.top_k = 3 folds FR.. into __other__),
    # numpy on the raw records folded alike. (The exporter's own gauge uses all top_k.)
    def folded(countries, unseen):
        top = [np.mean((countries == c) & ~unseen) for c in ("DE", "FR", "US")]
        return np.array([*top, np.mean(~np.isin(countries, ["DE", "FR", "US"]) & ~unseen),
                         np.mean(unseen)])  # fmt: skip

    cur_c = folded(second["country"], np.arange(n) % 97 == 0)
    ref_c = folded(ref["country"], np.zeros(len(ref["country"]), bool))
    assert got["three"][("country", "psi")] == pytest.approx(psi(cur_c, ref_c), rel=0.03)
    assert got["three"][("country", "linf")] == pytest.approx(np.abs(cur_c - ref_c).max(), rel=0.03)

    # Canary vs stable on the fleet's traffic: equal to the whole exporter's own divergence
    # (decile bins on both sides), and to numpy on the raw scores.
    div = {k: values(p, "mlpipe:prediction_divergence:fleet", ("version", "method"))
           for k, p in proms.items()}  # fmt: skip
    assert set(div["three"]) == {("v2", "psi"), ("v2", "js")}
    scores = np.array([rng_pred(n + i) for i in range(n)])  # the second batch
    v2 = np.arange(n) % 5 == 0
    deciles = np.linspace(0.1, 0.9, 9)
    share = lambda x: np.diff(np.searchsorted(np.sort(x), deciles, "left"), prepend=0,  # noqa: E731
                              append=len(x)) / len(x)  # fmt: skip
    want = jensenshannon(share(scores[v2] ** 2), share(scores[~v2]), base=2)
    for k in ("three", "whole"):
        assert div[k][("v2", "js")] == pytest.approx(want, rel=0.03), k
    own_div = scraped(text, "mlpipe_prediction_version_divergence", method="js", version="v2")
    assert own_div and div["three"][("v2", "js")] == pytest.approx(own_div[0], rel=0.03)
    # The fleet's verdict: the squared canary moved beyond chance, as the whole exporter's
    # own two-sample test (comparison="stable") says; and by the DKW line, from numpy.
    verdict = {
        k: values(p, "mlpipe:prediction_diverged:fleet", ("version",)) for k, p in proms.items()
    }
    own_verdict = scraped(text, "mlpipe_prediction_drifted", comparison="stable", version="v2")
    cdf = lambda x: np.searchsorted(np.sort(x), deciles, "right") / len(x)  # noqa: E731
    ks = np.abs(cdf(scores[v2] ** 2) - cdf(scores[~v2])).max()
    n_eff = v2.sum() * (~v2).sum() / n
    assert ks > np.sqrt(np.log(2 / 0.01) / (2 * n_eff))
    assert own_verdict == [1.0]
    for k in ("three", "whole"):
        assert verdict[k] == {("v2",): 1.0}, k

    # Each shard alone computes something else: the gauges differ from the fleet.
    shard_psi = [
        v
        for name in ("a", "b", "c")
        for v in scraped(
            exporters[name].metrics(), "mlpipe_feature_skew", feature="amount", method="psi"
        )
    ]
    assert len(shard_psi) == 3
    assert all(abs(v - got["three"][("amount", "psi")]) > 1e-3 for v in shard_psi), shard_psi

    # Categories: the reference's top 3, the rest of its values in __other__, "ZZ" unseen.
    cats = values(
        proms["three"], 'sum by (category) (mlpipe_feature_category_total{feature="country"})',
        ("category",),
    )  # fmt: skip
    everything = np.concatenate([first["country"], second["country"]])
    zz = np.tile(np.arange(n) % 97 == 0, 2)  # per batch, as lines() writes them
    top3 = ["DE", "FR", "US"]
    assert cats[("__unseen__",)] == zz.sum()
    for c in top3:
        assert cats[(c,)] == ((everything == c) & ~zz).sum()
    assert cats[("__other__",)] == (~np.isin(everything, top3) & ~zz).sum()
    assert set(cats) == {("DE",), ("FR",), ("US",), ("__other__",), ("__unseen__",)}

    # Quantiles from the merged histogram fall in the bucket numpy's quantile falls in.
    edges = [-np.inf, *le, np.inf]
    for phi in (0.1, 0.5, 0.9):
        fleet_q = proms["three"].value(
            f"histogram_quantile({phi}, sum by (le) "
            f'(increase(mlpipe_feature_value_bucket{{feature="amount"}}[{WINDOW}s])))'
        )
        true_q = float(np.quantile(second["amount"], phi))
        k = np.searchsorted(edges, true_q)
        assert edges[k - 1] <= fleet_q <= edges[k], (phi, fleet_q, true_q)

    # The fleet verdict: the shifted amount and country are drifted, age is not.
    drifted = values(
        proms["three"], 'mlpipe:feature_drifted:fleet{comparison="skew"}', ("feature",)
    )
    assert drifted == {("amount",): 1.0, ("age",): 0.0, ("country",): 1.0}


def test_two_exporters_with_different_profiles_fire_the_mismatch_alert(tmp_path):
    exporters, prom = [], None
    try:
        for k, shift in enumerate((0.0, 1.0)):
            d = tmp_path / f"e{k}"
            (d / "train").mkdir(parents=True)
            x = np.random.default_rng(k).normal(shift, 1, 2000)
            pq.write_table(pa.table({"x": x}), d / "train" / "part-0.parquet")
            cfg = d / "config.yaml"
            cfg.write_text(
                yaml.safe_dump(
                    {
                        "models": [
                            {
                                "name": "fraud",
                                "serving_logs": [str(d / "*.jsonl")],
                                "reference": {"path": str(d / "train")},
                            }
                        ]
                    }
                )
            )
            exporters.append(ExporterProcess(str(cfg), str(d / "state"), str(d / "log")))
        rules = tmp_path / "drift.yaml"
        text = open(f"{ROOT}/alert_rules/drift.yaml").read().replace("for: 15m", "for: 2s")
        rules.write_text(text)
        (tmp_path / "prom").mkdir()
        prom = Prometheus(
            str(tmp_path / "prom"), [e.url.removeprefix("http://") for e in exporters], [rules]
        )
        firing = wait_for(
            lambda: prom.query('ALERTS{alertname="MlpipeReferenceMismatch",alertstate="firing"}'),
            timeout=60,
            what="the mismatch alert firing",
        )
        assert [a["metric"]["model"] for a in firing] == ["fraud"]
        hashes = prom.query('count by (hash) (mlpipe_reference_info{model="fraud"})')
        assert len(hashes) == 2
    finally:
        if prom is not None:
            prom.stop()
        for e in exporters:
            e.stop()


def test_two_model_shards_split_the_models_as_prometheus_hashmod_does(tmp_path):
    """--models.shard=i/2: every model is exported by exactly one of two exporters, the one
    Prometheus' own hashmod of the model name points to."""
    names = [f"model-{k}" for k in range(12)]
    (tmp_path / "logs").mkdir()
    cfg = tmp_path / "config.yaml"
    models = [{"name": n, "serving_logs": [str(tmp_path / "logs" / "*.jsonl")]} for n in names]
    cfg.write_text(yaml.safe_dump({"models": models}))
    exporters, prom = [], None
    try:
        for index in (0, 1):
            exporters.append(
                ExporterProcess(
                    str(cfg),
                    str(tmp_path / f"state{index}"),
                    str(tmp_path / f"log{index}"),
                    f"--models.shard={index}/2",
                )
            )
        # Prometheus labels each series with hashmod(model) % 2: it must name the exporter.
        relabel = {
            "metric_relabel_configs": [
                {
                    "source_labels": ["model"],
                    "regex": "(.+)",
                    "modulus": 2,
                    "target_label": "shard",
                    "action": "hashmod",
                }
            ]
        }
        (tmp_path / "prom").mkdir()
        prom = Prometheus(
            str(tmp_path / "prom"),
            [e.url.removeprefix("http://") for e in exporters],
            scrape=relabel,
        )
        wait_for(
            lambda: len(prom.query("mlpipe_drift_min_samples")) == len(names),
            timeout=30,
            what="every model scraped once",
        )
        port_of = {e.url.removeprefix("http://"): k for k, e in enumerate(exporters)}
        seen = {}
        for r in prom.query("mlpipe_drift_min_samples"):
            m = r["metric"]
            assert int(m["shard"]) == port_of[m["instance"]], m
            seen[m["model"]] = m["instance"]
        assert sorted(seen) == sorted(names)
        assert len(set(seen.values())) == 2  # both shards export some models
    finally:
        if prom is not None:
            prom.stop()
        for e in exporters:
            e.stop()
