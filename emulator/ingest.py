"""What the service does with an accepted request body: parse, type-check, transform, route.

Kept apart from HTTP so the rules can be read (and tested) in one place. Everything the
real service would drop silently is returned as a :class:`~emulator.store.Drop`.

The rules are schema.check_input / encode_output applied value by value (:func:`process`).
:func:`ingest_body`, what the server calls, gives the same result faster: per stream, a
plan built once (:func:`_plan`) holds column checkers, a msgspec Struct that decodes a
record straight into its typed columns, and per data flow whether it only filters rows
and keeps columns; records that do not fit take the value-by-value path.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from emulator import schema
from emulator.dcr import Dcr
from emulator.kql import Transform
from emulator.schema import (
    INT32,
    INT64,
    MAX_FIELD_BYTES,
    SAFE_FIELD_CHARS,
    Checker,
    Mistyped,
    check_dynamic,
    excerpt,
    format_datetime,
    input_checker,
    json_type_name,
    output_encoder,
    truncate_utf8,
)
from emulator.store import Drop

try:  # a dev dependency (requirements-dev.txt), like the emulator itself
    import msgspec
except ImportError:  # pragma: no cover - the standard library path gives the same results
    msgspec = None
    _decode = _decode_raw_list = _astuple = None
else:
    _decode = msgspec.json.Decoder().decode
    _decode_raw_list = msgspec.json.Decoder(list[msgspec.Raw]).decode
    _astuple = msgspec.structs.astuple


class IngestError(Exception):
    """The request is rejected as a whole with an HTTP error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class IngestResult:
    rows: int = 0
    rows_written: int = 0
    rows_by_table: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    drops: list[Drop] = field(default_factory=list)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_body(data: bytes) -> list[dict[str, Any]]:
    """Decode a body as a UTF-8 JSON array of objects, as the service requires.

    msgspec decodes the bodies it accepts to the same values as :func:`json.loads` (integers
    of any size stay exact, duplicate keys keep the last value in the first position); any
    body it refuses (invalid JSON or UTF-8, NaN, 1e999, lone surrogate escapes, deep nesting)
    goes through :func:`parse_body_json`, which gives the answer and the error message.
    """
    if _decode is not None:
        try:
            document = _decode(data)
        except Exception:
            return parse_body_json(data)
        if document.__class__ is list and all(element.__class__ is dict for element in document):
            return document
    return parse_body_json(data)


def parse_body_json(data: bytes) -> list[dict[str, Any]]:
    """:func:`parse_body` with the standard library: the reference, and every error message."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(
            400, "InvalidJson", f"The request body is not valid UTF-8 (byte {exc.start})."
        ) from None
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise IngestError(400, "InvalidJson", "The request body is nested too deeply.") from None
    except ValueError as exc:
        raise IngestError(400, "InvalidJson", f"The request body is not valid JSON: {exc}") from None
    if not isinstance(document, list):
        raise IngestError(
            400,
            "InvalidPayload",
            f"The request body must be a JSON array of objects, got {json_type_name(document)}.",
        )
    for index, element in enumerate(document):
        if not isinstance(element, dict):
            raise IngestError(
                400,
                "InvalidPayload",
                f"Element {index} of the array is {json_type_name(element)}, not an object.",
            )
    return document


_TRUNCATED = f"truncated: value over {MAX_FIELD_BYTES} bytes (the service's 64 KB field limit)"


# How one output column of a data flow is encoded for SQLite: (name, encoder, reuse, truncatable).
# ``reuse`` applies when the output has the name and type of an input column and the transform
# passed that column's value through unchanged (the same object): _SAME stores the checked value
# itself (string, int, long, real: encode_output returns what check_input returned), _STORED the
# stored form made while checking it (datetime, dynamic), _ENCODE runs the encoder.
# ``truncatable``: string and dynamic values are cut at 64 KB.
_ENCODE, _SAME, _STORED = 0, 1, 2
_Output = tuple[str, Checker, int, bool]
_REUSE = {"string": _SAME, "int": _SAME, "long": _SAME, "real": _SAME, "datetime": _STORED, "dynamic": _STORED}


@dataclass(frozen=True)
class _Flow:
    table: str
    transform: Transform
    outputs: tuple[_Output, ...]
    # the output columns when each has the name and type of an input column, else None
    passthrough: tuple[str, ...] | None
    # when the transform only filters rows and keeps columns (Transform.filters): whether it
    # keeps a row (True) or not, from its 'where' predicates
    keep: Callable[[dict[str, Any]], Any] | None
    all_columns: bool  # passthrough is every input column in declared order


@dataclass(frozen=True)
class _Typed:
    """A stream's typed decoder: a record that decodes fits every column's JSON type."""

    decode: Callable[[bytes], Any]  # -> a Struct with the declared columns, in declared order
    to_row: Callable[[Any], dict[str, Any]]  # that Struct -> {column: value}, in declared order
    names: tuple[str, ...]
    post: tuple[tuple[str, Callable[[Any], tuple[Any, Any]]], ...]  # datetime/dynamic storers
    booleans: tuple[str, ...]  # stored as 1/0
    dynamics: tuple[str, ...]  # stored as JSON text, which may reach 64 KB


def _typed(declared: dict[str, str]) -> _Typed | None:
    """A msgspec Struct per stream; each field takes exactly what input_checker passes unchanged.

    string: str (msgspec strings are valid UTF-8, never lone surrogates) of at most
    SAFE_FIELD_CHARS characters, so never truncated (longer ones go the per-value way, which
    truncates and reports); int/long: int within bounds (5.0 goes the per-value way); real:
    float, ints converted exactly as float() does (1e999 and NaN do not decode); boolean:
    bool; datetime: str, parsed by the storer; dynamic: any value, serialized by the storer.
    Missing keys and nulls are None.
    """
    if msgspec is None:
        return None
    short = Annotated[str, msgspec.Meta(max_length=SAFE_FIELD_CHARS)]  # can never reach 64 KB
    kinds: dict[str, Any] = {
        "string": short,
        "int": Annotated[int, msgspec.Meta(ge=INT32[0], le=INT32[1])],
        "long": Annotated[int, msgspec.Meta(ge=INT64[0], le=INT64[1])],
        "real": float,
        "boolean": bool,
        "datetime": short,
    }
    types = [Any if (kind := kinds.get(typ)) is None else kind | None for typ in declared.values()]
    names = tuple(declared)
    try:  # fields named as the columns: asdict gives the row, in declared order
        struct = msgspec.defstruct(
            "Record", [(n, t, None) for n, t in zip(names, types, strict=True)], forbid_unknown_fields=True
        )
        to_row: Callable[[Any], dict[str, Any]] = msgspec.structs.asdict
    except (TypeError, ValueError):  # a column name msgspec will not take as a field name
        struct = msgspec.defstruct(
            "Record",
            [(f"f{i}", t, None) for i, t in enumerate(types)],
            rename={f"f{i}": name for i, name in enumerate(names)},
            forbid_unknown_fields=True,
        )

        def to_row(record: Any) -> dict[str, Any]:
            return dict(zip(names, _astuple(record), strict=True))

    return _Typed(
        decode=msgspec.json.Decoder(struct).decode,
        to_row=to_row,
        names=names,
        post=tuple((n, _storer(t)) for n, t in declared.items() if t in ("datetime", "dynamic")),
        booleans=tuple(n for n, t in declared.items() if t == "boolean"),
        dynamics=tuple(n for n, t in declared.items() if t == "dynamic"),
    )


@dataclass(frozen=True)
class _Plan:
    """Everything :func:`process` needs for one stream, computed once per (DCR, stream)."""

    template: dict[str, Any]  # every declared column, None
    checkers: dict[str, Checker]
    # datetime and dynamic columns: value -> (checked value, its stored form), so a value
    # passed through unchanged is parsed/serialized once; the stored form is what encode_output
    # would give for the checked value
    storing: dict[str, Callable[[Any], tuple[Any, Any]]]
    by_lower: dict[str, str]
    flows: tuple[_Flow, ...]
    tables: str | None
    typed: _Typed | None


_TYPED_KINDS = frozenset({"string", "int", "long", "real", "boolean", "datetime", "dynamic"})
_plans: dict[tuple[int, str], tuple[Dcr, _Plan]] = {}


def _plan(dcr: Dcr, stream: str) -> _Plan:
    key = (id(dcr), stream)
    cached = _plans.get(key)
    if cached is not None and cached[0] is dcr:
        return cached[1]
    declared = {c.name: c.type for c in dcr.streams[stream]}
    flows = dcr.flows_for(stream)
    plan_flows = []
    for flow in flows:
        transform = flow.transforms[stream]
        outputs = tuple(
            (
                name,
                output_encoder(typ),
                _REUSE.get(typ, _ENCODE) if declared.get(name) == typ else _ENCODE,
                typ in ("string", "dynamic"),
            )
            for name, typ in transform.output_columns
        )
        same = all(declared.get(name) == typ for name, typ in transform.output_columns)
        passthrough = tuple(name for name, _typ in transform.output_columns) if same else None
        keep = _keep(transform.filters) if passthrough is not None else None
        all_columns = passthrough == tuple(declared)
        plan_flows.append(_Flow(flow.table, transform, outputs, passthrough, keep, all_columns))
    plan = _Plan(
        template=dict.fromkeys(declared),
        checkers={name: input_checker(typ) for name, typ in declared.items()},
        storing={n: _storer(t) for n, t in declared.items() if t in ("datetime", "dynamic")},
        by_lower={name.lower(): name for name in declared},
        flows=tuple(plan_flows),
        tables=",".join(sorted({flow.table for flow in flows})) or None,
        typed=_typed(declared) if set(declared.values()) <= _TYPED_KINDS else None,
    )
    if len(_plans) > 256:  # DCRs are loaded once per emulator; this only bounds test runs
        _plans.clear()
    _plans[key] = (dcr, plan)
    return plan


def process(dcr: Dcr, stream: str, records: list[dict[str, Any]]) -> IngestResult:
    """Type-check each record against the stream, run every data flow, encode output rows.

    Per-column checkers chosen once per stream replace the per-value dispatch, and a value
    the transform passes through unchanged is rendered once; rows, Drop records and their
    order are what the per-value rules (check_input, encode_output) give.
    """
    plan = _plan(dcr, stream)
    out = _Outputs(plan, len(records))
    for index, record in enumerate(records):
        out.emit(index, *_check(plan, index, record, out.drops), False)
    return out.finish()


def ingest_body(dcr: Dcr, stream: str, data: bytes) -> IngestResult:
    """``process(dcr, stream, parse_body(data))``, decoding records straight into typed columns.

    Each record is decoded by msgspec into the stream's columns with their JSON types
    (string, bounded integers, finite reals, booleans; datetime strings parsed here, dynamic
    values as decoded); a record that does not fit (an undeclared column, a mistyped value,
    5.0 for an int, a datetime string that is not one...) is decoded as a plain object and
    checked value by value, so it gets exactly the drops it would get there. A body msgspec
    cannot decode at all goes through parse_body, which gives the values or the 400.

    When every data flow only filters rows and keeps columns (``source``, ``where``,
    ``project`` of columns), a typed record's output rows are its stored forms, appended here.
    """
    plan = _plan(dcr, stream)
    typed = plan.typed
    if typed is None:
        return process(dcr, stream, parse_body(data))
    try:
        raws = _decode_raw_list(data)
    except Exception:
        return process(dcr, stream, parse_body(data))
    decode_typed, to_row, post = typed.decode, typed.to_row, typed.post
    booleans, dynamics = typed.booleans, typed.dynamics
    out = _Outputs(plan, len(raws))
    plain = out.plain
    for index, raw in enumerate(raws):
        try:
            row = to_row(decode_typed(raw))
            cells = row.copy()  # every column's stored form: for most types the value itself
            for name, store in post:
                if (value := row[name]) is not None:
                    row[name], cells[name] = store(value)
            for name in booleans:
                if (value := row[name]) is not None:
                    cells[name] = 1 if value else 0
            # strings are at most SAFE_FIELD_CHARS long (the Struct says so); dynamic texts?
            whole = True
            for name in dynamics:
                if (text := cells[name]) is not None and len(text) > SAFE_FIELD_CHARS:
                    whole = False
        except Exception:  # does not fit the typed path: checked per value
            try:
                record = _decode(raw)
            except Exception:  # not valid JSON as the reference reads it: it decides and explains
                return process(dcr, stream, parse_body(data))
            if record.__class__ is not dict:
                return process(dcr, stream, parse_body(data))
            out.emit(index, *_check(plan, index, record, out.drops), False)
            continue
        if plain is None or not whole:
            out.emit(index, row, cells, whole)
            continue
        shared = False  # cells is some table's output row already
        for flow, keep, table_rows in plain:
            try:
                kept = keep(row)
            except Exception:  # apply() raises it again and the drop says so
                out.emit_flow(flow, table_rows, index, row, cells, True)
                continue
            if kept is True:
                if not table_rows:
                    out.first_rows.append(flow.table)
                if flow.all_columns and not shared:
                    table_rows.append(cells)  # the output row is every column, in order
                    shared = True
                else:
                    names = flow.passthrough
                    table_rows.append(dict(zip(names, map(cells.__getitem__, names), strict=True)))
    return out.finish()


def _check(
    plan: _Plan, index: int, record: dict[str, Any], drops: list[Drop]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The checked row of one record, and the stored forms of its datetime and dynamic values."""
    checkers = plan.checkers
    storing = plan.storing
    row = plan.template.copy()
    stored: dict[str, Any] = {}
    for key, value in record.items():
        check = checkers.get(key)
        if check is None:
            hint = plan.by_lower.get(key.lower())
            reason = "undeclared column" + (f" (did you mean {hint!r}?)" if hint else "")
            drops.append(Drop(index, key, reason, excerpt(value), plan.tables))
            continue
        try:
            if key in storing:
                checked, stored[key] = storing[key](value)
            else:
                checked = check(value)
        except Mistyped as exc:
            drops.append(Drop(index, key, str(exc), excerpt(value), plan.tables))
            continue
        row[key] = checked
    return row, stored


class _Outputs:
    """The output rows and drops of one request, appended record by record in order."""

    def __init__(self, plan: _Plan, count: int) -> None:
        self.result = result = IngestResult(rows=count)
        self.drops = result.drops
        self.tables: list[tuple[_Flow, list[dict[str, Any]]]] = [
            (flow, result.rows_by_table.setdefault(flow.table, [])) for flow in plan.flows
        ]
        self.first_rows: list[str] = []  # tables in the order they got their first row
        # when every flow only filters rows and keeps columns: (flow, keep, rows) for each
        self.plain: list[tuple[_Flow, Callable[[dict[str, Any]], Any], list[dict[str, Any]]]] | None = None
        if all(flow.keep is not None for flow in plan.flows):
            self.plain = [(flow, flow.keep, rows) for flow, rows in self.tables if flow.keep is not None]

    def finish(self) -> IngestResult:
        result = self.result
        result.rows_written = sum(len(rows) for rows in result.rows_by_table.values())  # one list per table
        result.rows_by_table = {table: result.rows_by_table[table] for table in self.first_rows}
        return result

    def emit(self, index: int, row: dict[str, Any], stored: dict[str, Any], whole: bool) -> None:
        """Run every data flow over one checked row.

        ``stored`` holds the stored forms of the row's values: all of them when ``whole``
        (which also means none can reach the 64 KB limit), else the datetime and dynamic ones.
        """
        shared = False
        for flow, table_rows in self.tables:
            if whole and flow.keep is not None and not shared and flow.all_columns:
                try:
                    kept = flow.keep(row)
                except Exception:  # noqa: S110 - emit_flow's apply() raises it again and reports it
                    pass
                else:
                    if kept is True:
                        if not table_rows:
                            self.first_rows.append(flow.table)
                        table_rows.append(stored)  # the output row is every column, in order
                        shared = True
                    continue
            self.emit_flow(flow, table_rows, index, row, stored, whole)

    def emit_flow(
        self,
        flow: _Flow,
        table_rows: list[dict[str, Any]],
        index: int,
        row: dict[str, Any],
        stored: dict[str, Any],
        whole: bool,
    ) -> None:
        """Run one data flow over one checked row (see :meth:`emit`)."""
        drops = self.drops
        try:
            out = flow.transform.apply(row)
        except Exception as exc:  # an emulator bug must not take the request down
            drops.append(Drop(index, "", f"transform error: {exc!r}", None, flow.table))
            return
        if out is None:
            return  # filtered by 'where': intended, not a drop
        names = flow.passthrough
        if whole and names is not None and all(map(operator.is_, map(out.get, names), map(row.__getitem__, names))):
            encoded = dict(zip(names, map(stored.__getitem__, names), strict=True))
        else:
            encoded = {}
            for name, encode, reuse, truncatable in flow.outputs:
                value = out.get(name)
                if value is None:
                    encoded[name] = None
                    continue
                if reuse and value is row[name]:
                    cell = value if reuse == _SAME else stored[name]
                else:
                    try:
                        cell = encode(value)
                    except Mistyped as exc:
                        drops.append(Drop(index, name, str(exc), excerpt(value), flow.table))
                        cell = None
                if truncatable and isinstance(cell, str) and len(cell) > SAFE_FIELD_CHARS:
                    cut = truncate_utf8(cell)
                    if cut is not None:
                        drops.append(Drop(index, name, _TRUNCATED, excerpt(cell), flow.table))
                        cell = cut
                encoded[name] = cell
        if not table_rows:
            self.first_rows.append(flow.table)
        table_rows.append(encoded)


def _keep(filters: tuple[Callable[[dict[str, Any]], Any], ...] | None) -> Callable[[dict[str, Any]], Any] | None:
    """One function for a transform's 'where' predicates: True when each says True, in order."""
    if filters is None:
        return None
    if not filters:
        return lambda _row: True
    if len(filters) == 1:
        return filters[0]  # the caller compares with True
    return lambda row: all(predicate(row) is True for predicate in filters)


def _storer(col_type: str) -> Callable[[Any], tuple[Any, Any]]:
    if col_type == "dynamic":
        fast_dumps, differs = schema.dynamic_fast_path()

        def store_dynamic(value: Any) -> tuple[Any, Any]:
            if value is None:
                return None, None
            return value, check_dynamic(value, "mistyped")  # check_input's check, keeping the text

        def store_dynamic_fast(value: Any) -> tuple[Any, Any]:
            # schema.dumps_dynamic's orjson step inline; whatever it would refuse or doubt goes
            # through check_dynamic (the same text, or Mistyped with check_input's reason)
            try:
                data = fast_dumps(value)
            except TypeError:
                return store_dynamic(value)
            if (b"null" in data or b"e-" in data or b"0.0000" in data) and differs(data):
                return store_dynamic(value)
            return value, data.decode("utf-8")

        return store_dynamic_fast

        return store_dynamic
    check = input_checker(col_type)

    def store_datetime(value: Any) -> tuple[Any, Any]:
        if value.__class__ is str and (match := _PLAIN_UTC.fullmatch(value)) is not None:
            # parse_datetime(value), without the checks the pattern already made
            try:
                parsed = _fromisoformat(value)
            except ValueError:  # 2024-02-30 and the like
                parsed = None
            if parsed is not None:
                tz = parsed.tzinfo
                if tz is None:
                    parsed = parsed.replace(tzinfo=dt.UTC)
                elif tz is not dt.UTC:
                    parsed = parsed.astimezone(dt.UTC)  # -00:00
                # the text already says what format_datetime(parsed) would: no formatting needed
                date_time, fraction = match.groups()
                if fraction and (fraction := fraction.rstrip("0")):
                    return parsed, f"{date_time}.{fraction}Z"
                return parsed, date_time + "Z"
        checked = check(value)
        return checked, None if checked is None else format_datetime(checked)

    return store_datetime


_fromisoformat = dt.datetime.fromisoformat
# ISO 8601 already in UTC with at most 6 fraction digits: format_datetime of its parse is the
# date and time as written, the fraction without trailing zeros, then "Z"
_PLAIN_UTC = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,6}))?(?:Z|[+-]00:00)?")
