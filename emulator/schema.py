"""Column types of DCR stream declarations and how values are checked and stored.

The real service silently nulls a value that does not fit its declared column type;
the emulator applies the same rules but says which value and why, so the relay's
normalizer can be tested against them.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import re
from collections.abc import Callable
from typing import Any

import orjson

COLUMN_TYPES = ("string", "int", "long", "real", "boolean", "datetime", "dynamic")
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
# The service truncates field values over 64 KB.
MAX_FIELD_BYTES = 64 * 1024

_EXPECTED = {
    "string": "a JSON string",
    "int": "a 32-bit signed integer",
    "long": "a 64-bit signed integer",
    "real": "a finite number",
    "boolean": "a JSON boolean",
    "datetime": "an ISO 8601 date-time string",
    "dynamic": "any JSON value",
}


class Mistyped(ValueError):
    """A value does not fit its column type; the message is the drop reason."""


def json_type_name(value: Any) -> str:
    """Name a decoded JSON value the way a JSON author would."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def parse_datetime(text: str) -> dt.datetime | None:
    """Parse ISO 8601 (``Z``, an offset or none = UTC) into an aware UTC datetime."""
    text = text.strip()
    if len(text) < 8 or not (text[:4].isascii() and text[:4].isdigit()):
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    tz = value.tzinfo
    if tz is None:
        return value.replace(tzinfo=dt.UTC)
    if tz is dt.UTC:  # "Z" and "+00:00" parse to this very object: already UTC
        return value
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00:00-05:00 is past the last representable instant
        return None


def format_datetime(value: dt.datetime) -> str:
    """Render a datetime as UTC ISO 8601 with ``Z``, as Log Analytics shows it."""
    tz = value.tzinfo
    if tz is not None and tz is not dt.UTC:
        value = value.astimezone(dt.UTC)
    # isoformat (C), not strftime: %Y does not zero-pad years before 1000 on every platform;
    # naive isoformat is YYYY-MM-DDTHH:MM:SS plus .ffffff only when there are microseconds
    text = value.replace(tzinfo=None).isoformat()
    if value.microsecond:
        text = text.rstrip("0")
    return text + "Z"


def format_timespan(value: dt.timedelta) -> str:
    """Render a timespan like KQL: ``[-][d.]hh:mm:ss[.fffffff]``."""
    total_us = value.days * 86_400_000_000 + value.seconds * 1_000_000 + value.microseconds
    sign = "-" if total_us < 0 else ""
    total_us = abs(total_us)
    days, rest = divmod(total_us, 86_400_000_000)
    hours, rest = divmod(rest, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds, micros = divmod(rest, 1_000_000)
    text = f"{sign}{f'{days}.' if days else ''}{hours:02d}:{minutes:02d}:{seconds:02d}"
    if micros:
        text += f".{micros:06d}0"
    return text


# orjson agrees with json.dumps(ensure_ascii=False, separators=(",", ":")) on everything JSON
# can hold except: NaN/Infinity (orjson writes null, json raises), floats between about 1e-10
# and 1e-4 (orjson writes 1e-7 or 0.00001, repr 1e-07 and 1e-05), integers beyond 64 bits,
# lone surrogates, non-str keys, depth over 254 and other types (orjson raises). A match of
# this pattern (it may also hit inside strings: then only slower) sends the value to json.
_ORJSON_DIFFERS = re.compile(rb"null|0\.0000|e-\d(?!\d)")
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps_dynamic(value: Any) -> str:
    """Compact JSON for dynamic values (what KQL's ``tostring(dynamic)`` shows).

    The text is exactly :func:`dumps_dynamic_json`'s (same bytes, same exceptions); orjson
    makes it ~10x faster, and any value where orjson might write something else goes to json.
    """
    try:
        data = orjson.dumps(value, default=_json_default, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return dumps_dynamic_json(value)
    if (b"null" in data or b"e-" in data or b"0.0000" in data) and _ORJSON_DIFFERS.search(data):
        return dumps_dynamic_json(value)
    return data.decode("utf-8")


def dynamic_fast_path() -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    """:func:`dumps_dynamic`'s orjson step and its guard, for callers that inline it.

    ``dumps(value)`` may raise TypeError; when it does not, its bytes are the text unless
    one of b"null", b"e-", b"0.0000" is in them and ``differs(bytes)`` is true.
    """
    return functools.partial(orjson.dumps, default=_json_default, option=_ORJSON_OPTIONS), _ORJSON_DIFFERS.search


def dumps_dynamic_json(value: Any) -> str:
    """The reference rendering of :func:`dumps_dynamic`, with the standard library."""
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


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, dt.timedelta):
        return format_timespan(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def check_input(col_type: str, value: Any) -> Any:
    """Return ``value`` converted for the transform, or raise :class:`Mistyped`.

    Null fits every type. Numbers with an integral value fit int/long (JSON does not
    distinguish ``5`` from ``5.0``); strings never fit numeric columns.
    """
    if value is None:
        return value
    if col_type == "dynamic":
        check_dynamic(value, "mistyped")
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


def check_dynamic(value: Any, label: str) -> str:
    """The stored text of a dynamic value, or :class:`Mistyped` (``label: …``) if it has none."""
    try:
        return dumps_dynamic(value)
    except ValueError:  # 1e999 parses to infinity, which JSON (and the table) cannot hold
        raise Mistyped(f"{label}: dynamic value contains a number out of range") from None
    except (TypeError, RecursionError):
        raise Mistyped(f"{label}: dynamic value cannot be serialized") from None


def _integral(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def encode_output(col_type: str, value: Any) -> Any:
    """Convert a transform output value to its SQLite form, or raise :class:`Mistyped`.

    Output column types are inferred from the KQL, so a mismatch here means an
    expression produced a value of another type (e.g. ``iff`` with mixed branches).
    """
    if value is None:
        return None
    if col_type == "dynamic":
        return check_dynamic(value, "mistyped output")
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


def decode_stored(col_type: str, value: Any) -> Any:
    """Turn a stored SQLite value back into what a query of the table would return."""
    if value is None:
        return None
    if col_type == "boolean":
        return bool(value)
    if col_type == "dynamic" and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value  # truncated at 64 KB: no longer JSON, return the text
    return value


def truncate_utf8(text: str, limit: int = MAX_FIELD_BYTES) -> str | None:
    """Return ``text`` cut to ``limit`` UTF-8 bytes, or None when it already fits."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return None
    return data[:limit].decode("utf-8", "ignore")


def excerpt(value: Any, limit: int = 200) -> str:
    """A short printable rendering of a value for the drop report."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = dumps_dynamic(value)
        except (TypeError, ValueError):
            text = repr(value)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Per-column checkers, chosen once per stream (ingest.py's plans): each handles the common
# exact-type case inline and hands everything else (null, subclasses, out-of-range numbers,
# wrong types) to check_input / encode_output, so results and drop reasons are theirs.
Checker = Callable[[Any], Any]
# a str of at most this many code points is at most MAX_FIELD_BYTES in UTF-8 (4 bytes each)
SAFE_FIELD_CHARS = MAX_FIELD_BYTES // 4


def _exact_type(col_type: str, fallback: Callable[[str, Any], Any]) -> Checker | None:
    """The shortcut input and output share: a string, integer or real value already exactly of the column's
    type passes as it is; anything else goes to ``fallback(col_type, value)``. None for other types."""
    if col_type == "string":

        def check_string(value: Any) -> Any:
            if value.__class__ is str and value.isascii():
                return value
            return fallback("string", value)

        return check_string
    if col_type in ("int", "long"):
        lo, hi = INT32 if col_type == "int" else INT64

        def check_integer(value: Any) -> Any:
            if value.__class__ is int and lo <= value <= hi:
                return value
            return fallback(col_type, value)

        return check_integer
    if col_type == "real":

        def check_real(value: Any) -> Any:
            if value.__class__ is float and value - value == 0.0:  # finite: inf - inf and nan are nan
                return value
            return fallback("real", value)

        return check_real
    return None


def input_checker(col_type: str) -> Checker:
    """A function equal to ``lambda value: check_input(col_type, value)``, faster on good values."""
    exact = _exact_type(col_type, check_input)
    if exact is not None:
        return exact
    if col_type == "boolean":

        def check_boolean(value: Any) -> Any:
            if value is True or value is False:
                return value
            return check_input("boolean", value)

        return check_boolean
    if col_type == "datetime":

        def check_datetime(value: Any) -> Any:
            if value.__class__ is str and (parsed := parse_datetime(value)) is not None:
                return parsed
            return check_input("datetime", value)

        return check_datetime
    return lambda value: check_input(col_type, value)


def output_encoder(col_type: str) -> Checker:
    """A function equal to ``lambda value: encode_output(col_type, value)``, faster on good values."""
    exact = _exact_type(col_type, encode_output)
    if exact is not None:
        return exact
    if col_type == "boolean":

        def encode_boolean(value: Any) -> Any:
            if value is True:
                return 1
            if value is False:
                return 0
            return encode_output("boolean", value)

        return encode_boolean
    if col_type == "datetime":

        def encode_datetime(value: Any) -> Any:
            if value.__class__ is dt.datetime:
                return format_datetime(value)
            return encode_output("datetime", value)

        return encode_datetime
    return lambda value: encode_output(col_type, value)
