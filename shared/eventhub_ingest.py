"""The Event Hub trigger's work, independent of the Functions host: a batch in, an EventHubResult out.

The Functions host checkpoints an Event Hub partition whether or not the function
succeeded, so an exception would lose the batch. The core therefore never raises for
bad data or upload failures: bad events are rejected with their partition and
sequence number, rows that could not be uploaded are parked in the poison store, and
the good rows land. It reports ``safe == False`` only when rows could be neither
uploaded nor parked (or no route takes the hub); the trigger then raises so the
``@app.retry`` policy re-runs the whole batch before the checkpoint moves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from .engine import Chunking
from .records import Record, Rejection, Result
from .runtime import Relay
from .sources.errors import DecodeError, TooLargeError
from .sources.eventhub import (
    BatchMetadata,
    EventLike,
    EventRef,
    batch_metadata,
    decode_event_body,
    event_context,
    sequence_range,
)

log = logging.getLogger("relay.eventhub")

#: Records normalized at a time, about 64 KB of bodies: each chunk's records are decoded into dicts just before they
#: are normalized, so they are still in the CPU's caches (Azure diagnostic records, same process, chunks taken in
#: turns: 1.17-1.22x the records a second of 4 MB chunks, whose dicts of a whole 2.6 MB batch were cold by then;
#: 512 KB: 1.08x less than 64 KB). The packer fills requests across chunks: as many requests either way.
CHUNKING = Chunking(rows=20_000, size=64 << 10)
LOGGED_REJECTIONS = 10


class EventHubNotSafe(RuntimeError):
    """Raised by the trigger so the retry policy re-runs the batch before the checkpoint moves."""


@dataclass(kw_only=True)
class EventHubResult(Result):
    """What became of one Event Hub batch."""

    event_hub: str | None
    partition_id: str | None = None
    first_sequence: int | None = None
    last_sequence: int | None = None
    events: int = 0  # Event Hub events in the batch
    rows: int = 0  # events decoded from their bodies (a records envelope gives several)
    seconds: float = 0.0
    message: str = ""

    @property
    def safe(self) -> bool:
        """A route took the batch, and everything landed, was rejected with a reason or was parked."""
        return bool(self.route) and self.failed == 0

    def raise_if_unsafe(self) -> EventHubResult:
        if not self.safe:
            raise EventHubNotSafe(f"event hub {self.event_hub} partition {self.partition_id} sequence "
                                  f"{self.first_sequence}-{self.last_sequence}: {self.message}")
        return self


def records(events: Sequence[EventLike], batch: BatchMetadata, hub: str | None, limit: int,
            counted: EventHubResult) -> Iterator[Record | Rejection]:
    """The records of a batch: each body decoded (an envelope, array or NDJSON gives several), each
    with its partition, sequence number and record; a body or line that cannot be read is a rejection.

    Bodies are decoded here, into dicts, whatever the route: Azure diagnostic records (the shape Event
    Hubs mostly carry: ~1.3 KB, most of it passed on in ``extra``) normalize faster from orjson's one
    pass than on the typed path, which reads their bytes several times (same run: 0.6-0.8x)."""
    for position, event in enumerate(events):
        offset = None if event.offset is None else str(event.offset)
        ref = EventRef(batch.partition_id, event.sequence_number, offset)
        body = event.get_body()
        context = event_context(event, position, batch, hub)
        try:
            decoded = decode_event_body(body, limit)
        except (DecodeError, TooLargeError) as error:
            yield Rejection(ref, str(error))
            continue
        for problem in decoded.problems:
            yield Rejection(ref, problem)
        size = len(body or b"")
        counted.rows += len(decoded.events)
        if len(decoded.events) == 1:
            yield Record(ref, decoded.events[0], context, size)
            continue
        for number, value in enumerate(decoded.events):
            yield Record(EventRef(ref.partition_id, ref.sequence_number, offset, number), value, context,
                         size if number == 0 else 0)


def handle_eventhub(events: Sequence[EventLike], relay_factory: Callable[[], Relay],
                    event_hub: str | None = None) -> EventHubResult:
    """Land one batch. Raises only for a broken configuration (the retry policy re-runs it)."""
    started = time.monotonic()
    relay = relay_factory()
    events = list(events)
    try:
        metadata = getattr(events[0], "metadata", None) if events else None  # same mapping for every event
        batch = batch_metadata(metadata)
    except Exception:  # metadata only enriches rows: never lose a batch over it
        log.warning("event hub trigger metadata could not be read; _eventhub.partition_id etc. stay empty",
                    exc_info=True)
        batch = batch_metadata(None)
    hub = batch.event_hub or event_hub or relay.settings.eventhub_name or None
    first, last = sequence_range(events)
    batch_id = f"eh-{hub}-p{batch.partition_id}-{first}-{last}"
    router = relay.config.router("eventhub", hub or "")
    route = router.candidates[0].route if router is not None else None
    result = EventHubResult(route.name if route else "", batch_id, event_hub=hub, partition_id=batch.partition_id,
                            events=len(events), first_sequence=first, last_sequence=last)
    if route is None:
        globs = ", ".join(r.match for r in relay.config.routes_for("eventhub")) or "none"
        result.message = f"no eventhub route matches event hub {hub!r} (eventhub route matches: {globs})"
        log.error("%s; %d event(s) of partition %s sequence %s-%s are retried", result.message, len(events),
                  batch.partition_id, first, last)
        return result
    relay.engine.run(router, records(events, batch, hub, relay.settings.max_body_bytes, result),
                     batch_id=batch_id, chunking=CHUNKING, result=result)
    result.seconds = round(time.monotonic() - started, 3)
    for rejection in result.rejections[:LOGGED_REJECTIONS]:
        log.warning("event hub %s rejected: %s", hub, rejection["reason"])
    if result.failed:
        result.message = (f"{result.failed} row(s) could be neither uploaded nor parked; the batch is retried "
                          f"(rows that landed are sent again with the same EventId)")
    level = logging.INFO if result.safe else logging.ERROR
    log.log(level, "event hub %s partition %s sequence %s-%s route=%s events=%d rows=%d landed=%d rejected=%d "
            "parked=%d deadlettered=%d failed=%d requests=%d seconds=%.2f", hub, batch.partition_id, first, last,
            route.name, result.events, result.rows, result.landed, result.rejected, result.parked,
            result.deadlettered, result.failed, result.requests, result.seconds)
    return result
