"""The compiled per-route normalizer gives exactly what the general Normalizer gives.

Same row bytes, input indexes, times, rejection reasons and counters, on random routes
(every column type, mapped and dotted paths, context paths, ``extra`` as dynamic or
string, ``id_column``, both ``on_type_error`` policies) and random events.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.config import Route, parse_config
from shared.fastpath import compile_route, fast_time
from shared.normalize import Normalizer
from shared.timeparse import normalize_time

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


def iso(moment: datetime, digits: int) -> str:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return text + ("." + f"{moment.microsecond:06d}"[:digits] if digits else "") + "Z"


times = st.one_of(
    st.builds(iso, st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
              st.integers(0, 6)),
    st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,7})?Z", fullmatch=True),
    st.integers(-(2**40), 2**62), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["2024-05-01 10:00:04", "Wed, 01 May 2024 10:00:03 GMT", "1714557601", "", " 2024-05-01T10:00:00Z",
                     "2024-05-01T10:00:00+02:00", "2024-02-30T00:00:00Z", "yesterday", "\uff12\uff10\uff12\uff14-05-01T10:00:00Z"]),
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=8),
    st.sampled_from(["1", " 42 ", "-7", "3.5", "true", "FALSE", "1e999", "nan", "2**31", "9223372036854775808"]),
    times,
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)), max_leaves=6)
events = st.one_of(
    st.dictionaries(st.sampled_from(KEYS), values, max_size=8),
    st.sampled_from([[1, 2], "text", 7, None]),
)


@st.composite
def routes(draw) -> Route:
    names = draw(st.lists(st.sampled_from(["TimeGenerated", "A", "B", "C", "N", "When", "Msg", "Extra", "Id"]),
                          min_size=1, max_size=7, unique=True))
    columns = {name: ("datetime" if name == "TimeGenerated" else draw(st.sampled_from(TYPES))) for name in names}
    keys: dict[str, Any] = {}
    paths = st.sampled_from(["a", "b", "n", "when", "msg", "nested.a", "nested.b.0", "_http.headers.x-id",
                             "_blob.name", "a.b", "c"])
    keys["map"] = {name: draw(paths) for name in names if name not in ("Extra", "Id") and draw(st.booleans())}
    if "TimeGenerated" in columns and draw(st.booleans()):
        keys["time_field"] = draw(st.sampled_from(["when", "nested.when", "_http.time", "TimeGenerated"]))
        keys["map"].pop("TimeGenerated", None)
    if "Extra" in columns and draw(st.booleans()):
        columns["Extra"] = draw(st.sampled_from(["dynamic", "string"]))
        keys["extra"] = "Extra"
        keys["map"].pop("Extra", None)
        keys["on_type_error"] = draw(st.sampled_from(["reject", "extra"]))
    if "Id" in columns and draw(st.booleans()):
        columns["Id"] = "string"
        keys["id_column"] = "Id"
        keys["map"].pop("Id", None)
    return build_route(columns, **keys)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(route=routes(), batch=st.lists(events, max_size=6))
def test_compiled_route_gives_the_general_normalizers_rows_reasons_and_counters(route, batch):
    # GIVEN a random route and random events (well-typed, coercible, wrong and missing values)
    context = {"_http": {"headers": {"x-id": "h-1"}, "time": "2024-05-01T10:00:00Z"}, "_blob": {"name": "b"}}
    # WHEN the general and the compiled normalizer each normalize them
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


def test_generated_source_inlines_keys_and_checks():
    # GIVEN a route with a typed column
    route = build_route({"N": "int", "Msg": "string"}, map={"Msg": "message"})
    # WHEN compiled
    source = compile_route(route).source
    # THEN the keys are literals and the already-typed check is inline
    assert "event.get('message')" in source
    assert "value.__class__ is int and -2147483648 <= value <= 2147483647" in source


@settings(max_examples=3000, deadline=None)
@given(st.one_of(times, st.builds(iso, st.datetimes(), st.integers(0, 6))))
def test_fast_time_matches_normalize_time(value):
    # GIVEN any time value WHEN read by the shortcut and by the general parser
    def run(parse):
        try:
            return parse(value)
        except Exception as error:  # the same class and message
            return type(error), str(error)

    # THEN text, epoch and errors are the same
    fast, general = run(fast_time), run(normalize_time)
    if isinstance(fast[1], float) and math.isnan(fast[1]):
        assert math.isnan(general[1])
    else:
        assert fast == general


def test_fast_time_examples():
    # GIVEN common shapes WHEN read THEN the general parser's answers come back
    for text, digits in (("2024-05-01T10:00:00Z", 0), ("2024-05-01T10:00:00.100Z", 3), ("2024-05-01T10:00:00.5Z", 1)):
        assert fast_time(text) == normalize_time(text), (text, digits)
    assert fast_time("2024-05-01T10:00:00.000Z") == ("2024-05-01T10:00:00Z", 1714557600.0)
    assert fast_time("2024-05-01T10:00:00.123Z") == ("2024-05-01T10:00:00.123000Z", 1714557600.123)
    moment = datetime(2024, 5, 1, tzinfo=UTC) + timedelta(microseconds=1)
    assert fast_time(iso(moment, 6))[1] == moment.timestamp()


@settings(max_examples=3000, deadline=None)
@given(st.one_of(st.integers(0, 10**11 + 10**6), st.integers(10**11 - 10**6, 2**31 * 1000 + 10**6)))
def test_fast_time_integer_epochs_match_normalize_time(value):
    # GIVEN an integer epoch in seconds or milliseconds, around the shortcut's bounds too
    # WHEN read by the shortcut and by the general parser
    # THEN text and epoch are the same
    assert fast_time(value) == normalize_time(value)


def test_fast_time_integer_epoch_examples():
    # GIVEN epochs in seconds and milliseconds WHEN read THEN the general parser's answers come back
    assert fast_time(1714557600) == ("2024-05-01T10:00:00Z", 1714557600.0)
    assert fast_time(1714557600123) == ("2024-05-01T10:00:00.123000Z", 1714557600.123)
    assert fast_time(1714557600000) == ("2024-05-01T10:00:00Z", 1714557600.0)
    for value in (0, 59, 60, 10**11 - 1, 10**11, 2**31 * 1000 - 1, 2**31 * 1000, -1, True, 2**70):
        try:
            expected = normalize_time(value)
        except Exception as error:  # the same error for what the shortcut leaves to the general parser
            with pytest.raises(type(error), match=str(error)):
                fast_time(value)
        else:
            assert fast_time(value) == expected, value


def test_fast_time_caches_refuse_what_the_parser_refuses():
    # GIVEN texts whose second or tail is no canonical UTC time, each read twice (the second time
    # from the caches)
    texts = ("2024-02-30T00:00:00Z", "2024-05-01T10:00:60Z", "2024-05-01T10:00:00.1234567Z",
             "2024-05-01T10:00:00.Z", "2024-05-01T10:00:00z", "2024-05-01T10:00:00+00:00", "2024-05-01T10:00",
             "2024-05-01 10:00:00.5Z", "\uff12024-05-01T10:00:00Z", "2024-05-01T10:00:00.\uff15Z")
    for _ in range(2):
        for text in texts:
            # WHEN read by the shortcut and by the general parser THEN answers and errors are the same
            try:
                expected = normalize_time(text)
            except Exception as error:
                with pytest.raises(type(error), match=str(error).replace("(", r"\(").replace(")", r"\)")):
                    fast_time(text)
            else:
                assert fast_time(text) == expected, text


def test_fast_time_caches_stay_bounded(monkeypatch):
    # GIVEN small caches
    from shared import fastpath

    monkeypatch.setattr(fastpath, "_CACHE_SIZE", 8)
    for cache in (fastpath._second_starts, fastpath._tails, fastpath._epoch_minutes, fastpath._minute_starts):
        cache.clear()
    # WHEN many distinct seconds, tails and epoch minutes are read
    for number in range(100):
        moment = datetime(2024, 5, 1, tzinfo=UTC) + timedelta(minutes=number, seconds=number % 60,
                                                               microseconds=number * 1001)
        text = iso(moment, 1 + number % 6)
        # THEN every answer is still the general parser's, and no cache outgrows its size
        assert fast_time(text) == normalize_time(text)
        assert fast_time(1714557600 + number * 61) == normalize_time(1714557600 + number * 61)
        assert max(map(len, (fastpath._second_starts, fastpath._tails, fastpath._epoch_minutes,
                             fastpath._minute_starts))) <= 8
