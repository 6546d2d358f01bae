"""What a parked batch is: the claim-check message, its payload codec and its ids.

The payload (normalized, serialized rows) goes to a blob as gzip NDJSON, one row
per line; the queue message carries only the claim check (route, DCR, stream,
counts, failure, attempt, times, ids and the blob name), far under the 64 KB
queue limit. The same fields are kept as the blob's metadata, so the blob alone
is enough to replay, list or dead-letter a batch.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import orjson
from isal import igzip

from ..config import Route
from ..normalize import COERCERS, CoercionError

MESSAGE_VERSION = 1
MAX_MESSAGE_TEXT = 1000  # failure text kept in messages and metadata
MAX_PAYLOAD_BYTES = 64 * 1024 * 1024  # bound on a decompressed payload read back


class InvalidMessage(ValueError):
    """A queue message that is not a parked-batch claim check."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None


def new_id(route: str, moment: dt.datetime | None = None) -> str:
    """Sortable, readable, unique: ``20261123T085153Z-applogs-3f2a9c1b0d4e``."""
    stamp = (moment or utcnow()).strftime("%Y%m%dT%H%M%SZ")
    safe_route = "".join(c if c.isalnum() or c in "-_" else "-" for c in route)[:40]
    return f"{stamp}-{safe_route}-{secrets.token_hex(6)}"


def schema_fingerprint(route: Route) -> str:
    """Changes when the route's stream or its declared columns/types change."""
    text = route.stream + "\n" + ";".join(f"{c.name}:{c.type}" for c in route.schema.columns)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_payload(rows: Sequence[bytes]) -> bytes:
    """gzip NDJSON: serialized rows never contain a raw newline (JSON escapes it)."""
    return igzip.compress(b"\n".join(rows) + b"\n", compresslevel=1)


def decode_payload(data: bytes) -> list[bytes]:
    raw = igzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload of {len(raw)} bytes is over {MAX_PAYLOAD_BYTES}")
    return [line for line in raw.split(b"\n") if line.strip()]


def _ascii(text: str, limit: int = MAX_MESSAGE_TEXT) -> str:
    """Blob metadata values must be ASCII header text."""
    clean = text[:limit].encode("ascii", "backslashreplace").decode("ascii")
    return "".join(c if 32 <= ord(c) < 127 else " " for c in clean)


@dataclass(frozen=True)
class ParkedBatch:
    """The claim check of one parked request: everything but the rows."""

    id: str
    route: str
    endpoint: str
    dcr: str
    stream: str
    rows: int
    bytes: int
    failure: str  # failure class of the last attempt (throttled, server_error, timeout, ...)
    status: int | None
    message: str
    attempt: int  # the replay attempt this message asks for (1 = first replay)
    first_failure: str
    last_failure: str
    batch_id: str
    request_id: str
    blob: str
    schema: str = ""
    permanent: bool = False
    redriven_from: str = ""
    # start of the 403 grace window (RELAY_FORBIDDEN_GRACE_MINUTES): the first failure, or the redrive
    # that an operator started after granting the role; empty in older claim checks (then first_failure)
    grace_from: str = ""
    version: int = MESSAGE_VERSION

    # -- queue message ---------------------------------------------------------------

    def to_message(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ParkedBatch:
        known = {f.name: f for f in fields(cls)}
        missing = [name for name in ("id", "route", "blob", "attempt") if name not in data]
        if missing:
            raise InvalidMessage(f"not a parked-batch message: missing {', '.join(missing)}")
        values: dict[str, Any] = {}
        for name, spec in known.items():
            if name not in data:
                continue
            value = data[name]
            if spec.type in ("int", "int | None"):
                if value in (None, "", "None"):
                    value = None if spec.type == "int | None" else 0
                else:
                    try:
                        value = int(value)
                    except (TypeError, ValueError):
                        raise InvalidMessage(f"field {name!r} is not an integer: {value!r}") from None
            elif spec.type == "bool":
                value = value if isinstance(value, bool) else str(value).lower() == "true"
            elif not isinstance(value, str):
                value = "" if value is None else str(value)
            values[name] = value
        defaults = {"endpoint": "", "dcr": "", "stream": "", "rows": 0, "bytes": 0, "failure": "", "status": None,
                    "message": "", "first_failure": "", "last_failure": "", "batch_id": "", "request_id": ""}
        for name, default in defaults.items():
            values.setdefault(name, default)
        if not isinstance(values["id"], str) or not values["id"] or "/" in values["id"]:
            raise InvalidMessage(f"field 'id' is not a parked-batch id: {values['id']!r}")
        if values["attempt"] < 1:
            raise InvalidMessage(f"field 'attempt' must be at least 1, got {values['attempt']}")
        return cls(**values)

    @classmethod
    def from_message(cls, body: bytes | str) -> ParkedBatch:
        """Accept what the queue trigger delivers: JSON text, or still-base64 JSON text."""
        raw = body.encode() if isinstance(body, str) else bytes(body)
        data: Any = None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            try:
                data = orjson.loads(base64.b64decode(raw.strip(), validate=True))
            except (binascii.Error, ValueError):
                raise InvalidMessage("message is neither JSON nor base64-encoded JSON") from None
        if not isinstance(data, dict):
            raise InvalidMessage("message is not a JSON object")
        return cls.from_mapping(data)

    # -- blob metadata ---------------------------------------------------------------

    def to_metadata(self, **extra: str) -> dict[str, str]:
        data = asdict(self)
        metadata = {
            key.replace("_", ""): _ascii("" if value is None else str(value))
            for key, value in data.items() if key != "blob"
        }
        metadata.update({k: _ascii(v) for k, v in extra.items()})
        return metadata

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str], blob: str) -> ParkedBatch:
        by_key = {f.name.replace("_", ""): f.name for f in fields(cls)}
        data: dict[str, Any] = {by_key[k.lower()]: v for k, v in metadata.items() if k.lower() in by_key}
        data["blob"] = blob
        data.setdefault("attempt", "1")
        return cls.from_mapping(data)

    def next_attempt(self, failure: str, status: int | None, message: str) -> ParkedBatch:
        return replace(self, attempt=self.attempt + 1, failure=failure, status=status,
                       message=message[:MAX_MESSAGE_TEXT], last_failure=iso(utcnow()))

    def grace_elapsed(self, now: dt.datetime | None = None) -> float | None:
        """Seconds since the 403 grace window of this batch opened (None if unknown)."""
        start = parse_iso(self.grace_from) or parse_iso(self.first_failure)
        if start is None:
            return None
        return max(((now or utcnow()) - start).total_seconds(), 0.0)

    def age_seconds(self, now: dt.datetime | None = None) -> float | None:
        first = parse_iso(self.first_failure)
        if first is None:
            return None
        return max(((now or utcnow()) - first).total_seconds(), 0.0)


def recheck_rows(rows: Sequence[bytes], route: Route) -> tuple[list[bytes], list[tuple[int, str]]]:
    """Re-validate parked rows against the route's current stream schema.

    Returns the rows that still fit (re-serialized after lossless coercion) and the
    positions and reasons of those that no longer do.
    """
    types = {c.name: c.type for c in route.schema.columns}
    good: list[bytes] = []
    bad: list[tuple[int, str]] = []
    for position, raw in enumerate(rows):
        try:
            row = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            bad.append((position, f"parked row is not valid JSON: {error}"))
            continue
        if not isinstance(row, dict):
            bad.append((position, "parked row is not a JSON object"))
            continue
        reason = None
        for name, value in row.items():
            kind = types.get(name)
            if kind is None:
                reason = f"column {name!r} is not declared in stream {route.stream} (route {route.name!r} changed)"
                break
            if value is None:
                continue
            try:
                row[name] = COERCERS[kind](value)
            except CoercionError as error:
                reason = f"column {name!r} ({kind}) of stream {route.stream}: {error} (route {route.name!r} changed)"
                break
        if reason:
            bad.append((position, reason))
        else:
            good.append(orjson.dumps(row))
    return good, bad
