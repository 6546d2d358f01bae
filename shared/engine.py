"""The one ingest engine: records in, a Result out — chunk, normalize, pack, dispatch, count.

Every trigger (HTTP, blob, Event Hub) and ``relay send`` hands the engine an iterable of
:class:`~shared.records.Record` s (and the :class:`~shared.records.Rejection` s its decoder
already made), and gets one :class:`~shared.records.Result` back. What differs between
triggers is a policy of the run, not another loop:

- ``hold``: nothing is sent before the input is exhausted, so an exception from the input
  (a webhook body that stops decoding half way) reaches the caller with nothing uploaded;
  full requests are gzipped as they are packed and their rows let go meanwhile.
- ``on_chunk``: requests never span two chunks, and the hook hears when every row of a
  chunk is safe (landed, rejected, parked or dead-lettered) or is not — the blob trigger's
  checkpoint.
- otherwise requests go to the upload pool as soon as they are full (at most
  ``2 x concurrency`` in flight by default), overlapping the normalization of what follows.

A run of exactly one request sends it on the calling thread (no hop: webhook latency).
Partial failure is data: the engine raises only what its input raised.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field, replace
from itertools import repeat
from operator import attrgetter, is_, itemgetter
from typing import Any, TypeVar

from .coercion import EventRejection, NormalizedBatch
from .config import Route
from .dispatch import Delivery, Dispatcher
from .normalize import Normalizer
from .packer import AUXILIARY_MAX_SPAN_SECONDS, Packer, Request
from .records import Encoded, Record, Refs, Rejection, Result, Rows
from .routing import UNROUTED_REASON, Router
from .typed import TypedPath

log = logging.getLogger("relay.engine")
R = TypeVar("R", bound=Result)

#: Requests gzipped together on the pool while a held body decodes.
GZIP_TOGETHER = 8


@dataclass
class Chunking:
    """How many records the engine normalizes at a time: at most ``rows`` records or about
    ``size`` bytes of input (``Record.size``), whichever comes first. Bounds memory. Read anew
    for each chunk, so a caller may adapt it while a run goes on (the blob trigger does)."""

    rows: int = 2000
    size: int = 4 << 20


DEFAULT_CHUNKING = Chunking()
_size = attrgetter("size")


@dataclass
class ChunkReport:
    """One chunk of a run with ``on_chunk``: the refs it spans and what became of its records."""

    number: int
    first: Any = None
    last: Any = None
    records: int = 0
    landed: int = 0
    rejected: int = 0
    parked: int = 0
    deadlettered: int = 0
    failed: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    waiting: int = 0  # requests not answered yet

    @property
    def safe(self) -> bool:
        return self.failed == 0


class _Lane:
    """One destination route of a run: its packer, what it holds, and the results it counts into
    (its own, and the run's totals when the run fans out to several routes)."""

    def __init__(self, run: _Run, route: Route, results: tuple[Result, ...]):
        self.run, self.route, self.results = run, route, results
        self.result = results[0]
        span = AUXILIARY_MAX_SPAN_SECONDS if route.auxiliary else None
        self.packer = Packer(run.engine.max_request_bytes, span)
        self.held: list[Request] = []
        self.to_gzip: list[Request] = []

    def take(self, records: list[Record] | Encoded, chunk: ChunkReport | None) -> None:
        """Normalize records (or encoded events, on the route's typed path) for this route and send
        (or hold) the requests they fill."""
        for result in self.results:
            result.received += len(records)
        rows = self.run.engine.normalize(self, records, chunk)
        full, _ = self.packer.add(rows)  # rows too large were rejected while normalizing
        if chunk is not None:
            full += self.packer.finish()  # requests never span two chunks: each chunk's fate is its own
        self.send(full, chunk)

    def reject(self, rejection: Rejection, chunk: ChunkReport | None) -> None:
        for result in self.results:
            result.reject(rejection)
        if chunk is not None:
            chunk.rejected += 1

    def send(self, requests: list[Request], chunk: ChunkReport | None) -> None:
        if self.run.hold:
            self.to_gzip.extend(requests)
            if len(self.to_gzip) >= GZIP_TOGETHER:
                self.run.engine.dispatcher.gzip_together(self.to_gzip)
                self.held.extend(self.to_gzip)
                self.to_gzip = []
            return
        for request in requests:
            self.run.submit(self, request, chunk)

    def last_requests(self) -> list[Request]:
        """What is still to send once the input is exhausted (held requests gzipped by now)."""
        last = self.packer.finish()
        if not self.run.hold:
            return last
        self.to_gzip.extend(last)
        if self.to_gzip:
            self.run.engine.dispatcher.gzip_together(self.to_gzip)
        last, self.held, self.to_gzip = self.held + self.to_gzip, [], []
        return last

    def count(self, delivery: Delivery, chunk: ChunkReport | None) -> None:
        rows = len(delivery.request)
        for result in self.results:
            result.requests += 1
            result.count(delivery.fate, rows)
            if delivery.failure is not None:
                result.fail(delivery.failure)
        if chunk is not None:
            setattr(chunk, delivery.fate, getattr(chunk, delivery.fate) + rows)
            if delivery.failure is not None:
                chunk.failures.append(delivery.failure)


class _Run:
    """The state of one run: its lanes (one per destination route), the totals, what is in flight."""

    def __init__(self, engine: Engine, target: Route | Router, batch_id: str, hold: bool,
                 on_chunk: Callable[[ChunkReport], None] | None, in_flight: int | None, result: Result | None):
        self.engine, self.hold, self.on_chunk = engine, hold, on_chunk
        self.dispatcher = engine.dispatcher
        self.max_in_flight = in_flight or 2 * engine.dispatcher.concurrency
        single = target if isinstance(target, Route) else target.single
        self.router = None if single is not None else target
        first = single if single is not None else target.candidates[0].route  # type: ignore[union-attr]
        self.total = result if result is not None else Result(first.name, batch_id)
        self.lanes: dict[str, _Lane] = {}
        if single is not None:  # one route: its result is the total
            self.lanes[single.name] = _Lane(self, single, (self.total,))
        self.in_flight: dict[Future[Delivery], tuple[_Lane, ChunkReport | None]] = {}
        self.sent_any = False
        self.now = time.time()  # one ingestion time for the whole run

    def lane(self, route: Route) -> _Lane:
        lane = self.lanes.get(route.name)
        if lane is None:
            own = Result(route.name, self.total.batch_id)
            lane = self.lanes[route.name] = _Lane(self, route, (own, self.total))
            self.total.routes[route.name] = own
        return lane

    # ------------------------------------------------------------------ taking records

    def take(self, items: list[Record | Rejection] | Encoded, chunk: ChunkReport | None) -> None:
        """Route, normalize and send one chunk of items."""
        if chunk is not None:
            chunk.records, chunk.first, chunk.last = len(items), _first_ref(items), _last_ref(items)
            chunk.waiting += 1  # a guard: answers counted while this chunk is still being sent
        if type(items) is Encoded:
            lane = self.typed_lane()
            if lane is not None:
                lane.take(items, chunk)
                if chunk is not None:
                    self.release(chunk)
                return
            items = items.records()
        records = [item for item in items if type(item) is Record]
        for item in items if len(records) < len(items) else ():
            if type(item) is Rejection:
                self.reject(item, chunk)
        if self.router is None:
            (lane,) = self.lanes.values()
            lane.take(records, chunk)
        else:
            for route, taken in self.split(records, chunk):
                self.lane(route).take(taken, chunk)
        if chunk is not None:
            self.release(chunk)

    def typed_lane(self) -> _Lane | None:
        """The one lane of a run without a router, when its route decodes encoded events itself."""
        if self.router is not None:
            return None
        (lane,) = self.lanes.values()
        return lane if self.engine.takes_encoded(lane.route) else None

    def split(self, records: list[Record], chunk: ChunkReport | None) -> list[tuple[Route, list[Record]]]:
        """The records each destination takes, in order; a record nobody takes is rejected."""
        by_route: dict[str, tuple[Route, list[Record]]] = {}
        destinations = self.router.destinations  # type: ignore[union-attr]
        for record in records:
            routes = destinations(record.event, record.context)
            if not routes:
                self.reject(Rejection(record.ref, UNROUTED_REASON, record.event), chunk)
            for route in routes:
                by_route.setdefault(route.name, (route, []))[1].append(record)
        return list(by_route.values())

    def reject(self, rejection: Rejection, chunk: ChunkReport | None) -> None:
        """A record rejected before it reached a route (it did not decode, or no route takes it)."""
        self.total.received += 1
        self.total.reject(rejection)
        if chunk is not None:
            chunk.rejected += 1

    # ------------------------------------------------------------------ sending

    def submit(self, lane: _Lane, request: Request, chunk: ChunkReport | None) -> None:
        while len(self.in_flight) >= self.max_in_flight:
            self.settle(wait_all=False)
        if chunk is not None:
            chunk.waiting += 1
            chunk.requests += 1
        self.in_flight[self.dispatcher.submit(lane.route, request, self.total.batch_id)] = (lane, chunk)
        self.sent_any = True

    def finish_sending(self) -> None:
        last = [(lane, request) for lane in self.lanes.values() for request in lane.last_requests()]
        self.hold = False
        if len(last) == 1 and not self.sent_any:  # one request in all: on this thread
            lane, request = last[0]
            lane.count(self.dispatcher.deliver(lane.route, request, self.total.batch_id), None)
        else:
            for lane, request in last:
                self.submit(lane, request, None)
        self.settle(wait_all=True)

    def drop_held(self) -> None:
        """Nothing held was sent: the caller answers for all of it."""
        for lane in self.lanes.values():
            lane.held, lane.to_gzip = [], []

    def settle(self, wait_all: bool) -> None:
        """Count the requests that were answered (all of them with ``wait_all``)."""
        if not self.in_flight:
            return
        done, _ = wait(list(self.in_flight), return_when="ALL_COMPLETED" if wait_all else FIRST_COMPLETED)
        for future in done:
            lane, chunk = self.in_flight.pop(future)
            lane.count(future.result(), chunk)
            if chunk is not None:
                self.release(chunk)

    def release(self, chunk: ChunkReport) -> None:
        """One thing the chunk waited for is done; when nothing is left, its report goes out."""
        chunk.waiting -= 1
        if chunk.waiting == 0 and self.on_chunk is not None:
            self.on_chunk(chunk)


class Engine:
    """Long-lived (one per worker process): a normalizer per route and the dispatcher."""

    def __init__(self, dispatcher: Dispatcher, max_request_bytes: int):
        self.dispatcher = dispatcher
        self.max_request_bytes = max_request_bytes
        self._normalizers: dict[str, Normalizer] = {}

    @property
    def observer(self) -> Any:
        return self.dispatcher.observer

    def normalizer(self, route: Route) -> Normalizer:
        normalizer = self._normalizers.get(route.name)
        if normalizer is None or normalizer.route is not route:
            normalizer = self._normalizers[route.name] = Normalizer(route)
        return normalizer

    def takes_encoded(self, target: Route | Router | None) -> TypedPath | None:
        """What decodes encoded events itself on a run on ``target`` (one route, with a typed path), or None:
        only then is it worth a source's while to hand them on encoded (``shared.records.Encoded``); the HTTP
        source offers it a JSON array body whole first (``TypedPath.predecode``)."""
        route = target if isinstance(target, Route) else target.single if target is not None else None
        return self.normalizer(route).typed if route is not None else None

    def run(
        self,
        route: Route | Router,
        items: Iterable[Record | Rejection | list[Record | Rejection] | Encoded],
        *,
        batch_id: str | None = None,
        hold: bool = False,
        chunking: Chunking | None = None,
        on_chunk: Callable[[ChunkReport], None] | None = None,
        in_flight: int | None = None,
        result: R | None = None,
    ) -> R | Result:
        """Land ``items`` on ``route``, or on the routes a ``Router`` sends each record to; see the module
        docstring for ``hold`` and ``on_chunk``.
        ``in_flight`` bounds the requests sent and not yet answered (memory). ``result``: the
        caller's own (a trigger's result type) to count into, so what was sent stays counted even
        when the input raises."""
        started = time.perf_counter()
        run = _Run(self, route, batch_id or str(uuid.uuid4()), hold, on_chunk, in_flight, result)
        number = 0
        try:
            for chunk in _chunks(items, chunking or DEFAULT_CHUNKING):
                number += 1
                run.take(chunk, ChunkReport(number) if on_chunk is not None else None)
        except BaseException:
            run.drop_held()
            run.settle(wait_all=True)  # what was sent is counted and reported before the error goes on
            raise
        run.finish_sending()
        seconds = time.perf_counter() - started
        for lane in run.lanes.values():  # metrics and the batch line per route
            self._log(lane.result)
            try:
                self.observer.batch(lane.result, seconds)
            except Exception:  # never let metrics fail a batch
                log.exception("recording batch metrics failed")
        return run.total

    def normalize(self, lane: _Lane, records: list[Record] | Encoded, chunk: ChunkReport | None) -> Rows:
        """Rows of ``records`` for the lane's route (too large rows and bad events rejected with their refs)."""
        if not len(records):
            return Rows()
        normalizer = self.normalizer(lane.route)
        if type(records) is Encoded:
            part = (_normalize_mixed(normalizer, records, lane.run.now) if records.mixed else
                    normalizer.normalize_encoded(records.raws, now=lane.run.now, context=records.context,
                                                 checked=records.checked, decoded=records.decoded))
            ref_of: Callable[[int], Any] = records.ref_at
            first = records.first
            positions = part.indexes if not first else list(map(first.__add__, part.indexes))
            refs: Sequence[Any] = Refs(records.refs, positions)
            event_of: Callable[[int], Any] = records.event_at
        else:
            context = records[0].context
            contexts = [record.context for record in records]
            shared = all(map(is_, contexts, repeat(context)))
            part = normalizer.normalize([record.event for record in records], now=lane.run.now,
                                        context=context if shared else contexts)
            refs = [records[index].ref for index in part.indexes]
            ref_of = lambda index: records[index].ref  # noqa: E731
            event_of = lambda index: records[index].event  # noqa: E731
        self._count(lane, part)
        for rejection in part.rejections:
            lane.reject(Rejection(ref_of(rejection.index), rejection.reason, rejection.event), chunk)
        by_time = lane.packer.max_span_seconds is not None  # an auxiliary route: the only packer that reads times
        rows = Rows(refs, part.rows, part.times if by_time else [])
        rows, over = rows.within(self.max_request_bytes - 2)  # ("[" and "]" around it)
        for position in over:
            lane.reject(Rejection(refs[position], f"RecordTooLarge: row is {len(part.rows[position])} bytes, over the "
                                                  f"request limit of {self.max_request_bytes} bytes",
                                  event_of(part.indexes[position])), chunk)
        return rows

    @staticmethod
    def _count(lane: _Lane, part: NormalizedBatch) -> None:
        """The counters of a normalized part, into every result of the lane."""
        for result in lane.results:
            result.time_defaulted += part.time_defaulted
            result.time_out_of_window += part.time_out_of_window
            for counted, more in ((result.oversized_fields, part.oversized_fields),
                                  (result.dropped_fields, part.dropped_fields),
                                  (result.moved_to_extra, part.moved_to_extra)):
                if more:
                    counted.update(more)

    @staticmethod
    def _log(result: Result) -> None:
        log.info(
            "batch route=%s batch_id=%s received=%d landed=%d rejected=%d parked=%d deadlettered=%d failed=%d "
            "requests=%d", result.route, result.batch_id, result.received, result.landed, result.rejected,
            result.parked, result.deadlettered, result.failed, result.requests,
        )

    def close(self) -> None:
        self.dispatcher.close()


def _normalize_mixed(normalizer: Normalizer, records: Encoded, now: float) -> NormalizedBatch:
    """A part of encoded events with the records and rejections of what its source decoded among them
    (``Encoded.mixed``): the raws on the typed path, the records as records are; outcomes in their places
    (indexes into the part), the source's rejections first, as the engine takes a list of records."""
    raws = records.raws
    refused = [offset for offset, raw in enumerate(raws) if type(raw) is Rejection]
    decoded = [offset for offset, raw in enumerate(raws) if type(raw) is Record]
    encoded = [offset for offset, raw in enumerate(raws) if type(raw) is not Record and type(raw) is not Rejection]
    parts = [(NormalizedBatch(rejections=[EventRejection(index, raws[offset].reason)
                                          for index, offset in enumerate(refused)]), refused)]
    if decoded:
        contexts = [raws[offset].context for offset in decoded]
        shared = all(map(is_, contexts, repeat(contexts[0])))
        parts.append((normalizer.normalize([raws[offset].event for offset in decoded], now=now,
                                           context=contexts[0] if shared else contexts), decoded))
    if encoded:
        parts.append((normalizer.normalize_encoded([raws[offset] for offset in encoded], now=now,
                                                   context=records.context, checked=records.checked), encoded))
    return _in_order(parts)


def _in_order(parts: list[tuple[NormalizedBatch, list[int]]]) -> NormalizedBatch:
    """Normalized parts of one chunk as one, their rows in the chunk's order and their rejections too, the first
    part's before the others' (``offsets`` of each part: where its indexes are in the chunk)."""
    batch = NormalizedBatch()
    rows: list[tuple[int, bytes, float]] = []
    rejections: list[tuple[bool, int, EventRejection]] = []
    for rank, (part, offsets) in enumerate(parts):
        rows += zip(map(offsets.__getitem__, part.indexes), part.rows, part.times or repeat(0.0, len(part.rows)),
                    strict=True)
        rejections += [(rank > 0, offsets[rejection.index], replace(rejection, index=offsets[rejection.index]))
                       for rejection in part.rejections]
        batch.oversized_fields.update(part.oversized_fields)
        batch.dropped_fields.update(part.dropped_fields)
        batch.moved_to_extra.update(part.moved_to_extra)
        batch.time_defaulted += part.time_defaulted
        batch.time_out_of_window += part.time_out_of_window
    if sum(1 for part, _ in parts if part.rows) > 1:  # else in order already
        rows.sort(key=itemgetter(0))
    batch.indexes = [row[0] for row in rows]
    batch.rows = [row[1] for row in rows]
    batch.times = [row[2] for row in rows]
    rejections.sort(key=itemgetter(0, 1))
    batch.rejections = [rejection for _, _, rejection in rejections]
    return batch


def _first_ref(items: list[Record | Rejection] | Encoded) -> Any:
    return items.ref_at(0) if type(items) is Encoded else items[0].ref


def _last_ref(items: list[Record | Rejection] | Encoded) -> Any:
    return items.ref_at(len(items) - 1) if type(items) is Encoded else items[-1].ref


def _chunks(items: Iterable[Record | Rejection | list[Record | Rejection] | Encoded],
            chunking: Chunking) -> Iterator[list[Record | Rejection] | Encoded]:
    """Group items by the chunking policy (records without a known size count by number only). A list
    among the items is a batch a source made at once (a decoded slice): taken in slices, not one by one,
    and the chunk it ends in ends with it, so a source that decodes a slice at a time has each slice
    normalized right after it was decoded. Encoded events are chunks of their own, at most ``rows`` long."""
    chunk: list[Record | Rejection] = []
    size = 0
    rows, limit = chunking.rows, chunking.size
    for item in items:
        if type(item) is Encoded:
            if chunk:
                yield chunk
                chunk, size = [], 0
            for start in range(0, len(item), chunking.rows):
                yield item.part(start, start + chunking.rows)
            rows, limit = chunking.rows, chunking.size
            continue
        if type(item) is list:
            start = 0
            while start < len(item):
                piece = item[start:start + rows - len(chunk)]
                start += len(piece)
                chunk += piece
                size += sum(map(_size, piece))
                # full, or the slice's end: its events are normalized while still in the CPU's caches
                if len(chunk) >= rows or size >= limit or start == len(item):
                    yield chunk
                    chunk, size = [], 0
                    rows, limit = chunking.rows, chunking.size
            continue
        chunk.append(item)
        if type(item) is Record:
            size += item.size
        if len(chunk) >= rows or size >= limit:
            yield chunk
            chunk, size = [], 0
            rows, limit = chunking.rows, chunking.size
    if chunk:
        yield chunk
