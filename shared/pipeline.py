"""The processor every trigger calls: normalize -> pack -> gzip -> upload -> park.

Partial failure is data: the returned Outcome says what landed, what was rejected
as bad input (with reasons), what was parked for replay, and what could be made
safe neither way. It raises only for programming errors.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from isal import igzip

from .config import Route
from .gctune import tune_for_batches
from .normalize import NormalizedBatch, Normalizer, Rejection
from .packer import AUXILIARY_MAX_SPAN_SECONDS, array_of, split_by_time, split_in_order
from .sink import UploadResult

log = logging.getLogger("relay.pipeline")
GZIP_LEVEL = 1  # ISA-L level 1: several times faster than zlib 6 at a similar ratio for JSON
#: Batches larger than this are normalized slice by slice, uploading full requests meanwhile.
STREAM_SLICE_EVENTS = 2000
#: Requests held while a body decodes (``process_slices``) are gzipped this many at a time.
GZIP_TOGETHER = 8


class Uploader(Protocol):
    def upload(self, endpoint: str, dcr: str, stream: str, gzipped_body: bytes, request_id: str) -> UploadResult:
        ...


class Parker(Protocol):
    """Keeps rows that could not be uploaded safe; raises if it cannot.

    Transient failures are parked for replay; permanent ones (``result.permanent``) are
    dead-lettered with their reason, and the Outcome counts them apart.
    """

    def park(self, route: Route, rows: Sequence[bytes], result: UploadResult, batch_id: str) -> None:
        ...


@dataclass
class Outcome:
    """What became of one batch of events on one route."""

    route: str
    batch_id: str
    received: int = 0
    landed: int = 0
    parked: int = 0  # kept in the poison store, replayed automatically
    deadlettered: int = 0  # refused permanently by the service, kept with the reason for an operator
    failed: int = 0
    requests: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    oversized_fields: Counter[str] = field(default_factory=Counter)
    dropped_fields: Counter[str] = field(default_factory=Counter)
    moved_to_extra: Counter[str] = field(default_factory=Counter)
    time_defaulted: int = 0

    @property
    def all_safe(self) -> bool:
        """Everything either landed, was parked, or was rejected with a reason."""
        return self.failed == 0

    def merge(self, other: Outcome) -> None:
        self.received += other.received
        self.landed += other.landed
        self.parked += other.parked
        self.deadlettered += other.deadlettered
        self.failed += other.failed
        self.requests += other.requests
        self.rejected.extend(other.rejected)
        self.failures.extend(other.failures)
        self.oversized_fields.update(other.oversized_fields)
        self.dropped_fields.update(other.dropped_fields)
        self.moved_to_extra.update(other.moved_to_extra)
        self.time_defaulted += other.time_defaulted

    def summary(self, max_reasons: int = 100) -> dict[str, Any]:
        return {
            "route": self.route,
            "request_id": self.batch_id,
            "received": self.received,
            "accepted": self.landed,
            "rejected": len(self.rejected),
            "parked": self.parked,
            "deadlettered": self.deadlettered,
            "failed": self.failed,
            "requests": self.requests,
            "rejections": [r.summary() for r in self.rejected[:max_reasons]],
            "failures": self.failures[:max_reasons],
            "dropped_fields": dict(self.dropped_fields.most_common(20)),
            "moved_to_extra": dict(self.moved_to_extra),
            "oversized_fields": dict(self.oversized_fields),
            "time_defaulted": self.time_defaulted,
        }


@dataclass(kw_only=True)
class TriggerResult:
    """The counts a trigger reports for one invocation, added up over its processor calls.

    Rejections are not added from the Outcomes: each trigger words them with its own positions
    (line, element, partition and sequence number), so it counts them as it reports them.
    """

    landed: int = 0
    rejected: int = 0
    parked: int = 0  # kept in the poison store, replayed automatically
    deadlettered: int = 0  # refused permanently by the service, kept with the reason
    failed: int = 0
    requests: int = 0
    seconds: float = 0.0
    message: str = ""
    rejections: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def safe(self) -> bool:
        """Everything read landed, was rejected with a reason, or was parked."""
        return self.failed == 0

    def add(self, outcome: Outcome) -> None:
        """Count what one processor call landed, parked, dead-lettered, could not make safe and sent."""
        self.landed += outcome.landed
        self.parked += outcome.parked
        self.deadlettered += outcome.deadlettered
        self.failed += outcome.failed
        self.requests += outcome.requests

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data["safe"] = self.safe
        data["accepted"] = self.landed
        return data


def gzip_body(body: bytes) -> bytes:
    return igzip.compress(body, compresslevel=GZIP_LEVEL)


class Processor:
    """Long-lived (one per worker process): holds compiled normalizers and the upload pool."""

    def __init__(
        self,
        uploader: Uploader,
        max_request_bytes: int,
        concurrency: int = 4,
        parker: Parker | None = None,
    ):
        self._uploader = uploader
        self._max_request_bytes = max_request_bytes
        self._parker = parker
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="relay-upload")
        tune_for_batches()  # one Processor per worker process: batch-sized GC thresholds (shared/gctune.py)
        self._normalizers: dict[str, Normalizer] = {}

    def normalizer(self, route: Route) -> Normalizer:
        normalizer = self._normalizers.get(route.name)
        if normalizer is None or normalizer.route is not route:
            normalizer = self._normalizers[route.name] = Normalizer(route)
        return normalizer

    def process(
        self,
        route: Route,
        events: Iterable[Any],
        batch_id: str | None = None,
        start_index: int = 0,
        context: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    ) -> Outcome:
        """Land ``events`` on ``route``; ``context`` feeds ``_http.``/``_blob.``/``_eventhub.`` paths.

        Large batches are normalized in slices and each request goes to the upload pool as
        soon as it is full, so uploads overlap the normalization of the rest; the requests,
        rows and Outcome are the same as when everything is normalized first.
        """
        events = events if isinstance(events, list) else list(events)
        batch = _Batch(self, route, batch_id or str(uuid.uuid4()), start_index, events)
        batch.outcome.received = len(events)
        normalizer = self.normalizer(route)
        per_event_context = not (context is None or isinstance(context, Mapping))
        if route.auxiliary or len(events) <= STREAM_SLICE_EVENTS or (
            per_event_context and len(context) < len(events)  # type: ignore[arg-type]
        ):
            batch.take(normalizer.normalize(events, start_index=start_index, context=context))
            batch.send_all()
        else:
            now = time.time()  # one ingestion time for the whole batch, as in one normalize call
            pending: list[int] = []  # rows of the request still filling
            for first in range(0, len(events), STREAM_SLICE_EVENTS):
                last = first + STREAM_SLICE_EVENTS
                part = normalizer.normalize(events[first:last], now=now, start_index=start_index + first,
                                            context=context[first:last] if per_event_context else context)  # type: ignore[index]
                full, pending = batch.full_requests(pending, batch.take(part), more_to_come=last < len(events))
                for group in full:
                    batch.submit(group)
        return batch.finish()

    def process_slices(
        self,
        route: Route,
        slices: Iterable[Sequence[Any]],
        batch_id: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Outcome:
        """Land events that arrive in slices, as a webhook body decoded as it is read.

        Each slice is normalized as it arrives, and its decoded events can then be freed. Each
        request is packed and gzipped as soon as it is full and its rows let go, so what stays
        while the body decodes is gzip bodies, a fraction of the rows (rows are cut back out of
        a body only if it must be parked). Nothing is sent before the last slice, so an exception
        from ``slices`` (a line that does not decode) reaches the caller with nothing uploaded.
        Requests, rows and Outcome are those of ``process`` on the events of all slices.
        """
        batch = _Batch(self, route, batch_id or str(uuid.uuid4()), 0, None)
        normalizer = self.normalizer(route)
        now = time.time()  # one ingestion time for the whole body, as in one normalize call
        received = 0
        pending: list[int] = []  # rows of the request still filling
        for events in slices:
            part = normalizer.normalize(events, now=now, start_index=received, context=context)
            base = batch.take(part, events, received)
            received += len(events)
            if not route.auxiliary:  # auxiliary requests are cut by time: only once every row is in
                full, pending = batch.full_requests(pending, base)
                for group in full:
                    batch.hold(group)
        batch.outcome.received = received
        if route.auxiliary:
            batch.send_all()
        else:
            if pending:
                batch.hold(tuple(pending))
            batch.send_held()
        return batch.finish()

    def _park(self, route: Route, rows: list[bytes], result: UploadResult, batch_id: str) -> bool:
        if self._parker is None:
            return False
        try:
            self._parker.park(route, rows, result, batch_id)
            return True
        except Exception:  # the caller answers so the sender retries; the reason is logged here
            log.exception("parking %d rows of route %s failed", len(rows), route.name)
            return False

    @staticmethod
    def _log(outcome: Outcome) -> None:
        log.info(
            "batch route=%s batch_id=%s received=%d landed=%d rejected=%d parked=%d deadlettered=%d failed=%d "
            "requests=%d",
            outcome.route, outcome.batch_id, outcome.received, outcome.landed, len(outcome.rejected),
            outcome.parked, outcome.deadlettered, outcome.failed, outcome.requests,
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class _Batch:
    """The rows of one ``process`` call on their way out: normalized, packed, sent, counted."""

    def __init__(self, processor: Processor, route: Route, batch_id: str, start_index: int,
                 events: list[Any] | None):
        self.processor, self.route, self.start_index = processor, route, start_index
        self.max_bytes = processor._max_request_bytes
        self.outcome = Outcome(route.name, batch_id)
        self.rows: list[bytes] = []
        self.indexes: list[int] = []
        self.times: list[float] = []
        # the input events, for the rejection of a row too large for any request; when events
        # arrive in slices and are freed, only those of such rows are kept, by input index
        self.events = events
        self.oversized_events: dict[int, Any] = {}
        # positions of each request's rows, and its upload (bodies are dropped once sent: memory)
        self.sent: list[tuple[tuple[int, ...], Future[UploadResult] | UploadResult]] = []
        # requests packed while the input still arrives: gzip body (being made) by row positions,
        # the rows themselves let go; and every row's size, for the cuts and to cut rows back out of a body
        self.held: dict[tuple[int, ...], bytes] = {}
        self.to_gzip: list[tuple[tuple[int, ...], bytes]] = []
        self.sizes: list[int] = []

    def take(self, part: NormalizedBatch, events: Sequence[Any] | None = None, first_index: int = 0) -> int:
        """Add a normalized slice; returns the position of its first row."""
        outcome = self.outcome
        outcome.time_defaulted += part.time_defaulted
        outcome.rejected.extend(part.rejections)
        outcome.oversized_fields.update(part.oversized_fields)
        outcome.dropped_fields.update(part.dropped_fields)
        outcome.moved_to_extra.update(part.moved_to_extra)
        base = len(self.rows)
        if events is not None and part.rows and max(map(len, part.rows)) + 2 > self.max_bytes:
            for row, index in zip(part.rows, part.indexes, strict=True):
                if len(row) + 2 > self.max_bytes:
                    self.oversized_events[index] = events[index - first_index]
        self.rows.extend(part.rows)
        self.indexes.extend(part.indexes)
        if self.route.auxiliary:
            self.times.extend(part.times)
        return base

    def too_large(self, positions: Iterable[int]) -> None:
        for position in positions:
            index = self.indexes[position]
            event = self.events[index - self.start_index] if self.events is not None else self.oversized_events[index]
            self.outcome.rejected.append(Rejection(
                index,
                f"RecordTooLarge: row is {len(self.rows[position])} bytes, over the request limit of "
                f"{self.max_bytes} bytes",
                event,
            ))

    def full_requests(self, pending: list[int], base: int,
                      more_to_come: bool = True) -> tuple[list[tuple[int, ...]], list[int]]:
        """Cut the rows from ``pending`` on (the request still filling, then the rows taken from
        ``base``) into requests: the full ones, and the rows of the last, which may still grow
        while more rows are to come. Greedy in-order cuts of a prefix stay where they are as rows
        are added, so the requests are those of one pass over every row."""
        self.sizes.extend(map(len, self.rows[base:]))
        positions = pending + list(range(base, len(self.rows)))
        groups, oversized = split_in_order([self.sizes[p] for p in positions], self.max_bytes)
        self.too_large(positions[p] for p in oversized)
        last = list(map(positions.__getitem__, groups.pop())) if groups and more_to_come else []
        return [tuple(map(positions.__getitem__, group)) for group in groups], last

    def hold(self, positions: tuple[int, ...]) -> None:
        """Build one request's body and let its rows go; gzip bodies GZIP_TOGETHER at a time."""
        self.to_gzip.append((positions, array_of(self.rows, positions)))
        for position in positions:
            self.rows[position] = None  # type: ignore[call-overload]
        if len(self.to_gzip) >= GZIP_TOGETHER:
            self._gzip_held()

    def _gzip_held(self) -> None:
        # all at once on the pool, waited for here: gzip then runs on the idle cores while this
        # thread waits, instead of contending for the GIL with the normalization one by one
        # (measured: gzip on the pool while normalizing, one body at a time, was the slowest)
        if len(self.to_gzip) == 1:  # a small body: no thread hop
            positions, body = self.to_gzip.pop()
            self.held[positions] = gzip_body(body)
            return
        gzipping = [(positions, self.processor._pool.submit(gzip_body, body)) for positions, body in self.to_gzip]
        self.to_gzip.clear()
        for positions, future in gzipping:
            self.held[positions] = future.result()

    def send_held(self) -> None:
        """Send every held request, in order (one request on this thread, as ``send_all`` does)."""
        self._gzip_held()
        if len(self.held) == 1:
            (positions, gzipped), = self.held.items()
            self.sent.append((positions, self._upload(gzipped)))
            return
        for positions, gzipped in self.held.items():
            self.sent.append((positions, self.processor._pool.submit(self._upload, gzipped)))

    def rows_at(self, positions: tuple[int, ...]) -> list[bytes]:
        """The rows of one request, cut back out of its held body when they were let go."""
        gzipped = self.held.get(positions)
        if gzipped is None:
            return [self.rows[p] for p in positions]
        body = igzip.decompress(gzipped)
        rows, offset = [], 1  # past "["
        for position in positions:
            size = self.sizes[position]
            rows.append(body[offset:offset + size])
            offset += size + 1  # and its "," (or the closing "]")
        return rows

    def _upload(self, gzipped: bytes) -> UploadResult:
        route = self.route
        return self.processor._uploader.upload(route.endpoint, route.dcr, route.stream, gzipped, str(uuid.uuid4()))

    def _send(self, body: bytes) -> UploadResult:
        return self._upload(gzip_body(body))

    def _send_rows(self, positions: tuple[int, ...]) -> UploadResult:
        return self._send(array_of(self.rows, positions))  # built on the upload thread, dropped once sent

    def submit(self, positions: tuple[int, ...]) -> None:
        self.sent.append((positions, self.processor._pool.submit(self._send_rows, positions)))

    def send_all(self) -> None:
        """Cut every row taken into requests and send them (a lone one on this thread)."""
        sizes = list(map(len, self.rows))
        if self.route.auxiliary:
            groups, oversized = split_by_time(sizes, self.times, self.max_bytes, AUXILIARY_MAX_SPAN_SECONDS)
        else:
            groups, oversized = split_in_order(sizes, self.max_bytes)
        self.too_large(oversized)
        if len(groups) == 1:
            self.sent.append((groups[0], self._send_rows(groups[0])))
            return
        for group in groups:
            self.submit(group)

    def finish(self) -> Outcome:
        """Wait for every upload; park what failed; count it all."""
        outcome, route = self.outcome, self.route
        outcome.rejected.sort(key=lambda r: r.index)
        outcome.requests = len(self.sent)
        for positions, pending_result in self.sent:
            result = pending_result.result() if isinstance(pending_result, Future) else pending_result
            count = len(positions)
            if result.landed:
                outcome.landed += count
                continue
            failure = {
                "request_id": result.request_id, "rows": count, "class": result.failure,
                "status": result.status, "permanent": result.permanent, "message": result.message,
            }
            if self.processor._park(route, self.rows_at(positions), result, outcome.batch_id):
                if result.permanent:  # the poison store dead-letters what can never land
                    outcome.deadlettered += count
                else:
                    outcome.parked += count
                failure["parked"] = True
            else:
                outcome.failed += count
                failure["parked"] = False
            outcome.failures.append(failure)
        self.processor._log(outcome)
        return outcome
