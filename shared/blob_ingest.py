"""The blob trigger's work, independent of the Functions host: a BlobClient in, a BlobResult out.

A blob is read in ranged GETs (pinned to the ETag seen at the start), inflated and
decoded as it streams (``sources/blob.py``), and handed to the engine in small
chunks of about one Logs Ingestion request each, several in flight at once. Peak
memory therefore depends on the chunk size and concurrency, not on the blob size.

Progress is kept in a checkpoint blob ``relay-checkpoints/<container>/<name>.json``
in the same storage account, keyed by the blob's ETag: which units (lines, array
elements, records, CSV records) are safely handled — every row of the unit landed,
rejected with a reason, or parked in the poison store. A unit whose records span
chunks (an envelope line or element ``{"records": [...]}`` larger than a chunk) is
safe only once every chunk that held part of it is (:class:`SafeUnits`). A run that
fails (upload neither landed nor parked), runs out of its time budget, or crashes is
retried by the host and resumes after the last safe unit, skipping only safe units
(a unit rejected before is not rejected, nor counted, again): no row that did not
land is skipped. Rows that landed are sent again only when they belong to a chunk
that was cut in two by the failure, or to an envelope unit a run left with some of
its chunks not safe (sent again whole); the log names them (a cut chunk is in the
result's ``partial`` too), and they carry the same EventId, so they can be
de-duplicated. A new ETag (the blob was overwritten) starts over; a blob already
done for its ETag (Event Grid delivers at least once) is skipped.

When the blob's run has one route and that route decodes events from their bytes (the typed
path, ``Engine.takes_encoded``), an NDJSON file's lines are not decoded here: they go to the
engine still encoded, in the chunks it would have cut from their records
(:class:`EncodedFileRecords`), with the same refs, so rejections, chunk reports and the
checkpoint are those of the dict path. JSON arrays, ``records`` documents and CSV are decoded.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import threading
import time
import uuid
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import accumulate, repeat
from typing import Any

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobClient, ContainerClient

from .config import Route
from .engine import Chunking, ChunkReport
from .records import Encoded, Record, Rejection, Result
from .records import Unit as UnitRef
from .routing import Router
from .runtime import Relay
from .sources.blob import SKIPPED, Expanded, Lines, Unit, open_file
from .sources.errors import DecodeError

log = logging.getLogger("relay.blob")

CHECKPOINT_CONTAINER = "relay-checkpoints"
RANGE_BYTES = 4 << 20  # one ranged GET
PREFETCH_RANGES = 2  # ranges read ahead while the previous ones are decoded
CHUNK_EVENTS = 5000  # most events normalized at a time
#: Chunks (about one request each) in flight at once, at most: each holds its decoded events until its
#: request is answered, so this bounds memory (~150 MB peak measured at 4; see bench/big_blob.py).
MAX_IN_FLIGHT = 8
CHECKPOINT_EVERY_SECONDS = 5.0
#: Stop taking new chunks after this long, save progress and ask for a retry (host.json
#: functionTimeout is 10 minutes; the retry resumes from the checkpoint).
TIME_BUDGET_SECONDS = 480.0
LOGGED_REJECTIONS = 10
CLOCK_EVERY_UNITS = 256

SAFE_STATUSES = frozenset({"done", "skipped", "unrouted", "busy", "gone", "changed", "unreadable"})


class BlobNotSafe(RuntimeError):
    """Raised by the trigger so the host retries the blob (it resumes from the checkpoint)."""


# --- checkpoints -------------------------------------------------------------------------


@dataclass
class Checkpoint:
    """Progress of one blob version: units ``[0, handled)`` and the ``done`` ranges are safe."""

    blob: str
    etag: str
    status: str = "in_progress"  # in_progress | done | unrouted | unreadable
    route: str | None = None
    format: str | None = None
    handled: int = 0
    done: list[list[int]] = field(default_factory=list)
    partial: list[dict[str, Any]] = field(default_factory=list)
    landed: int = 0
    rejected: int = 0
    parked: int = 0
    deadlettered: int = 0
    runs: int = 0
    run_id: str = ""
    reason: str = ""
    updated: str = ""

    def pending(self, index: int) -> bool:
        """Must unit ``index`` still be handled?"""
        if index < self.handled:
            return False
        return not self.done or all(not start <= index < end for start, end in self.done)

    def mark(self, start: int, end: int) -> None:
        """Units ``[start, end)`` are safe; keep ``handled`` the longest safe prefix."""
        if start > self.handled:
            self.done.append([start, end])
            self.done.sort()
            return
        self.handled = max(self.handled, end)
        while self.done and self.done[0][0] <= self.handled:
            self.handled = max(self.handled, self.done.pop(0)[1])

    def to_json(self) -> bytes:
        self.updated = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, data: bytes) -> Checkpoint:
        raw = orjson.loads(data)
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class SafeUnits:
    """Marks on a run's checkpoint the units its chunk reports make safe, in chunk order (reports come out of
    order when several chunks are in flight). A unit is safe once every chunk that held part of it is: an
    envelope unit's records may run on from one chunk into the next, so a chunk that ends with one of them
    leaves that unit open until the next chunk shows whether it goes on, or the input ends. The units between
    two chunks held no records (skipped on resume, an empty envelope): the later chunk marks them. Work per
    chunk, none per record: a chunk is judged by its first and last refs."""

    def __init__(self, checkpoint: Checkpoint):
        self.checkpoint = checkpoint
        self.waiting: dict[int, tuple[UnitRef, UnitRef, bool]] = {}  # reports that came before an earlier one
        self.next = 1  # the number of the next chunk to take
        self.resolved = 0  # units before it are marked, or were in a chunk that was not safe
        self.open: UnitRef | None = None  # the last ref of the chunk that left the unit at ``resolved`` open
        self.open_safe = True  # every chunk that held part of the open unit was safe

    def report(self, number: int, first: UnitRef, last: UnitRef, safe: bool) -> None:
        """Chunk ``number`` (1, 2, ...) of the run, from its first ref to its last, is ``safe`` or not."""
        self.waiting[number] = (first, last, safe)
        while self.next in self.waiting:
            self._take(*self.waiting.pop(self.next))
            self.next += 1

    def _take(self, first: UnitRef, last: UnitRef, safe: bool) -> None:
        checkpoint, start = self.checkpoint, self.resolved
        if self.open is not None and first.position != start:  # the open unit ended with the chunk before
            if self.open_safe:
                checkpoint.mark(start, start + 1)
            start, self.open = start + 1, None
        head_safe = safe and (self.open is None or self.open_safe)  # the first unit: with what came before it
        end = last.position if last.record is not None else last.position + 1  # the last unit may go on
        if start < end:
            if head_safe:
                checkpoint.mark(start, end)
            elif safe and start + 1 < end:  # all but the unit that came on from a chunk that was not safe
                checkpoint.mark(start + 1, end)
        if last.record is None:
            self.open, self.open_safe = None, True
        else:  # its records so far: this chunk's, and those before it when it is the unit that came on
            self.open, self.open_safe = last, head_safe if start == end else safe
        self.resolved = end

    def close(self) -> None:
        """The input ended, or the run stopped taking it (which it does only between units): the open unit is
        whole, and safe if its chunks were."""
        if self.open is not None and self.open_safe and not self.waiting:
            self.checkpoint.mark(self.resolved, self.resolved + 1)
            self.open = None

    def left_open(self) -> str | None:
        """The unit the checkpoint leaves pending though some of its records went out in safe chunks."""
        return None if self.open is None else f"{self.open.kind} {self.open.number}"


class CheckpointConflict(RuntimeError):
    """Another invocation wrote this blob's checkpoint since this one read it."""


class CheckpointStore:
    """Checkpoint blobs in ``relay-checkpoints``, written with ETag conditions so two runs
    of the same blob (a duplicate Event Grid delivery) cannot both proceed."""

    def __init__(self, container: ContainerClient):
        self._container = container
        self._etags: dict[str, str | None] = {}
        self._created = False

    @classmethod
    def beside(cls, client: BlobClient) -> CheckpointStore:
        """The checkpoint container of the storage account ``client`` reads from, same credential."""
        account_url = f"{client.scheme}://{client.primary_hostname}"
        return cls(ContainerClient(account_url, CHECKPOINT_CONTAINER, credential=client.credential))

    @staticmethod
    def name_for(blob: str) -> str:
        name = f"{blob}.json"
        if len(name) > 1000:  # blob names are at most 1024 characters
            name = f"{blob[:900]}~{hashlib.sha256(blob.encode()).hexdigest()[:32]}.json"
        return name

    def load(self, blob: str) -> Checkpoint | None:
        name = self.name_for(blob)
        try:
            downloader = self._container.download_blob(name)
            data = downloader.readall()
        except ResourceNotFoundError:
            self._etags[name] = None
            return None
        self._etags[name] = downloader.properties.etag
        try:
            return Checkpoint.from_json(data)
        except (orjson.JSONDecodeError, TypeError) as error:
            log.warning("checkpoint %s/%s is unreadable (%s); starting the blob over", CHECKPOINT_CONTAINER, name,
                        error)
            return None

    def save(self, checkpoint: Checkpoint) -> None:
        """Write if nobody else wrote since our last read/write; raises CheckpointConflict otherwise."""
        name = self.name_for(checkpoint.blob)
        etag = self._etags.get(name)
        condition = (
            {"etag": etag, "match_condition": MatchConditions.IfNotModified} if etag
            else {"match_condition": MatchConditions.IfMissing}
        )
        for attempt in (1, 2):
            try:
                properties = self._container.get_blob_client(name).upload_blob(
                    checkpoint.to_json(), overwrite=True, **condition
                )
                self._etags[name] = properties["etag"]
                return
            except (ResourceModifiedError, ResourceExistsError):
                raise CheckpointConflict(f"checkpoint of {checkpoint.blob} was written by another run") from None
            except HttpResponseError as error:
                if error.status_code == 412:
                    raise CheckpointConflict(f"checkpoint of {checkpoint.blob} was written by another run") from None
                if error.status_code == 404 and attempt == 1 and not self._created:
                    self._create_container()
                    continue
                raise

    def _create_container(self) -> None:
        self._created = True
        with contextlib.suppress(ResourceExistsError):
            self._container.create_container()


# --- reading ------------------------------------------------------------------------------


class BlobReader:
    """Ranged GETs of one blob version (``If-Match`` its ETag), a few read ahead on a thread."""

    def __init__(self, client: BlobClient, size: int, etag: str, range_bytes: int = RANGE_BYTES,
                 prefetch: int = PREFETCH_RANGES):
        self._client = client
        self._size = size
        self._etag = etag
        self._range = range_bytes
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=prefetch)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.bytes_read = 0

    def _get(self, offset: int) -> bytes:
        length = min(self._range, self._size - offset)
        downloader = self._client.download_blob(
            offset=offset, length=length, etag=self._etag, match_condition=MatchConditions.IfNotModified,
            max_concurrency=1,
        )
        return downloader.readall()

    def _run(self) -> None:
        offset = 0
        try:
            while offset < self._size and not self._stop.is_set():
                data = self._get(offset)
                if not data:
                    raise OSError(f"empty read at byte {offset} of {self._size}")
                offset += len(data)
                self._put(("data", data))
            self._put(("end", None))
        except BaseException as error:  # handed to the reading thread, which raises it
            self._put(("error", error))

    def _put(self, item: tuple[str, Any]) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[bytes]:
        if self._size <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="relay-blob-read", daemon=True)
        self._thread.start()
        while True:
            kind, value = self._queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            self.bytes_read += len(value)
            yield value

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


# --- results ------------------------------------------------------------------------------


@dataclass(kw_only=True)
class BlobResult(Result):
    """What became of one blob in one run."""

    blob: str
    status: str
    format: str | None = None
    compressed: bool = False
    size: int = 0
    etag: str = ""
    resumed_from: int = 0
    units: int = 0
    skipped_units: int = 0
    events: int = 0
    chunks: int = 0
    seconds: float = 0.0
    message: str = ""
    partial: list[dict[str, Any]] = field(default_factory=list)

    @property
    def safe(self) -> bool:
        """Everything read is landed, rejected with a reason or parked (or there was nothing to do)."""
        return self.status in SAFE_STATUSES and self.failed == 0

    def raise_if_unsafe(self) -> BlobResult:
        if not self.safe:
            raise BlobNotSafe(f"blob {self.blob}: {self.message or self.status} (the retry resumes from the checkpoint)")
        return self


def blob_context(properties: Any, container: str) -> dict[str, Any]:
    """``_blob.*`` in route maps: name, path, container, size, etag, last_modified, metadata, content_type."""
    modified = properties.last_modified
    settings = getattr(properties, "content_settings", None)
    return {"_blob": {
        "name": properties.name,
        "path": f"{container}/{properties.name}",
        "container": container,
        "size": properties.size,
        "etag": (properties.etag or "").strip('"'),
        "last_modified": modified.astimezone(UTC).isoformat().replace("+00:00", "Z") if modified else None,
        "metadata": dict(properties.metadata or {}),
        "content_type": getattr(settings, "content_type", None),
    }}


@dataclass
class FileTally:
    """Units and events read from a file so far."""

    units: int = 0
    skipped_units: int = 0  # handled by an earlier run (resume)
    events: int = 0


def file_records(units: Iterator[Unit], kind: str, context: Any = None, tally: FileTally | Any = None,
                 stop: Callable[[], bool] | None = None,
                 pending: Callable[[int], bool] | None = None) -> Iterator[Record | Rejection]:
    """Records of a file's units (an envelope unit gives one per record), rejections of its bad units,
    until ``stop()`` says so. A file that stops decoding (corrupt gzip) ends with a rejection naming it,
    unless an earlier run made that rejection safe (``pending``: the checkpoint's, on resume)."""
    tally = tally if tally is not None else FileTally()
    position = 0
    try:
        for where, payload, error, size in units:
            if stop is not None and stop():
                return
            ref = UnitRef(kind, where, None, position)
            position += 1
            if payload is SKIPPED:
                tally.skipped_units += 1
                continue
            tally.units += 1
            if error is not None:
                yield Rejection(ref, error)
            elif type(payload) is Expanded:
                tally.events += len(payload)
                for number, event in enumerate(payload):
                    yield Record(UnitRef(kind, where, number, ref.position), event, context, size if number == 0 else 0)
            else:
                tally.events += 1
                yield Record(ref, payload, context, size)
    except DecodeError as error:  # what came before is handled, the rest cannot be read
        if pending is None or pending(position):
            yield Rejection(UnitRef("file", position + 1, None, position), f"file: {error}")


class EncodedFileRecords:
    """:func:`file_records` of a file opened ``encoded`` (:func:`~shared.sources.blob.ndjson_blocks`), for a
    run whose route decodes events itself: the same records and rejections with the same refs, tallies and
    ``stop`` checks, handed on as :class:`~shared.records.Encoded` chunks cut where the engine would cut
    that list of records (``chunking``, read anew for each chunk: at most ``rows`` items or about ``size``
    bytes of ``Record.size``). Lines that each hold one JSON object orjson reads stay bytes (``checked``: the
    typed path need not look at them for what orjson refuses); what the source decoded (an envelope's records,
    a line that may be one, a bad line's rejection) sits in its place (``mixed``).
    ``stop(n)``: must the run stop before it takes the next ``n`` units? ``pending``: as for ``file_records``."""

    def __init__(self, blocks: Iterator[Lines | Unit], kind: str, chunking: Chunking, context: Any = None,
                 tally: FileTally | Any = None, stop: Callable[[int], bool] | None = None,
                 pending: Callable[[int], bool] | None = None):
        self.blocks, self.kind, self.chunking, self.context = blocks, kind, chunking, context
        self.tally = tally if tally is not None else FileTally()
        self.stop, self.pending = stop, pending
        self.position = 0
        self._start()

    def _start(self) -> None:
        self.raws: list[Any] = []
        self.refs: list[UnitRef] = []
        self.size = 0
        self.mixed = False
        self.rows, self.limit = self.chunking.rows, self.chunking.size

    def _full(self) -> bool:
        return len(self.raws) >= self.rows or self.size >= self.limit

    def _cut(self) -> Encoded:
        chunk = Encoded(self.raws, self.context, 0, self.refs.__getitem__, self.mixed, checked=True)
        self._start()
        return chunk

    def __iter__(self) -> Iterator[Encoded]:
        try:
            for block in self.blocks:
                stopped = yield from (self._lines(block) if type(block) is Lines else self._unit(block))
                if stopped:
                    break
        except DecodeError as error:  # what came before is handled, the rest cannot be read
            position = self.position
            if self.pending is None or self.pending(position):  # (an earlier run's is safe: not again)
                yield from self._add(Rejection(UnitRef("file", position + 1, None, position), f"file: {error}"), 0)
        if self.raws:
            yield self._cut()

    def _lines(self, block: Lines) -> Iterator[Encoded]:
        """A block of lines still encoded, taken a chunk's room at a time; True when the run stops."""
        numbers, lines = block
        ends = list(accumulate(map(len, lines)))  # the block's bytes up to each line
        start, count = 0, len(lines)
        while start < count:
            if self.stop is not None and self.stop(count - start):
                return True
            before = ends[start - 1] if start else 0
            # up to the first line that fills the chunk's bytes, within its room for rows
            end = min(count, start + self.rows - len(self.raws),
                      bisect_left(ends, self.limit - self.size + before, start) + 1)
            self.raws += lines[start:end]
            self.refs += map(UnitRef, repeat(self.kind), numbers[start:end], repeat(None),
                             range(self.position, self.position + end - start))
            self.size += ends[end - 1] - before
            self.position += end - start
            self.tally.units += end - start
            self.tally.events += end - start
            start = end
            if self._full():
                yield self._cut()
        return False

    def _unit(self, unit: Unit) -> Iterator[Encoded]:
        """A unit the source decoded, taken as :func:`file_records` takes it; True when the run stops."""
        where, payload, error, size = unit
        if self.stop is not None and self.stop(1):
            return True
        ref = UnitRef(self.kind, where, None, self.position)
        self.position += 1
        if payload is SKIPPED:
            self.tally.skipped_units += 1
            return False
        self.tally.units += 1
        if error is not None:
            yield from self._add(Rejection(ref, error), 0)
        elif type(payload) is Expanded:
            self.tally.events += len(payload)
            for number, event in enumerate(payload):
                record = Record(UnitRef(self.kind, where, number, ref.position), event, self.context,
                                size if number == 0 else 0)
                yield from self._add(record, record.size)
        else:
            self.tally.events += 1
            yield from self._add(Record(ref, payload, self.context, size), size)
        return False

    def _add(self, item: Record | Rejection, size: int) -> Iterator[Encoded]:
        self.mixed = True
        self.raws.append(item)
        self.refs.append(item.ref)
        self.size += size
        if self._full():
            yield self._cut()


# --- the run ------------------------------------------------------------------------------


@dataclass
class BlobOptions:
    """Knobs of a run (tests and the bench change them; the trigger uses the defaults)."""

    chunk_events: int = CHUNK_EVENTS
    chunk_bytes: int | None = None  # default: half the request limit (about one request per chunk)
    in_flight: int | None = None  # default: the relay's upload concurrency, at most MAX_IN_FLIGHT
    time_budget_seconds: float = TIME_BUDGET_SECONDS
    checkpoint_every_seconds: float = CHECKPOINT_EVERY_SECONDS
    range_bytes: int = RANGE_BYTES
    checkpoints: CheckpointStore | None = None
    #: Called as each chunk completes: (chunk number, its report). Tests use it to inject faults
    #: or to stop a run the way a crash would.
    on_chunk: Callable[[int, ChunkReport], None] | None = None


class _Run:
    """One run over one blob version: its records go through the engine a chunk at a time, and
    each chunk that is safe moves the checkpoint."""

    def __init__(self, relay: Relay, router: Router, client: BlobClient, properties: Any, checkpoint: Checkpoint,
                 store: CheckpointStore, options: BlobOptions, result: BlobResult):
        self.relay, self.router, self.client, self.properties = relay, router, client, properties
        self.route: Route = router.candidates[0].route  # its format: how the file is read
        self.checkpoint, self.store, self.options, self.result = checkpoint, store, options, result
        self.context = blob_context(properties, client.container_name)
        self.in_flight = options.in_flight or min(relay.settings.upload_concurrency, MAX_IN_FLIGHT)
        self.chunking = Chunking(options.chunk_events, options.chunk_bytes or relay.settings.max_request_bytes // 2)
        self.max_chunk_bytes = self.chunking.size
        self.adaptive = options.chunk_bytes is None
        self.units_to_check = 0
        self.last_save = time.monotonic()
        self.stop_reason = ""
        self.safe_units = SafeUnits(checkpoint)

    def execute(self) -> BlobResult:
        started = time.monotonic()
        self.deadline = started + self.options.time_budget_seconds
        result = self.result
        reader = BlobReader(self.client, self.properties.size, self.properties.etag, self.options.range_bytes)
        try:
            # an NDJSON file's lines stay encoded for a route that decodes them itself (Engine.takes_encoded)
            encoded = self.relay.engine.takes_encoded(self.router) is not None
            resuming = bool(self.checkpoint.handled or self.checkpoint.done)
            try:
                opened = open_file(
                    reader, self.properties.name, self.route.format,
                    getattr(self.properties.content_settings, "content_type", "") or "",
                    should_parse=self.checkpoint.pending if resuming or not encoded else None, encoded=encoded,
                )
            except DecodeError as error:
                return self._unreadable(str(error))
            result.format, result.compressed = opened.format, opened.compressed
            self.checkpoint.format = opened.format
            records: Iterable[Any] = (
                EncodedFileRecords(opened.units, opened.where, self.chunking, self.context, result, self._stopping,
                                   self.checkpoint.pending)
                if opened.encoded else file_records(opened.units, opened.where, self.context, result, self._stopping,
                                                    self.checkpoint.pending))
            self.relay.engine.run(self.router, records, batch_id=self.checkpoint.run_id, chunking=self.chunking,
                                  on_chunk=self._chunk_done, in_flight=self.in_flight, result=result)
            self.safe_units.close()
            self._warn_if_open()
        except ResourceModifiedError:  # the engine counted and reported what it had sent
            self.stop_reason = "changed"
        except BaseException:
            self._warn_if_open()
            self._save(final=True, quiet=True)
            raise
        finally:
            reader.close()
            result.seconds = round(time.monotonic() - started, 3)
        return self._finish()

    def _stopping(self, units: int = 1) -> bool:
        """Must the run stop before it takes the next ``units`` units (a failed chunk, a lost checkpoint, the
        time budget)? The clock is read every ``CLOCK_EVERY_UNITS`` units or so: a time budget needs no finer
        grain (units still encoded are asked about a block at a time)."""
        if self.stop_reason:
            return True
        self.units_to_check -= units
        if self.units_to_check <= 0:
            self.units_to_check = CLOCK_EVERY_UNITS
            if time.monotonic() > self.deadline:
                self.stop_reason = "paused"
        return bool(self.stop_reason)

    def _adapt(self, chunk: ChunkReport) -> None:
        """Aim at one request per chunk (rows outgrow their input lines): a failure then cuts none
        of them in two, and no chunk ends in a small request."""
        if not self.adaptive:
            return
        if chunk.requests > 1:
            self.chunking.size = max(16_384, int(self.chunking.size * 0.7))
        elif chunk.requests == 1 and self.chunking.size < self.max_chunk_bytes:
            self.chunking.size = min(self.max_chunk_bytes, int(self.chunking.size * 1.05))

    def _chunk_done(self, chunk: ChunkReport) -> None:
        result, checkpoint = self.result, self.checkpoint
        result.chunks += 1
        self._adapt(chunk)
        start, end = chunk.first.position, chunk.last.position + 1
        self.safe_units.report(chunk.number, chunk.first, chunk.last, chunk.safe)
        if chunk.safe:
            checkpoint.landed += chunk.landed
            checkpoint.parked += chunk.parked
            checkpoint.deadlettered += chunk.deadlettered
            checkpoint.rejected += chunk.rejected
        else:
            for failure in chunk.failures:
                failure["units"] = [start, end]
            if chunk.landed or chunk.parked or chunk.deadlettered:
                partial = {"units": [start, end], "landed": chunk.landed, "parked": chunk.parked,
                           "deadlettered": chunk.deadlettered, "failed": chunk.failed}
                checkpoint.partial.append(partial)
                result.partial.append(partial)
                log.warning(
                    "blob %s: units %d-%d were cut by the failure: %d row(s) landed and will be sent again on "
                    "resume (same EventId: de-duplicate on it)", result.blob, start, end - 1, chunk.landed,
                )
            self.stop_reason = self.stop_reason or "failed"
        if self.options.on_chunk is not None:
            self.options.on_chunk(chunk.number, chunk)
        if time.monotonic() - self.last_save >= self.options.checkpoint_every_seconds:
            self._save()

    def _warn_if_open(self) -> None:
        """Name a unit whose rows a retry may send twice: it had records in safe chunks and others not (yet)."""
        unit = self.safe_units.left_open()
        if unit is not None:
            log.warning("blob %s: %s held records of more than one chunk and not all of them were made safe; a "
                        "retry sends it again whole (its rows that landed carry the same EventId)",
                        self.result.blob, unit)

    def _save(self, final: bool = False, quiet: bool = False) -> None:
        self.last_save = time.monotonic()
        try:
            self.store.save(self.checkpoint)
        except CheckpointConflict:
            log.error("blob %s: another run took over its checkpoint; this run stops", self.result.blob)
            self.stop_reason = self.stop_reason or "busy"
        except Exception:
            if not (final or quiet):
                log.exception("blob %s: progress could not be saved; a retry would repeat work", self.result.blob)
            else:
                log.exception("blob %s: final progress could not be saved", self.result.blob)

    def _unreadable(self, reason: str) -> BlobResult:
        self.result.status, self.result.message = "unreadable", reason
        self.result.rejected += 1
        self.result.rejections.append({"reason": f"file: {reason}"})
        self.checkpoint.status, self.checkpoint.reason = "unreadable", reason
        self._save(final=True)
        log.error("blob %s cannot be read as %s: %s", self.result.blob, self.route.format, reason)
        return self.result

    def _finish(self) -> BlobResult:
        result, checkpoint = self.result, self.checkpoint
        reason = self.stop_reason
        if reason == "changed":
            result.status = "changed"
            result.message = "the blob was overwritten while it was read; its new version is ingested by its own event"
            log.warning("blob %s: %s", result.blob, result.message)
            return result
        if reason == "failed":
            result.status = "failed"
            result.message = (f"{result.failed} row(s) could be neither uploaded nor parked; "
                              f"units before {checkpoint.handled} are safe")
        elif reason == "paused":
            result.status = "paused"
            result.message = (f"time budget of {self.options.time_budget_seconds:.0f}s used after "
                              f"{checkpoint.handled} units; the retry continues from there")
        elif reason == "busy":
            result.status = "busy"
            result.message = "another run of the same blob version is in progress"
            return result
        else:
            result.status = "done"
            checkpoint.status = "done"
        self._save(final=True)
        for rejection in result.rejections[:LOGGED_REJECTIONS]:
            log.warning("blob %s rejected %s", result.blob, rejection["reason"])
        level = logging.INFO if result.safe else logging.ERROR
        log.log(level, "blob %s status=%s route=%s format=%s gzip=%s units=%d events=%d landed=%d rejected=%d "
                "parked=%d deadlettered=%d failed=%d requests=%d resumed_from=%d seconds=%.1f", result.blob,
                result.status, result.route, result.format, result.compressed, result.units, result.events,
                result.landed, result.rejected, result.parked, result.deadlettered, result.failed, result.requests,
                result.resumed_from, result.seconds)
        return result


def handle_blob(client: BlobClient, relay_factory: Callable[[], Relay], options: BlobOptions | None = None
                ) -> BlobResult:
    """Ingest one blob (or the rest of it). Raises only for configuration errors and storage
    failures; check ``result.safe`` (or call ``raise_if_unsafe``) to decide on a retry."""
    options = options or BlobOptions()
    relay = relay_factory()
    container, name = client.container_name, client.blob_name
    path = f"{container}/{name}"
    try:
        properties = client.get_blob_properties()
    except ResourceNotFoundError:
        log.warning("blob %s no longer exists; nothing to ingest", path)
        return BlobResult("", "", blob=path, status="gone", message="the blob was deleted before it was read")
    etag = properties.etag
    result = BlobResult("", "", blob=path, status="done", size=properties.size, etag=(etag or "").strip('"'))
    store = options.checkpoints or CheckpointStore.beside(client)
    router = relay.config.router("blob", path)
    if router is None:
        globs = ", ".join(r.match for r in relay.config.routes_for("blob")) or "none"
        result.status = "unrouted"
        result.message = f"no blob route matches {path!r} (blob route globs: {globs}); the blob is left in place"
        log.error("blob %s: %s", path, result.message)
        marker = Checkpoint(path, etag, status="unrouted", reason=result.message)
        try:
            store.load(path)
            store.save(marker)
        except Exception:
            log.exception("blob %s: could not record that it has no route", path)
        return result
    route = router.candidates[0].route
    routes = ",".join(candidate.route.name for candidate in router.candidates)  # a change starts over
    result.route = route.name
    checkpoint = store.load(path)
    if checkpoint is not None and checkpoint.etag == etag and checkpoint.status == "done":
        result.status = "skipped"
        result.message = "already ingested (same ETag): a repeated event"
        result.resumed_from = checkpoint.handled
        log.info("blob %s: %s", path, result.message)
        return result
    if checkpoint is None or checkpoint.etag != etag or checkpoint.route != routes:
        if checkpoint is not None:
            log.info("blob %s changed (or its route did) since its checkpoint; starting over", path)
        checkpoint = Checkpoint(path, etag, route=routes)
    elif checkpoint.handled or checkpoint.done:
        log.warning("blob %s: resuming after unit %d (%d landed, %d rejected, %d parked, %d dead-lettered in "
                    "earlier runs)", path, checkpoint.handled, checkpoint.landed, checkpoint.rejected,
                    checkpoint.parked, checkpoint.deadlettered)
        for partial in checkpoint.partial:
            log.warning("blob %s: units %s are sent again; %d of their rows had landed before (same EventId)",
                        path, partial["units"], partial["landed"])
    checkpoint.status = "in_progress"
    checkpoint.runs += 1
    checkpoint.run_id = uuid.uuid4().hex[:12]
    result.batch_id = checkpoint.run_id
    result.resumed_from = checkpoint.handled
    try:
        store.save(checkpoint)  # claim this version: a concurrent duplicate run stops here
    except CheckpointConflict:
        result.status = "busy"
        result.message = "another run of the same blob version is in progress"
        log.warning("blob %s: %s", path, result.message)
        return result
    return _Run(relay, router, client, properties, checkpoint, store, options, result).execute()

