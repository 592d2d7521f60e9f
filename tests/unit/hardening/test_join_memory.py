"""The label join's memory is bounded by bytes whatever the request ids look like."""

import tracemalloc

from exporter.state.join import ENTRY_BYTES, MAX_KEY_CHARS, JoinBuffer, bounded_key


def pending_bytes(id_chars: int, n: int = 20_000) -> float:
    """Memory per pending prediction, the parsed request id strings included (as in life:
    once the batch is gone, the buffer is what keeps them alive)."""
    versions = ["v1"] * n
    preds = [0.5] * n
    ts = [1.0] * n
    buf = JoinBuffer(max_pending=10 * n, max_delay=1e9)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    ids = [f"{i:08d}" + "x" * (id_chars - 8) for i in range(n)]
    buf.add_predictions(ids, ts, versions, preds, now=1.0)
    del ids
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(buf.predictions) == n
    return (after - before) / n


def test_an_entry_costs_at_most_entry_bytes_even_with_4kb_request_ids():
    short, long_ = pending_bytes(16), pending_bytes(4096)
    assert short <= ENTRY_BYTES and long_ <= ENTRY_BYTES, (short, long_)


def test_long_ids_still_join():
    buf = JoinBuffer(max_pending=100, max_delay=1e9)
    rid = "r" * 4096
    label = "class-" + "y" * 200
    buf.add_predictions([rid], [1.0], ["v" * 300], [label], now=1.0)
    matched = buf.add_labels([rid], [label], now=2.0)
    assert len(matched) == 1
    _, version, pred, got = matched[0]
    assert pred == got == bounded_key(label)  # a long class name still equals itself
    assert len(version) <= 128
    assert len(bounded_key(rid)) <= MAX_KEY_CHARS
