"""A short soak (the long one is bench/soak.py): steady writes, a real Prometheus scraping
every second; nothing lost, scrapes fast, memory not running away."""

from bench.soak import run


def test_short_soak():
    r = run(seconds=25, models=5, features=20, rate=500)
    assert r["lost"] == 0 and r["counted"] == r["written"] > 10_000
    assert r["scrapes"] >= 20
    assert r["scrape_p99_ms"] < 500  # the goal is 100 ms at 20 x 50 (bench/soak.py)
    rss = r["rss_mb"]
    assert rss["end"] < rss["middle"] * 1.5, rss
