"""The transformKql subset: each operator and function, KQL null rules, and load-time errors."""

from __future__ import annotations

import datetime as dt

import pytest
from emu_support import EVENT_COLUMNS, RawClient, single_flow_dcr, write_dcr

from emulator.dcr import DcrError
from emulator.kql import KqlError, compile_transform
from emulator.server import Emulator

COLS = [
    ("S", "string"),
    ("N", "long"),
    ("I", "int"),
    ("R", "real"),
    ("B", "boolean"),
    ("T", "datetime"),
    ("D", "dynamic"),
]
T0 = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC)
ROW = {
    "S": "Hello World",
    "N": 7,
    "I": -3,
    "R": 2.5,
    "B": True,
    "T": T0,
    "D": {"a": {"b": 1}, "tags": ["x", "y"], "s": "str"},
}


def run(query: str, row: dict | None = None) -> dict | None:
    transform = compile_transform(query, COLS)
    return transform.apply(dict(ROW if row is None else row))


def value(expr: str, row: dict | None = None):
    out = run(f"source | extend X = {expr}", row)
    assert out is not None
    return out["X"]


# --------------------------------------------------------------------------- operators


def test_source_passes_rows_through_unchanged():
    transform = compile_transform("source", COLS)
    assert transform.apply(dict(ROW)) == ROW
    assert transform.output_columns == tuple(COLS)


@pytest.mark.parametrize(
    ("predicate", "kept"),
    [
        ("N == 7", True),
        ("N != 7", False),
        ("N > 6 and R < 3", True),
        ("N > 7 or B == true", True),
        ("not(B)", False),
        ("S == 'Hello World'", True),
        ("S =~ 'hello world'", True),
        ("S contains 'WORLD'", True),
        ("S !contains 'x'", True),
        ("S has 'world'", True),
        ("S has 'wor'", False),
        ("S startswith 'hell'", True),
        ("S endswith 'xyz'", False),
        ("N in (1, 7)", True),
        ("N !in (1, 7)", False),
        ("isnotempty(S) and isempty('')", True),
        ("T > datetime(2024-01-01)", True),
        ("T > ago(1d)", False),
        ("D.a.b == 1", True),
        ("(N + 1) * 2 == 16", True),
    ],
)
def test_where_keeps_a_row_only_when_the_predicate_is_true(predicate, kept):
    assert (run(f"source | where {predicate}") is not None) is kept


def test_where_with_null_is_not_true_but_string_null_reads_as_empty():
    row = {**ROW, "N": None, "S": None}
    assert run("source | where N > 1", row) is None  # null comparison is not true
    assert run("source | where N != 1", row) is None
    assert run("source | where S != 'trace'", row) is not None  # "" != "trace"
    assert run("source | where isempty(S) and isnull(N)", row) is not None


def test_extend_adds_and_replaces_columns_with_inferred_types():
    transform = compile_transform(
        "source | extend Up = toupper(S), N = N * 2, Next = N + 1, Flag = N > 10", COLS
    )
    out = transform.apply(dict(ROW))
    assert out is not None
    assert (out["Up"], out["N"], out["Next"], out["Flag"]) == ("HELLO WORLD", 14, 15, True)
    types = dict(transform.output_columns)
    assert (types["Up"], types["N"], types["Next"], types["Flag"]) == ("string", "long", "long", "boolean")
    assert list(out)[: len(COLS)] == [name for name, _ in COLS]  # existing columns keep their place


def test_project_selects_renames_and_computes_in_order():
    transform = compile_transform("source | project N, Msg = tolower(S), D", COLS)
    assert transform.apply(dict(ROW)) == {"N": 7, "Msg": "hello world", "D": ROW["D"]}
    assert transform.output_columns == (("N", "long"), ("Msg", "string"), ("D", "dynamic"))


def test_project_away_and_project_rename():
    out = run("source | project-away D, T | project-rename Text = S")
    assert out == {"Text": "Hello World", "N": 7, "I": -3, "R": 2.5, "B": True}


def test_operators_chain_left_to_right():
    query = """
        source
        // comments and newlines are fine
        | where N > 1
        | extend Doubled = N * 2
        | where Doubled >= 14
        | project S, Doubled
    """
    assert run(query) == {"S": "Hello World", "Doubled": 14}


# --------------------------------------------------------------------------- functions


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("tostring(N)", "7"),
        ("tostring(B)", "true"),
        ("tostring(D.a)", '{"b":1}'),
        ("tostring(T)", "2024-05-01T10:00:00Z"),
        ("tostring(int(null))", ""),
        ("toint('42')", 42),
        ("toint(2.9)", 2),
        ("toint('nope')", None),
        ("toint(3000000000)", None),
        ("tolong('3000000000')", 3_000_000_000),
        ("toreal('1.5')", 1.5),
        ("todouble(N)", 7.0),
        ("tobool('TRUE')", True),
        ("tobool(0)", False),
        ("tobool('maybe')", None),
        ("todatetime('2024-05-01T12:00:00+02:00')", T0),
        ("todatetime('not a date')", None),
        ("isempty(S)", False),
        ("isnotempty('')", False),
        ("strcat(S, '-', N, '-', B)", "Hello World-7-true"),
        ("tolower(S)", "hello world"),
        ("toupper('a')", "A"),
        ("strlen(S)", 11),
        ("substring(S, 6, 3)", "Wor"),
        ("iff(N > 5, 'big', 'small')", "big"),
        ("coalesce(dynamic(null), 'fallback')", "fallback"),
        ("parse_json('{\"k\": [1, 2]}').k[1]", 2),
        ("parse_json('not json')", "not json"),
        ("D['tags'][0]", "x"),
        ("D.tags[-1]", "y"),
        ("D.missing.deeper", None),
        ("N / 2", 3),
        ("-N / 2", -3),
        ("N % 4", 3),
        ("R * 2", 5.0),
        ("N / 0", None),
        ("T + 1h", T0 + dt.timedelta(hours=1)),
        ("(T - datetime(2024-05-01T09:30:00Z)) / 1m", 30.0),
    ],
)
def test_functions_and_expressions(expr, expected):
    assert value(expr) == expected


def test_now_is_a_current_utc_datetime():
    before = dt.datetime.now(dt.UTC)
    stamp = value("now()")
    assert isinstance(stamp, dt.datetime) and stamp.tzinfo is not None and stamp >= before


def test_arithmetic_with_null_is_null():
    assert value("N + 1", {**ROW, "N": None}) is None


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("query", "token", "detail"),
    [
        ("source | summarize count() by S", "summarize", "unsupported query operator"),
        ("source | where Missing == 1", "Missing", "unknown column"),
        ("source | extend X = nosuch(S)", "nosuch", "unsupported function"),
        ("source | extend X = S + 1", "+", "strcat"),
        ("source | where N", "N", "boolean predicate"),
        ("source | where N == 'x'", "==", "cannot compare"),
        ("source | extend X = tostring()", "tostring", "argument"),
        ("source | project S, S", "S", "twice"),
        ("source | where S == 'open", "'open", "unterminated"),
        ("source | where N > 1 garbage", "garbage", "expected '|'"),
        ("T | where N > 1", "T", "must start with 'source'"),
        ("source | extend S.x = 1", ".", "Name = expression"),
        ("source | project X = N | where N > 1", "N", "unknown column"),
        ("source | where S ## 1", "#", "unexpected character"),
        ("source | extend X = S.a", ".", "dynamic"),
    ],
)
def test_unsupported_or_invalid_syntax_is_rejected_naming_the_token(query, token, detail):
    with pytest.raises(KqlError) as info:
        compile_transform(query, COLS)
    assert info.value.token == token
    assert detail in str(info.value)
    assert query[info.value.pos :].startswith(token)


def test_kql_error_fails_the_dcr_at_load_time_naming_file_flow_and_token(tmp_path):
    # GIVEN a DCR whose transformKql uses an operator outside the subset
    dcr = write_dcr(tmp_path, "broken", single_flow_dcr("source | summarize count()"))
    # WHEN the emulator loads it
    with pytest.raises(DcrError) as info:
        Emulator([dcr], tmp_path / "state")
    # THEN the error names the DCR file, the data flow and the token, before anything is served
    message = str(info.value)
    assert "broken.json" in message and "dataFlows[0]" in message and "'summarize'" in message
    assert not (tmp_path / "state").exists()


# --------------------------------------------------------------------------- end to end


def test_each_operator_through_the_emulator(emu, client):
    # GIVEN the test DCR: one stream, three transformed flows (where, extend, project) and the raw table
    rows = [
        {
            "TimeGenerated": "2024-05-01T10:00:00Z",
            "Level": "error",
            "Message": "Disk Full",
            "Code": 507,
            "DurationMs": 3.0,
            "Ok": False,
            "Props": {"region": "eu", "tags": ["disk", "io"]},
        },
        {
            "TimeGenerated": "2024-05-01T10:00:01Z",
            "Level": "debug",
            "Message": "Noise",
            "Code": 500,
            "Ok": False,
        },
        {
            "TimeGenerated": "2024-05-01T10:00:02Z",
            "Level": "info",
            "Message": "Fine",
            "Code": 200,
            "Ok": True,
        },
    ]
    # WHEN they are posted
    assert client.ingest("Custom-Events", rows).status == 204
    # THEN where kept only the non-debug failures
    assert [r["Message"] for r in emu.rows("Where_CL")] == ["Disk Full"]
    # AND extend added computed columns to every row
    extended = emu.rows("Extend_CL")
    assert [r["Summary"] for r in extended] == ["error:507", "debug:500", "info:200"]
    first = extended[0]
    assert (first["Upper"], first["Half"], first["Region"], first["FirstTag"], first["IsError"]) == (
        "DISK FULL",
        1.5,
        "eu",
        "disk",
        True,
    )
    assert extended[1]["Half"] is None and extended[1]["Region"] == ""
    # AND project kept exactly its columns
    assert emu.rows("Project_CL")[0] == {
        "TimeGenerated": "2024-05-01T10:00:00Z",
        "Msg": "disk full",
        "CodeL": 507,
    }
    assert len(emu.rows("Project_CL")) == 3
    assert emu.drops() == []


def test_transform_output_types_become_table_columns(emu):
    columns = dict(emu.store.columns("Extend_CL"))
    assert columns["Upper"] == "string" and columns["Half"] == "real" and columns["IsError"] == "boolean"
    assert dict(emu.store.columns("Project_CL")) == {
        "TimeGenerated": "datetime",
        "Msg": "string",
        "CodeL": "long",
    }


def test_iff_with_mixed_types_reports_the_mistyped_output(tmp_path):
    # GIVEN a transform whose output column gets a value of another type than inferred
    dcr = write_dcr(
        tmp_path, "mixed", single_flow_dcr("source | extend X = iff(Ok, 'text', Props)", EVENT_COLUMNS)
    )
    with Emulator([dcr], tmp_path / "state") as emu:
        client = RawClient(emu)
        client.ingest("Custom-In", [{"Ok": True}, {"Ok": False, "Props": {"a": 1}}])
        # THEN the value that does not fit is null and reported against the output table
        assert [r["X"] for r in emu.rows("Out_CL")] == ["text", None]
        (drop,) = emu.drops()
        assert (
            drop["table"] == "Out_CL"
            and drop["column"] == "X"
            and drop["reason"].startswith("mistyped output")
        )
