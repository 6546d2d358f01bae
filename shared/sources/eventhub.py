"""Event Hub events: bodies in every common JSON shape, and the metadata of each event.

A body may be one JSON object, a JSON array, NDJSON, or the envelope Azure
diagnostic settings (resource logs, Activity Log) write, ``{"records": [...]}``, which
becomes one event per record; gzip bodies are inflated within a size bound; a leading
byte order mark is skipped. A bad NDJSON line, or an element holding what JSON cannot
carry (NaN, 1e400, a lone surrogate), spoils only itself; a body that is a bare scalar
holds no event objects. Metadata (``_eventhub.*`` in route maps) comes from
the event objects and the trigger metadata the host sends with a batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

import msgspec
import orjson

from .compression import GZIP_MAGIC, gunzip_bounded
from .errors import DecodeError, TooLargeError
from .jsontext import LENIENT_FAILED, Unreadable, lenient_loads, problem, read_line, require_event_objects, skip_bom
from .registry import Source, exact, globs, register


class EventLike(Protocol):
    """The parts of ``azure.functions.EventHubEvent`` the relay reads."""

    enqueued_time: datetime | None
    partition_key: str | None
    sequence_number: int | None
    offset: Any

    def get_body(self) -> bytes: ...


class EventRef(msgspec.Struct, gc=False):
    """An Event Hub event (partition + sequence number, its offset) and the record within its body
    when the body held several (an envelope, an array, NDJSON). Made for every record of a batch, so a
    Struct (built in C) as ``records.Item`` is."""

    partition_id: str | None
    sequence_number: int | None
    offset: str | None = None
    record: int | None = None
    named: ClassVar[bool] = True

    def __str__(self) -> str:
        where = f"partition {self.partition_id if self.partition_id is not None else '?'} " \
                f"sequence {self.sequence_number if self.sequence_number is not None else '?'}"
        return where if self.record is None else f"{where} record {self.record}"

    def fields(self) -> dict[str, Any]:
        return {"partition_id": self.partition_id, "sequence_number": self.sequence_number, "offset": self.offset,
                "record": self.record}


@dataclass
class DecodedEvent:
    """The events one Event Hub event carried, and what could not be read."""

    events: list[Any] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    kind: str = "json"  # json | array | ndjson | records


def _records(value: Any) -> list[Any] | None:
    if type(value) is dict and len(value) == 1 and type(value.get("records")) is list:
        return value["records"]
    return None


def decode_event_body(body: bytes | str | None, limit: int) -> DecodedEvent:
    """Decode one event body. Raises DecodeError / TooLargeError when nothing in it is usable."""
    if body is None:
        raise DecodeError("empty body")
    if isinstance(body, str):
        body = body.encode("utf-8")
    if len(body) > limit:
        raise TooLargeError(f"body of {len(body)} bytes is over the limit of {limit} bytes")
    if body.startswith(GZIP_MAGIC):
        body = gunzip_bounded(body, limit)
    stripped = skip_bom(body.strip()).strip()
    if not stripped:
        raise DecodeError("empty body")
    try:
        value = orjson.loads(stripped)
    except orjson.JSONDecodeError as error:
        value = lenient_loads(stripped) if stripped[:1] in (b"{", b"[") else LENIENT_FAILED
        if value is not LENIENT_FAILED:  # JSON orjson refuses (NaN, 1e400, a lone surrogate): per event
            return _checked(value)
        if b"\n" not in stripped or stripped[:1] not in (b"{", b"["):
            raise DecodeError(f"not valid JSON at byte {error.pos}: {error.msg}") from None
        return _ndjson(stripped)
    records = _records(value)
    if records is not None:
        return DecodedEvent(records, kind="records")
    if type(value) is list:
        events: list[Any] = []
        for element in value:
            inner = _records(element)
            if inner is None:
                events.append(element)
            else:
                events.extend(inner)
        return DecodedEvent(events, kind="array")
    require_event_objects(value)
    return DecodedEvent([value], kind="json")


def _checked(value: Any) -> DecodedEvent:
    """A body the lenient reading gave: each event that cannot be sent is a problem naming its field."""
    records = _records(value)
    if records is None and type(value) is not list:
        require_event_objects(value)
        reason = problem(value)
        if reason is not None:
            raise DecodeError(reason)
        return DecodedEvent([value], kind="json")
    decoded = DecodedEvent(kind="records" if records is not None else "array")
    what = "record" if records is not None else "element"
    for number, element in enumerate(records if records is not None else value):
        inner = _records(element) if records is None else None
        for event in inner if inner is not None else [element]:
            reason = problem(event)
            if reason is None:
                decoded.events.append(event)
            else:
                decoded.problems.append(f"{what} {number}: {reason}")
    return decoded


def _ndjson(text: bytes) -> DecodedEvent:
    decoded = DecodedEvent(kind="ndjson")
    for number, line in enumerate(text.split(b"\n"), start=1):
        if not line.strip():
            continue
        value = read_line(line, number)
        if type(value) is Unreadable:
            decoded.problems.append(value.reason)
            continue
        records = _records(value)
        if records is None:
            decoded.events.append(value)
        else:
            decoded.events.extend(records)
    if not decoded.events and decoded.problems:
        raise DecodeError("; ".join(decoded.problems[:5]))
    return decoded


def _iso(moment: Any) -> str | None:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(moment) if moment is not None else None


def _json_value(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


@dataclass(frozen=True)
class BatchMetadata:
    """What the trigger metadata says about a whole batch (one partition)."""

    event_hub: str | None = None
    consumer_group: str | None = None
    partition_id: str | None = None
    namespace: str | None = None
    properties: tuple[Any, ...] = ()  # per event application properties (cardinality many)


def batch_metadata(metadata: Mapping[str, Any] | None) -> BatchMetadata:
    """Read ``PartitionContext`` and ``PropertiesArray`` (or ``Properties``) from trigger metadata
    (``events[0].metadata``: the same mapping for every event of a batch)."""
    if not metadata:
        return BatchMetadata()
    context = _json_value(metadata.get("PartitionContext"))
    context = context if isinstance(context, dict) else {}
    properties = _json_value(metadata.get("PropertiesArray"))
    if not isinstance(properties, list):
        single = _json_value(metadata.get("Properties"))
        properties = [single] if isinstance(single, dict) else []
    return BatchMetadata(
        event_hub=context.get("EventHubName") or context.get("EventHubPath"),
        consumer_group=context.get("ConsumerGroup"),
        partition_id=None if context.get("PartitionId") is None else str(context.get("PartitionId")),
        namespace=context.get("FullyQualifiedNamespace"),
        properties=tuple(p if isinstance(p, dict) else {} for p in properties),
    )


def event_context(event: EventLike, position: int, batch: BatchMetadata, event_hub: str | None) -> dict[str, Any]:
    """``_eventhub.*``: enqueued_time, partition_key, partition_id, offset, sequence_number,
    properties, event_hub, consumer_group."""
    offset = event.offset
    return {"_eventhub": {
        "event_hub": event_hub,
        "consumer_group": batch.consumer_group,
        "partition_id": batch.partition_id,
        "partition_key": event.partition_key,
        "sequence_number": event.sequence_number,
        "offset": None if offset is None else str(offset),
        "enqueued_time": _iso(event.enqueued_time),
        "properties": batch.properties[position] if position < len(batch.properties) else {},
    }}


def hub_candidates(routes: Sequence[Any], event_hub: str) -> list[Any]:
    """Routes naming the hub, then globs that match it, then ``*`` (each group in file order)."""
    named = exact(routes, event_hub)
    return named + [r for r in globs([r for r in routes if r.match != "*"], event_hub) if r not in named] + exact(
        routes, "*")


def match_hub_route(routes: Sequence[Any], event_hub: str) -> Any | None:
    """The first route a record of this hub is offered to."""
    return next(iter(hub_candidates(routes, event_hub)), None)


SOURCE = register(Source("eventhub", "the event hub name, a glob on it, or '*'", hub_candidates))


def sequence_range(events: Sequence[EventLike]) -> tuple[int | None, int | None]:
    numbers = [e.sequence_number for e in events if e.sequence_number is not None]
    return (min(numbers), max(numbers)) if numbers else (None, None)
