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
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .config import Route
from .dispatch import Delivery, Dispatcher
from .normalize import Normalizer
from .packer import AUXILIARY_MAX_SPAN_SECONDS, Packer, Request
from .records import Record, Rejection, Result, Row

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


class _Run:
    """The state of one run: its result, the packer, and what is in flight."""

    def __init__(self, engine: Engine, route: Route, batch_id: str, hold: bool,
                 on_chunk: Callable[[ChunkReport], None] | None, in_flight: int | None, result: Result | None):
        self.engine, self.route, self.hold, self.on_chunk = engine, route, hold, on_chunk
        self.max_in_flight = in_flight or 2 * engine.dispatcher.concurrency
        self.dispatcher = engine.dispatcher
        self.result = result if result is not None else Result(route.name, batch_id)
        span = AUXILIARY_MAX_SPAN_SECONDS if route.auxiliary else None
        self.packer = Packer(engine.max_request_bytes, span)
        self.held: list[Request] = []
        self.to_gzip: list[Request] = []
        self.in_flight: dict[Future[Delivery], ChunkReport | None] = {}
        self.sent_any = False
        self.now = time.time()  # one ingestion time for the whole run

    # ------------------------------------------------------------------ sending

    def send(self, requests: list[Request], chunk: ChunkReport | None) -> None:
        if self.hold:
            self.to_gzip.extend(requests)
            if len(self.to_gzip) >= GZIP_TOGETHER:
                self.dispatcher.gzip_together(self.to_gzip)
                self.held.extend(self.to_gzip)
                self.to_gzip = []
            return
        for request in requests:
            while len(self.in_flight) >= self.max_in_flight:
                self.settle(wait_all=False)
            if chunk is not None:
                chunk.waiting += 1
                chunk.requests += 1
            self.in_flight[self.dispatcher.submit(self.route, request, self.result.batch_id)] = chunk
            self.sent_any = True

    def finish_sending(self) -> None:
        last = self.packer.finish()
        if self.hold:
            self.to_gzip.extend(last)
            if self.to_gzip:
                self.dispatcher.gzip_together(self.to_gzip)
            last, self.held, self.to_gzip = self.held + self.to_gzip, [], []
        self.hold = False
        if len(last) == 1 and not self.sent_any:  # one request in all: on this thread
            self.count(self.dispatcher.deliver(self.route, last[0], self.result.batch_id), None)
        else:
            self.send(last, None)
        self.settle(wait_all=True)

    def settle(self, wait_all: bool) -> None:
        """Count the requests that were answered (all of them with ``wait_all``)."""
        if not self.in_flight:
            return
        done, _ = wait(list(self.in_flight), return_when="ALL_COMPLETED" if wait_all else FIRST_COMPLETED)
        for future in done:
            self.count(future.result(), self.in_flight.pop(future))

    def count(self, delivery: Delivery, chunk: ChunkReport | None) -> None:
        rows = len(delivery.request)
        self.result.requests += 1
        self.result.count(delivery.fate, rows)
        if delivery.failure is not None:
            self.result.fail(delivery.failure)
        if chunk is not None:
            setattr(chunk, delivery.fate.value, getattr(chunk, delivery.fate.value) + rows)
            if delivery.failure is not None:
                chunk.failures.append(delivery.failure)
            chunk.waiting -= 1
            if chunk.waiting == 0:
                self.chunk_done(chunk)

    def chunk_done(self, chunk: ChunkReport) -> None:
        if self.on_chunk is not None:
            self.on_chunk(chunk)

    # ------------------------------------------------------------------ taking records

    def take(self, items: list[Record | Rejection], chunk: ChunkReport | None) -> None:
        """Normalize one chunk of items and send the requests it fills."""
        records = [item for item in items if type(item) is Record]
        if len(records) < len(items):
            for item in items:
                if type(item) is Rejection:
                    self.reject(item, chunk)
        self.result.received += len(items)
        rows = self.engine.normalize(self.route, records, self)
        full, _ = self.packer.add(rows)  # rows too large were rejected while normalizing
        if chunk is None:
            self.send(full, None)
            return
        chunk.records, chunk.first, chunk.last = len(items), items[0].ref, items[-1].ref
        chunk.waiting += 1  # a guard: answers counted while this chunk is still being sent
        self.send(full + self.packer.finish(), chunk)
        chunk.waiting -= 1
        if chunk.waiting == 0:
            self.chunk_done(chunk)

    def reject(self, rejection: Rejection, chunk: ChunkReport | None = None) -> None:
        self.result.reject(rejection)
        if chunk is not None:
            chunk.rejected += 1


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

    def run(
        self,
        route: Route,
        items: Iterable[Record | Rejection],
        *,
        batch_id: str | None = None,
        hold: bool = False,
        chunking: Chunking | None = None,
        on_chunk: Callable[[ChunkReport], None] | None = None,
        in_flight: int | None = None,
        result: R | None = None,
    ) -> R | Result:
        """Land ``items`` on ``route``; see the module docstring for ``hold`` and ``on_chunk``.
        ``in_flight`` bounds the requests sent and not yet answered (memory). ``result``: the
        caller's own (a trigger's result type) to count into, so what was sent stays counted even
        when the input raises."""
        started = time.perf_counter()
        run = _Run(self, route, batch_id or str(uuid.uuid4()), hold, on_chunk, in_flight, result)
        number = 0
        try:
            for chunk in _chunks(items, chunking or Chunking()):
                number += 1
                run.take(chunk, ChunkReport(number) if on_chunk is not None else None)
        except BaseException:
            run.held = run.to_gzip = []  # nothing held was sent: the caller answers for all of it
            run.settle(wait_all=True)  # what was sent is counted and reported before the error goes on
            raise
        run.finish_sending()
        result = run.result
        self._log(result)
        try:
            self.observer.batch(result, time.perf_counter() - started)
        except Exception:  # never let metrics fail a batch
            log.exception("recording batch metrics failed")
        return result

    def normalize(self, route: Route, records: list[Record], run: _Run) -> list[Row]:
        """Rows of ``records`` (too large rows and bad events rejected with their refs)."""
        if not records:
            return []
        context = records[0].context
        shared = all(record.context is context for record in records)
        part = self.normalizer(route).normalize(
            [record.event for record in records], now=run.now,
            context=context if shared else [record.context for record in records],
        )
        result = run.result
        result.time_defaulted += part.time_defaulted
        for counted, more in ((result.oversized_fields, part.oversized_fields),
                              (result.dropped_fields, part.dropped_fields), (result.moved_to_extra, part.moved_to_extra)):
            if more:
                counted.update(more)
        for rejection in part.rejections:
            record = records[rejection.index]
            run.reject(Rejection(record.ref, rejection.reason, record.event))
        limit = self.max_request_bytes - 2
        rows = list(map(Row, [records[i].ref for i in part.indexes], part.rows, part.times))
        if part.rows and max(map(len, part.rows)) > limit:
            for row, index in zip(rows, part.indexes, strict=True):
                if len(row.body) > limit:
                    run.reject(Rejection(row.ref, f"RecordTooLarge: row is {len(row.body)} bytes, over the request "
                                                  f"limit of {self.max_request_bytes} bytes", records[index].event))
            rows = [row for row in rows if len(row.body) <= limit]
        return rows

    @staticmethod
    def _log(result: Result) -> None:
        log.info(
            "batch route=%s batch_id=%s received=%d landed=%d rejected=%d parked=%d deadlettered=%d failed=%d "
            "requests=%d", result.route, result.batch_id, result.received, result.landed, result.rejected,
            result.parked, result.deadlettered, result.failed, result.requests,
        )

    def close(self) -> None:
        self.dispatcher.close()


def _chunks(items: Iterable[Record | Rejection], chunking: Chunking) -> Iterator[list[Record | Rejection]]:
    """Group items by the chunking policy (records without a known size count by number only)."""
    chunk: list[Record | Rejection] = []
    size = 0
    rows, limit = chunking.rows, chunking.size
    for item in items:
        chunk.append(item)
        if type(item) is Record:
            size += item.size
        if len(chunk) >= rows or size >= limit:
            yield chunk
            chunk, size = [], 0
            rows, limit = chunking.rows, chunking.size
    if chunk:
        yield chunk
