"""HTTP webhook bodies: JSON, NDJSON, CloudEvents 1.0 and Event Grid, plus their handshakes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from .compression import gunzip_bounded
from .errors import DecodeError, TooLargeError
from .jsontext import json_events_or_slices, loads, ndjson_slices
from .registry import Source, exact, register

EVENT_GRID_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines")
CLOUDEVENT_REQUIRED = ("specversion", "id", "source", "type")
#: NDJSON bodies are decoded this many lines at a time, each slice normalized before the next is
#: decoded: a 25 MB body's events as dicts take about six times the body (measured in bench/http_memory)
SLICE_LINES = 2000
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

    def all_events(self) -> list[Any]:
        """Every event, decoding what is left of ``slices`` (then they are used up)."""
        if self.slices is None:
            return self.events
        return [event for part in self.slices for event in part]


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


def _cloudevents(events: list[Any]) -> list[Any]:
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise DecodeError(f"CloudEvent #{index} is not a JSON object")
        missing = [name for name in CLOUDEVENT_REQUIRED if not event.get(name)]
        if missing:
            raise DecodeError(f"CloudEvent #{index} lacks required attribute(s): {', '.join(missing)}")
        if event["specversion"] != "1.0":
            raise DecodeError(f"CloudEvent #{index} has specversion {event['specversion']!r}, only 1.0 is supported")
    return events


def _binary_cloudevent(headers: Mapping[str, str], body: bytes, content_type: str) -> dict[str, Any]:
    """Binary content mode: attributes in ``ce-`` headers, the body is ``data``."""
    event: dict[str, Any] = {}
    for key, value in headers.items():
        if key.lower().startswith("ce-"):
            event[key[3:].lower()] = value
    if content_type:
        event["datacontenttype"] = content_type
    if body.strip():
        if content_type.endswith("json"):
            event["data"] = loads(body, "CloudEvent data")
        else:
            try:
                event["data"] = body.decode("utf-8")
            except UnicodeDecodeError:
                raise DecodeError("CloudEvent data is not UTF-8 text") from None
    return _cloudevents([event])[0]


def _is_event_grid(events: list[Any]) -> bool:
    first = events[0] if events else None
    return isinstance(first, dict) and "eventType" in first and ("dataVersion" in first or "metadataVersion" in first)


def _event_grid(events: list[Any]) -> DecodedBody:
    for index, event in enumerate(events):
        if not isinstance(event, dict) or "eventType" not in event:
            raise DecodeError(f"Event Grid event #{index} lacks eventType")
        if event["eventType"] == EVENT_GRID_VALIDATION:
            code = (event.get("data") or {}).get("validationCode") if isinstance(event.get("data"), dict) else None
            if not isinstance(code, str) or not code:
                raise DecodeError("Event Grid subscription validation event lacks data.validationCode")
            return DecodedBody([], "eventgrid", {"validationResponse": code})
    return DecodedBody(events, "eventgrid")


def decode_http_body(headers: Mapping[str, str], body: bytes, limit: int) -> DecodedBody:
    """Decode a POSTed body into events. Raises DecodeError (400) or TooLargeError (413)."""
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
    if content_type == "application/cloudevents+json":
        event = loads(body, "CloudEvent")
        if not isinstance(event, dict):
            raise DecodeError("application/cloudevents+json body must be one JSON object")
        return DecodedBody(_cloudevents([event]), "cloudevents")
    if content_type == "application/cloudevents-batch+json":
        events = loads(body, "CloudEvents batch")
        if not isinstance(events, list):
            raise DecodeError("application/cloudevents-batch+json body must be a JSON array")
        return DecodedBody(_cloudevents(events), "cloudevents")
    if content_type in NDJSON_TYPES:
        return DecodedBody(kind="ndjson", slices=ndjson_slices(body, SLICE_LINES))
    decoded = json_events_or_slices(body, SLICE_LINES, SLICE_BYTES)
    if isinstance(decoded, list):
        events = decoded
    else:  # a long array, or NDJSON sent as application/json: the first slice says whether it is Event Grid
        first = next(decoded, [])
        if not (header(headers, "aeg-event-type") or _is_event_grid(first)):
            return DecodedBody(kind="json", slices=chain([first], decoded))
        events = first + [event for part in decoded for event in part]
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
