"""The poison store: parked payloads in blobs, claim checks in a queue, a dead-letter container.

Layout (container names from settings):

* poison container ``parked/<id>.ndjson.gz`` — the rows of a parked request (gzip NDJSON),
  with the claim check as blob metadata; ``done/<id>.json`` — written once (ETag
  ``If-None-Match: *``) when a parked batch landed or was handed on, so a message
  delivered twice never uploads twice;
* poison queue — one small base64 JSON message per replay attempt (never the rows);
* dead-letter container ``<id>.ndjson.gz`` + ``<id>.reason.json`` — rows that can
  never land as they are, with the exact reason and what to fix; ``invalid-messages/``
  keeps queue messages that were not claim checks at all.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from ..config import Route
from ..records import Row
from ..sink import UploadResult
from .model import (
    ParkedBatch,
    decode_payload,
    encode_payload,
    iso,
    new_id,
    schema_fingerprint,
    utcnow,
)
from .storage import StorageConnection

log = logging.getLogger("relay.poison")

PARKED_PREFIX = "parked/"
DONE_PREFIX = "done/"
INVALID_PREFIX = "invalid-messages/"
PAYLOAD_SUFFIX = ".ndjson.gz"
REASON_SUFFIX = ".reason.json"
LEASE_SECONDS = 60
MESSAGE_TTL = -1  # claim checks never expire: a stopped app must not lose its replays

HINTS = {
    "forbidden": "grant the relay's identity the 'Monitoring Metrics Publisher' role on the DCR "
                 "(it can take up to 30 minutes to apply; a redrive replays 403s for RELAY_FORBIDDEN_GRACE_MINUTES "
                 "again), then redrive",
    "not_found": "the DCR immutable id or the stream of the route is wrong: fix the route, then redrive",
    "bad_request": "the service refused the rows: check the route's stream schema against the DCR, then redrive",
    "too_large": "a row or request is over the service's 1 MB limit: lower RELAY_MAX_REQUEST_BYTES or shrink "
                 "the rows (map fewer fields), then redrive",
    "rejected": "the service refused the request permanently: read the message, fix, then redrive",
    "validation": "the route changed since the rows were parked and they no longer fit its stream: fix the "
                  "route (or accept the loss and purge), then redrive",
    "max_replays": "replays kept failing: check the service health and the relay's logs, then redrive",
}


class LeaseBusy(RuntimeError):
    """Another replay holds the parked batch right now."""


@dataclass(frozen=True)
class Backoff:
    """Delay before replay ``attempt``: ``base * factor**(attempt-1)``, jittered, capped, at least Retry-After."""

    base: float = 60.0
    cap: float = 3600.0
    factor: float = 2.0
    jitter: float = 0.2

    def delay(self, attempt: int, retry_after: float | None = None) -> int:
        wait = self.base * self.factor ** max(attempt - 1, 0)
        wait *= 1.0 - random.uniform(0.0, self.jitter)
        if retry_after:
            wait = max(wait, retry_after)
        return int(min(self.cap, max(0.0, math.ceil(wait))))


@dataclass
class DeadLetter:
    """A dead-lettered payload and why it is there."""

    id: str
    batch: ParkedBatch
    reason: dict[str, Any] = field(default_factory=dict)
    size: int = 0


def reason_record(batch: ParkedBatch, *, rows: int, nbytes: int, failure: str, status: int | None,
                  message: str, source: str, reason: str) -> dict[str, Any]:
    """The JSON an operator reads to decide what to fix."""
    return {
        "id": batch.id,
        "route": batch.route,
        "endpoint": batch.endpoint,
        "dcr": batch.dcr,
        "stream": batch.stream,
        "rows": rows,
        "bytes": nbytes,
        "class": failure,
        "status": status,
        "message": message,
        "reason": reason,
        "source": source,
        "attempts": batch.attempt,
        "first_failure": batch.first_failure,
        "deadlettered_at": iso(utcnow()),
        "batch_id": batch.batch_id,
        "request_id": batch.request_id,
        "parked_id": batch.redriven_from or batch.id,
        "hint": HINTS.get(source if source in HINTS else failure, HINTS["rejected"]),
    }


class PoisonStore:
    """Parks failed requests (the ``Parker`` of the dispatcher), dead-letters, and lists both.

    Thread-safe; one per worker process. Containers and the queue are created on first use.
    """

    def __init__(
        self,
        connection: StorageConnection,
        queue_name: str = "relay-poison",
        container: str = "relay-poison",
        deadletter_container: str = "relay-deadletter",
        *,
        backoff: Backoff | None = None,
        telemetry: Any = None,
    ):
        self.connection = connection
        self.queue_name = queue_name
        self.container_name = container
        self.deadletter_name = deadletter_container
        self.backoff = backoff or Backoff()
        self.telemetry = telemetry
        self._blobs = connection.blob_service()
        self.queue = connection.queue_client(queue_name)
        self.poison = self._blobs.get_container_client(container)
        self.deadletters = self._blobs.get_container_client(deadletter_container)
        self._ensured = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ setup

    def ensure(self) -> None:
        """Create the containers and the queue if missing, once per process (raises if storage is down)."""
        if self._ensured:
            return
        with self._lock:
            if self._ensured:
                return
            for create in (self.poison.create_container, self.deadletters.create_container, self.queue.create_queue):
                try:
                    create()
                except ResourceExistsError:
                    pass
                except HttpResponseError as error:
                    if error.status_code != 403:
                        raise
                    # a data-plane role may not allow creating; the infrastructure creates them then
                    log.warning("not allowed to create the poison store's containers/queue (%s); assuming they "
                                "exist", getattr(error, "error_code", None) or error.status_code)
            self._ensured = True

    def close(self) -> None:
        self.queue.close()
        self._blobs.close()

    # ------------------------------------------------------------------ parking (hot path)

    def park(self, route: Route, parked: Sequence[Row], result: UploadResult, batch_id: str) -> None:
        """Keep rows that could not be uploaded: transient failures (a 403 too, while its grace
        window lasts) are queued for replay, permanent ones (400/404/413) go straight to
        dead-letter with the reason. Raises if storage cannot take them (the caller then
        answers so that the sender retries)."""
        self.ensure()
        rows = [row.body for row in parked]
        refs = f"{parked[0].ref} .. {parked[-1].ref}" if parked else ""
        now = utcnow()
        batch_id_safe = batch_id[:200]
        identifier = new_id(route.name, now)
        nbytes = sum(len(r) for r in rows)
        batch = ParkedBatch(
            id=identifier, route=route.name, endpoint=route.endpoint, dcr=route.dcr, stream=route.stream,
            rows=len(rows), bytes=nbytes, failure=result.failure or "unknown", status=result.status,
            message=(result.message or "")[:1000], attempt=1, first_failure=iso(now), last_failure=iso(now),
            batch_id=batch_id_safe, request_id=result.request_id, blob=PARKED_PREFIX + identifier + PAYLOAD_SUFFIX,
            schema=schema_fingerprint(route), permanent=result.permanent, grace_from=iso(now),
        )
        if result.permanent:
            record = reason_record(
                batch, rows=len(rows), nbytes=nbytes, failure=batch.failure, status=result.status,
                message=batch.message, source="upload",
                reason=f"the service refused the request permanently ({batch.failure}, HTTP {result.status}); "
                       f"records {refs} of batch {batch_id_safe}",
            )
            self.write_deadletter(batch, rows, record)
            return
        self.park_rows(batch, rows, self.backoff.delay(1, result.retry_after))
        if self.telemetry is not None:
            self.telemetry.parked(route.name, len(rows), nbytes, batch.failure)
        log.warning(
            "parked id=%s route=%s rows=%d (%s) class=%s status=%s batch_id=%s: %s",
            batch.id, route.name, len(rows), refs, batch.failure, batch.status, batch_id_safe, batch.message,
        )

    def park_rows(self, batch: ParkedBatch, rows: Sequence[bytes], delay: int) -> ParkedBatch:
        """Write the payload blob, then its claim check; if the queue refuses, take the blob back."""
        blob = self.poison.get_blob_client(batch.blob)
        blob.upload_blob(
            encode_payload(rows), overwrite=False, metadata=batch.to_metadata(),
            content_settings=_ndjson_settings(),
        )
        try:
            self.enqueue(batch, delay)
        except Exception:
            with contextlib.suppress(Exception):
                blob.delete_blob()
            raise
        return batch

    def enqueue(self, batch: ParkedBatch, delay: int) -> None:
        self.queue.send_message(batch.to_message(), visibility_timeout=max(int(delay), 0), time_to_live=MESSAGE_TTL)

    # ------------------------------------------------------------------ parked batches

    def parked_name(self, identifier: str) -> str:
        return PARKED_PREFIX + identifier + PAYLOAD_SUFFIX

    def get_parked(self, identifier: str) -> ParkedBatch | None:
        name = self.parked_name(identifier)
        try:
            properties = self.poison.get_blob_client(name).get_blob_properties()
        except ResourceNotFoundError:
            return None
        return ParkedBatch.from_metadata(properties.metadata or {}, name)

    def read_rows(self, batch: ParkedBatch, container: Any = None) -> list[bytes]:
        container = container if container is not None else self.poison
        return decode_payload(container.get_blob_client(batch.blob).download_blob().readall())

    @contextlib.contextmanager
    def leased(self, batch: ParkedBatch) -> Iterator[Any]:
        """Hold the parked blob's lease while replaying; raises LeaseBusy or ResourceNotFoundError."""
        blob = self.poison.get_blob_client(batch.blob)
        try:
            lease = blob.acquire_lease(lease_duration=LEASE_SECONDS)
        except ResourceExistsError:
            raise LeaseBusy(batch.id) from None
        except HttpResponseError as error:
            if error.status_code == 409:
                raise LeaseBusy(batch.id) from None
            raise
        stop = threading.Event()

        def keep() -> None:  # an upload with its retries can outlast the 60 s lease: renew it meanwhile
            while not stop.wait(LEASE_SECONDS / 3):
                try:
                    lease.renew()
                except Exception:  # the blob was deleted or moved: nothing left to hold
                    return

        keeper = threading.Thread(target=keep, name=f"lease-{batch.id}", daemon=True)
        keeper.start()
        try:
            yield lease
        finally:
            stop.set()
            keeper.join()
            with contextlib.suppress(ResourceNotFoundError, HttpResponseError):
                lease.release()

    def update_parked(self, batch: ParkedBatch, lease: Any) -> None:
        self.poison.get_blob_client(batch.blob).set_blob_metadata(batch.to_metadata(), lease=lease)

    def delete_parked(self, batch: ParkedBatch, lease: Any = None) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self.poison.get_blob_client(batch.blob).delete_blob(lease=lease)

    def list_parked(self, route: str | None = None) -> list[ParkedBatch]:
        batches = []
        for item in self.poison.list_blobs(name_starts_with=PARKED_PREFIX, include=["metadata"]):
            if not item.name.endswith(PAYLOAD_SUFFIX):
                continue
            try:
                batch = ParkedBatch.from_metadata(item.metadata or {}, item.name)
            except ValueError:
                log.warning("parked blob %s has unreadable metadata", item.name)
                continue
            if route is None or batch.route == route:
                batches.append(batch)
        return sorted(batches, key=lambda b: b.id)

    # ------------------------------------------------------------------ idempotency markers

    def is_done(self, identifier: str) -> bool:
        try:
            self.poison.get_blob_client(DONE_PREFIX + identifier + ".json").get_blob_properties()
            return True
        except ResourceNotFoundError:
            return False

    def mark_done(self, identifier: str, info: dict[str, Any]) -> bool:
        """Record that a parked batch is finished; False if another replay already did (ETag check)."""
        try:
            self.poison.get_blob_client(DONE_PREFIX + identifier + ".json").upload_blob(
                orjson.dumps({**info, "id": identifier, "at": iso(utcnow())}), overwrite=False,
            )
            return True
        except ResourceExistsError:
            return False

    # ------------------------------------------------------------------ dead-letter

    def write_deadletter(self, batch: ParkedBatch, rows: Sequence[bytes], record: dict[str, Any]) -> str:
        """Store rows and their reason under ``batch.id`` in the dead-letter container."""
        self.ensure()
        identifier = batch.id
        payload = self.deadletters.get_blob_client(identifier + PAYLOAD_SUFFIX)
        stored = replace(batch, blob=identifier + PAYLOAD_SUFFIX, rows=len(rows), bytes=sum(len(r) for r in rows))
        payload.upload_blob(
            encode_payload(rows), overwrite=True, content_settings=_ndjson_settings(),
            metadata=stored.to_metadata(reason=str(record.get("reason", "")), source=str(record.get("source", ""))),
        )
        self.deadletters.get_blob_client(identifier + REASON_SUFFIX).upload_blob(
            orjson.dumps(record, option=orjson.OPT_INDENT_2), overwrite=True,
            content_settings=_json_settings(),
        )
        if self.telemetry is not None:
            self.telemetry.deadlettered(batch.route, len(rows), stored.bytes, str(record.get("class")),
                                        str(record.get("source")))
        log.error(
            "dead-lettered id=%s route=%s rows=%d class=%s source=%s: %s | %s",
            identifier, batch.route, len(rows), record.get("class"), record.get("source"), record.get("reason"),
            record.get("message"),
        )
        return identifier

    def get_deadletter(self, identifier: str) -> DeadLetter | None:
        payload = self.deadletters.get_blob_client(identifier + PAYLOAD_SUFFIX)
        try:
            properties = payload.get_blob_properties()
        except ResourceNotFoundError:
            return None
        batch = ParkedBatch.from_metadata(properties.metadata or {}, identifier + PAYLOAD_SUFFIX)
        try:
            reason = orjson.loads(
                self.deadletters.get_blob_client(identifier + REASON_SUFFIX).download_blob().readall()
            )
        except ResourceNotFoundError:
            reason = {"reason": (properties.metadata or {}).get("reason", "")}
        return DeadLetter(identifier, batch, reason, properties.size)

    def list_deadletter(self, route: str | None = None) -> list[DeadLetter]:
        entries = []
        for item in self.deadletters.list_blobs(include=["metadata"]):
            if "/" in item.name or not item.name.endswith(PAYLOAD_SUFFIX):
                continue
            identifier = item.name[: -len(PAYLOAD_SUFFIX)]
            try:
                batch = ParkedBatch.from_metadata(item.metadata or {}, item.name)
            except ValueError:
                log.warning("dead-letter blob %s has unreadable metadata", item.name)
                continue
            if route is not None and batch.route != route:
                continue
            metadata = item.metadata or {}
            reason = {"reason": metadata.get("reason", ""), "source": metadata.get("source", ""),
                      "class": batch.failure}
            entries.append(DeadLetter(identifier, batch, reason, item.size))
        return sorted(entries, key=lambda e: e.id)

    def delete_deadletter(self, identifier: str) -> bool:
        found = False
        for suffix in (PAYLOAD_SUFFIX, REASON_SUFFIX):
            with contextlib.suppress(ResourceNotFoundError):
                self.deadletters.get_blob_client(identifier + suffix).delete_blob()
                found = True
        return found

    def redrive(self, identifier: str) -> ParkedBatch | None:
        """Dead-letter -> poison queue (after a fix): a fresh parked batch, replayable at once."""
        entry = self.get_deadletter(identifier)
        if entry is None:
            return None
        rows = self.read_rows(entry.batch, self.deadletters)
        now = utcnow()
        fresh_id = new_id(entry.batch.route, now)
        batch = replace(
            entry.batch, id=fresh_id, blob=self.parked_name(fresh_id), attempt=1, rows=len(rows),
            bytes=sum(len(r) for r in rows), last_failure=iso(now), redriven_from=identifier, permanent=False,
            grace_from=iso(now),  # a redrive after granting the role gets a fresh 403 window for propagation
            # an empty fingerprint makes the replay re-check every row against the route as it is now
            schema="",
        )
        self.ensure()
        self.park_rows(batch, rows, 0)
        self.delete_deadletter(identifier)
        log.warning("redriven id=%s -> %s route=%s rows=%d", identifier, fresh_id, batch.route, len(rows))
        return batch

    def quarantine_message(self, body: bytes, reason: str) -> str:
        """Keep a queue message that is not a claim check where an operator can see it."""
        self.ensure()
        name = f"{INVALID_PREFIX}{new_id('message')}.txt"
        self.deadletters.get_blob_client(name).upload_blob(
            body[:64 * 1024], overwrite=True, metadata={"reason": reason[:1000].encode("ascii", "replace").decode()},
        )
        log.error("invalid poison queue message kept as %s/%s: %s", self.deadletter_name, name, reason)
        return name

    # ------------------------------------------------------------------ queue

    def queue_length(self) -> int:
        try:
            return int(self.queue.get_queue_properties().approximate_message_count or 0)
        except ResourceNotFoundError:
            return 0

    def peek(self, limit: int = 32) -> list[ParkedBatch | str]:
        """Visible claim checks (messages waiting out a back-off are invisible to everyone)."""
        try:
            messages = self.queue.peek_messages(max_messages=min(max(limit, 1), 32))
        except ResourceNotFoundError:
            return []
        found: list[ParkedBatch | str] = []
        for message in messages:
            try:
                found.append(ParkedBatch.from_message(message.content))
            except ValueError as error:
                found.append(f"unreadable message {message.id}: {error}")
        return found

    def clear_queue(self) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self.queue.clear_messages()


def _ndjson_settings() -> Any:
    from azure.storage.blob import ContentSettings

    # No Content-Encoding: HTTP clients would un-gzip on download, and ranged downloads of large blobs would
    # then be cut mid-stream. The payload is plain gzip of NDJSON, as the .ndjson.gz name says.
    return ContentSettings(content_type="application/gzip")


def _json_settings() -> Any:
    from azure.storage.blob import ContentSettings

    return ContentSettings(content_type="application/json")
