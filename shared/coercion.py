"""Coercion of values to the declared column types, and what a normalization returns.

Shared by the general path (``shared/normalize.py``) and the fast path (``shared/fastpath.py``):
both derive from the route's plan and coerce with the very same functions, so their rows,
reasons and counters are equal by construction.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from operator import gt, lt
from typing import Any

import orjson

from .timeparse import TimeFormatError, normalize_time

MAX_FIELD_BYTES = 64 * 1024  # the service truncates longer field values
#: The service replaces a TimeGenerated older or further ahead than this with the ingestion time.
TIME_WINDOW_PAST_SECONDS = 2 * 24 * 3600
TIME_WINDOW_FUTURE_SECONDS = 24 * 3600
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
MAX_EXACT_FLOAT_INT = 2**53
_INTEGER_TEXT = re.compile(r"[+-]?\d{1,20}")


class CoercionError(ValueError):
    pass


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):  # exact at any size (orjson stops at 64 bits)
        try:
            return str(value)
        except ValueError:  # over sys.get_int_max_str_digits() digits
            raise CoercionError(f"an integer of {value.bit_length()} bits is too long to write as text") from None
    return orjson.dumps(value).decode()


def _integer(bounds: tuple[int, int], label: str) -> Callable[[Any], int]:
    low, high = bounds

    def coerce(value: Any) -> int:
        if isinstance(value, bool):
            raise CoercionError(f"boolean {value!r} is not {label}")
        if isinstance(value, int):
            number = value
        elif isinstance(value, float):
            if not value.is_integer():
                raise CoercionError(f"{_describe(value)} is not a whole number ({label})")
            number = int(value)
        elif isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
            number = int(value.strip())
        else:
            raise CoercionError(f"{_describe(value)} is not {label}")
        if not low <= number <= high:
            raise CoercionError(f"{number} is out of range for {label}")
        return number

    return coerce


def _to_real(value: Any) -> float | int:
    if isinstance(value, bool):
        raise CoercionError(f"boolean {value!r} is not a real number")
    if isinstance(value, int):
        if abs(value) > MAX_EXACT_FLOAT_INT:
            raise CoercionError(f"{value} cannot be held exactly by a real column")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CoercionError(f"{value!r} is not finite (JSON has no NaN or Infinity)")
        return value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise CoercionError(f"{_describe(value)} is not a real number") from None
        if not math.isfinite(number):
            raise CoercionError(f"{_describe(value)} is not a finite real number")
        return number
    raise CoercionError(f"{_describe(value)} is not a real number")


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise CoercionError(f"{_describe(value)} is not a boolean")


def _to_datetime(value: Any) -> str:
    try:
        return normalize_time(value)[0]
    except TimeFormatError as error:
        raise CoercionError(str(error)) from None


def _datetime_and_epoch(value: Any) -> tuple[str, float]:
    try:
        return normalize_time(value)
    except TimeFormatError as error:
        raise CoercionError(str(error)) from None


COERCERS: dict[str, Callable[[Any], Any]] = {
    "string": _to_string,
    "int": _integer(INT32, "a 32-bit int"),
    "long": _integer(INT64, "a 64-bit long"),
    "real": _to_real,
    "boolean": _to_boolean,
    "datetime": _to_datetime,
    "dynamic": lambda value: value,
}


@dataclass(frozen=True)
class EventRejection:
    """An event that was not sent, and why. ``index`` is its position in the input."""

    index: int
    reason: str
    event: Any = field(default=None, repr=False, compare=False)

    def summary(self) -> dict[str, Any]:
        return {"index": self.index, "reason": self.reason}


@dataclass
class NormalizedBatch:
    """Rows ready to pack (serialized once), with the input index each came from.

    ``times``: each row's TimeGenerated as epoch seconds, which the packer splits auxiliary routes by. The
    general and fast paths always take them; the typed path only for a plan that needs them
    (``RoutePlan.row_times``), else leaves the list empty (an epoch per row is the single dearest step of
    its time handling). ``time_out_of_window``: rows whose ``time_field`` time is outside the window the
    service keeps (:func:`out_of_window`), counted by whoever normalized them."""

    rows: list[bytes] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    rejections: list[EventRejection] = field(default_factory=list)
    oversized_fields: Counter[str] = field(default_factory=Counter)
    dropped_fields: Counter[str] = field(default_factory=Counter)
    moved_to_extra: Counter[str] = field(default_factory=Counter)
    time_defaulted: int = 0
    time_out_of_window: int = 0


def out_of_window(times: Sequence[Any], now: float) -> int:
    """Rows whose TimeGenerated the service replaces with the ingestion time: more than about
    2 days old or 1 day ahead (DESIGN.md section 4). Counted, never changed: the route can keep
    the original in a column of its own (``original_time_column``). ``times``: epoch seconds, or
    aware datetimes (the typed path's, compared as they are: no epoch taken per row)."""
    if not times:
        return 0
    earliest: Any = now - TIME_WINDOW_PAST_SECONDS
    latest: Any = now + TIME_WINDOW_FUTURE_SECONDS
    if isinstance(times[0], datetime):
        earliest, latest = datetime.fromtimestamp(earliest, UTC), datetime.fromtimestamp(latest, UTC)
    if min(times) >= earliest and max(times) <= latest:
        return 0
    # C-level maps (a backfill has them all); operator.gt, not float.__gt__, which declines an int
    return sum(map(gt, repeat(earliest), times)) + sum(map(lt, repeat(latest), times))


def event_id(route_name: str, event: Any, text: Any = None) -> str:
    """Deterministic id of an event on a route, so retried deliveries can be de-duplicated: the
    hash of the route's name and the event's canonical bytes (:func:`canonical_bytes`)."""
    return id_of(route_hash(route_name), canonical_bytes(event, text))


def route_hash(route_name: str) -> Any:
    """The route's part of every id on it, hashed once: each id goes on from a copy (:func:`id_of`; cheaper
    than hashing the route's name again with every event's bytes: 0.73 against 0.81 us a blob line, same process)."""
    return hashlib.sha256(route_name.encode() + b"\n")


#: an id is the first 32 hex digits of its SHA-256 (128 bits)
ID_DIGITS = 32


def id_of(begun: Any, canonical: bytes) -> str:
    """:func:`event_id` of an event's canonical bytes, from its route's :func:`route_hash` (the rule; the fast
    path calls it per record, where going through :func:`ids_of` cost Event Hub records ~2.5% of their
    instructions, callgrind)."""
    digest = begun.copy()
    digest.update(canonical)
    return digest.hexdigest()[:ID_DIGITS]


def ids_of(begun: Any, canonicals: Iterable[bytes]) -> list[str]:
    """:func:`id_of` of each of the canonical bytes, unrolled into one loop: the typed path hashes a chunk's texts
    at once (:func:`text_ids`), where two calls per id cost it a quarter more (callgrind: 20.1k against 15.5k
    instructions an id of a blob line, with valgrind's SHA-256 in software). The equivalence tests compare the
    typed path's ids with the general path's (:func:`event_id`)."""
    copy = begun.copy
    ids: list[str] = []
    append = ids.append
    for canonical in canonicals:
        digest = copy()
        digest.update(canonical)
        append(digest.hexdigest()[:ID_DIGITS])
    return ids


def text_ids(begun: Any, texts: Iterable[Any]) -> list[str]:
    """The ids of events handed on still encoded, from their texts (``canonical_bytes(None, text)`` of each)."""
    return ids_of(begun, map(_canonical_text, texts))


JSON_WHITESPACE = b" \t\r\n"


def canonical_bytes(event: Any, text: Any = None) -> bytes:
    """What ``id_column`` hashes. ``text``: the JSON text the event came in, when the relay handed the
    event on undecoded (``records.Encoded``: a webhook body's element or line, an NDJSON blob's line);
    then those bytes as they came, but for whitespace around them (a CRLF line's CR), which are the same
    on every delivery of the same input and need no decoding (compacting them first cost the typed path
    ~10% on the shipped ``applogs`` route, same run). Otherwise the event's JSON with its keys sorted."""
    if text is not None:
        return _canonical_text(text)
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def _canonical_text(text: Any) -> bytes:
    return (text if text.__class__ is bytes else bytes(text)).strip(JSON_WHITESPACE)  # (msgspec.Raw: a view)


def flag_oversized(row: dict, batch: NormalizedBatch, dumps: Callable[..., bytes] = orjson.dumps) -> None:
    """Count the fields of a row over the size the service keeps (it truncates them)."""
    for name, value in row.items():
        size = len(value.encode()) if isinstance(value, str) else len(dumps(value))
        if size > MAX_FIELD_BYTES:
            batch.oversized_fields[name] += 1
