"""Replay parked batches: re-upload, back off, or dead-letter — never twice, never lost.

One replay of one parked batch:

1. a ``done/<id>`` marker means it already landed (or was handed on): nothing to do;
2. the parked blob's lease makes concurrent deliveries of the same claim check wait
   their turn; a claim check older than the blob's current attempt is stale and dropped;
3. the rows are re-checked against the route's current schema if the route changed,
   repacked under the size limit and uploaded to the route's current endpoint, DCR and
   stream (the parked ones if the route no longer exists);
4. what landed is marked done; transient failures get a NEW claim check with attempt+1
   and an exponential back-off (visibility timeout, honouring Retry-After, capped); after
   ``RELAY_MAX_REPLAYS`` attempts, or on a permanent failure, the rows are dead-lettered
   with the reason. A 403 (role missing) is replayed while the batch is within its grace
   window (``RELAY_FORBIDDEN_GRACE_MINUTES`` from its first failure, whatever the attempt
   count, since role assignments take up to 30 minutes to propagate), the last back-off
   cut to end at the window's close; a 403 after the window dead-letters with the role hint.

Only storage failures raise (so the Functions host retries the message and, after
``maxDequeueCount``, moves it to ``<queue>-poison``); the parked blob survives either way.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError

from ..config import RelayConfig, Route
from ..dispatch import Dispatcher
from ..packer import Packer
from ..records import Item, Row
from ..sink import UploadResult
from .model import InvalidMessage, ParkedBatch, iso, new_id, recheck_rows, schema_fingerprint, utcnow
from .store import LeaseBusy, PoisonStore, reason_record

log = logging.getLogger("relay.replay")


@dataclass
class ReplayResult:
    """What one replay did. ``status``: landed, partial, requeued, deadlettered, duplicate,
    stale, busy, missing or invalid."""

    id: str
    status: str
    route: str = ""
    landed: int = 0
    requeued: int = 0
    deadlettered: int = 0
    attempt: int = 0
    delay: int | None = None
    detail: str = ""
    new_ids: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "", [])}


@dataclass
class _Group:
    rows: list[bytes] = field(default_factory=list)
    result: UploadResult | None = None


@dataclass
class _Sorted:
    """The rows of one replay by what became of them."""

    count: int  # rows read from the parked blob
    grace_left: float  # seconds left in the batch's 403 grace window
    landed: list[bytes] = field(default_factory=list)
    transient: _Group = field(default_factory=_Group)  # to be replayed again
    deadletter: dict[tuple[str, str, int | None, str], list[bytes]] = field(default_factory=dict)
    in_grace: bool = False  # some were 403s within the grace window

    @property
    def grace_delay(self) -> float | None:
        """Cut the back-off to the window's close when 403s within it are requeued."""
        return self.grace_left if self.in_grace else None


class Replayer:
    """Replays claim checks; shared by the queue trigger and ``relay poison replay``."""

    def __init__(
        self,
        store: PoisonStore,
        dispatcher: Dispatcher,
        config: RelayConfig | Callable[[], RelayConfig],
        max_request_bytes: int = 1_000_000,
        max_replays: int = 5,
        telemetry: Any = None,
        forbidden_grace_seconds: float = 30 * 60,
        clock: Callable[[], dt.datetime] = utcnow,
    ):
        """``clock`` lets tests stand after the 403 grace window without waiting half an hour."""
        self.store = store
        self.forbidden_grace_seconds = forbidden_grace_seconds
        self.clock = clock
        self._dispatcher = dispatcher
        self._config = config
        self.max_request_bytes = max_request_bytes
        self.max_replays = max_replays
        self.telemetry = telemetry

    def _route(self, name: str) -> Route | None:
        config = self._config() if callable(self._config) else self._config
        return next((r for r in config.routes if r.name == name), None)

    # ------------------------------------------------------------------ entry points

    def handle_message(self, body: bytes | str) -> ReplayResult:
        """The queue trigger's work. Raises only when storage fails."""
        try:
            batch = ParkedBatch.from_message(body)
        except InvalidMessage as error:
            raw = body.encode() if isinstance(body, str) else bytes(body)
            kept = self.store.quarantine_message(raw, str(error))
            return ReplayResult("", "invalid", detail=f"{error}; kept as {kept}")
        return self.replay(batch)

    def replay(self, batch: ParkedBatch, *, force: bool = False) -> ReplayResult:
        """Replay one parked batch. ``force`` (operator replay) ignores the claim check's attempt."""
        self.store.ensure()
        if self.store.is_done(batch.id):
            self.store.delete_parked(batch)
            return self._log(ReplayResult(batch.id, "duplicate", batch.route, detail="already landed"))
        current = self.store.get_parked(batch.id)
        if current is None:
            return self._log(ReplayResult(batch.id, "missing", batch.route,
                                          detail="no parked payload (landed, dead-lettered or purged)"))
        if not force and batch.attempt < current.attempt:
            return self._log(ReplayResult(batch.id, "stale", batch.route, attempt=batch.attempt,
                                          detail=f"a newer claim check (attempt {current.attempt}) is queued"))
        try:
            with self.store.leased(current) as lease:
                if self.store.is_done(current.id):  # finished while we waited for the lease
                    return self._log(ReplayResult(batch.id, "duplicate", batch.route, detail="already landed"))
                try:
                    return self._log(self._replay_leased(current, lease))
                except AzureError:
                    raise
                except Exception as error:  # a bug must not spin the message through the host's retries
                    log.exception("replay of %s failed unexpectedly", current.id)
                    rows = self.store.read_rows(current)
                    record = reason_record(
                        current, rows=len(rows), nbytes=sum(map(len, rows)), failure="replay_error", status=None,
                        message=f"{type(error).__name__}: {error}", source="replay",
                        reason="the replay itself failed (a relay bug); the rows are kept here unchanged",
                    )
                    self.store.write_deadletter(current, rows, record)
                    self.store.delete_parked(current, lease)
                    return self._log(ReplayResult(current.id, "deadlettered", current.route,
                                                  deadlettered=len(rows), detail=record["message"]))
        except LeaseBusy:
            return self._log(ReplayResult(batch.id, "busy", batch.route, detail="another replay holds it"))
        except ResourceNotFoundError:
            return self._log(ReplayResult(batch.id, "missing", batch.route, detail="payload vanished"))

    # ------------------------------------------------------------------ the work

    def _replay_leased(self, batch: ParkedBatch, lease: Any) -> ReplayResult:
        started = time.perf_counter()
        result = self._settle_replay(batch, lease)
        if self.telemetry is not None:
            self.telemetry.replay_batch(batch.route, batch.id, batch.rows, result.landed, result.requeued,
                                        result.deadlettered, time.perf_counter() - started)
        return result

    def _settle_replay(self, batch: ParkedBatch, lease: Any) -> ReplayResult:
        """Upload the parked rows again, then settle each: landed, requeued or dead-lettered."""
        route = self._route(batch.route)
        target: Route | ParkedBatch = route if route is not None else batch  # its endpoint, DCR and stream
        sorted_rows = self._sort(batch, route, target, self.store.read_rows(batch))
        result = ReplayResult(batch.id, "landed", batch.route, attempt=batch.attempt, landed=len(sorted_rows.landed))
        if sorted_rows.landed and self.telemetry is not None:
            self.telemetry.replayed(batch.route, len(sorted_rows.landed), sum(map(len, sorted_rows.landed)),
                                    batch.age_seconds())
        transient, deadletter = sorted_rows.transient, sorted_rows.deadletter
        whole = not sorted_rows.landed and sorted_rows.count == sum(map(len, deadletter.values())) + len(transient.rows)
        if whole and not deadletter and transient.rows:
            return self._requeue_whole(batch, lease, sorted_rows, result)  # same blob, next attempt
        if whole and len(deadletter) == 1 and not transient.rows:
            return self._deadletter_whole(batch, lease, deadletter, result)  # moved under the same id
        return self._split(batch, lease, route, target, sorted_rows, result)

    def _sort(self, batch: ParkedBatch, route: Route | None, target: Route | ParkedBatch,
              rows: list[bytes]) -> _Sorted:
        """Re-check rows against a changed route, repack, upload, and sort every row by what became of it."""
        sorted_rows = _Sorted(count=len(rows), grace_left=self._grace_left(batch))
        deadletter = sorted_rows.deadletter
        if route is not None and (route.stream != batch.stream or schema_fingerprint(route) != batch.schema):
            rows_before = rows
            rows, bad = recheck_rows(rows, route)
            for position, why in bad:
                deadletter.setdefault(("validation", "validation", None, why), []).append(rows_before[position])
        requests, too_large = Packer.pack([Row(Item(p), row) for p, row in enumerate(rows)], self.max_request_bytes)
        for row in too_large:
            why = f"RecordTooLarge: row is {len(row.body)} bytes, over the request limit of " \
                  f"{self.max_request_bytes} bytes"
            deadletter.setdefault(("too_large", "too_large", None, why), []).append(row.body)
        grace = _Group()  # 403s within the batch's grace window: replayed whatever the attempt count
        for request in requests:
            request_rows = [row.body for row in request.rows()]
            outcome = self._dispatcher.upload(target, request)
            if outcome.landed:
                sorted_rows.landed.extend(request_rows)
            elif outcome.failure == "forbidden" and not outcome.permanent and sorted_rows.grace_left > 0:
                grace.rows.extend(request_rows)
                grace.result = outcome
            elif outcome.permanent or outcome.failure == "forbidden":
                key = ("upload", outcome.failure or "rejected", outcome.status, outcome.message)
                deadletter.setdefault(key, []).extend(request_rows)
            else:
                sorted_rows.transient.rows.extend(request_rows)
                sorted_rows.transient.result = outcome
        transient = sorted_rows.transient
        if transient.rows and batch.attempt >= self.max_replays:
            last = transient.result
            assert last is not None
            why = (f"gave up after {batch.attempt} replay(s); last failure {last.failure} "
                   f"(HTTP {last.status}): {last.message}")
            deadletter.setdefault(("max_replays", last.failure or "unknown", last.status, why), []).extend(
                transient.rows)
            sorted_rows.transient = _Group()
        if grace.rows:  # requeued with the rest; the back-off is cut so the last try falls at the window's close
            sorted_rows.transient = _Group(sorted_rows.transient.rows + grace.rows, grace.result)
            sorted_rows.in_grace = True
        return sorted_rows

    def _requeue_whole(self, batch: ParkedBatch, lease: Any, sorted_rows: _Sorted,
                       result: ReplayResult) -> ReplayResult:
        """Only transient failures, nothing changed: the same blob waits for the next attempt."""
        transient = sorted_rows.transient
        assert transient.result is not None
        nxt = batch.next_attempt(transient.result.failure or "unknown", transient.result.status,
                                 transient.result.message)
        delay = self._delay(nxt.attempt, transient.result.retry_after, sorted_rows.grace_delay)
        self.store.update_parked(nxt, lease)
        self.store.enqueue(nxt, delay)
        if self.telemetry is not None:
            self.telemetry.requeued(batch.route, len(transient.rows), nxt.attempt, nxt.failure,
                                    batch.age_seconds(self.clock()))
        result.status, result.requeued, result.delay, result.attempt = "requeued", len(transient.rows), delay, \
            nxt.attempt
        result.detail = f"{nxt.failure} (HTTP {nxt.status}); attempt {nxt.attempt} in {delay}s"
        return result

    def _deadletter_whole(self, batch: ParkedBatch, lease: Any, deadletter: dict[tuple[str, str, int | None, str],
                          list[bytes]], result: ReplayResult) -> ReplayResult:
        """Everything goes to dead-letter for one reason: move it under the same id."""
        ((source, failure, status, why), dl_rows), = deadletter.items()
        self.store.write_deadletter(batch, dl_rows, self._reason(batch, source, failure, status, why, dl_rows))
        self.store.delete_parked(batch, lease)
        result.status, result.deadlettered, result.detail = "deadlettered", len(dl_rows), why
        return result

    def _split(self, batch: ParkedBatch, lease: Any, route: Route | None, target: Route | ParkedBatch,
               sorted_rows: _Sorted, result: ReplayResult) -> ReplayResult:
        """New dead-letter entries per reason, a new parked batch for the transient rest, this one done."""
        for (source, failure, status, why), dl_rows in sorted_rows.deadletter.items():
            piece = replace(batch, id=new_id(batch.route), redriven_from=batch.id)
            self.store.write_deadletter(piece, dl_rows, self._reason(piece, source, failure, status, why, dl_rows))
            result.deadlettered += len(dl_rows)
            result.new_ids.append(piece.id)
            result.detail = why
        transient = sorted_rows.transient
        if transient.rows:
            assert transient.result is not None
            fresh = new_id(batch.route)
            nxt = replace(
                batch.next_attempt(transient.result.failure or "unknown", transient.result.status,
                                   transient.result.message),
                id=fresh, blob=self.store.parked_name(fresh), rows=len(transient.rows),
                bytes=sum(map(len, transient.rows)), schema=schema_fingerprint(route) if route else batch.schema,
                stream=target.stream, dcr=target.dcr, endpoint=target.endpoint,
            )
            delay = self._delay(nxt.attempt, transient.result.retry_after, sorted_rows.grace_delay)
            self.store.park_rows(nxt, transient.rows, delay)
            if self.telemetry is not None:
                self.telemetry.requeued(batch.route, len(transient.rows), nxt.attempt, nxt.failure,
                                        batch.age_seconds(self.clock()))
            result.requeued, result.delay = len(transient.rows), delay
            result.new_ids.append(fresh)
        self.store.mark_done(batch.id, {"landed": result.landed, "deadlettered": result.deadlettered,
                                        "requeued": result.requeued, "new_ids": result.new_ids})
        self.store.delete_parked(batch, lease)
        if (result.landed and (result.requeued or result.deadlettered)) or (result.requeued and result.deadlettered):
            result.status = "partial"
        elif result.requeued:
            result.status = "requeued"
        elif result.deadlettered:
            result.status = "deadlettered"
        return result

    def _grace_left(self, batch: ParkedBatch) -> float:
        """Seconds left in the batch's 403 grace window (0 once it has passed)."""
        elapsed = batch.grace_elapsed(self.clock())
        return 0.0 if elapsed is None else max(self.forbidden_grace_seconds - elapsed, 0.0)

    def _delay(self, attempt: int, retry_after: float | None, grace_left: float | None) -> int:
        """The back-off, cut to the end of the 403 grace window so the last replay does not overshoot it."""
        delay = self.store.backoff.delay(attempt, retry_after)
        if grace_left is not None:
            delay = min(delay, max(int(grace_left) + 1, 0))
        return delay

    @staticmethod
    def _reason(batch: ParkedBatch, source: str, failure: str, status: int | None, why: str,
                rows: list[bytes]) -> dict[str, Any]:
        if source == "upload" and failure == "forbidden":
            reason = (f"the service still answered 403 on replay {batch.attempt}, after the grace window for role "
                      "propagation (RELAY_FORBIDDEN_GRACE_MINUTES) had passed: the role is missing")
        elif source == "upload":
            reason = f"the service refused the rows permanently on replay {batch.attempt} ({failure}, HTTP {status})"
        elif source == "validation":
            reason = "a parked row no longer fits the route's current stream schema"
        elif source == "too_large":
            reason = "a parked row is over the request size limit"
        else:
            reason = f"replays kept failing ({failure}); gave up after {batch.attempt} attempt(s)"
        return reason_record(batch, rows=len(rows), nbytes=sum(map(len, rows)), failure=failure, status=status,
                             message=why, source=source, reason=reason)

    @staticmethod
    def _log(result: ReplayResult) -> ReplayResult:
        level = logging.WARNING if result.status in ("deadlettered", "partial", "invalid") else logging.INFO
        log.log(level, "replay id=%s route=%s status=%s landed=%d requeued=%d deadlettered=%d attempt=%d %s",
                result.id, result.route, result.status, result.landed, result.requeued, result.deadlettered,
                result.attempt, result.detail)
        return result


def handle_queue_message(body: bytes | str, relay_factory: Callable[[], Any]) -> ReplayResult:
    """What the queue trigger runs: replay one claim check with the process-wide relay."""
    relay = relay_factory()
    replayer = getattr(relay, "replayer", None)
    if replayer is None:
        raise RuntimeError("the poison queue trigger fired but RelayStorage is not configured for the relay")
    return replayer.handle_message(body)


def first_failure_lag(batch: ParkedBatch) -> str:
    age = batch.age_seconds()
    return "?" if age is None else f"{age:.0f}s"


__all__ = ["ReplayResult", "Replayer", "first_failure_lag", "handle_queue_message", "iso", "utcnow"]
