"""Both executors of a route plan give the same rows: the fast path is the general path, faster.

Same row bytes, input indexes, times, rejection reasons (and the events they carry) and
counters, on random routes (every column type, mapped, dotted and list-index paths, context
paths, ``time_field`` as a key, a path or a context path, ``extra`` as dynamic or string,
``id_column``, both ``on_type_error`` policies) and random events (wrong types, missing
fields, nulls, integers beyond 64 bits, unicode, nested values, every time form).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.config import Route, parse_config
from shared.normalize import Normalizer

ROOT = Path(__file__).resolve().parents[2]
NOW = 1714560000.0
TYPES = ("string", "int", "long", "real", "boolean", "datetime", "dynamic")
KEYS = ("a", "b", "c", "n", "when", "msg", "nested", "TimeGenerated", "Extra", "Id", "N", "Msg")


def build_route(columns: dict[str, str], **keys: Any) -> Route:
    raw = {
        "name": "r1", "source": "http", "match": "r1", "endpoint": "https://relay.example.com",
        "dcr": "dcr-" + "0" * 32, "stream": "Custom-T",
        "columns": [{"name": n, "type": t} for n, t in columns.items()], **keys,
    }
    return parse_config(yaml.safe_dump({"routes": [raw]}), {}, ROOT).routes[0]


def outcome(batch) -> tuple:
    return (
        batch.rows, batch.indexes, batch.times, [(r.index, r.reason, r.event) for r in batch.rejections],
        batch.oversized_fields, batch.dropped_fields, batch.moved_to_extra, batch.time_defaulted,
    )


def both(route: Route, events: list[Any], context: Any = None) -> tuple[tuple, tuple]:
    general = Normalizer(route, fast=False).normalize(events, now=NOW, start_index=3, context=context)
    fast = Normalizer(route).normalize(events, now=NOW, start_index=3, context=context)
    return outcome(general), outcome(fast)


def iso(moment: datetime, digits: int, zone: str = "Z", separator: str = "T") -> str:
    text = f"{moment.year:04d}-{moment:%m-%d}{separator}{moment:%H:%M:%S}"  # (strftime's %Y: no zeros before 1000)
    return text + ("." + (f"{moment.microsecond:06d}" + "123")[:digits] if digits else "") + zone


times = st.one_of(
    st.builds(iso, st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
              st.integers(0, 9), st.sampled_from(["Z", "+00:00", "-05:00", "+0530", "", "z", "+01:00"]),
              st.sampled_from(["T", " "])),
    st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})",
                  fullmatch=True),
    st.integers(-(2**40), 2**62), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["2024-05-01 10:00:04", "Wed, 01 May 2024 10:00:03 GMT", "1714557601", "", " 2024-05-01T10:00:00Z",
                     "2024-05-01T10:00:00+02:00", "2024-02-30T00:00:00Z", "yesterday", "\uff12\uff10\uff12\uff14-05-01T10:00:00Z",
                     "0001-01-01T00:00:00+01:00", "2026-12-03T04:20:53.1234567Z", "1714557602500000000"]),
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.sampled_from([2**63, 2**64, -(2**63) - 1, 2**53 + 1]),
    st.floats(), st.text(max_size=8),
    st.sampled_from(["1", " 42 ", "-7", "3.5", "true", "FALSE", "1e999", "nan", "2**31", "9223372036854775808"]),
    times,
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)), max_leaves=6)
events = st.one_of(
    st.dictionaries(st.sampled_from(KEYS), values, max_size=8),
    st.sampled_from([[1, 2], "text", 7, None]),
)


ALL_PATHS = ("a", "b", "n", "when", "msg", "nested.a", "nested.b.0", "_http.headers.x-id", "_blob.name", "a.b", "c",
             "nested", "a.0", "_http", "N", "Msg")


@st.composite
def routes(draw, paths: tuple[str, ...] = ALL_PATHS,
           time_fields: tuple[str, ...] = ("when", "nested.when", "_http.time", "TimeGenerated"),
           extra_types: tuple[str, ...] = ("dynamic", "string")) -> Route:
    """Random routes: every column type, ``map`` paths drawn from ``paths``, ``time_field``, ``extra``
    (of ``extra_types``), ``id_column``, both ``on_type_error`` policies."""
    names = draw(st.lists(st.sampled_from(["TimeGenerated", "A", "B", "C", "N", "When", "Msg", "Extra", "Id"]),
                          min_size=1, max_size=7, unique=True))
    columns = {name: ("datetime" if name == "TimeGenerated" else draw(st.sampled_from(TYPES))) for name in names}
    keys: dict[str, Any] = {}
    keys["map"] = {name: draw(st.sampled_from(paths)) for name in names
                   if name not in ("Extra", "Id") and draw(st.booleans())}
    if "TimeGenerated" in columns and draw(st.booleans()):
        keys["time_field"] = draw(st.sampled_from(time_fields))
        keys["map"].pop("TimeGenerated", None)
    if "Extra" in columns and draw(st.booleans()):
        columns["Extra"] = draw(st.sampled_from(extra_types))
        keys["extra"] = "Extra"
        keys["map"].pop("Extra", None)
        keys["on_type_error"] = draw(st.sampled_from(["reject", "extra"]))
    if "Id" in columns and draw(st.booleans()):
        columns["Id"] = "string"
        keys["id_column"] = "Id"
        keys["map"].pop("Id", None)
    return build_route(columns, **keys)


@settings(max_examples=int(os.environ.get("RELAY_EQUIVALENCE_EXAMPLES", "400")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(route=routes(), batch=st.lists(events, max_size=6))
def test_fast_path_gives_the_general_paths_rows_reasons_and_counters(route, batch):
    # GIVEN a random route and random events (well-typed, coercible, wrong and missing values)
    context = {"_http": {"headers": {"x-id": "h-1"}, "time": "2024-05-01T10:00:00Z"}, "_blob": {"name": "b"}}
    # WHEN the general and the fast path each normalize them
    general, fast = both(route, batch, context)
    # THEN every row byte, index, time, rejection reason and counter is the same
    assert fast == general


@settings(max_examples=100, deadline=None)
@given(batch=st.lists(events, min_size=1, max_size=4))
def test_per_event_context_is_read_per_event(batch):
    # GIVEN a route reading a header from the context, and one context per event
    route = build_route({"A": "string", "Msg": "string"}, map={"A": "_http.headers.x-id"})
    contexts = [{"_http": {"headers": {"x-id": f"h-{n}"}}} for n in range(len(batch))]
    # WHEN both normalizers run THEN they agree
    general, fast = both(route, batch, contexts)
    assert fast == general


def test_too_short_per_event_context_fails_like_the_general_path():
    # GIVEN two events but one context
    route = build_route({"A": "string"})
    # WHEN normalized THEN both paths raise IndexError
    for fast in (False, True):
        with pytest.raises(IndexError):
            Normalizer(route, fast=fast).normalize([{"A": "x"}, {"A": "y"}], now=NOW, context=[{}])


def test_shipped_applogs_route_rows_are_identical_on_the_benchmark_events():
    # GIVEN the applogs route of relay.yaml and the benchmark's generated events
    from bench.data import events as bench_events
    from shared.config import load_config

    env = {"LOGS_INGESTION_ENDPOINT": "https://127.0.0.1:1", "DCR_IMMUTABLE_ID": "dcr-" + "0" * 32,
           "GITHUB_WEBHOOK_SECRET": "x"}
    route = load_config(ROOT / "relay.yaml", env, ROOT).http_route("applogs")
    batch = bench_events(3000, seed=7)
    # WHEN both normalizers run
    general, fast = both(route, batch)
    # THEN they agree, and the sample exercises rejections as well as rows
    assert fast == general
    assert general[3] and len(general[0]) > 2900


def test_moved_value_wins_over_an_unmapped_field_of_the_same_name():
    # GIVEN a column N read from "n" whose wrong value moves to extra, and an unmapped field also called N
    route = build_route({"N": "int", "Extra": "dynamic"}, map={"N": "n"}, extra="Extra", on_type_error="extra")
    # WHEN both normalizers run
    general, fast = both(route, [{"n": "many", "N": 5, "z": 1}])
    # THEN both keep the moved value under N, then the other unmapped fields
    assert fast == general
    assert general[0] == [b'{"Extra":{"N":"many","z":1}}']


def test_the_issue_12_workload_gives_the_same_rows_on_both_paths():
    # GIVEN the benchmark's issue-12 route (7 mapped columns, time_field ts with +00:00, extra) and its events,
    # with a few broken ones
    from bench.issue12 import build_route as issue_route
    from bench.issue12 import events as issue_events

    route = issue_route()
    batch = issue_events(500)
    batch[3]["count"], batch[5]["ts"], batch[7]["score"], batch[9]["payload"]["n"] = "x", "soon", 2**70, 2**64
    # WHEN both paths run THEN they agree, and the broken events are rejected with their reasons
    general, fast = both(route, batch)
    assert fast == general
    assert [(index, reason) for index, reason, _ in general[3]] == [
        (6, "column 'Count' (int): 'x' is not a 32-bit int"),
        (8, "time_field 'ts': 'soon' is not ISO 8601, epoch or RFC 1123"),
        (10, "column 'Score' (real): 1180591620717411303424 cannot be held exactly by a real column"),
        (12, "column 'N' (long): 18446744073709551616 is out of range for a 64-bit long"),
    ]


@settings(max_examples=200, deadline=None)
@given(st.integers(-(2**200), 2**200))
def test_integers_beyond_64_bits_stay_exact_or_are_rejected_with_a_reason(number):
    # GIVEN an integer of any size in a column of each type, and in extra
    route = build_route({"S": "string", "L": "long", "R": "real", "D": "dynamic", "Extra": "dynamic"}, extra="Extra")
    for fast in (False, True):
        normalizer = Normalizer(route, fast=fast)
        for column in ("S", "L", "R", "D", "other"):
            # WHEN normalized
            batch = normalizer.normalize([{column: number}], now=NOW)
            # THEN it is the same integer in the row (never a float), or the event is rejected with a reason
            if batch.rows:
                (value,) = orjson.loads(batch.rows[0]).values()
                assert value in (number, str(number), {column: number})
                assert not isinstance(value, float)
            else:
                (rejection,) = batch.rejections
                assert rejection.reason


def test_no_generated_source_in_the_core():
    # GIVEN the core package WHEN its source is searched THEN nothing compiles or executes text
    for path in (ROOT / "shared").rglob("*.py"):
        text = path.read_text()
        assert "exec(" not in text and "compile(" not in text.replace("re.compile(", ""), path


@settings(max_examples=100, deadline=None)
@given(batch=st.lists(st.dictionaries(st.sampled_from([f"k{n}" for n in range(24)] + ["x", "y"]), values,
                                      max_size=10), max_size=5))
def test_many_consumed_keys_leave_the_same_extra(batch):
    # GIVEN a route consuming 20 keys (past the fast path's copy-and-pop) with a string extra
    columns = {f"C{n}": "string" for n in range(20)}
    route = build_route({**columns, "Extra": "string"}, map={f"C{n}": f"k{n}" for n in range(20)}, extra="Extra")
    # WHEN both paths run THEN they agree
    general, fast = both(route, batch)
    assert fast == general
