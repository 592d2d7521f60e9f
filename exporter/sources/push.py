"""Records pushed over HTTP: JSON lines (``POST /api/v1/records``) and KServe's payload
logger CloudEvents (``POST /api/v1/kserve``).

A push is parsed in the request's thread and queued for the ingest thread, which alone
applies to state (as it does for files). The queue is bounded in records: a push that would
pass it is answered 429 and nothing of it is kept, so an accepted record is never dropped
and memory never grows with a client's speed. Semantics: at-most-once. A record is counted
once it is accepted (2xx); a restart loses what was queued and not yet applied (up to one
ingest pass) and the KServe events still waiting for their pair (docs/inputs.md).

KServe sends the request and the response of one inference as two events with the same
``ce-id``, from concurrent workers, so either may come first. They are joined in a bounded
buffer; an event alone past ``kserve_response_timeout`` is a record of its own: a request
without a response is a failed inference (KServe logs responses only for HTTP 200), a
response without a request a success with no features (request logging off).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field

import msgspec

from exporter.sources.payloads import (
    BodyError,
    class_scores,
    prediction,
    request_rows,
    response_values,
)
from exporter.sources.timestamps import parse_one
from exporter.state.batches import ParsedBatch

REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"


@dataclass
class Reply:
    """What an endpoint answers: status code, one line of text, extra headers."""

    code: int
    text: str
    headers: list = field(default_factory=list)


@dataclass
class Queued:
    """A parsed push waiting for the ingest thread, with what is needed to apply it."""

    source: str
    batch: object  # ParsedBatch
    context: object  # how the batch's columns map to models (the parser's, at parse time)
    body_bytes: int = 0


class PushQueue:
    """Parsed pushes for the ingest thread, at most ``max_records`` records at once."""

    def __init__(self, max_records: int):
        self.max_records = max_records
        self._lock = threading.Lock()
        self._items: deque[Queued] = deque()
        self.records = 0

    def offer(self, item: Queued) -> bool:
        n = item.batch.records
        with self._lock:
            if self.records + n > self.max_records and self._items:
                return False
            self._items.append(item)
            self.records += n
            return True

    def full(self) -> bool:
        return self.records >= self.max_records

    def take(self) -> list[Queued]:
        with self._lock:
            items = list(self._items)
            self._items.clear()
            self.records = 0
        return items


class RecordsEndpoint:
    """``POST /api/v1/records``: JSON lines in the configured serving-log shape."""

    source = "push"

    def __init__(self, parser, context, queue: PushQueue):
        self.parser = parser
        self.context = context
        self.queue = queue

    def handle(self, body: bytes) -> Reply:
        if self.queue.full():
            return _busy()
        if body and not body.endswith(b"\n"):
            body += b"\n"
        batch = self.parser.parse(body)
        invalid = sum(batch.invalid.values())
        if not self.queue.offer(Queued(self.source, batch, self.context, len(body))):
            return _busy()
        if batch.records == 0 and invalid:
            reason = batch.sample.reason or next(iter(batch.invalid))
            return Reply(
                400, f"no valid record: {invalid} of {batch.lines} lines invalid (first: {reason})"
            )
        return Reply(200, f'{{"accepted":{batch.records},"invalid":{invalid}}}')


def _busy() -> Reply:
    return Reply(
        429,
        "exporter saturated: records queued past push.max_queued_records; retry later",
        [("Retry-After", "1")],
    )


@dataclass
class _Event:
    """One half of a KServe inference, waiting for the other."""

    kind: str  # REQUEST or RESPONSE
    model: str
    endpoint: str
    time: float
    arrived: float
    rows: list | None = None  # request: features per instance
    predictions: list | None = None  # response
    scores: list | None = None  # response of a multiclass model: class probabilities


@dataclass(frozen=True)
class KServeModel:
    """What reading a model's KServe bodies needs from its config."""

    feature_order: tuple[str, ...] = ()
    binary: bool = True
    # Multiclass: a prediction that is one probability per class names its class, and the
    # probabilities are the record's scores.
    classes: tuple[str, ...] = ()


class KServeEndpoint:
    """``POST /api/v1/kserve``: KServe logger CloudEvents, binary mode."""

    source = "kserve"

    def __init__(self, parser, context, queue: PushQueue, models: dict, join: KServeJoin):
        self.parser = parser
        self.context = context
        self.queue = queue
        self.models = models  # name -> KServeModel
        self.join = join

    def handle(self, headers: dict, body: bytes) -> Reply:
        """``headers``: lower-case CloudEvents headers (``ce-id``, ``ce-type``...)."""
        if self.queue.full():
            return _busy()
        ce_id, ce_type = headers.get("ce-id"), headers.get("ce-type")
        model = headers.get("ce-inferenceservicename", "")
        if not ce_id or ce_type not in (REQUEST, RESPONSE):
            return self._bad("bad_body", "need ce-id and a KServe ce-type (binary-mode CloudEvent)")
        if model not in self.models:
            return self._bad(
                "unknown_model", f"ce-inferenceservicename {model!r} is not configured"
            )
        spec = self.models[model]
        now = time.time()
        stamp = parse_one(headers["ce-time"]) if headers.get("ce-time") else now
        event = _Event(
            ce_type,
            model,
            headers.get("ce-endpoint") or "default",
            stamp if stamp == stamp else now,
            now,
        )
        try:
            if ce_type == REQUEST:
                event.rows = request_rows(body, spec.feature_order)
            else:
                values = response_values(body)
                event.predictions = [prediction(v, spec.binary, spec.classes) for v in values]
                event.scores = class_scores(values, spec.classes) if spec.classes else None
        except BodyError as exc:
            return self._bad("bad_body", str(exc))
        pair = self.join.add(ce_id, event)
        if pair is None:
            return Reply(202, "waiting for the other half of the inference")
        return self._enqueue(_records(ce_id, *pair), len(body))

    def _bad(self, reason: str, text: str) -> Reply:
        batch = ParsedBatch(lines=1, invalid=Counter({reason: 1}))
        self.queue.offer(Queued(self.source, batch, self.context))
        return Reply(400, text)

    def _enqueue(self, records: list[dict], size: int) -> Reply:
        batch = self.parser.parse(_ENCODER.encode_lines(records))
        if not self.queue.offer(Queued(self.source, batch, self.context, size)):
            return _busy()  # the pair is lost to this client's retry: it resends both halves
        return Reply(200, f'{{"accepted":{batch.records}}}')

    def expired(self, now: float) -> bytes:
        """Lines of the events whose other half did not come in time (ingest thread)."""
        out = []
        for ce_id, event in self.join.expire(now):
            pair = (event, None) if event.kind == REQUEST else (None, event)
            out += _records(ce_id, *pair)
        return _ENCODER.encode_lines(out)


_ENCODER = msgspec.json.Encoder()


def _records(ce_id: str, request: _Event | None, response: _Event | None) -> list[dict]:
    """One serving record per instance, in the exporter's canonical shape."""
    first = request or response
    rows = request.rows if request is not None else None
    preds = response.predictions if response is not None else None
    scores = response.scores if response is not None else None
    n = len(rows) if rows is not None else len(preds)
    latency = (
        max(0.0, (response.time - request.time) * 1000.0)
        if request is not None and response is not None
        else None
    )
    out = []
    for i in range(n):
        out.append(
            {
                "timestamp": first.time,
                "model": first.model,
                "model_version": first.endpoint,
                "request_id": ce_id if n == 1 else f"{ce_id}/{i}",
                "latency_ms": latency,
                # A request alone: KServe did not log its response, which it does only for
                # HTTP 200: the inference failed.
                "status": "error" if response is None else "ok",
                "features": rows[i] if rows is not None and isinstance(rows[i], dict) else None,
                "prediction": preds[i] if preds is not None and i < len(preds) else None,
                "scores": scores[i] if scores is not None and i < len(scores) else None,
            }
        )
    return out


class KServeJoin:
    """Request and response events by ``ce-id``, bounded in count and time."""

    def __init__(self, timeout: float, max_pending: int):
        self.timeout = timeout
        self.max_pending = max_pending
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, _Event] = OrderedDict()
        self.unpaired: Counter = Counter()  # by "request" / "response"
        self.evicted: list[tuple[str, _Event]] = []

    def add(self, ce_id: str, event: _Event) -> tuple[_Event, _Event] | None:
        """The (request, response) pair once both halves are here; None while waiting."""
        with self._lock:
            other = self._pending.get(ce_id)
            if other is not None and other.kind != event.kind:
                del self._pending[ce_id]
                return (other, event) if other.kind == REQUEST else (event, other)
            self._pending[ce_id] = event  # a resent half replaces the first
            self._pending.move_to_end(ce_id)
            while len(self._pending) > self.max_pending:
                self.evicted.append(self._pending.popitem(last=False))
        return None

    def expire(self, now: float) -> list[tuple[str, _Event]]:
        with self._lock:
            out, self.evicted = self.evicted, []
            while self._pending:
                event = next(iter(self._pending.values()))
                if now - event.arrived < self.timeout:
                    break
                out.append(self._pending.popitem(last=False))
        for _, event in out:
            self.unpaired["request" if event.kind == REQUEST else "response"] += 1
        return out

    @property
    def pending(self) -> int:
        return len(self._pending)
