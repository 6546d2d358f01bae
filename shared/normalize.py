"""Shape decoded events into rows of a DCR stream, catching what the service would drop.

The service silently drops undeclared columns and values of the wrong type (the
"204 but no rows" complaint). Here each declared column is filled from the
event, coerced only where no information is lost, and anything else is either
rejected with a reason, kept in the route's ``extra`` column, or counted.
Each row is serialized exactly once; the packer works on those bytes.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from .config import Route
from .plan import MISSING, RoutePlan
from .timeparse import TimeFormatError, format_epoch, normalize_time

MAX_FIELD_BYTES = 64 * 1024  # the service truncates longer field values
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
    """Rows ready to pack (serialized once), with the input index each came from."""

    rows: list[bytes] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    rejections: list[EventRejection] = field(default_factory=list)
    oversized_fields: Counter[str] = field(default_factory=Counter)
    dropped_fields: Counter[str] = field(default_factory=Counter)
    moved_to_extra: Counter[str] = field(default_factory=Counter)
    time_defaulted: int = 0


def event_id(route_name: str, event: Any) -> str:
    """Deterministic id of an event on a route, so retried deliveries can be de-duplicated."""
    canonical = orjson.dumps(event, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(route_name.encode() + b"\n" + canonical).hexdigest()[:32]


class Normalizer:
    """One route's normalizer, built once from the route's plan (``shared/plan.py``)."""

    def __init__(self, route: Route, fast: bool = True):
        """``fast``: run the plan's fast path (``shared.fastpath``), which gives the same rows, reasons
        and counters; ``fast=False`` is the general path below, the reference."""
        self.route = route
        self.plan = RoutePlan.of(route)
        self._coercers = tuple(COERCERS[column.type] for column in self.plan.columns)
        self._fast: Callable[..., NormalizedBatch] | None = None
        if fast:
            from .fastpath import FastPath  # it builds on this module

            self._fast = FastPath(self.plan).normalize

    def normalize(
        self,
        events: Iterable[Any],
        now: float | None = None,
        start_index: int = 0,
        context: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    ) -> NormalizedBatch:
        """``context`` is metadata shared by all events (a mapping) or one mapping per event."""
        if self._fast is not None:
            return self._fast(events, now if now is not None else time.time(), start_index, context)
        batch = NormalizedBatch()
        shared_context = context if isinstance(context, Mapping) or context is None else None
        shared_context = shared_context or {}
        ingest_time = now if now is not None else time.time()
        ingest_text = format_epoch(ingest_time)
        for offset, event in enumerate(events):
            index = start_index + offset
            try:
                event_context = shared_context if context is None or isinstance(context, Mapping) else context[offset]
                row, moment = self._row(event, event_context, batch, ingest_text, ingest_time)
                encoded = orjson.dumps(row)
            except CoercionError as error:
                batch.rejections.append(EventRejection(index, str(error), event))
                continue
            except orjson.JSONEncodeError as error:
                batch.rejections.append(EventRejection(index, f"cannot be encoded as JSON: {error}", event))
                continue
            if len(encoded) > MAX_FIELD_BYTES:
                self._flag_oversized(row, batch)
            batch.rows.append(encoded)
            batch.indexes.append(index)
            batch.times.append(moment)
        return batch

    def _row(self, event: Any, context: Mapping[str, Any], batch: NormalizedBatch, ingest_text: str,
             ingest_time: float) -> tuple[dict, float]:
        """The plan, walked for one event: time_field, the columns in order, the stamped time,
        extra (or the dropped-field counts), the id."""
        if not isinstance(event, dict):
            raise CoercionError(f"event is a {type(event).__name__}, not a JSON object")
        plan = self.plan
        row: dict[str, Any] = {}
        moment = ingest_time
        if plan.time is not None:
            raw_time = plan.time.read(event, context)
            if raw_time is MISSING or raw_time is None:
                batch.time_defaulted += 1  # kept, stamped with the ingestion time below
            else:
                try:
                    row["TimeGenerated"], moment = normalize_time(raw_time)
                except TimeFormatError as error:
                    raise CoercionError(f"time_field {plan.time.text!r}: {error}") from None
        extra: dict[str, Any] | None = None
        for column, coerce in zip(plan.columns, self._coercers, strict=True):
            value = column.path.read(event, context)
            if value is MISSING or value is None:
                continue
            try:
                if column.drives_time:  # the packer splits auxiliary routes by these times
                    row[column.name], moment = _datetime_and_epoch(value)
                else:
                    row[column.name] = coerce(value)
            except CoercionError as error:
                if not plan.move_bad_values:
                    raise CoercionError(f"column {column.name!r} ({column.type}): {error}") from None
                extra = extra if extra is not None else {}
                extra[column.name] = value
                batch.moved_to_extra[column.name] += 1
        if plan.stamp_time and "TimeGenerated" not in row:
            row["TimeGenerated"] = ingest_text
        self._leftovers(event, row, extra, batch)
        if plan.id_column:
            row[plan.id_column] = event_id(plan.route, event)
        return row, moment

    def _leftovers(self, event: dict, row: dict[str, Any], extra: dict[str, Any] | None,
                   batch: NormalizedBatch) -> None:
        """Top-level keys no column consumed whole: into ``extra`` (after values moved there), or counted."""
        plan = self.plan
        unmapped = [key for key in event if key not in plan.consumed]
        if plan.extra is None:
            for key in unmapped:
                batch.dropped_fields[key] += 1
            return
        if unmapped:
            extra = extra if extra is not None else {}
            for key in unmapped:
                extra.setdefault(key, event[key])
        if extra:
            row[plan.extra] = orjson.dumps(extra).decode() if plan.extra_as_text else extra

    @staticmethod
    def _flag_oversized(row: dict, batch: NormalizedBatch) -> None:
        for name, value in row.items():
            size = len(value.encode()) if isinstance(value, str) else len(orjson.dumps(value))
            if size > MAX_FIELD_BYTES:
                batch.oversized_fields[name] += 1
