"""Sharding models across exporters, with Prometheus' ``hashmod`` (docs/fleet.md).

``--models.shard=INDEX/COUNT`` keeps the models whose name hashes to INDEX: the same hash as
a ``hashmod`` relabel rule (MD5 of the value, its last 8 bytes as a big-endian integer,
modulo COUNT), so a relabel rule with ``source_labels: [model]`` and ``modulus: COUNT``
names the shard that exports a model. Datasets go with their reference model; pipelines
and quotas, which belong to no model, are exported by shard 0.
"""

from __future__ import annotations

import dataclasses
import hashlib

from exporter.config import Config


def hashmod(value: str, modulus: int) -> int:
    """Prometheus' relabel ``hashmod``: ``binary.BigEndian.Uint64(md5(value)[8:]) % modulus``."""
    return int.from_bytes(hashlib.md5(value.encode()).digest()[8:], "big") % modulus


def parse_shard(text: str) -> tuple[int, int]:
    """``"INDEX/COUNT"`` -> (index, count), 0 <= index < count."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--models.shard: {text!r} is not INDEX/COUNT (e.g. 0/4)") from None
    if not 0 <= index < count:
        raise ValueError(f"--models.shard: {text!r}: need 0 <= INDEX < COUNT")
    return index, count


def shard_config(config: Config, shard: tuple[int, int] | None) -> Config:
    """The part of ``config`` this shard exports (all of it without a shard)."""
    if shard is None:
        return config
    index, count = shard
    models = tuple(m for m in config.models if hashmod(m.name, count) == index)
    names = {m.name for m in models}
    return dataclasses.replace(
        config,
        models=models,
        datasets=tuple(d for d in config.datasets if d.reference in names),
        pipelines=config.pipelines if index == 0 else (),
        quotas=config.quotas if index == 0 else (),
    )
