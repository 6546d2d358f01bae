"""HTTP webhook bodies: JSON, NDJSON, CloudEvents 1.0 and Event Grid, plus their handshakes.

A bad NDJSON line, an array element holding what JSON cannot carry (NaN, 1e400, a lone
surrogate) or a CloudEvent of a batch that lacks a required attribute is rejected on its
own, with its index (and line); the rest of the body lands. A body is refused whole (400)
only when nothing in it can be decoded.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, ClassVar, Protocol
from urllib.parse import unquote

import msgspec
import orjson

from ..records import Encoded, Item, LazyRaws, Record, Rejection, items, split_array
from .compression import gunzip_bounded
from .errors import DecodeError, TooLargeError
from .jsontext import (
    Marked,
    RawSlice,
    Unreadable,
    decode_json_events,
    good_events,
    json_events_or_slices,
    loads,
    ndjson_slices,
    skip_bom,
)
from .registry import Source, exact, register

EVENT_GRID_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines")
CLOUDEVENT_REQUIRED = ("specversion", "id", "source", "type")
#: NDJSON bodies are decoded this many lines at a time, each slice normalized before the next is
#: decoded: a 25 MB body's events as dicts take about six times the body (measured in bench/http_memory).
#: Each slice is a chunk of its own, whose events are still in the CPU's caches from one step to the next
SLICE_LINES = 250
#: JSON arrays longer than this are parsed this many bytes at a time, the same way (json_array_slices)
SLICE_BYTES = 1 << 20


@dataclass
class DecodedBody:
    """Events of one HTTP body, or the answer to a handshake it carried.

    An NDJSON body or a long JSON array is decoded lazily: ``slices`` yields its events a slice
    at a time and raises DecodeError where the body stops being valid; ``events`` stays empty.
    """

    events: list[Any] = field(default_factory=list)
    kind: str = "json"
    handshake: dict[str, Any] | None = None
    slices: Iterator[list[Any]] | None = None
    #: a plain JSON array or object: its events still encoded, one JSON value each (``events`` stays empty)
    raws: Sequence[Any] | None = None
    #: a JSON array the route's typed path decoded whole (``Predecoder``): its events (``raws`` splits on demand)
    decoded: list[Any] | None = None

    def all_events(self) -> list[Any]:
        """Every good event, decoding what is left of ``slices`` (then they are used up)."""
        if self.raws is not None:
            return [orjson.loads(memoryview(raw)) for raw in self.raws]
        if self.slices is None:
            return good_events(self.events)
        return [event for part in self.slices for event in good_events(_values(part))]

    def unreadable(self) -> list[Unreadable]:
        """What did not decode (of ``events``: slices tell it as they are read)."""
        return [event for event in self.events if type(event) is Unreadable]

    def records(self, context: Any = None) -> Iterator[Record | Rejection]:
        """Records of the good events, rejections of the unreadable ones, refs ``Item(index)`` in
        body order (a line that did not decode keeps its index and names its line too); events still
        encoded go to the engine as they are (the route decodes them)."""
        if self.raws is not None:
            return iter([Encoded(self.raws, context, decoded=self.decoded)])
        records = body_records([self.events] if self.slices is None else self.slices, context)
        return _some_object(records) if self.kind == "ndjson" else records


@dataclass(slots=True)
class BodyLine:
    """The ref of an NDJSON line that did not decode: its place among the body's events and its line."""

    index: int
    line: int
    named: ClassVar[bool] = False

    def __str__(self) -> str:
        return f"event {self.index} (line {self.line})"

    def fields(self) -> dict[str, Any]:
        return {"index": self.index, "line": self.line}


def _values(part: list[Any], most: int | None = None) -> list[Any]:
    """A decoded slice as it is, a :class:`RawSlice` decoded (its first ``most`` values)."""
    if type(part) is not RawSlice:
        return part[:most]
    return [orjson.loads(memoryview(raw)) for raw in part[:most]]


def body_records(slices: Iterable[list[Any]], context: Any = None) -> Iterator[list[Record | Rejection]]:
    """Records of decoded slices, a list per slice (the engine takes a list whole); a slice with
    Unreadable entries gives rejections in their places."""
    first = 0
    for events in slices:
        if type(events) is RawSlice:
            yield Encoded(events, context, first)  # type: ignore[misc]
        elif type(events) is list:
            yield list(items(events, context, first))
        else:
            yield [Rejection(Item(index) if event.line is None else BodyLine(index, event.line), event.reason)
                   if type(event) is Unreadable else Record(Item(index), event, context)
                   for index, event in enumerate(events, start=first)]
        first += len(events)


def _some_object(batches: Iterator[list[Record | Rejection]]) -> Iterator[list[Record | Rejection]]:
    """NDJSON lines that parse but none an object hold no events, as a scalar body does not: after
    the last slice (the engine holds what it packed until then), a 400 with nothing sent."""
    objects = False
    for batch in batches:
        objects = objects or (batch.raws.objects if type(batch) is Encoded else  # type: ignore[union-attr]
                              any(type(item) is Record and type(item.event) is dict for item in batch))
        yield batch
    if not objects:
        raise DecodeError("the body holds no event objects: no line of it is a JSON object")


def header(headers: Mapping[str, str], name: str) -> str:
    """Case-insensitive header lookup that works on plain dicts too."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                return candidate
        return ""
    return value


def media_type(headers: Mapping[str, str]) -> str:
    return header(headers, "Content-Type").split(";", 1)[0].strip().lower()


def check_declared_length(headers: Mapping[str, str], limit: int) -> None:
    """Refuse before reading when the sender already says the body is too large."""
    raw = header(headers, "Content-Length")
    if raw.isascii() and raw.isdigit() and int(raw) > limit:  # "²".isdigit() is True, int("²") fails
        raise TooLargeError(f"body of {raw} bytes is over the limit of {limit} bytes")


JSON_MEDIA_TYPES = ("application/json", "text/json")


def is_json_media_type(content_type: str) -> bool:
    """``application/json``, ``text/json`` or any ``+json`` structured syntax suffix (RFC 6839)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media in JSON_MEDIA_TYPES or media.endswith("+json")


def _cloudevent_problem(event: Any, index: int) -> str | None:
    if not isinstance(event, dict):
        return f"CloudEvent #{index} is not a JSON object"
    missing = [name for name in CLOUDEVENT_REQUIRED if not event.get(name)]
    if missing:
        return f"CloudEvent #{index} lacks required attribute(s): {', '.join(missing)}"
    if event["specversion"] != "1.0":
        return f"CloudEvent #{index} has specversion {event['specversion']!r}, only 1.0 is supported"
    return _decode_data_base64(event, index)


def _decode_data_base64(event: dict[str, Any], index: int) -> str | None:
    """``data_base64`` becomes ``data``: parsed when ``datacontenttype`` is JSON, else the base64
    string itself (checked to be base64). Says why not when it cannot be."""
    if "data_base64" not in event:
        return None
    encoded = event.pop("data_base64")
    if encoded is None:
        return None
    if "data" in event:
        return f"CloudEvent #{index} has both data and data_base64 (the JSON format allows one)"
    try:
        raw = base64.b64decode(encoded, validate=True) if isinstance(encoded, str) else None
    except (binascii.Error, ValueError):
        raw = None
    if raw is None:
        return f"CloudEvent #{index}: data_base64 is not base64 (RFC 4648)"
    if not is_json_media_type(str(event.get("datacontenttype") or "")):
        event["data"] = encoded
        return None
    try:
        event["data"] = orjson.loads(skip_bom(raw))
    except orjson.JSONDecodeError as error:
        return f"CloudEvent #{index}: data_base64 is not valid JSON though datacontenttype is JSON: {error.msg}"
    return None


def _cloudevents(events: list[Any]) -> list[Any]:
    """A batch's events, each that is not a CloudEvent 1.0 an Unreadable saying why (the others land)."""
    out = Marked()
    for index, event in enumerate(events):
        if type(event) is Unreadable:
            out.append(Unreadable(f"CloudEvent #{index}: {event.reason}"))
            continue
        reason = _cloudevent_problem(event, index)
        out.append(event if reason is None else Unreadable(reason))
    return out if any(type(e) is Unreadable for e in out) else list(out)


def _one_cloudevent(event: Any) -> dict[str, Any]:
    """A structured or binary mode event: one event, so a bad one is the whole body (400)."""
    reason = _cloudevent_problem(event, 0)
    if reason is not None:
        raise DecodeError(reason)
    return event  # type: ignore[no-any-return]


def _header_value(name: str, value: str) -> str:
    """A ``ce-`` header value, percent-decoded as the CloudEvents HTTP binding requires (3.1.3.2)."""
    if "%" not in value:
        return value
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        raise DecodeError(f"header {name} is not percent-encoded UTF-8") from None


def _binary_cloudevent(headers: Mapping[str, str], body: bytes, content_type: str) -> dict[str, Any]:
    """Binary content mode: attributes in ``ce-`` headers (percent-decoded), the body is ``data``:
    parsed when its content type is JSON, text when it is text, otherwise base64 (as data_base64 is)."""
    event: dict[str, Any] = {}
    for key, value in headers.items():
        if key.lower().startswith("ce-"):
            event[key[3:].lower()] = _header_value(key, value)
    if content_type:
        event["datacontenttype"] = content_type
    if body.strip():
        event["data"] = _binary_data(body, content_type)
    return _one_cloudevent(event)


def _binary_data(body: bytes, content_type: str) -> Any:
    if is_json_media_type(content_type):
        return loads(skip_bom(body), "CloudEvent data")
    if not content_type or content_type.startswith("text/"):
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            if content_type:
                raise DecodeError(f"CloudEvent data is {content_type} but not UTF-8 text") from None
    return base64.b64encode(body).decode("ascii")


def _is_event_grid(events: list[Any]) -> bool:
    first = events[0] if events else None
    return isinstance(first, dict) and "eventType" in first and ("dataVersion" in first or "metadataVersion" in first)


def _event_grid(events: list[Any]) -> DecodedBody:
    for index, event in enumerate(events):
        if type(event) is Unreadable:
            continue  # rejected on its own
        if not isinstance(event, dict) or "eventType" not in event:
            raise DecodeError(f"Event Grid event #{index} lacks eventType")
        if event["eventType"] == EVENT_GRID_VALIDATION:
            code = (event.get("data") or {}).get("validationCode") if isinstance(event.get("data"), dict) else None
            if not isinstance(code, str) or not code:
                raise DecodeError("Event Grid subscription validation event lacks data.validationCode")
            return DecodedBody([], "eventgrid", {"validationResponse": code})
    return DecodedBody(events, "eventgrid")


def encoded_events(body: bytes) -> list[Any] | None:
    """The events of a plain JSON array or object as the bytes of each (views into the body, split in C),
    or None when the body is anything else (NDJSON, a scalar, what strict JSON refuses: NaN, a lone
    surrogate) or Event Grid: the decoders that read those whole give their answers and reasons."""
    start = body[:64].lstrip()[:1]
    try:
        if start == b"[":
            raws = split_array(body)
        elif start == b"{":
            raws = [_one_value(body)]
        else:
            return None
    except (msgspec.DecodeError, RecursionError):  # (nested deeper than msgspec goes: read whole, as before)
        return None
    return _not_event_grid(raws)


def _not_event_grid(raws: list[Any]) -> list[Any] | None:
    if raws:
        try:
            first = orjson.loads(memoryview(raws[0]))
        except orjson.JSONDecodeError:
            return None
        if _is_event_grid([first]):
            return None
    return raws


_one_value = msgspec.json.Decoder(msgspec.Raw).decode


class Predecoder(Protocol):
    """A route's typed path (``Engine.takes_encoded``), which may decode a whole JSON array body itself."""

    def predecode(self, body: bytes) -> list[Any] | None: ...


def decode_http_body(headers: Mapping[str, str], body: bytes, limit: int,
                     encoded: bool | Predecoder = True) -> DecodedBody:
    """Decode a POSTed body into events. Raises DecodeError (400) or TooLargeError (413). ``encoded``: a
    plain JSON or NDJSON body's events may stay encoded (``raws``, ``RawSlice`` s) for a route that
    decodes them itself (``Engine.takes_encoded``); else they are decoded here. Given the route's typed
    path, a JSON array body is first offered to it whole (``Predecoder``)."""
    if len(body) > limit:
        raise TooLargeError(f"body of {len(body)} bytes is over the limit of {limit} bytes")
    encoding = header(headers, "Content-Encoding").strip().lower()
    if encoding == "gzip":
        body = gunzip_bounded(body, limit)
    elif encoding not in ("", "identity"):
        raise DecodeError(f"Content-Encoding {encoding!r} is not supported (use gzip or none)")
    content_type = media_type(headers)
    if header(headers, "ce-specversion"):
        return DecodedBody([_binary_cloudevent(headers, body, content_type)], "cloudevents")
    body = skip_bom(body)
    if content_type == "application/cloudevents+json":
        event = loads(body, "CloudEvent")
        if not isinstance(event, dict):
            raise DecodeError("application/cloudevents+json body must be one JSON object")
        return DecodedBody([_one_cloudevent(event)], "cloudevents")
    if content_type == "application/cloudevents-batch+json":
        if body.strip()[:1] != b"[":
            raise DecodeError("application/cloudevents-batch+json body must be a JSON array")
        return DecodedBody(_cloudevents(decode_json_events(body, "CloudEvents batch")), "cloudevents")
    if content_type in NDJSON_TYPES:
        if not body.strip():
            raise DecodeError("body is empty")
        return DecodedBody(kind="ndjson", slices=ndjson_slices(body, SLICE_LINES, raw=encoded))
    return _json_body(headers, body, encoded)


def _json_body(headers: Mapping[str, str], body: bytes, encoded: bool | Predecoder) -> DecodedBody:
    """A body that is JSON (one value or an array), NDJSON sent as JSON, or Event Grid."""
    if encoded and not header(headers, "aeg-event-type"):
        events = encoded.predecode(body) if encoded is not True else None  # type: ignore[union-attr]
        if events is not None:  # (a route that cannot take an Event Grid event decoded every one)
            return DecodedBody(kind="json", raws=LazyRaws(body, len(events)), decoded=events)
        raws = encoded_events(body)
        if raws is not None:
            return DecodedBody(kind="json", raws=raws)
    decoded = json_events_or_slices(body, SLICE_LINES, SLICE_BYTES, raw=encoded)
    if isinstance(decoded, list):
        events = decoded
    else:  # a long array, or NDJSON sent as application/json: the first slice says whether it is Event Grid
        first = next(decoded, [])
        if not (header(headers, "aeg-event-type") or _is_event_grid(_values(first, 1))):
            return DecodedBody(kind="json", slices=chain([first], decoded))
        events = Marked(_values(first))
        for part in decoded:
            events.extend(_values(part))
        events = events if any(type(e) is Unreadable for e in events) else list(events)
    if header(headers, "aeg-event-type") or _is_event_grid(events):
        return _event_grid(events)
    return DecodedBody(events, "json")


def options_handshake(headers: Mapping[str, str]) -> dict[str, str] | None:
    """CloudEvents webhook abuse protection: echo the origin we agree to receive from."""
    origin = header(headers, "WebHook-Request-Origin").strip()
    if not origin:
        return None
    return {"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*", "Allow": "POST, OPTIONS"}


SOURCE = register(Source("http", "the {route} segment of POST /api/ingest/{route}", exact))
