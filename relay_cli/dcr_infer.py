"""Infer a DCR stream's columns from sample events (``relay dcr init``).

Why: wrong column types are the first cause of "204 but no rows" (the service drops values that
do not fit the declared type without a word). The types chosen here are the ones the relay's own
coercion (shared.normalize) accepts for every sample value, so what was inferred from the samples
lands when the same samples are sent. Pure functions, no I/O: the command lives in relay_cli.dcr.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.schema import MAX_COLUMNS, RESERVED_COLUMNS
from shared.timeparse import TimeFormatError, parse_time

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
MAX_EXACT_REAL_INT = 2**53  # larger integers cannot round-trip through a double
MAX_NAME = 45
TIME_COLUMN = "TimeGenerated"
EXTRA_COLUMN = "AdditionalFields"
AZURE_TABLE_SUFFIX = "_CF"  # custom columns added to an Azure (Microsoft-) table end in _CF
RESERVED_PREFIX = "Original"  # `id` -> OriginalId: the service reserves the plain names

_NUMERIC = ("int", "long", "bigint", "real")
_ISO_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}([.,]\d+)?)?([Zz]|[+-]\d{2}(:?\d{2})?)?"
)
_INT_TEXT = re.compile(r"[+-]?\d+")
_REAL_TEXT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")
_WORD = re.compile(r"[A-Za-z0-9]+")


class InferenceError(ValueError):
    """The samples or options cannot give a stream; the message says what to change."""


@dataclass
class _Field:
    key: str
    first_seen: int
    count: int = 0
    kinds: set[str] = field(default_factory=set)
    text_only: bool = True  # every value came from a CSV cell (text that only looks typed)
    max_abs_int: int = 0
    example_by_kind: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InferredColumn:
    """One column of the stream; ``path`` is the event key it is read from (None: computed)."""

    name: str
    type: str
    path: str | None
    null_only: bool = False  # no value seen: the type is a guess, never a conflict


@dataclass
class Inference:
    """Columns in declaration order, what the relay route needs, and what the user must know."""

    columns: list[InferredColumn]
    samples: int
    time_field: str | None = None
    extra: str | None = None
    warnings: list[str] = field(default_factory=list)

    def as_dcr_columns(self) -> list[dict[str, str]]:
        return [{"name": c.name, "type": c.type} for c in self.columns]


def classify(value: Any, from_text: bool = False) -> str:
    """Kind of one value: null, boolean, int, long, bigint, real, datetime, string or dynamic.

    ``from_text``: the value is a CSV cell, so "200" is read as the number the relay coerces it to.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return _int_kind(value)
    if isinstance(value, float):
        return "real" if math.isfinite(value) else "string"
    if isinstance(value, (dict, list)):
        return "dynamic"
    if not isinstance(value, str):
        return "string"
    text = value.strip()
    if from_text:
        if _INT_TEXT.fullmatch(text):
            return _int_kind(int(text))
        if _REAL_TEXT.fullmatch(text) and math.isfinite(float(text)):
            return "real"
        if text.lower() in ("true", "false"):
            return "boolean"
    return "datetime" if is_datetime_text(text) else "string"


def _int_kind(number: int) -> str:
    if INT32[0] <= number <= INT32[1]:
        return "int"
    if INT64[0] <= number <= INT64[1]:
        return "long"
    return "bigint"


def is_datetime_text(text: str) -> bool:
    """An ISO 8601 / RFC 3339 date and time that the relay's time parser also reads."""
    if not _ISO_TIME.fullmatch(text):
        return False
    try:
        parse_time(text)
    except TimeFormatError:
        return False
    return True


def column_type(kinds: set[str], max_abs_int: int, text_only: bool) -> tuple[str, str | None]:
    """The narrowest declared type every observed kind fits, and a warning when it is a fallback."""
    kinds = kinds - {"null"}
    if not kinds:
        return "string", "only null values in the samples: declared string"
    if kinds <= set(_NUMERIC):
        if "real" in kinds:
            if max_abs_int > MAX_EXACT_REAL_INT:
                return "string", ("integers beyond 2^53 mixed with decimals: a real would round them, "
                                  "declared string (exact text)")
            return "real", None
        if "bigint" in kinds:
            return "string", "integers beyond 64 bits: no numeric column holds them, declared string (exact text)"
        return ("long" if "long" in kinds else "int"), None
    if len(kinds) == 1:
        return next(iter(kinds)), None
    if kinds == {"datetime", "string"}:
        return "string", None
    if text_only:
        return "string", None  # CSV text that sometimes looks like a number is text
    return "dynamic", f"mixed kinds ({', '.join(sorted(kinds))}): declared dynamic, each value kept as sent"


def sanitize(key: str) -> str:
    """A column name from an event key: PascalCase words of letters and digits, a letter first."""
    words = _WORD.findall(key)
    name = "".join(word[0].upper() + word[1:] for word in words) or "Field"
    if not name[0].isalpha():
        name = "Field" + name
    return name


def _fit(base: str, suffix: str, limit: int) -> str:
    return base[: limit - len(suffix)] + suffix


def name_columns(keys: Iterable[str], azure_table: bool | str,
                 taken: Iterable[str] = ()) -> tuple[dict[str, str], list[str]]:
    """Column name per key: valid, not reserved, unique (case-insensitively), ``_CF`` for Azure tables,
    except a key that is one of the Azure table's own standard columns (``azure_table`` naming the table,
    its columns shipped in ``shared/data/azure_table_columns.json``): it fills that column.

    ``taken`` are names already used (TimeGenerated, the extra column). Returns names and notes.
    """
    from shared.dcr_rules import azure_table_columns

    suffix = AZURE_TABLE_SUFFIX if azure_table else ""
    standard = (azure_table_columns().standard(azure_table) or frozenset()) if isinstance(azure_table, str) else (
        frozenset())
    reserved = {name.lower() for name in (*RESERVED_COLUMNS, TIME_COLUMN)}
    used = {name.lower() for name in taken}
    names: dict[str, str] = {}
    notes: list[str] = []
    for key in keys:
        base = sanitize(key)
        if base.lower() in reserved:
            notes.append(f"field {key!r}: {base} is reserved by Azure Monitor, column named {RESERVED_PREFIX}{base}")
            base = RESERVED_PREFIX + base
        if base in standard and base.lower() not in used:
            notes.append(f"field {key!r}: fills {base}, a standard column of {azure_table} (no {AZURE_TABLE_SUFFIX})")
            used.add(base.lower())
            names[key] = base
            continue
        name = _fit(base, suffix, MAX_NAME)
        number = 1
        while name.lower() in used:
            number += 1
            name = _fit(base, f"_{number}{suffix}", MAX_NAME)
        if number > 1:
            notes.append(f"field {key!r}: its name collides with another field's after sanitizing, column named {name}")
        used.add(name.lower())
        names[key] = name
    return names, notes


def value_at(event: Any, path: str) -> Any:
    """The value at a dotted path, as the relay's route map reads it (None when absent)."""
    value = event
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _check_time_field(samples: list[tuple[Any, bool]], time_field: str) -> int:
    """Every sample that has the time field must have a time the relay can read; returns how many have it."""
    present = 0
    for index, (event, _) in enumerate(samples):
        value = value_at(event, time_field)
        if value is None:
            continue
        present += 1
        try:
            parse_time(value)
        except TimeFormatError as error:
            raise InferenceError(f"--time-field {time_field!r}: sample #{index + 1}: {error}") from None
    if not present:
        raise InferenceError(f"--time-field {time_field!r} is in none of the {len(samples)} sample(s)")
    return present


def infer(samples: Iterable[tuple[Any, bool]], *, azure_table: bool | str = False, time_field: str | None = None,
          max_columns: int = MAX_COLUMNS) -> Inference:
    """Infer the stream's columns from ``(event, from_text)`` samples (from_text: a CSV row)."""
    events = list(samples)
    fields: dict[str, _Field] = {}
    not_objects = 0
    for event, from_text in events:
        if not isinstance(event, dict):
            not_objects += 1
            continue
        for key, value in event.items():
            stats = fields.get(key)
            if stats is None:
                stats = fields[key] = _Field(key, len(fields))
            stats.count += 1
            kind = classify(value, from_text)
            stats.kinds.add(kind)
            stats.example_by_kind.setdefault(kind, value)
            stats.text_only = stats.text_only and from_text
            if kind in ("int", "long", "bigint"):
                number = int(value) if not isinstance(value, str) else int(value.strip())
                stats.max_abs_int = max(stats.max_abs_int, abs(number))
    if not events:
        raise InferenceError("no sample events: give at least one file with one event")
    if not_objects == len(events):
        raise InferenceError("no sample is a JSON object: a stream's rows are objects of fields")
    warnings = [f"{not_objects} sample(s) are not JSON objects and were skipped"] if not_objects else []
    if time_field is not None:
        present = _check_time_field(events, time_field)
        if present < len(events) - not_objects:
            warnings.append(f"--time-field {time_field!r} is missing in {len(events) - not_objects - present} "
                            "sample(s): those rows get the ingestion time")
        if "." not in time_field:
            fields.pop(time_field, None)  # it becomes TimeGenerated
    else:
        for key in list(fields):
            if sanitize(key).lower() == TIME_COLUMN.lower():
                time_field = key  # the events carry TimeGenerated themselves
                _check_time_field(events, key)
                fields.pop(key)
    ordered = sorted(fields.values(), key=lambda f: f.first_seen)
    extra: str | None = None
    room = max_columns - 1  # TimeGenerated
    if len(ordered) > room:
        room -= 1  # the extra column
        kept = sorted(ordered, key=lambda f: (-f.count, f.first_seen))[:room]
        left = [f.key for f in ordered if f not in kept]
        ordered = [f for f in ordered if f in kept]
        extra = EXTRA_COLUMN
        while any(sanitize(f.key).lower() == extra.lower() for f in ordered):
            extra = "Relay" + extra
        shown = ", ".join(repr(k) for k in left[:5]) + (", ..." if len(left) > 5 else "")
        warnings.append(
            f"{len(fields)} fields, but a stream holds at most {max_columns} columns: the {room} most frequent "
            f"fields are columns, the other {len(left)} ({shown}) are kept in the dynamic column {extra} "
            "(the route's extra:)"
        )
    taken = [TIME_COLUMN] + ([extra] if extra else [])
    names, notes = name_columns((f.key for f in ordered), azure_table, taken)
    warnings.extend(notes)
    columns = [InferredColumn(TIME_COLUMN, "datetime", None)]
    for stats in ordered:
        kind, warning = column_type(stats.kinds, stats.max_abs_int, stats.text_only)
        if warning:
            warnings.append(f"field {stats.key!r}: {warning}")
        columns.append(InferredColumn(names[stats.key], kind, stats.key, stats.kinds <= {"null"}))
    if extra:
        columns.append(InferredColumn(extra + (AZURE_TABLE_SUFFIX if azure_table else ""), "dynamic", None))
        extra = columns[-1].name
    return Inference(columns, len(events), time_field, extra, warnings)


# --- types of an existing column vs what the samples need --------------------------------------

#: declared type -> inferred types whose every value the relay coerces into it without loss
_ACCEPTS: Mapping[str, frozenset[str]] = {
    "string": frozenset({"string", "int", "long", "real", "boolean", "datetime", "dynamic"}),
    "dynamic": frozenset({"string", "int", "long", "real", "boolean", "datetime", "dynamic"}),
    "real": frozenset({"real", "int", "long"}),
    "long": frozenset({"long", "int"}),
    "int": frozenset({"int"}),
    "boolean": frozenset({"boolean"}),
    "datetime": frozenset({"datetime"}),
}


def fits(declared: str, inferred: str) -> bool:
    """Can a column declared ``declared`` take the values that made the samples ``inferred``?"""
    return inferred in _ACCEPTS.get(declared, frozenset())
