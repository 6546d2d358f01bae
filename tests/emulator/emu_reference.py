"""The emulator's ingest rules as they were before issue 12's fast path: the reference it must equal.

Frozen copies of what the fast path changed in emulator/schema.py's value rules and
emulator/ingest.py's process, as at commit 5934049 (per-value dispatch, json for dynamic values,
f-string datetimes); what it left as it was is imported from the emulator itself. test_emulator_equivalence.py checks the fast path against them on
random input; nothing else may import this module.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import zlib
from typing import Any

from emulator.dcr import Dcr
from emulator.ingest import IngestResult, parse_body_json

# What the fast path left as it was is the live code itself, not a copy: only what changed is frozen below.
from emulator.schema import (
    _EXPECTED,
    INT32,
    INT64,
    MAX_FIELD_BYTES,
    Mistyped,
    _integral,
    _json_default,
    excerpt,
    format_timespan,
    json_type_name,
    truncate_utf8,
)
from emulator.server import _TOO_LARGE, _HttpError
from emulator.store import Drop

#: The old parse_body is the live emulator's stdlib reading, kept there for every error message.
parse_body = parse_body_json


def parse_datetime(text: str) -> dt.datetime | None:
    """Parse ISO 8601 (``Z``, an offset or none = UTC) into an aware UTC datetime."""
    text = text.strip()
    if len(text) < 8 or not (text[:4].isascii() and text[:4].isdigit()):
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00:00-05:00 is past the last representable instant
        return None


def format_datetime(value: dt.datetime) -> str:
    """Render a datetime as UTC ISO 8601 with ``Z``, as Log Analytics shows it."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    value = value.astimezone(dt.UTC)
    # not strftime: %Y does not zero-pad years before 1000 on every platform
    date = f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
    text = f"{date}T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def dumps_dynamic(value: Any) -> str:
    """Compact JSON for dynamic values (what KQL's ``tostring(dynamic)`` shows)."""
    text = json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_json_default
    )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from "\ud800" escapes
        text = json.dumps(
            value, ensure_ascii=True, separators=(",", ":"), allow_nan=False, default=_json_default
        )
    return text


def check_input(col_type: str, value: Any) -> Any:
    """Return ``value`` converted for the transform, or raise :class:`Mistyped`.

    Null fits every type. Numbers with an integral value fit int/long (JSON does not
    distinguish ``5`` from ``5.0``); strings never fit numeric columns.
    """
    if value is None:
        return value
    if col_type == "dynamic":
        _check_dynamic(value, "mistyped")
        return value
    if col_type == "string":
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise Mistyped("mistyped: string contains an unpaired surrogate escape") from None
            return value
    elif col_type in ("int", "long"):
        lo, hi = INT32 if col_type == "int" else INT64
        number = _integral(value)
        if number is not None:
            if lo <= number <= hi:
                return number
            raise Mistyped(f"mistyped: {number} is out of range for {col_type} ({_EXPECTED[col_type]})")
    elif col_type == "real":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if math.isfinite(number):
                return number
            raise Mistyped("mistyped: real must be finite")
    elif col_type == "boolean":
        if isinstance(value, bool):
            return value
    elif col_type == "datetime":
        if isinstance(value, str):
            parsed = parse_datetime(value)
            if parsed is not None:
                return parsed
            raise Mistyped("mistyped: datetime string is not ISO 8601")
    else:
        raise Mistyped(f"unknown column type {col_type!r}")
    raise Mistyped(f"mistyped: expected {_EXPECTED[col_type]} for {col_type}, got {json_type_name(value)}")


def _check_dynamic(value: Any, label: str) -> str:
    try:
        return dumps_dynamic(value)
    except ValueError:  # 1e999 parses to infinity, which JSON (and the table) cannot hold
        raise Mistyped(f"{label}: dynamic value contains a number out of range") from None
    except (TypeError, RecursionError):
        raise Mistyped(f"{label}: dynamic value cannot be serialized") from None


def encode_output(col_type: str, value: Any) -> Any:
    """Convert a transform output value to its SQLite form, or raise :class:`Mistyped`.

    Output column types are inferred from the KQL, so a mismatch here means an
    expression produced a value of another type (e.g. ``iff`` with mixed branches).
    """
    if value is None:
        return None
    if col_type == "dynamic":
        return _check_dynamic(value, "mistyped output")
    if col_type == "string":
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise Mistyped("mistyped output: string contains an unpaired surrogate escape") from None
            return value
    elif col_type in ("int", "long"):
        lo, hi = INT32 if col_type == "int" else INT64
        number = _integral(value)
        if number is not None and lo <= number <= hi:
            return number
    elif col_type == "real":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if math.isfinite(number):
                return number
    elif col_type == "boolean":
        if isinstance(value, bool):
            return int(value)
    elif col_type == "datetime":
        if isinstance(value, dt.datetime):
            return format_datetime(value)
        if isinstance(value, str) and (parsed := parse_datetime(value)) is not None:
            return format_datetime(parsed)
    elif col_type == "timespan" and isinstance(value, dt.timedelta):
        return format_timespan(value)
    raise Mistyped(f"mistyped output: {json_type_name(value)} value does not fit column type {col_type}")


def process(dcr: Dcr, stream: str, records: list[dict[str, Any]]) -> IngestResult:
    """Type-check each record against the stream, run every data flow, encode output rows."""
    declared = dict((c.name, c.type) for c in dcr.streams[stream])
    by_lower = {name.lower(): name for name in declared}
    flows = dcr.flows_for(stream)
    tables = ",".join(sorted({flow.table for flow in flows})) or None
    result = IngestResult(rows=len(records))
    for index, record in enumerate(records):
        row: dict[str, Any] = dict.fromkeys(declared)
        for key, value in record.items():
            typ = declared.get(key)
            if typ is None:
                hint = by_lower.get(key.lower())
                reason = "undeclared column" + (f" (did you mean {hint!r}?)" if hint else "")
                result.drops.append(Drop(index, key, reason, excerpt(value), tables))
                continue
            try:
                row[key] = check_input(typ, value)
            except Mistyped as exc:
                result.drops.append(Drop(index, key, str(exc), excerpt(value), tables))
        for flow in flows:
            transform = flow.transforms[stream]
            try:
                out = transform.apply(row)
            except Exception as exc:  # an emulator bug must not take the request down
                result.drops.append(Drop(index, "", f"transform error: {exc!r}", None, flow.table))
                continue
            if out is None:
                continue  # filtered by 'where': intended, not a drop
            encoded: dict[str, Any] = {}
            for name, typ in transform.output_columns:
                value = out.get(name)
                try:
                    stored = encode_output(typ, value)
                except Mistyped as exc:
                    result.drops.append(Drop(index, name, str(exc), excerpt(value), flow.table))
                    stored = None
                if isinstance(stored, str) and typ in ("string", "dynamic"):
                    cut = truncate_utf8(stored)
                    if cut is not None:
                        reason = (
                            f"truncated: value over {MAX_FIELD_BYTES} bytes (the service's 64 KB field limit)"
                        )
                        result.drops.append(Drop(index, name, reason, excerpt(stored), flow.table))
                        stored = cut
                encoded[name] = stored
            result.rows_by_table.setdefault(flow.table, []).append(encoded)
            result.rows_written += 1
    return result


def gunzip_bounded(data: bytes, limit: int) -> bytes:
    """Gunzip (possibly multi-member) without ever holding more than ``limit`` + 1 bytes.

    Raises 413 when the decompressed body is over ``limit`` and 400 when it is not gzip.
    """
    out = bytearray()
    rest = data
    try:
        while True:
            inflater = zlib.decompressobj(wbits=31)
            chunk = inflater.decompress(rest, limit + 1 - len(out))
            out += chunk
            if len(out) > limit or inflater.unconsumed_tail:
                raise _HttpError(413, "ContentLengthLimitExceeded", _TOO_LARGE)
            if not inflater.eof:
                raise _HttpError(400, "InvalidContentEncoding", "The gzip body is truncated.")
            rest = inflater.unused_data
            if not rest:
                return bytes(out)
    except zlib.error as exc:
        raise _HttpError(400, "InvalidContentEncoding", f"The body is not valid gzip: {exc}.") from None
