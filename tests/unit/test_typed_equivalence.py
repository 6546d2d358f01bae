"""The typed path gives the general path's rows, reasons and counters, from the events' bytes.

On random routes (every column type, top-level and dotted paths, ``time_field`` as a key or a
path, ``extra``, ``id_column``, both ``on_type_error`` policies) and random events (wrong types,
missing fields, nulls, integers beyond 64 bits, unicode, nested values, every time form), the
events are written as one JSON array, split into each event's bytes as the HTTP source splits
a body, and normalized twice: by the typed path (``Normalizer.normalize_encoded``) and by the
general path on the events decoded as the source would decode them. Rows are compared as JSON
values (the typed path keeps the sender's bytes of ``dynamic`` and ``extra`` values and puts a
stamped TimeGenerated in its column's place); indexes, times, rejection reasons, the events
they carry and every counter are compared as they are.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from functools import partial
from typing import Any
from unittest.mock import patch

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import shared.normalize as normalize_module
from shared.config import Route
from shared.normalize import Normalizer, event_id
from shared.sources.http import encoded_events
from shared.typed import MODES, TypedPath
from tests.unit.test_plan_equivalence import NOW, build_route, events, routes

#: what the typed path covers: top-level and dotted paths without array indexes or context; dynamic extra
typed_routes = partial(routes, paths=("a", "b", "n", "when", "msg", "nested.a", "nested.b.c", "a.b", "c", "nested",
                                      "N", "Msg", "TimeGenerated", "_http.headers.x-id", "_blob.name", "_http",
                                      "_http.n"),
                       time_fields=("when", "nested.when", "TimeGenerated", "_http.time"), extra_types=("dynamic",))
#: the trigger's context of every chunk (one per body)
CONTEXT = {"_http": {"headers": {"x-id": "h-1"}, "time": "2024-05-01T10:00:00Z", "n": "12"}, "_blob": {"name": "b"}}


def body_of(batch: list[Any]) -> bytes | None:
    """The events as one JSON array, as a sender writes it (None: JSON cannot hold them, NaN or Infinity)."""
    try:
        return json.dumps(batch, allow_nan=False, ensure_ascii=False).encode("utf-8", "surrogatepass")
    except ValueError:
        return None


def outcome(batch, parse_rows: bool, times: list[float] | None = None) -> tuple:
    rows = [orjson.loads(row) for row in batch.rows] if parse_rows else batch.rows
    return (rows, batch.indexes, batch.times if times is None else times,
            [(r.index, r.reason, r.event) for r in batch.rejections], batch.oversized_fields, batch.dropped_fields,
            batch.moved_to_extra, batch.time_defaulted, batch.time_out_of_window)


def both(route: Route, body: bytes, context: Any = None, taught: tuple[bytes, ...] = ()) -> tuple[tuple, tuple]:
    """The general path's outcome and the typed path's. The typed path takes the rows' epochs only where the
    packer needs them (an auxiliary route), so its times are those of the same route made auxiliary, and the
    route as it is must give the same outcome but for them (none taken). ``taught``: bodies the typed path
    normalizes first, in order (it learns the keys they keep bringing)."""
    raws = encoded_events(body)
    assert raws is not None, "the body is a plain JSON array"
    decoded = [orjson.loads(memoryview(raw)) for raw in raws]  # what the source decodes without a typed path
    # (with their texts, as the engine hands encoded events on: id_column hashes the text)
    general = Normalizer(route, fast=False).normalize(decoded, now=NOW, start_index=0, context=context, texts=raws)
    normalizers = Normalizer(route), Normalizer(dataclasses.replace(route, auxiliary=True))
    for normalizer in normalizers:
        for lesson in taught:
            normalizer.normalize_encoded(encoded_events(lesson), now=NOW, context=context)
    typed, timed = (normalizer.normalize_encoded(raws, now=NOW, context=context) for normalizer in normalizers)
    assert outcome(typed, True, []) == outcome(timed, True, []) and typed.times in ([], timed.times)
    return outcome(general, True), outcome(typed, True, timed.times)


@settings(max_examples=int(os.environ.get("RELAY_EQUIVALENCE_EXAMPLES", "400")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(route=typed_routes(), batch=st.lists(events, max_size=6))
def test_typed_path_gives_the_general_paths_rows_reasons_and_counters(route, batch):
    # GIVEN a random route the typed path covers, and random events as a JSON array body
    body = body_of(batch)
    assume(body is not None and encoded_events(body) is not None)
    assume(Normalizer(route).typed is not None)  # (a key two columns read as two types is not covered)
    # WHEN the typed path normalizes the events' bytes and the general path the decoded events, in one context
    general, typed = both(route, body, CONTEXT)
    # THEN the rows are the same JSON, and every index, time, rejection and counter is the same
    assert typed == general


@settings(max_examples=int(os.environ.get("RELAY_EQUIVALENCE_EXAMPLES", "400")) // 2, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(route=typed_routes(), batch=st.lists(events, max_size=6), other=st.lists(events, max_size=6))
def test_a_path_that_learned_keys_gives_the_general_paths_rows_reasons_and_counters(route, batch, other):
    # GIVEN a random route the typed path covers, and a path that learned the keys of two lax chunks (the
    # events' own, and the same with others), so its strict Struct declares them and extra is made in C
    body, lesson = body_of(batch), body_of(batch + other)
    assume(body is not None and lesson is not None and encoded_events(body) is not None)
    assume(Normalizer(route).typed is not None)
    # WHEN the learned path normalizes the events, and the general path the decoded events
    general, typed = both(route, body, CONTEXT, taught=(lesson, lesson))
    # THEN the rows are the same JSON, and every index, time, rejection and counter is the same
    assert typed == general


@settings(max_examples=int(os.environ.get("RELAY_EQUIVALENCE_EXAMPLES", "400")) // 2, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(route=typed_routes(), batch=st.lists(events, min_size=3, max_size=8), other=st.lists(events, max_size=4))
def test_a_chunk_made_in_slices_gives_the_general_paths_rows_reasons_and_counters(route, batch, other):
    # GIVEN a random route the typed path covers, a chunk of random events as a JSON array body, and slices of
    # two rows (so a chunk spans several, records the general path decides among them, and keys first seen in
    # one slice learned in a later one)
    body = body_of(batch + other + batch)
    assume(body is not None and encoded_events(body) is not None)
    assume(Normalizer(route).typed is not None)
    # WHEN the typed path normalizes the chunk a slice at a time, and the general path the decoded events
    with patch.object(normalize_module, "TYPED_SLICE_ROWS", 2):
        general, typed = both(route, body, CONTEXT)
    # THEN the rows are the same JSON, and every index, time, rejection and counter is the same
    assert typed == general


def test_a_large_chunk_is_made_a_slice_at_a_time_each_decoded_just_before_its_rows_are_made(monkeypatch):
    # GIVEN the issue-12 route and a chunk of 1,234 encoded events, bad ones in its second and third slices
    from bench.issue12 import build_route as issue_route
    from bench.issue12 import events as issue_events

    batch: list[Any] = issue_events(1234)
    batch[600]["count"], batch[1100] = "x", 7
    raws = encoded_events(body_of(batch))
    normalizer = Normalizer(issue_route())
    steps: list[tuple[str, int]] = []
    decode, encode = normalizer.typed._decode_all, normalizer.typed._encoded
    monkeypatch.setattr(normalizer.typed, "_decode_all", lambda text: steps.append(("decode", 0)) or decode(text))
    monkeypatch.setattr(normalizer.typed, "_encoded",
                        lambda events, failed: steps.append(("rows", len(events))) or encode(events, failed))
    # WHEN it is normalized
    batch_out = normalizer.normalize_encoded(raws, now=NOW, start_index=0)
    # THEN each slice of TYPED_SLICE_ROWS is decoded and made into rows before the next slice is decoded
    size = normalize_module.TYPED_SLICE_ROWS
    bad = {600, 1100}
    assert size < 1234 and steps == [
        step for start in range(0, 1234, size)
        for step in (("decode", 0), ("rows", len(set(range(start, min(start + size, 1234))) - bad)))]
    # AND the rows, rejections and indexes are those of the chunk as a whole, in its order
    assert [(rejection.index, rejection.reason) for rejection in batch_out.rejections] == [
        (600, "column 'Count' (int): 'x' is not a 32-bit int"), (1100, "event is a int, not a JSON object")]
    assert batch_out.indexes == [index for index in range(1234) if index not in bad]
    general = Normalizer(issue_route(), fast=False).normalize([orjson.loads(memoryview(raw)) for raw in raws], now=NOW,
                                                             texts=raws)
    assert [orjson.loads(row) for row in batch_out.rows] == [orjson.loads(row) for row in general.rows]


def test_a_chunk_that_does_not_decode_at_once_is_taken_record_by_record():
    # GIVEN the issue-12 route and a chunk whose events are good, wrongly typed, not objects or carry unknown keys
    from bench.issue12 import build_route as issue_route
    from bench.issue12 import events as issue_events

    route = issue_route()
    batch: list[Any] = issue_events(40)
    batch[3]["count"], batch[5]["ts"], batch[7]["score"], batch[9]["payload"]["n"] = "x", "soon", 2**70, 2**64
    batch[11], batch[13]["other"], batch[15]["ts"] = 7, {"k": [1]}, None
    body = body_of(batch)
    # WHEN both paths run THEN they agree: the typed path leaves each bad record to the general path alone
    general, typed = both(route, body)
    assert typed == general
    assert [(index, reason) for index, reason, _ in general[3]] == [
        (3, "column 'Count' (int): 'x' is not a 32-bit int"),
        (5, "time_field 'ts': 'soon' is not ISO 8601, epoch or RFC 1123"),
        (9, "column 'N' (long): 18446744073709551616 is out of range for a 64-bit long"),
        (11, "event is a int, not a JSON object"),
    ]
    assert general[7] == 1  # the null ts: stamped, counted


def test_records_the_struct_refuses_go_to_the_general_path_in_one_call_and_keep_their_places():
    # GIVEN a chunk whose events mostly hold words where the route declares ints
    route = build_route({"N": "int", "Msg": "string"}, map={"N": "n", "Msg": "msg"})
    count = 128
    body = body_of([{"n": number if number % 5 == 0 else f"x{number}", "msg": "m"} for number in range(count)])
    normalizer = Normalizer(route)
    calls: list[int] = []
    real = normalizer._fall_back

    def counted(events, *rest):
        calls.append(len(events))
        return real(events, *rest)

    normalizer._fall_back = counted  # type: ignore[method-assign]
    # WHEN the typed path normalizes it
    batch = normalizer.normalize_encoded(encoded_events(body), now=NOW)
    # THEN the good rows land in input order, the others are rejected by the general path with its reasons
    assert [orjson.loads(row)["N"] for row in batch.rows] == list(range(0, count, 5)) == batch.indexes
    assert [(r.index, r.reason) for r in batch.rejections] == [
        (n, f"column 'N' (int): 'x{n}' is not a 32-bit int") for n in range(count) if n % 5]
    # AND the refused records went to the general path in one call
    assert calls == [count - len(range(0, count, 5))]


def test_values_the_coercers_convert_stay_on_the_typed_path():
    # GIVEN numbers and booleans as strings, 0 and 1, whole floats and numbers for a string column
    route = build_route({"N": "int", "R": "real", "B": "boolean", "S": "string", "L": "long"},
                        map={"N": "n", "R": "r", "B": "b", "S": "s", "L": "l"})
    body = (b'[{"n": "7", "r": "2.5", "b": "TRUE", "s": 12, "l": 3.0}, {"n": 1.0, "r": 4, "b": 0, "s": true},'
            b' {"n": 5, "r": 1.5, "b": true, "s": "x", "l": " 9 "}]')
    normalizer = Normalizer(route)
    normalizer._fall_back = None  # type: ignore[assignment]  (the general path is not called)
    # WHEN the typed path normalizes them THEN each is converted as the general path converts it
    general, typed = both(route, body)
    assert typed == general
    assert [orjson.loads(row) for row in normalizer.normalize_encoded(encoded_events(body), now=NOW).rows] == [
        {"N": 7, "R": 2.5, "B": True, "S": "12", "L": 3}, {"N": 1, "R": 4, "B": False, "S": "true"},
        {"N": 5, "R": 1.5, "B": True, "S": "x", "L": 9}]


def test_a_column_of_one_other_form_is_converted_in_one_pass_and_a_bad_value_leaves_only_its_record():
    # GIVEN a chunk whose real and int columns hold numbers as strings in every record (as Azure's
    # diagnostic logs write durationMs), unknown keys for extra, and one record whose string is no number
    route = build_route({"R": "real", "N": "int", "Extra": "dynamic"}, map={"R": "r", "N": "n"}, extra="Extra")
    good = [{"r": f"{n}.5", "n": str(n), "trace": f"t{n}"} for n in range(40)]
    for chunk in (good, [*good[:20], {"r": "slow", "n": "1", "trace": "bad"}, *good[20:]]):
        body = orjson.dumps(chunk)
        # WHEN the typed path normalizes it
        general, typed = both(route, body)
        # THEN its rows, reasons and counters are the general path's, the bad record rejected at its place
        assert typed == general
        assert len(typed[0]) == 40 and [r[0] for r in typed[3]] == ([] if chunk is good else [20])
    # AND the converted chunk stayed on the typed path, decoded wide
    normalizer = Normalizer(route)
    normalizer.normalize_encoded(encoded_events(orjson.dumps(good)), now=NOW)
    assert normalizer.typed.prefer_wide and normalizer.typed.conversions == 80


def test_unknown_keys_switch_the_path_to_its_lax_struct_and_back():
    # GIVEN a route with extra, a chunk without unknown keys, one with some, and one without again
    route = build_route({"A": "string", "Extra": "dynamic"}, map={"A": "a"}, extra="Extra")
    typed = Normalizer(route)
    assert typed.typed is not None
    rows = []
    for body, unknown in ((b'[{"a": "x"}]', False), (b'[{"a": "y", "z": {"deep": [1, 2.50]}, "b": null}]', True),
                          (b'[{"a": "w"}]', False)):
        # WHEN each is normalized
        rows += typed.normalize_encoded(encoded_events(body), now=NOW).rows
        # THEN the path prefers the strict Struct exactly when the last chunk had no unknown keys
        assert typed.typed.prefer_strict is not unknown
    # AND extra keeps the unknown keys in the event's order, with the sender's bytes
    assert rows[1] == b'{"A":"y","Extra":{"z":{"deep": [1, 2.50]},"b":null}}'


def test_keys_a_second_lax_chunk_brings_again_are_learned_and_extra_is_made_from_them():
    # GIVEN a route with extra, and two chunks whose events bring keys no column reads ("z" and "b" in both,
    # "once" in the first only)
    route = build_route({"A": "string", "Extra": "dynamic"}, map={"A": "a"}, extra="Extra")
    normalizer = Normalizer(route)
    first = b'[{"a": "x", "z": 1, "once": true}, {"a": "y", "b": [2]}]'
    second = b'[{"a": "u", "b": null, "z": {"k": "v"}}]'
    # WHEN both are normalized
    for body in (first, second):
        normalizer.normalize_encoded(encoded_events(body), now=NOW)
    # THEN the route's path now declares the keys that came again, in the order of the chunk it learned them
    # from, and not the key seen once; its next chunk is decoded by the strict Struct
    assert normalizer.typed.learned == ("b", "z") and normalizer.typed.prefer_strict
    # AND chunks of events with both keys, one, none (no extra at all) or a key never learned give the general
    # path's rows, reasons and counters, through the path that learned them
    chunks = (b'[{"a": "p", "z": "1", "b": {"deep": [1, 2.50]}}, {"a": "q", "z": null, "b": 3}]',
              b'[{"a": "p", "z": 1}, {"a": "q"}, {"b": false}, {"a": "r", "z": 2, "b": 3}]',
              b'[{"a": "p", "z": 1, "new": 2}, {"a": 5}]')
    for body in chunks:
        general, typed = both(route, body, taught=(first, second))
        assert typed == general
    rows = normalizer.normalize_encoded(encoded_events(chunks[1]), now=NOW).rows
    assert rows == [b'{"A":"p","Extra":{"z":1}}', b'{"A":"q"}', b'{"Extra":{"b":false}}',
                    b'{"A":"r","Extra":{"b":3,"z":2}}']  # (the learned order)


def test_keys_a_struct_field_cannot_be_named_are_never_learned():
    # GIVEN a route with extra, and chunks that keep bringing a plain unknown key and keys holding a quote, a
    # backslash or a control character (msgspec refuses such names for a Struct's fields)
    route = build_route({"A": "string", "Extra": "dynamic"}, map={"A": "a"}, extra="Extra")
    body = orjson.dumps([{"a": "x", "k": 1, 'q"uote': 2, "back\\slash": 3, "tab\t": 4}])
    normalizer = Normalizer(route)
    # WHEN the chunks are normalized
    for _ in range(3):
        rows = normalizer.normalize_encoded(encoded_events(body), now=NOW).rows
    # THEN only the plain key is learned, and every key still reaches extra as the general path puts it there
    assert normalizer.typed.learned == ("k",)
    general, typed = both(route, body, taught=(body, body))
    assert typed == general and len(rows) == 1


def test_a_route_stops_learning_keys_at_its_limit(monkeypatch):
    # GIVEN a route that may learn 2 keys, and chunks that each bring 3 unknown keys again
    import shared.typed as typed_module

    monkeypatch.setattr(typed_module, "MAX_LEARNED", 2)
    route = build_route({"A": "string", "Extra": "dynamic"}, map={"A": "a"}, extra="Extra")
    normalizer = Normalizer(route)
    body = b'[{"a": "x", "k1": 1, "k2": 2, "k3": 3}]'
    # WHEN they are normalized
    for _ in range(3):
        rows = normalizer.normalize_encoded(encoded_events(body), now=NOW).rows
    # THEN it learns none of them (its Struct would outgrow the limit) and stays lax, extra still whole
    assert normalizer.typed.learned == () and not normalizer.typed.prefer_strict
    assert rows == [b'{"A":"x","Extra":{"k1":1,"k2":2,"k3":3}}']


def test_events_predecoded_by_the_path_a_learned_one_succeeded_are_decoded_again():
    # GIVEN a route whose path predecoded a body, and then learned keys (as another thread's run would)
    route = build_route({"A": "string", "Extra": "dynamic"}, map={"A": "a"}, extra="Extra")
    normalizer = Normalizer(route)
    body = b'[{"a": "x"}, {"a": "y"}]'
    predecoded = normalizer.typed.predecode(body)
    assert predecoded is not None
    for _ in range(2):
        normalizer.normalize_encoded(encoded_events(b'[{"a": "x", "z": 1}]'), now=NOW)
    assert normalizer.typed.learned == ("z",)
    # WHEN the learned path normalizes the events the old one decoded
    batch = normalizer.normalize_encoded(encoded_events(body), now=NOW, decoded=predecoded)
    # THEN it decodes them again itself (the old Struct cannot take its row's class), with the same rows
    assert batch.rows == [b'{"A":"x"}', b'{"A":"y"}'] and not batch.rejections


def test_integers_beyond_64_bits_in_dynamic_values_stay_exact():
    # GIVEN a dynamic column and extra holding an integer beyond 64 bits, as a sender writes it
    route = build_route({"D": "dynamic", "Extra": "dynamic"}, map={"D": "d"}, extra="Extra")
    body = b'[{"d": {"big": 123456789012345678901234567890}, "x": -99999999999999999999999}]'
    # WHEN the typed path normalizes it
    batch = Normalizer(route).normalize_encoded(encoded_events(body), now=NOW)
    # THEN both numbers are in the row digit for digit (the dict path would have made them floats)
    assert batch.rows == [b'{"D":{"big": 123456789012345678901234567890},"Extra":{"x":-99999999999999999999999}}']
    assert json.loads(batch.rows[0])["Extra"]["x"] == -99999999999999999999999


def test_plans_the_typed_path_does_not_cover_keep_the_fast_path():
    # GIVEN routes reading an array index, text extra, a key read as two types
    uncovered = [
        build_route({"A": "string"}, map={"A": "items.0"}),
        build_route({"A": "string", "Extra": "string"}, map={"A": "a"}, extra="Extra"),
        build_route({"A": "string", "B": "long"}, map={"A": "a", "B": "a"}),
        build_route({"A": "string", "B": "long"}, map={"A": "a", "B": "a.b"}),
    ]
    for route in uncovered:
        # WHEN their normalizers are made THEN none has a typed path
        normalizer = Normalizer(route)
        assert normalizer.typed is None
        # AND encoded events still normalize, through the general path
        batch = normalizer.normalize_encoded(encoded_events(b'[{"a": "x", "items": ["y"]}]'), now=NOW)
        assert len(batch.rows) + len(batch.rejections) == 1
    # AND a dynamic column may read a key that dotted paths read through
    assert TypedPath.of(Normalizer(build_route({"A": "dynamic", "B": "long"}, map={"A": "a", "B": "a.b"})).plan)


def test_id_column_hashes_each_events_own_bytes_on_the_typed_path_and_off_it():
    # GIVEN a route with id_column, and the same events written compact and pretty-printed, the second one
    # wrongly typed (the Struct refuses it: the general path makes its row)
    route = build_route({"A": "long", "Extra": "dynamic", "Id": "string"}, map={"A": "a"}, id_column="Id",
                        extra="Extra", on_type_error="extra")
    events = [{"b": {"y": [1, 2.5], "x": "é"}, "a": 1}, {"a": "not a number", "b": None}, {"a": 2}]
    compact = json.dumps(events, separators=(",", ":"), ensure_ascii=False).encode()
    pretty = json.dumps(events, indent=4, ensure_ascii=False).encode()
    normalizer = Normalizer(route, fast=True)
    assert normalizer.typed is not None  # id_column is on the typed path
    for body in (compact, pretty):
        # WHEN the body is normalized encoded
        raws = encoded_events(body)
        ids = [orjson.loads(row)["Id"] for row in normalizer.normalize_encoded(raws, now=NOW).rows]
        # THEN every event has the id of its own bytes, whichever path made its row (the second: the general one)
        assert ids == [event_id(route.name, event, raw) for event, raw in zip(events, raws, strict=True)]
        assert ids[0] == event_id(route.name, None, bytes(raws[0])) and len(set(ids)) == 3
    # AND an event that came decoded (no text) keeps the id of its JSON with sorted keys (the same id when
    # its text is compact with sorted keys and no escapes: the third event)
    text = json.dumps(events[0], separators=(",", ":"), ensure_ascii=False).encode()
    assert event_id(route.name, events[0]) != event_id(route.name, events[0], text)
    assert event_id(route.name, events[2]) == event_id(route.name, events[2], b'{"a":2}')
    assert event_id(route.name, events[0]) == event_id(route.name, json.loads(json.dumps(events[0], sort_keys=True)))


def test_a_dotted_path_through_a_value_that_is_no_object_is_left_out_as_the_general_path_does():
    # GIVEN a column read through nested.a, and events where nested is a string, null, absent or lacks a
    route = build_route({"A": "long", "B": "string"}, map={"A": "nested.a", "B": "b"})
    body = b'[{"nested": "s", "b": "1"}, {"nested": null, "b": "2"}, {"b": "3"}, {"nested": {}, "b": "4"}]'
    # WHEN both paths run THEN they agree and no row has A
    general, typed = both(route, body)
    assert typed == general
    assert [row for row in typed[0]] == [{"B": "1"}, {"B": "2"}, {"B": "3"}, {"B": "4"}]


def test_real_columns_keep_integers_as_integers():
    # GIVEN a real column given an integer and a float
    route = build_route({"R": "real"}, map={"R": "r"})
    batch = Normalizer(route).normalize_encoded(encoded_events(b'[{"r": 3}, {"r": 2.5}, {"r": 1e308}]'), now=NOW)
    # THEN the integer stays one (as the coercer returns it), the floats stay floats
    assert [orjson.loads(row)["R"] for row in batch.rows] == [3, 2.5, 1e308]
    assert math.isfinite(orjson.loads(batch.rows[2])["R"])


def test_split_bodies_are_views_not_copies():
    # GIVEN a JSON array body WHEN split THEN each event is a msgspec.Raw view of its bytes
    raws = encoded_events(b'[{"a": 1}, {"b": [2]}]')
    assert [type(raw) for raw in raws] == [msgspec.Raw, msgspec.Raw]
    assert [bytes(raw) for raw in raws] == [b'{"a": 1}', b'{"b": [2]}']


def test_a_number_beyond_double_range_is_rejected_naming_its_field_wherever_it_is():
    # GIVEN a route with a long column, a dynamic column and extra, and one without extra
    with_extra = build_route({"L": "long", "D": "dynamic", "Extra": "dynamic"}, map={"L": "l", "D": "d"},
                             extra="Extra")
    without = build_route({"L": "long"}, map={"L": "l"})
    for route in (with_extra, without):
        for field, number in (("l", b"1e400"), ("d", b"-1E+999"), ("x", b"1" + b"0" * 400), ("d", b"1e0400")):
            body = b'[{"l": 1}, {"l": 2, "%s": %s}, {"l": 3}]' % (field.encode(), number)
            # WHEN the typed path normalizes it
            batch = Normalizer(route).normalize_encoded(encoded_events(body), now=NOW)
            # THEN that element is rejected naming the field, as a body read whole names it, and the others land
            assert [orjson.loads(row)["L"] for row in batch.rows] == [1, 3]
            assert [(r.index, r.reason) for r in batch.rejections] == [
                (1, f"field {field!r} holds {number.decode()[:40]}, a number beyond double range")]


def test_the_out_of_range_check_never_misses_and_rarely_alarms():
    from shared.sources.jsontext import maybe_out_of_range

    # GIVEN numbers beyond double range in every spelling JSON allows WHEN checked THEN each is flagged
    for text in (b'[{"a": 1E+400}]', b'[{"a": -1.5e0400}]', b'{"a":[1,2e999]}', b'{"a": 1' + b"0" * 400 + b"}",
                 b'{"a":\n 1e400\n}', b'{"a": 12.5E308}', b'[1' + b"0" * 250 + b"e99]", b'{"a":\t-9' + b"9" * 210
                 + b'.5E+99 }'):
        assert maybe_out_of_range(text), text
        with pytest.raises(orjson.JSONDecodeError):  # (each is one orjson refuses)
            orjson.loads(text)
    # AND ordinary numbers, hex ids and hashes in strings are not
    for text in (b'[{"a": 1e40, "b": 1.7976931348623157e99, "t": "8c10562b7b994e16150e5651b8d96afd"}]',
                 b'{"id": "9e123", "n": -0.5e-12, "h": "sha256:1816E67516CADB6F", "tiny": 1e-400}'):
        assert not maybe_out_of_range(text), text


def test_the_typed_path_declares_the_keys_the_plan_reads():
    # GIVEN a route reading ts (time), n (long), x.y (string, dotted) and d (dynamic)
    route = build_route({"TimeGenerated": "datetime", "A": "long", "C": "string", "D": "dynamic"},
                        map={"A": "n", "C": "x.y", "D": "d"}, time_field="ts")
    typed = Normalizer(route).typed
    # WHEN its Struct is made THEN it has a field per top-level key read (a dotted root kept raw), named by the key,
    # and a None placeholder for the slot no key fills (C, read through x), under a key no event can give a value
    event = typed.decoders[MODES[0]][1](b'{"ts": "2024-05-01T10:00:00Z", "n": 5, "x": {"y": "z"}, "d": [1]}')
    fields = {field.encode_name: field.type for field in msgspec.inspect.type_info(type(event)).fields}
    assert set(fields) == {"ts", "n", "x", "d", "\ufffec2"}
    assert isinstance(fields["\ufffec2"], msgspec.inspect.NoneType)
    assert isinstance(fields["x"], msgspec.inspect.RawType) and isinstance(fields["d"], msgspec.inspect.RawType)
    assert typed.layout.names == ["TimeGenerated", "A", "C", "D"]


def test_context_values_are_read_once_per_chunk_and_coerced_as_the_general_path_coerces_them():
    # GIVEN a route reading a header (string), a count from the context that is text (int), and the whole _http
    route = build_route({"A": "string", "N": "int", "H": "dynamic", "M": "string"},
                        map={"A": "_http.headers.x-id", "N": "_http.n", "H": "_http", "M": "m"})
    assert Normalizer(route).typed is not None
    body = b'[{"m": "x"}, {"m": "y"}]'
    # WHEN both paths run THEN they agree, and every row has the context's values
    general, typed = both(route, body, CONTEXT)
    assert typed == general
    assert typed[0][0] == {"A": "h-1", "N": 12, "H": CONTEXT["_http"], "M": "x"}
    # AND a context value the column cannot hold leaves every record to the general path, which says why
    bad = {"_http": {**CONTEXT["_http"], "n": "many"}}
    general, typed = both(route, body, bad)
    assert typed == general and [reason for _, reason, _ in typed[3]] == ["column 'N' (int): 'many' is not a 32-bit int"] * 2


def test_a_route_keeps_the_fast_path_when_msgspec_refuses_the_class_change(monkeypatch):
    # GIVEN a route the typed path covers, and a msgspec whose Structs cannot take another Struct's class
    import shared.typed as typed_module

    route = build_route({"TimeGenerated": "datetime", "A": "long"}, map={"A": "n"}, time_field="ts")
    assert Normalizer(route).typed is not None
    monkeypatch.setattr(typed_module, "_class_change_works", lambda: False)
    # WHEN its normalizer is built THEN it has no typed path, and relay validate's reason says why
    assert Normalizer(route).typed is None
    assert "cannot take another Struct's class" in typed_module.why_not(Normalizer(route).plan)
