"""Decoding chunks of JSON lines: every line accounted for, and a bad line costs about
itself, not a second decode of the chunk."""

import json
from unittest import mock

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.sources import jsonlines
from exporter.sources.jsonlines import _newlines, decode_lines


class Record(msgspec.Struct):
    i: int
    pad: str


class CountingDecoder:
    """A typed decoder that counts the bytes it is asked to decode."""

    def __init__(self):
        self.inner = msgspec.json.Decoder(Record)
        self.bytes = 0

    def decode_lines(self, data):
        self.bytes += len(data)
        return self.inner.decode_lines(data)

    def decode(self, data):
        self.bytes += len(data)
        return self.inner.decode(data)


def test_torn_lines_cost_their_piece_not_the_chunk():
    lines = [json.dumps({"i": i, "pad": "x" * 600}).encode() for i in range(12_000)]
    for i in range(0, len(lines), 1500):
        lines[i] = lines[i][: len(lines[i]) // 2]  # torn mid-record
    data = b"\n".join(lines) + b"\n"
    decoder, bad = CountingDecoder(), []
    out = decode_lines(data, decoder, lambda line, exc: bad.append(line))
    assert len(out) + len(bad) == len(lines) and len(bad) == 8
    assert [r.i for r in out] == [i for i in range(12_000) if i % 1500]
    # Every line once, plus each bad line's piece (64 KiB) about once more: under 20 % extra
    # here, where decoding everything before each bad line again was about 100 %.
    assert decoder.bytes < 1.2 * len(data), decoder.bytes / len(data)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(0, 10**6).map(lambda i: json.dumps({"i": i, "pad": "y" * (i % 300)})),
            # Not a whitespace-only line: with a line of two records it is the known gap
            # that _decode_piece's comment names.
            st.sampled_from(["", "{}", "x", '{"i": 1, "pad": "a"} {"i": 2, "pad": "b"}']),
        ),
        max_size=200,
    ),
    st.sampled_from([64, 700, jsonlines.PIECE_BYTES]),
)
def test_every_line_is_a_record_or_handed_over_in_order(lines, piece):
    """Blank lines anywhere (first, last, in a row) in pieces small and large, a chunk of
    one piece or of many (its newlines then found once for all): every line is one record
    (in line order) or handed to on_bad, however the fast path counted."""
    data = "".join(line + "\n" for line in lines).encode()
    bad = []
    with mock.patch.object(jsonlines, "PIECE_BYTES", piece):
        out = decode_lines(data, msgspec.json.Decoder(Record), lambda line, exc: bad.append(line))
    good = [
        json.loads(line)["i"] for line in lines if line.startswith('{"i"') and "} {" not in line
    ]
    assert [r.i for r in out] == good
    assert len(out) + len(bad) == len(lines)


def test_newlines_counts_and_finds_blank_lines_as_bytes_do():
    for data in (
        b"\n" + b"x" * 5000 + b"\n",
        b"x" * 5000 + b"\n\n",
        b"x" * 3000 + b"\n\n" + b"x" * 3000 + b"\n",
        b"x" * 2000 + b"\n" + b"x" * 5000 + b"\n",
        b"a\n\n",
        b"\na\n",
        b"a\nb\n",
    ):
        assert _newlines(data) == (data.count(b"\n"), b"\n\n" in data or data.startswith(b"\n"))


def test_a_blank_line_ending_a_piece_is_seen():
    """A piece whose last line is blank, with a line of two records before it: the counts
    agree (three lines, three values), so only the blank check sends the piece line by
    line, where the line of two records is rejected."""
    two = '{"i": 1, "pad": "a"} {"i": 2, "pad": "b"}'
    filler = json.dumps({"i": 3, "pad": "c" * (63 - len(two) - 1 - 19)})
    lines = [two, filler, "", json.dumps({"i": 4, "pad": "d"})]
    data = "".join(line + "\n" for line in lines).encode()
    assert data.index(b"\n\n") + 1 == 64  # the blank line's newline ends the first piece
    bad = []
    with mock.patch.object(jsonlines, "PIECE_BYTES", 64):
        out = decode_lines(data, msgspec.json.Decoder(Record), lambda line, exc: bad.append(line))
    assert [r.i for r in out] == [3, 4]
    assert bad == [b"", two.encode()]
