"""Hostile input never crashes the emulator: it answers 4xx or reports drops.

DESIGN.md §4: "Inputs are hostile" - bound every size, accept only valid UTF-8.
"""

from __future__ import annotations

import contextlib
import gzip

import pytest
from emu_support import EVENT_COLUMNS, TEST_DCR, write_dcr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.dcr import load_dcr
from emulator.ingest import process
from emulator.kql import KqlError, compile_transform
from emulator.server import MAX_BODY, _HttpError, gunzip_bounded
from emulator.store import RequestRecord, Store

COLS = [(c["name"], c["type"]) for c in EVENT_COLUMNS]
VOCAB = [
    "source",
    "|",
    "where",
    "extend",
    "project",
    "project-away",
    "project-rename",
    "and",
    "or",
    "not",
    "(",
    ")",
    "[",
    "]",
    ",",
    ".",
    "=",
    "==",
    "!=",
    "<",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "=~",
    "contains",
    "has",
    "in",
    "!in",
    "Level",
    "Code",
    "Props",
    "DurationMs",
    "Ok",
    "TimeGenerated",
    "X",
    "tostring",
    "toint",
    "iff",
    "strcat",
    "parse_json",
    "now",
    "ago",
    "1",
    "2.5",
    "1h",
    "'a'",
    '"b"',
    "true",
    "null",
    "datetime(2024-01-01)",
    "dynamic(null)",
]
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
SAMPLE_ROW = {
    "TimeGenerated": None,
    "Level": "info",
    "Message": "m",
    "Code": 500,
    "DurationMs": 1.5,
    "Ok": False,
    "Props": {"a": [1, {"b": "c"}]},
}


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_either_compiles_or_raises_a_kql_error(query):
    with contextlib.suppress(KqlError):
        compile_transform(query, COLS)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(VOCAB), max_size=14))
def test_token_soup_compiles_or_raises_a_kql_error_and_compiled_transforms_never_raise(tokens):
    query = " ".join(["source", *tokens])
    try:
        transform = compile_transform(query, COLS)
    except KqlError:
        return
    transform.apply(dict(SAMPLE_ROW))


@pytest.fixture(scope="module")
def dcr(tmp_path_factory):
    return load_dcr(write_dcr(tmp_path_factory.mktemp("dcr"), "test", TEST_DCR))


@pytest.fixture(scope="module")
def store(dcr, tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("store") / "db.sqlite3")
    for flow in dcr.data_flows:
        for transform in flow.transforms.values():
            store.ensure_table(flow.table, transform.output_columns)
    yield store
    store.close()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["S", "I", "L", "R", "B", "D", "TimeGenerated", "Other"]), JSON, max_size=7
        ),
        max_size=5,
    )
)
def test_any_json_rows_are_stored_or_reported_never_crashing(dcr, store, records):
    result = process(dcr, "Custom-Typed", records)
    store.write_request(
        RequestRecord(time="t", dcr="d", stream="s", status=204), result.drops, result.rows_by_table
    )
    assert result.rows == len(records) and result.rows_written == len(records)
    for row in result.rows_by_table["Typed_CL"] if records else []:
        for value in row.values():
            assert value is None or isinstance(value, (int, float, str))
            assert not isinstance(value, int) or -(2**63) <= value < 2**63
    for drop in result.drops:
        assert drop.reason and drop.column


EVENT_KEYS = st.sampled_from([c["name"] for c in EVENT_COLUMNS] + ["Other"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.dictionaries(EVENT_KEYS, JSON, max_size=7), max_size=5))
def test_any_json_through_the_kql_flows_is_stored_or_reported(dcr, store, records):
    result = process(dcr, "Custom-Events", records)
    store.write_request(
        RequestRecord(time="t", dcr="d", stream="s", status=204), result.drops, result.rows_by_table
    )


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_gunzip_of_arbitrary_bytes_is_data_or_an_http_error(data):
    try:
        gunzip_bounded(data, MAX_BODY)
    except _HttpError as err:
        assert err.status in (400, 413)


def test_gzip_members_are_concatenated():
    assert gunzip_bounded(gzip.compress(b"[1,") + gzip.compress(b"2]"), MAX_BODY) == b"[1,2]"


def test_deeply_nested_body_is_400(client):
    reply = client.ingest("Custom-Typed", raw=b"[" * 100_000 + b"]" * 100_000)
    assert reply.status == 400 and reply.error_code == "InvalidJson"
