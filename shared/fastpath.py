"""A per-route compiled normalizer: the same rows as ``Normalizer``, without its per-field dispatch.

The general normalizer walks a list of (column, getter, coercer) tuples for every
event and calls a coercer even when the value already has the declared type. For a
route known at load time all of that can be decided once: this module writes one
Python function per route, with the event keys, column names, type checks and the
route's options inlined, and ``exec``-compiles it. Values that already have the
column's type are stored as they are (the coercers would return them unchanged);
anything else goes through the very same coercers, so rows, rejection reasons and
counters are those of the general path (``tests/unit/test_fastpath.py`` checks that
on random events).

Only constants derived from the validated route reach the generated source, and each
as a ``repr`` literal or a name bound in the function's namespace.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from . import normalize
from .config import Route
from .normalize import (
    _MISSING,
    COERCERS,
    INT32,
    INT64,
    MAX_EXACT_FLOAT_INT,
    MAX_FIELD_BYTES,
    CoercionError,
    EventRejection,
    NormalizedBatch,
    Normalizer,
    _getter,
)
from .sources import registry
from .timeparse import TimeFormatError, format_epoch, normalize_time

#: UTC ISO 8601 as most senders write it (``2024-05-01T10:00:00.123Z``), read as two cached parts: the
#: second (``2024-05-01T10:00:00``) and the tail (``.123Z``); anything else takes the general time parser.
_SECOND = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}", re.ASCII)
_TAIL = re.compile(r"(?:\.[0-9]{1,6})?Z", re.ASCII)
_MICROS = (0, 100_000, 10_000, 1_000, 100, 10, 1)
_ZEROS = ("", "00000", "0000", "000", "00", "0", "")
_CACHE_SIZE = 4096
_MAX_UNROLLED_POPS = 24
_minute_starts: dict[str, int | None] = {}
#: ``YYYY-MM-DDTHH:MM:SS`` -> its epoch seconds (valid UTC times only)
_second_starts: dict[str, int] = {}
#: ``.fffZ`` -> (the tail as ``format_time`` writes it, microseconds) (canonical tails only)
_tails: dict[str, tuple[str, int]] = {}
#: epoch minute -> ``YYYY-MM-DDTHH:MM:``, for integer epoch times
_epoch_minutes: dict[int, str] = {}
_SECONDS = tuple(f"{second:02d}" for second in range(60))
_MILLIS = ("Z", *(f".{millis:03d}000Z" for millis in range(1, 1000)))
#: integer epochs from 0 up to here take the shortcut: below 1e11 they are seconds (as parse_time reads
#: them) and above milliseconds; below 2**31 s, ``value / 1e3`` is within 0.12 us of the exact time,
#: so ``datetime.fromtimestamp`` (rounding to microseconds) gives exactly the integer's milliseconds
_EPOCH_MS_FROM = 100_000_000_000
_FAST_EPOCH_TO = 2**31 * 1000

BatchFunction = Callable[..., NormalizedBatch]


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> Any:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value
    return value


def _minute_start(prefix: str) -> int | None:
    """Epoch seconds of ``YYYY-MM-DDTHH:MM`` UTC, or None when that is no valid time."""
    start = _minute_starts.get(prefix, _MISSING)
    if start is _MISSING:
        try:
            start = int(datetime.fromisoformat(prefix).replace(tzinfo=UTC).timestamp())
        except ValueError:
            start = None
        _remember(_minute_starts, prefix, start)
    return start  # type: ignore[return-value]


def _second_start(head: str) -> int | None:
    """Epoch seconds of ``YYYY-MM-DDTHH:MM:SS`` UTC (remembered), or None when that is no valid time."""
    if not _SECOND.fullmatch(head):
        return None
    start = _minute_start(head[:16])
    seconds = int(head[17:19])
    if start is None or seconds >= 60:
        return None
    return _remember(_second_starts, head, start + seconds)  # type: ignore[no-any-return]


def _tail(tail: str) -> tuple[str, int] | None:
    """``.123Z`` -> (``.123000Z``, 123000) as ``format_time`` writes it (remembered), or None."""
    if not _TAIL.fullmatch(tail):
        return None
    fraction = tail[1:-1]
    micros = int(fraction) * _MICROS[len(fraction)] if fraction else 0
    return _remember(_tails, tail, ("." + fraction + _ZEROS[len(fraction)] + "Z", micros) if micros else ("Z", 0))


def fast_time(value: Any) -> tuple[str, float]:
    """``normalize_time`` with arithmetic instead of datetime objects for the usual shapes.

    ``2024-05-01T10:00:00.123Z`` is read as its second and its tail, each validated once and
    then looked up (events of a batch share their seconds, and there are few distinct tails);
    integer epochs in seconds or milliseconds from 1970 to 2038 are cut into minute, second and
    milliseconds. The text comes back as ``format_time`` writes it (six fraction digits, none
    when they are all zero) and the epoch as ``datetime.timestamp()`` computes it (exact integer
    microseconds / 10**6); every other value goes to ``normalize_time``.
    """
    if value.__class__ is str:
        head = value[:19]
        start = _second_starts.get(head) or _second_start(head)
        if start is not None:
            tail = value[19:]
            parts = _tails.get(tail) or _tail(tail)
            if parts is not None:
                suffix, micros = parts
                if not micros:
                    return head + suffix, float(start)
                return head + suffix, (start * 1_000_000 + micros) / 1_000_000
    elif value.__class__ is int and 0 <= value < _FAST_EPOCH_TO:
        whole, millis = divmod(value, 1000) if value >= _EPOCH_MS_FROM else (value, 0)
        minute, second = divmod(whole, 60)
        prefix = _epoch_minutes.get(minute)
        if prefix is None:
            prefix = _remember(_epoch_minutes, minute, datetime.fromtimestamp(minute * 60, UTC).isoformat()[:17])
        text = prefix + _SECONDS[second] + _MILLIS[millis]
        return text, ((whole * 1_000_000 + millis * 1000) / 1_000_000 if millis else float(whole))
    return normalize_time(value)


def _fast_datetime_and_epoch(value: Any) -> tuple[str, float]:
    try:
        return fast_time(value)
    except TimeFormatError as error:
        raise CoercionError(str(error)) from None


def _fast_to_datetime(value: Any) -> str:
    return _fast_datetime_and_epoch(value)[0]


# The check that a value already has the column's type (then the coercer would return it as is).
_ALREADY = {
    "string": "{v}.__class__ is str",
    "int": f"{{v}}.__class__ is int and {INT32[0]} <= {{v}} <= {INT32[1]}",
    "long": f"{{v}}.__class__ is int and {INT64[0]} <= {{v}} <= {INT64[1]}",
    "real": f"({{v}}.__class__ is float and {{v}} - {{v}} == 0.0) or "
            f"({{v}}.__class__ is int and -{MAX_EXACT_FLOAT_INT} <= {{v}} <= {MAX_EXACT_FLOAT_INT})",
    "boolean": "{v} is True or {v} is False",
    "dynamic": "True",
}


class _Source:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)


def _read(path: str, getter_name: str, namespace: dict[str, Any]) -> tuple[str, str]:
    """Code that reads ``path`` of ``event`` (or the context) into ``value``, and the test that it is
    there (missing and null are alike: the column stays empty)."""
    keys = path.split(".")
    if len(keys) == 1 and keys[0] not in registry.context_roots():
        return f"value = event.get({keys[0]!r})", "value is not None"
    namespace[getter_name] = _getter(path)
    return f"value = {getter_name}(event, event_context)", "value is not MISSING and value is not None"


def uses_context(route: Route) -> bool:
    paths = [route.map.get(c.name, c.name) for c in route.schema.columns]
    if route.time_field:
        paths.append(route.time_field)
    return any(path.split(".", 1)[0] in registry.context_roots() for path in paths)


def compile_route(route: Route) -> BatchFunction:  # noqa: C901 - the exec-compiled normalizer, replaced by route plans (issue 12)
    """Write and compile ``normalize(events, ingest_time, start_index, context) -> NormalizedBatch``."""
    general = Normalizer(route, fast=False)
    columns = general._columns
    consumed = general._consumed
    namespace: dict[str, Any] = {
        "MISSING": _MISSING, "CoercionError": CoercionError, "TimeFormatError": TimeFormatError,
        "NormalizedBatch": NormalizedBatch, "EventRejection": EventRejection, "Mapping": Mapping, "normalize_module": normalize,
        "MAX_FIELD_BYTES": MAX_FIELD_BYTES, "fast_time": fast_time,
        "flag_oversized": Normalizer._flag_oversized, "format_epoch": format_epoch, "CONSUMED": consumed,
        "sha256": hashlib.sha256, "SORT_KEYS": orjson.OPT_SORT_KEYS,
        "SORT_ANY_KEYS": orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
        "ID_PREFIX": route.name.encode() + b"\n",
    }
    context_needed = uses_context(route)
    src = _Source()
    src.add(0, "def normalize(events, ingest_time, start_index, context):")
    src.add(1, "batch = NormalizedBatch()")
    src.add(1, "dumps = normalize_module.orjson.dumps  # looked up per batch, as the general path does")
    src.add(1, "JSONEncodeError = normalize_module.orjson.JSONEncodeError")
    src.add(1, "rows_append = batch.rows.append")
    src.add(1, "indexes_append = batch.indexes.append")
    src.add(1, "times_append = batch.times.append")
    src.add(1, "rejections_append = batch.rejections.append")
    if route.on_type_error == "extra":
        src.add(1, "moved_to_extra = batch.moved_to_extra")
    if not route.extra:
        src.add(1, "dropped_fields = batch.dropped_fields")
    src.add(1, "ingest_text = format_epoch(ingest_time)")
    src.add(1, "per_event = not (context is None or isinstance(context, Mapping))")
    src.add(1, "event_context = (context or {}) if not per_event else None")
    src.add(1, "time_defaulted = 0")
    src.add(1, "index = start_index - 1")
    src.add(1, "for offset, event in enumerate(events):")
    src.add(2, "index += 1")
    src.add(2, "if per_event:")
    src.add(3, "event_context = context[offset]")
    src.add(2, "if not isinstance(event, dict):")
    src.add(3, "rejections_append(EventRejection(index, f'event is a {type(event).__name__}, not a JSON object', event))")
    src.add(3, "continue")
    src.add(2, "try:")
    body = 3
    src.add(body, "row = {}")
    src.add(body, "moment = ingest_time")
    if route.time_field:
        read, present = _read(route.time_field, "time_getter", namespace)
        src.add(body, read)
        src.add(body, f"if not ({present}):")
        src.add(body + 1, "time_defaulted += 1")
        src.add(body, "else:")
        src.add(body + 1, "try:")
        src.add(body + 2, "row['TimeGenerated'], moment = fast_time(value)")
        src.add(body + 1, "except TimeFormatError as error:")
        src.add(body + 2, f"raise CoercionError({'time_field ' + repr(route.time_field) + ': '!r} + str(error)) from None")
    src.add(body, "extra = None")
    for number, (name, kind, _get, _coerce) in enumerate(columns):
        path = route.map.get(name, name)
        read, present = _read(path, f"get_{number}", namespace)
        src.add(body, read)
        src.add(body, f"if {present}:")
        inner = body + 1
        if name == "TimeGenerated" and kind == "datetime":
            namespace[f"coerce_{number}"] = _fast_datetime_and_epoch
            store = f"row[{name!r}], moment = coerce_{number}(value)"
            fast_check = None
        else:
            namespace[f"coerce_{number}"] = _fast_to_datetime if kind == "datetime" else COERCERS[kind]
            store = f"row[{name!r}] = coerce_{number}(value)"
            fast_check = _ALREADY.get(kind)
        if fast_check == "True":
            src.add(inner, f"row[{name!r}] = value")
            continue
        if fast_check:
            src.add(inner, f"if {fast_check.format(v='value')}:")
            src.add(inner + 1, f"row[{name!r}] = value")
            src.add(inner, "else:")
            inner += 1
        src.add(inner, "try:")
        src.add(inner + 1, store)
        src.add(inner, "except CoercionError as error:")
        if route.on_type_error == "extra":
            src.add(inner + 1, "if extra is None:")
            src.add(inner + 2, "extra = {}")
            src.add(inner + 1, f"extra[{name!r}] = value")
            src.add(inner + 1, f"moved_to_extra[{name!r}] += 1")
        else:
            prefix = f"column {name!r} ({kind}): "
            src.add(inner + 1, f"raise CoercionError({prefix!r} + str(error)) from None")
    if general._fills_time:
        src.add(body, "if 'TimeGenerated' not in row:")
        src.add(body + 1, "row['TimeGenerated'] = ingest_text")
    if route.extra:
        src.add(body, "if extra is None:")
        if len(consumed) <= _MAX_UNROLLED_POPS:  # copy and pop the few consumed keys: faster than a filter
            src.add(body + 1, "extra = dict(event)")
            for key in sorted(consumed):
                src.add(body + 1, f"extra.pop({key!r}, None)")
        else:
            src.add(body + 1, "extra = {key: event[key] for key in event if key not in CONSUMED}")
        src.add(body, "else:")
        src.add(body + 1, "for key in event:")
        src.add(body + 2, "if key not in CONSUMED and key not in extra:")
        src.add(body + 3, "extra[key] = event[key]")
        src.add(body, "if extra:")
        if general._extra_is_string:
            src.add(body + 1, f"row[{route.extra!r}] = dumps(extra).decode()")
        else:
            src.add(body + 1, f"row[{route.extra!r}] = extra")
    else:
        src.add(body, "if not CONSUMED.issuperset(event):  # one C-level test when every field is mapped")
        src.add(body + 1, "for key in event:")
        src.add(body + 2, "if key not in CONSUMED:")
        src.add(body + 3, "dropped_fields[key] += 1")
    if route.id_column:
        # event_id() of normalize.py: the sort-only option is faster and gives the same bytes for str keys
        src.add(body, "try:")
        src.add(body + 1, "canonical = dumps(event, option=SORT_KEYS)")
        src.add(body, "except JSONEncodeError:")
        src.add(body + 1, "canonical = dumps(event, option=SORT_ANY_KEYS)")
        src.add(body, f"row[{route.id_column!r}] = sha256(ID_PREFIX + canonical).hexdigest()[:32]")
    # a right-sized copy: orjson's own output keeps a larger allocation, and a batch keeps every row,
    # so the heap would grow page by page (measured: ~1.4 page faults per row, 0.7 us of 6 us per event)
    src.add(body, "encoded = bytes(memoryview(dumps(row)))")
    src.add(2, "except CoercionError as error:")
    src.add(3, "rejections_append(EventRejection(index, str(error), event))")
    src.add(3, "continue")
    src.add(2, "except JSONEncodeError as error:")
    src.add(3, "rejections_append(EventRejection(index, f'cannot be encoded as JSON: {error}', event))")
    src.add(3, "continue")
    src.add(2, "if len(encoded) > MAX_FIELD_BYTES:")
    src.add(3, "flag_oversized(row, batch)")
    src.add(2, "rows_append(encoded)")
    src.add(2, "indexes_append(index)")
    src.add(2, "times_append(moment)")
    src.add(1, "batch.time_defaulted = time_defaulted")
    src.add(1, "return batch")
    source = "\n".join(src.lines) + "\n"
    if not context_needed:
        source = source.replace("event_context = context[offset]", "context[offset]")  # only its IndexError matters
    code = compile(source, f"<relay route {route.name}>", "exec")
    exec(code, namespace)  # noqa: S102 - our own generated source, constants as repr literals
    function = namespace["normalize"]
    function.source = source  # for debugging: print(compile_route(route).source)
    return function

