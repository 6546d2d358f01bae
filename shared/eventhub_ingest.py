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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .pipeline import TriggerResult
from .runtime import Relay
from .sources.errors import DecodeError, TooLargeError
from .sources.eventhub import (
    EventLike,
    batch_metadata,
    decode_event_body,
    describe,
    event_context,
    match_hub_route,
    sequence_range,
)

log = logging.getLogger("relay.eventhub")

CHUNK_BYTES = 4 << 20  # body bytes per processor call (bounded memory for large batches)
CHUNK_ROWS = 20_000
MAX_REPORTED = 100
LOGGED_REJECTIONS = 10


class EventHubNotSafe(RuntimeError):
    """Raised by the trigger so the retry policy re-runs the batch before the checkpoint moves."""


@dataclass
class EventHubResult(TriggerResult):
    """What became of one Event Hub batch."""

    event_hub: str | None
    partition_id: str | None = None
    route: str | None = None
    batch_id: str = ""
    first_sequence: int | None = None
    last_sequence: int | None = None
    events: int = 0  # Event Hub events in the batch
    rows: int = 0  # events decoded from their bodies (a records envelope gives several)

    @property
    def safe(self) -> bool:
        """Everything landed, was rejected with a reason, or was parked for replay."""
        return self.route is not None and self.failed == 0

    def raise_if_unsafe(self) -> EventHubResult:
        if not self.safe:
            raise EventHubNotSafe(f"event hub {self.event_hub} partition {self.partition_id} sequence "
                                  f"{self.first_sequence}-{self.last_sequence}: {self.message}")
        return self


class _Batch:
    """Rows of one processor call and where each came from."""

    def __init__(self) -> None:
        self.rows: list[Any] = []
        self.contexts: list[dict[str, Any]] = []
        self.origins: list[tuple[int, int | None]] = []  # (event position, record index)
        self.size = 0


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
    result = EventHubResult(hub, batch.partition_id, events=len(events), first_sequence=first, last_sequence=last)
    result.batch_id = f"eh-{hub}-p{batch.partition_id}-{first}-{last}"
    route = match_hub_route(relay.config.routes_for("eventhub"), hub or "")
    if route is None:
        globs = ", ".join(r.match for r in relay.config.routes_for("eventhub")) or "none"
        result.message = f"no eventhub route matches event hub {hub!r} (eventhub route matches: {globs})"
        log.error("%s; %d event(s) of partition %s sequence %s-%s are retried", result.message, len(events),
                  batch.partition_id, first, last)
        return result
    result.route = route.name
    limit = relay.settings.max_body_bytes
    pending = _Batch()
    calls = 0

    def reject(position: int, record: int | None, reason: str) -> None:
        result.rejected += 1
        event = events[position]
        where = describe(event, batch) + (f" record {record}" if record is not None else "")
        if len(result.rejections) < MAX_REPORTED:
            result.rejections.append({
                "partition_id": batch.partition_id, "sequence_number": event.sequence_number,
                "offset": None if event.offset is None else str(event.offset), "record": record,
                "reason": f"{where}: {reason}",
            })
        if result.rejected <= LOGGED_REJECTIONS:
            log.warning("event hub %s %s rejected: %s", hub, where, reason)

    def flush() -> None:
        nonlocal pending, calls
        if not pending.rows:
            return
        calls += 1
        outcome = relay.processor.process(route, pending.rows, batch_id=f"{result.batch_id}#{calls}",
                                          context=pending.contexts)
        result.rows += len(pending.rows)
        result.add(outcome)
        for rejection in outcome.rejected:
            position, record = pending.origins[rejection.index]
            reject(position, record, rejection.reason)
        for failure in outcome.failures:
            if len(result.failures) < MAX_REPORTED:
                result.failures.append(failure)
        pending = _Batch()

    for position, event in enumerate(events):
        body = event.get_body()
        try:
            decoded = decode_event_body(body, limit)
        except (DecodeError, TooLargeError) as error:
            reject(position, None, str(error))
            continue
        for problem in decoded.problems:
            reject(position, None, problem)
        context = event_context(event, position, batch, hub)
        several = len(decoded.events) > 1
        for record, row in enumerate(decoded.events):
            pending.rows.append(row)
            pending.contexts.append(context)
            pending.origins.append((position, record if several else None))
        pending.size += len(body or b"")
        if pending.size >= CHUNK_BYTES or len(pending.rows) >= CHUNK_ROWS:
            flush()
    flush()
    result.seconds = round(time.monotonic() - started, 3)
    if result.failed:
        result.message = (f"{result.failed} row(s) could be neither uploaded nor parked; the batch is retried "
                          f"(rows that landed are sent again with the same EventId)")
    level = logging.INFO if result.safe else logging.ERROR
    log.log(level, "event hub %s partition %s sequence %s-%s route=%s events=%d rows=%d landed=%d rejected=%d "
            "parked=%d deadlettered=%d failed=%d requests=%d seconds=%.2f", hub, batch.partition_id, first, last,
            route.name, result.events, result.rows, result.landed, result.rejected, result.parked,
            result.deadlettered, result.failed, result.requests, result.seconds)
    return result
