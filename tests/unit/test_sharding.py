"""--models.shard: each model goes to exactly one shard; datasets follow their model;
pipelines and quotas go to shard 0; bad values are one clear error."""

import pytest

from exporter.config import parse_config
from exporter.sharding import hashmod, parse_shard, shard_config


def test_every_model_is_in_exactly_one_shard(tmp_path):
    (tmp_path / "d").mkdir()
    names = [f"m{k}" for k in range(40)]
    cfg = parse_config(
        {
            "models": [{"name": n, "serving_logs": [str(tmp_path / "*.log")]} for n in names],
            "datasets": [{"name": "d", "path": str(tmp_path / "d"), "reference": "m3"}],
            "pipelines": [{"name": "train", "run_log": str(tmp_path / "runs.jsonl")}],
        }
    )
    shards = [shard_config(cfg, (k, 3)) for k in range(3)]
    seen = [m.name for s in shards for m in s.models]
    assert sorted(seen) == sorted(names) and len(seen) == len(set(seen))
    assert all(s.models for s in shards)  # 40 names spread over 3 shards
    owner = hashmod("m3", 3)
    assert [len(s.datasets) for s in shards] == [int(k == owner) for k in range(3)]
    assert [len(s.pipelines) for s in shards] == [1, 0, 0]
    assert shard_config(cfg, None) is cfg


def test_hashmod_is_prometheus_hashmod():
    # Prometheus: binary.BigEndian.Uint64(md5.Sum(value)[8:]) % modulus (relabel.go).
    import hashlib

    digest = hashlib.md5(b"fraud").digest()
    assert hashmod("fraud", 1000) == int.from_bytes(digest[8:16], "big") % 1000


@pytest.mark.parametrize("bad", ["2/2", "-1/2", "1", "a/b", "1/0"])
def test_bad_shards_are_one_clear_error(bad):
    with pytest.raises(ValueError, match=r"--models\.shard"):
        parse_shard(bad)
