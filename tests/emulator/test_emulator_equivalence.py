"""The emulator's fast ingest path gives exactly what the previous per-value rules gave.

emu_reference.py holds those rules as they were (json decoding, check_input/encode_output
dispatch per value, json.dumps for dynamic values, f-string datetimes). Random values,
records and whole bodies go through both; rows, Drop records (and their order), stored
values (compared by repr, so 1 vs 1.0 and 0.0 vs -0.0 count) and 400s must be the same.
"""

from __future__ import annotations

import datetime as dt
import json
import math

import emu_reference as ref
import pytest
from emu_support import EVENT_COLUMNS, RELAY_DCR, TEST_DCR, write_dcr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator import schema
from emulator.dcr import load_dcr
from emulator.ingest import IngestError, ingest_body, parse_body, process

TYPES = ("string", "int", "long", "real", "boolean", "datetime", "dynamic")
FLOATS = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.floats(min_value=-1e-3, max_value=1e-3)  # where orjson and repr write floats differently
    | st.sampled_from([0.0, -0.0, 1e16, 1e-5, 1.5e-7, 1e22, 5e-324, 2.0**53, 1e300])
)
INTS = (
    st.integers(min_value=-(2**31) - 2, max_value=2**31 + 1)
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.integers(min_value=-(10**30), max_value=10**30)
)
TEXT = st.text(max_size=12) | st.sampled_from(["", "é", "ü€𝄞", "\x00\x1f\x7f", "\u2028", "\ud800", "a\udfffb"])
TIME_TEXT = st.builds(
    lambda d, sep, frac, tz: d.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + frac + tz,
    st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)),
    st.sampled_from(["T", " ", "t"]),
    st.sampled_from(["", ".5", ".120", ".000", ".123456", ".1234567", ".000000001"]),
    st.sampled_from(["", "Z", "z", "+00:00", "-00:00", "+05:30", "-08:00", "+14:00", " ", "Z "]),
) | st.sampled_from(["2024-02-30T00:00:00Z", "2024-01-01", "20240101T010203Z", "2024-13-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2024-01-01T24:00:00Z", "2024-01-01T23:59:60Z", "\uff11\uff12\uff13\uff14-01-01T00:00:00Z"])
SCALARS = st.none() | st.booleans() | INTS | FLOATS | TEXT | TIME_TEXT
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=8,
)
EXTRA = (
    st.datetimes(timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=3)), dt.timezone(dt.timedelta(hours=-11, minutes=-30))]))
    | st.datetimes()
    | st.timedeltas()
    | st.sampled_from([math.inf, -math.inf, math.nan, 1e999])
)


def outcome(fn, *args):
    """A function's result by repr, or its exception's type and message."""
    try:
        return "ok", repr(fn(*args))
    except IngestError as exc:
        return "error", (exc.status, exc.code, exc.message)
    except Exception as exc:
        return "raised", type(exc).__name__, str(exc)


# ------------------------------------------------------------------ value rules


@settings(max_examples=600, deadline=None)
@given(st.recursive(SCALARS | EXTRA, lambda c: st.lists(c, max_size=3) | st.dictionaries(TEXT, c, max_size=3), max_leaves=8))
def test_dumps_dynamic_equals_json_dumps(value):
    assert outcome(schema.dumps_dynamic, value) == outcome(ref.dumps_dynamic, value)


def test_dumps_dynamic_on_deep_nesting_and_other_types():
    deep: list = []
    for _ in range(400):
        deep = [deep]
    for value in (deep, {1: "a"}, (1, 2), dt.date(2024, 1, 1), {"a": dt.time(1)}, 2**64, [1e-7, 0.00001]):
        assert outcome(schema.dumps_dynamic, value) == outcome(ref.dumps_dynamic, value)


@settings(max_examples=500, deadline=None)
@given(st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.none() | st.timezones()))
def test_format_datetime_equals_reference(value):
    assert outcome(schema.format_datetime, value) == outcome(ref.format_datetime, value)


@settings(max_examples=500, deadline=None)
@given(TIME_TEXT | TEXT)
def test_parse_datetime_equals_reference(text):
    assert outcome(schema.parse_datetime, text) == outcome(ref.parse_datetime, text)


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(TYPES), JSON | EXTRA)
def test_column_checkers_equal_check_input_and_encode_output(col_type, value):
    assert outcome(schema.input_checker(col_type), value) == outcome(ref.check_input, col_type, value)
    assert outcome(schema.output_encoder(col_type), value) == outcome(ref.encode_output, col_type, value)


# ------------------------------------------------------------------ records and bodies


# plain flows only (ingest_body's inline path): two into one table, column subsets, all columns twice
PLAIN_DCR = {
    "properties": {
        "streamDeclarations": {"Custom-Plain": {"columns": EVENT_COLUMNS}},
        "dataFlows": [
            {"streams": ["Custom-Plain"], "outputStream": "Custom-A_CL", "transformKql": "source"},
            {"streams": ["Custom-Plain"], "outputStream": "Custom-A_CL", "transformKql": "source | where Code > 1"},
            {"streams": ["Custom-Plain"], "outputStream": "Custom-B_CL", "transformKql": "source | project Level, Code"},
            {
                "streams": ["Custom-Plain"],
                "outputStream": "Custom-C_CL",
                "transformKql": "source | where Ok == true | project-away Props | where Level != 'debug'",
            },
            {"streams": ["Custom-Plain"], "outputStream": "Custom-D_CL", "transformKql": "source | where isnotempty(Message)"},
        ],
    }
}


@pytest.fixture(scope="module")
def dcrs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("dcr")
    return {
        "test": load_dcr(write_dcr(directory, "test", TEST_DCR)),
        "plain": load_dcr(write_dcr(directory, "plain", PLAIN_DCR)),
        "relay": load_dcr(RELAY_DCR),
    }


STREAMS = [
    ("test", "Custom-Typed"),
    ("test", "Custom-Events"),  # five flows: source, where, extend, project
    ("relay", "Custom-AppLogs"),  # where + project
    ("relay", "Custom-AzureResourceLogs"),
    ("plain", "Custom-Plain"),
]


def column_values(dcr, stream):
    """Records mostly of the right types (the typed path), with wrong ones mixed in."""
    good = {
        "string": TEXT,
        "int": st.integers(min_value=-(2**31), max_value=2**31 - 1),
        "long": st.integers(min_value=-(2**63), max_value=2**63 - 1),
        "real": FLOATS | st.integers(min_value=-(10**20), max_value=10**20),
        "boolean": st.booleans(),
        "datetime": TIME_TEXT,
        "dynamic": JSON,
    }
    names = [c.name for c in dcr.streams[stream]]
    types = {c.name: c.type for c in dcr.streams[stream]}
    value = st.sampled_from(names).flatmap(
        lambda n: st.tuples(st.just(n), st.one_of(good[types[n]], good[types[n]], good[types[n]], JSON))
    )
    extra = st.tuples(st.sampled_from(["Other", names[0].lower(), "level"]), JSON)
    return st.lists(value | value | value | extra, max_size=len(names) + 2).map(dict)


def records_for(data):
    key = data.draw(st.sampled_from(STREAMS))
    return key, data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_process_equals_reference(dcrs, data):
    name, stream = data.draw(st.sampled_from(STREAMS))
    dcr = dcrs[name]
    records = data.draw(st.lists(column_values(dcr, stream), max_size=6))
    assert outcome(process, dcr, stream, records) == outcome(ref.process, dcr, stream, records)


def encode(records, style):
    if style == 0:
        return json.dumps(records, separators=(",", ":")).encode()
    if style == 1:
        return json.dumps(records, ensure_ascii=False, indent=1).encode("utf-8", "surrogatepass")
    return json.dumps(records).encode()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_ingest_body_equals_reference_parse_and_process(dcrs, data):
    name, stream = data.draw(st.sampled_from(STREAMS))
    dcr = dcrs[name]
    records = data.draw(st.lists(column_values(dcr, stream) | JSON, max_size=6))
    body = encode(records, data.draw(st.integers(0, 2)))
    if data.draw(st.integers(0, 4)) == 0 and body:  # break it: a byte changed, cut or added
        at = data.draw(st.integers(0, len(body) - 1))
        body = body[:at] + data.draw(st.binary(max_size=3)) + body[at + 1 :]

    def reference(dcr, stream, body):
        return ref.process(dcr, stream, ref.parse_body(body))

    assert outcome(ingest_body, dcr, stream, body) == outcome(reference, dcr, stream, body)
    assert outcome(parse_body, body) == outcome(ref.parse_body, body)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{}",
        b"[1]",
        b"[NaN]",
        b'[{"S": 1e999}]',
        b'[{"S": "\\ud800"}]',
        b'[{"R": 1e999, "S": "x"}]',
        b'[{"I": 5.0, "L": -0, "R": -0, "B": 1, "D": [1e-7, 123456789012345678901234567890]}]',
        b'[{"S": "a", "S": 1}, {"S": 1, "S": "a"}]',
        b'[{"TimeGenerated": "2024-01-01T00:00:00.1234567Z"}, {"TimeGenerated": " 2024-01-01 "}]',
        b'[{"S": "\xff"}]',
        b'\xef\xbb\xbf[]',
        b"[" * 5000 + b"]" * 5000,
        b'[{"D": ' + b"[" * 3000 + b"]" * 3000 + b"}]",
        b'[{"S": "' + b"x" * 70000 + b'"}]',
        b'[{"D": "' + "é".encode() * 40000 + b'"}]',
        # around the typed path's 16384-character bound and the 64 KB limit
        b'[{"S": "' + "\U0001d11e".encode() * 16384 + b'"}, {"S": "' + "\U0001d11e".encode() * 16385 + b'"}]',
        b'[{"S": "' + b"x" * 16385 + b'", "D": ["' + "\U0001d11e".encode() * 16383 + b'"]}]',
        b'[{"D": {"a": "' + b"y" * 16380 + b'"}, "TimeGenerated": "2024-01-01T00:00:00Z"}]',
    ],
)
def test_ingest_body_equals_reference_on_edge_bodies(dcrs, body):
    dcr = dcrs["test"]

    def reference(dcr, stream, body):
        return ref.process(dcr, stream, ref.parse_body(body))

    assert outcome(ingest_body, dcr, "Custom-Typed", body) == outcome(reference, dcr, "Custom-Typed", body)


# ------------------------------------------------------------------ transforms that only filter

KQL_WORDS = [
    "| where", "| project", "| project-away", "| extend", "| project-rename",
    "Level", "Code", "Props", "DurationMs", "Ok", "TimeGenerated", "Message", "X",
    "==", "!=", ">=", "and", "or", "contains", ",", "=", "(", ")", "'a'", "500", "1.5", "true", "null",
    "tostring", "isnotempty", "not", "Props.a",
]
EVENT_TYPES = [("TimeGenerated", "datetime"), ("Level", "string"), ("Message", "string"), ("Code", "int"),
               ("DurationMs", "real"), ("Ok", "boolean"), ("Props", "dynamic")]
EVENT_ROW = st.fixed_dictionaries({
    "TimeGenerated": st.none() | st.datetimes(timezones=st.just(dt.UTC)),
    "Level": st.none() | st.sampled_from(["a", "info", "debug", ""]),
    "Message": st.none() | TEXT,
    "Code": st.none() | st.integers(0, 600),
    "DurationMs": st.none() | FLOATS,
    "Ok": st.none() | st.booleans(),
    "Props": JSON,
})


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(KQL_WORDS), max_size=10), EVENT_ROW)
def test_transform_filters_say_what_apply_does(words, row):
    from emulator.kql import KqlError, compile_transform

    row = {name: row[name] for name, _ in EVENT_TYPES}  # declared order, as ingest builds rows

    try:
        transform = compile_transform(" ".join(["source", *words]), EVENT_TYPES)
    except KqlError:
        return
    if transform.filters is None:
        return
    try:
        out = transform.apply(row)
    except Exception as exc:
        with pytest.raises(type(exc)):
            all(predicate(row) is True for predicate in transform.filters)
        return
    if all(predicate(row) is True for predicate in transform.filters):
        assert out is not None
        assert list(out) == [name for name, _ in transform.output_columns]
        assert all(out[name] is row.get(name) for name in out)
    else:
        assert out is None


def test_transform_filters_only_for_transforms_that_pass_values_through():
    from emulator.kql import compile_transform

    plain = ["source", "source | where Code > 1", "source | project Level, Code | where Code > 1",
             "source | project-away Props | where Level == 'a'"]
    computed = ["source | extend X = 1", "source | project Level = Message",
                "source | project-rename L = Level", "source | where Code > 1 | project C = Code"]
    assert all(compile_transform(q, EVENT_TYPES).filters is not None for q in plain)
    assert all(compile_transform(q, EVENT_TYPES).filters is None for q in computed)


# ------------------------------------------------------------------ gunzip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=3), st.integers(0, 3), st.binary(max_size=4), st.integers(1, 400))
def test_gunzip_bounded_equals_reference(members, cut, tail, limit):
    import gzip

    from emulator.server import _HttpError, gunzip_bounded

    data = b"".join(gzip.compress(m) for m in members)
    data = (data[: len(data) - cut] if cut else data) + (tail if cut == 3 else b"")

    def run(fn):
        try:
            return "ok", fn(data, limit)
        except _HttpError as err:
            return "error", err.status, err.code, err.message

    assert run(gunzip_bounded) == run(ref.gunzip_bounded)


def test_typed_path_with_renamed_fields_equals_reference(dcrs, monkeypatch):
    """Column names msgspec refuses as Struct fields: renamed fields, rows by zip."""
    import msgspec

    from emulator import ingest

    real = msgspec.defstruct

    def picky(name, fields, **options):
        if "rename" not in options:
            raise TypeError("field name refused")
        return real(name, fields, **options)

    monkeypatch.setattr(msgspec, "defstruct", picky)
    monkeypatch.setattr(ingest, "_plans", {})
    dcr = dcrs["relay"]
    records = [
        {"TimeGenerated": "2024-01-01T00:00:00.5+00:00", "Level": "info", "StatusCode": 200, "Success": True,
         "DurationMs": 1, "Properties": {"a": [1, 2.5]}},
        {"Level": "trace"},
        {"Level": "warn", "StatusCode": "200", "Other": 1},
    ]
    body = json.dumps(records).encode()
    assert ingest._plan(dcr, "Custom-AppLogs").typed.to_row is not msgspec.structs.asdict
    expected = ref.process(dcr, "Custom-AppLogs", ref.parse_body(body))
    assert repr(ingest_body(dcr, "Custom-AppLogs", body)) == repr(expected)
