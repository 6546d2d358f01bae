"""The typed path's column steps that run in C over a whole chunk give what the value-by-value steps give.

Time columns whose values are all ISO 8601 text are parsed with ``map(datetime.fromisoformat, ...)``;
dotted roots are decoded from their values joined into one JSON array; numbers beyond double range
are looked for by their shape. Each falls back to the value-by-value step when anything does not fit,
so the general path's rows, reasons and counters stay the typed path's (the chunks here are long and
uniform, so the C steps are the ones taken; ``test_typed_equivalence.py`` covers mixed chunks).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shared.typed as typed
from shared.normalize import Normalizer
from shared.sources.http import encoded_events
from shared.sources.jsontext import maybe_out_of_range
from shared.timeparse import TimeFormatError, parse_utc
from tests.unit.test_plan_equivalence import NOW, build_route
from tests.unit.test_typed_equivalence import CONTEXT, body_of, both

EXAMPLES = int(os.environ.get("RELAY_EQUIVALENCE_EXAMPLES", "400"))
ZONES = ("Z", "z", "+00:00", "-00:00", "+0000", "", "-05:00", "+0530", "+01:00", "+23:59", "-23:59:59")


def iso(moment: datetime, digits: int, zone: str, separator: str) -> str:
    text = f"{moment.year:04d}-{moment:%m-%d}{separator}{moment:%H:%M:%S}"  # (strftime's %Y: no zeros before 1000)
    return text + ("." + (f"{moment.microsecond:06d}" + "123")[:digits] if digits else "") + zone


#: ISO 8601 text in every zone form, and at both ends of the range of dates (out of range in UTC there)
iso_times = st.builds(iso, st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
                      st.integers(0, 9), st.sampled_from(ZONES), st.sampled_from(["T", " "]))
#: what a chunk's time column may also hold: values the C step must leave to ``parse_utc``
other_times = st.one_of(
    st.none(), st.integers(-(2**40), 2**62), st.floats(allow_nan=False),
    st.sampled_from(["1714557601", "17145576010", "2024-02-30T00:00:00Z", "2024-05-01T25:00:00Z", "2024-05-01",
                     "20240501", " 2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z ", "Wed, 01 May 2024 10:00:03 GMT",
                     "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2024-05-01T10:00:00+24:00",
                     "yesterday", "", "2024-"]))


def zone_of(text: str) -> Any:
    try:
        return datetime.fromisoformat(text).tzinfo
    except ValueError:
        return "refused"


def parsed_one_by_one(values: list[Any]) -> list[Any] | None:
    """``parse_utc`` of each value, or None when one is no time (the C step must then leave the chunk)."""
    try:
        return [None if value is None else parse_utc(value) for value in values]
    except TimeFormatError:
        return None


@settings(max_examples=EXAMPLES, deadline=None)
@given(values=st.lists(iso_times, min_size=1, max_size=12), others=st.lists(other_times, max_size=2),
       at=st.integers(0, 12))
def test_iso_text_parsed_in_c_is_parse_utcs_moment_or_left_to_it(values, others, at):
    # GIVEN a time column of ISO 8601 text, sometimes with a value of another form among it
    values[at:at] = others
    # WHEN the C step parses it
    moments = typed._iso_in_utc(values)
    expected = parsed_one_by_one(values)
    if moments is None:
        # THEN it leaves the chunk to parse_utc only when a value does not fit: another form, no time, or a mix
        # of zone-less and zoned text
        assert others or expected is None or len({zone_of(value) is None for value in values}) > 1
        return
    # THEN every moment is parse_utc's, in UTC itself, to the microsecond
    assert expected is not None
    assert [moment.isoformat() for moment in moments] == [moment.isoformat() for moment in expected]
    assert all(moment.tzinfo is UTC for moment in moments)


def test_text_parse_utc_does_not_send_to_fromisoformat_is_left_to_it():
    # GIVEN digit strings (epochs), nulls, numbers, text with spaces around it, one value out of range in UTC
    for values in (["1714557601", "1714557602"], ["2024-05-01T10:00:00Z", None], ["2024-05-01T10:00:00Z", 1714557601],
                   ["2024-05-01T10:00:00Z", " 2024-05-01T10:00:00Z"], ["2024-05-01T10:00:00Z", "0001-01-01T00:00:00+01:00"],
                   ["2024-05-01T10:00:00Z", "2024-05-01T10:00:00"], [], ["20240501T100000Z"]):
        # WHEN the C step is given them THEN it takes none of them
        assert typed._iso_in_utc(values) is None


def test_zone_less_and_offset_text_is_read_as_parse_utc_reads_it():
    # GIVEN a column of zone-less text and one of +05:30 offsets
    for zone in ("", "+05:30", "Z", "+00:00"):
        values = [f"2024-05-01T10:00:0{n}{zone}" for n in range(5)]
        # WHEN the C step parses them THEN they are parse_utc's moments, in UTC
        moments = typed._iso_in_utc(values)
        assert moments == [parse_utc(value) for value in values]
        assert {moment.tzinfo for moment in moments} == {UTC}


moments = st.tuples(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
                    st.integers(0, 9), st.sampled_from(["T", " "]))
time_events = st.fixed_dictionaries(
    {"when": moments, "at": moments, "zones": st.tuples(st.sampled_from(ZONES), st.sampled_from(ZONES)),
     "msg": st.text(max_size=4)},
    optional={"nested": st.fixed_dictionaries({}, optional={"a": st.integers(-3, 3), "b": st.integers(0, 2**70)})})


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(time_events, min_size=1, max_size=24), extra=st.booleans(),
       zones=st.tuples(st.sampled_from(ZONES), st.sampled_from(ZONES)), every=st.sampled_from([1, 1, 1, 2, 0]))
def test_time_columns_parsed_in_c_give_the_general_paths_rows_reasons_and_counters(batch, extra, zones, every):
    # GIVEN a route with time_field and another datetime column, and chunks whose times are all ISO 8601 text:
    # each column in one zone form (as one sender writes them), in two, or in any
    route = build_route({"TimeGenerated": "datetime", "At": "datetime", "Msg": "string", "A": "long",
                         "Extra": "dynamic"},
                        map={"At": "at", "Msg": "msg", "A": "nested.a"}, time_field="when",
                        **({"extra": "Extra"} if extra else {}))
    for number, event in enumerate(batch):
        own = event.pop("zones")
        when_zone, at_zone = zones if every and number % every == 0 else own
        (moment, digits, separator), (at, at_digits, at_separator) = event["when"], event["at"]
        event["when"], event["at"] = iso(moment, digits, when_zone, separator), iso(at, at_digits, at_zone, at_separator)
    # WHEN both paths run THEN the rows, indexes, times, reasons and counters are the same
    general, typed_ = both(route, body_of(batch), CONTEXT)
    assert typed_ == general


def test_a_time_out_of_range_in_utc_leaves_its_chunk_to_parse_utc_and_its_record_to_the_general_path():
    # GIVEN chunks of ISO 8601 times where one is at the end of the range of dates, its offset taking it past
    route = build_route({"TimeGenerated": "datetime", "Msg": "string"}, map={"Msg": "msg"}, time_field="when")
    for edge in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        batch = [{"when": f"2024-05-01T10:00:0{n}+02:00", "msg": str(n)} for n in range(8)]
        batch[5]["when"] = edge
        # WHEN both paths run THEN they agree: the others land in UTC, that one is rejected with parse_utc's reason
        general, typed_ = both(route, body_of(batch))
        assert typed_ == general
        assert [row["TimeGenerated"] for row in typed_[0]] == [f"2024-05-01T08:00:0{n}Z" for n in range(8) if n != 5]
        assert [(index, reason) for index, reason, _ in typed_[3]] == [
            (5, f"time_field 'when': '{edge}' in UTC is out of the range of dates")]


nested_values = st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.sampled_from([2**64, "7", 1.5, "x", [1]]))
roots = st.one_of(
    st.fixed_dictionaries({}, optional={"a": nested_values, "b": st.one_of(
        st.none(), st.fixed_dictionaries({}, optional={"c": st.one_of(st.none(), st.text(max_size=3), st.just(5))}),
        st.just("s")), "z": st.lists(st.integers(), max_size=2)}),
    st.sampled_from([None, "s", 3, [], [{"a": 1}]]))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(st.fixed_dictionaries({"n": st.integers(0, 9)}, optional={"nested": roots}), min_size=1,
                      max_size=24),
       extra=st.booleans())
def test_dotted_roots_decoded_in_one_call_give_the_general_paths_rows_reasons_and_counters(batch, extra):
    # GIVEN a route reading two dotted paths through one root, and chunks where the root is an object, null,
    # absent or no object, and the values inside of every type
    route = build_route({"A": "long", "C": "string", "N": "int", "Extra": "dynamic"},
                        map={"A": "nested.a", "C": "nested.b.c", "N": "n"}, **({"extra": "Extra"} if extra else {}))
    # WHEN both paths run THEN the rows, indexes, reasons and counters are the same
    general, typed_ = both(route, body_of(batch))
    assert typed_ == general


def test_a_chunk_of_object_roots_is_decoded_in_one_call():
    # GIVEN the issue-12 route and a chunk whose payloads are objects, null or absent
    from bench.issue12 import build_route as issue_route
    from bench.issue12 import events as issue_events

    batch: list[Any] = issue_events(50)
    batch[3]["payload"], batch[7]["payload"] = None, {"tags": []}
    del batch[9]["payload"]
    normalizer = Normalizer(issue_route())
    singles: list[Any] = []
    real = typed._nested
    typed._nested = lambda decode, inner: singles.append(inner) or real(decode, inner)  # type: ignore[assignment]
    try:
        # WHEN the typed path normalizes it
        rows = [orjson.loads(row) for row in normalizer.normalize_encoded(encoded_events(body_of(batch)),
                                                                           now=NOW).rows]
    finally:
        typed._nested = real  # type: ignore[assignment]
    # THEN no payload was decoded on its own, and the rows read N where the payload holds n
    assert singles == []
    assert [row.get("N") for row in rows] == [None if n in (3, 7, 9) else n for n in range(50)]


#: numbers JSON can write, out of double range or not: digits before and after the point, an exponent
numbers = st.builds(
    lambda sign, whole, fraction, exponent: (sign + whole + fraction + exponent).encode(),
    st.sampled_from(["", "-"]),
    st.one_of(st.just("0"), st.from_regex(r"[1-9][0-9]{0,20}", fullmatch=True),
              st.integers(180, 320).map(lambda n: "9" * n), st.integers(180, 320).map(lambda n: "1" + "0" * n)),
    st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,30}", fullmatch=True)),
    st.one_of(st.just(""), st.from_regex(r"[eE][+-]?[0-9]{1,4}", fullmatch=True),
              st.integers(0, 330).map(lambda n: f"e{n}"), st.integers(0, 330).map(lambda n: f"E+{n:04d}")))


@settings(max_examples=max(EXAMPLES, 1000), deadline=None)
@given(number=numbers, space=st.sampled_from([b"", b" ", b"\n  "]))
def test_a_number_beyond_double_range_is_never_missed(number, space):
    # GIVEN a number in an event, as a sender writes it
    text = b'[{"a": "x", "z":' + space + number + b"}, [" + number + b"]]"
    # WHEN orjson refuses it (a number beyond double range) THEN the shape check says it may be there
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        assert maybe_out_of_range(text)


def test_a_number_of_299_digits_with_a_two_digit_exponent_is_rejected_as_the_general_path_rejects_it():
    # GIVEN extra and an unknown key holding 9...9e10 (299 nines: no three-digit exponent, under 300 digits)
    route = build_route({"A": "string", "Extra": "dynamic"}, map={"A": "a"}, extra="Extra")
    number = b"9" * 299 + b"e10"
    body = b'[{"a": "y"}, {"a": "x", "z": ' + number + b"}]"
    raws = encoded_events(body)
    general = Normalizer(route)
    general.typed = None
    # WHEN the typed path and the general path normalize it
    typed_batch = Normalizer(route).normalize_encoded(raws, now=NOW)
    general_batch = general.normalize_encoded(raws, now=NOW)
    # THEN both reject it naming its field, and land the other
    assert typed_batch.rows == general_batch.rows == [b'{"A":"y"}']
    assert [(r.index, r.reason) for r in typed_batch.rejections] == [
        (r.index, r.reason) for r in general_batch.rejections] == [
        (1, "field 'z' holds " + "9" * 40 + ", a number beyond double range")]


def test_bench_times_are_parsed_in_c():
    # GIVEN the issue-12 times (isoformat with +00:00, microseconds)
    base = datetime(2026, 12, 3, 4, 20, 53, 123456, tzinfo=UTC)
    values = [(base + timedelta(microseconds=n * 1_003)).isoformat() for n in range(100)]
    # WHEN the C step parses them THEN it takes them all, as parse_utc reads them
    assert typed._iso_in_utc(values) == [parse_utc(value) for value in values]


def test_a_number_beyond_double_range_anywhere_in_an_event_is_rejected_as_the_general_path_rejects_it():
    # GIVEN 1e400 (and 9...9e10) in a dynamic column, inside a dotted root, under an unknown key, in a real
    # column and in a string column, each in a chunk of good events
    route = build_route({"A": "string", "R": "real", "N": "long", "D": "dynamic", "Extra": "dynamic"},
                        map={"A": "a", "R": "r", "N": "nested.n", "D": "d"}, extra="Extra")
    good = b'{"a": "y", "r": 1.5, "nested": {"n": 1}, "d": [1]}'
    for number in (b"1e400", b"-1E+400", b"9" * 299 + b"e10"):
        for bad in (b'{"a": "x", "d": {"v": %s}}', b'{"a": "x", "nested": {"n": 2, "m": [%s]}}',
                    b'{"a": "x", "z": %s}', b'{"a": "x", "r": %s}', b'{"a": %s}'):
            body = b"[" + b",".join([good, good, bad % number, good]) + b"]"
            raws = encoded_events(body)
            general = Normalizer(route)
            general.typed = None
            # WHEN the typed path and the general path normalize the chunk
            typed_batch = Normalizer(route).normalize_encoded(raws, now=NOW)
            general_batch = general.normalize_encoded(raws, now=NOW)
            # THEN the same rows land and the same record is rejected, naming its field
            assert typed_batch.rows == general_batch.rows
            assert len(typed_batch.rows) == 3
            assert [(r.index, r.reason) for r in typed_batch.rejections] == [
                (r.index, r.reason) for r in general_batch.rejections]
            assert [r.index for r in typed_batch.rejections] == [2]


def test_a_chunk_a_wide_decode_takes_with_a_record_it_cannot_convert_keeps_the_others_typed():
    # GIVEN a chunk the strict wide Struct takes in one call, one record holding a word for an int column, and
    # the same chunk with a number beyond double range in a dynamic value of another record
    route = build_route({"N": "int", "D": "dynamic"}, map={"N": "n", "D": "d"})
    body = b'[{"n": "7", "d": 1}, {"n": "x", "d": [2]}, {"n": 3, "d": {"e": %s}}]'
    for number, rejected in ((b"1", [1]), (b"1e400", [1, 2])):
        raws = encoded_events(body % number)
        general = Normalizer(route)
        general.typed = None
        # WHEN both paths run
        typed_batch = Normalizer(route).normalize_encoded(raws, now=NOW)
        general_batch = general.normalize_encoded(raws, now=NOW)
        # THEN they agree: the word (and the number) rejected, the rest landed
        assert list(map(orjson.loads, typed_batch.rows)) == list(map(orjson.loads, general_batch.rows))
        assert [(r.index, r.reason) for r in typed_batch.rejections] == [
            (r.index, r.reason) for r in general_batch.rejections]
        assert [r.index for r in typed_batch.rejections] == rejected


def nested(depth: int) -> bytes:
    """A JSON value nested ``depth`` levels deep, a sibling at each level and brackets in a string on the way."""
    return b'[[], "]]}", ' * (depth - 1) + b"[]" + b"]" * (depth - 1)


def test_a_record_nested_past_the_row_encoders_bound_is_decided_as_the_general_path_decides_it():
    # GIVEN records nesting a value in a dynamic column, inside a dotted root and under an unknown key (extra),
    # at depths around the 254 levels a row may hold, each in a chunk of good events
    route = build_route({"A": "string", "N": "long", "D": "dynamic", "Extra": "dynamic"},
                        map={"A": "a", "N": "nested.n", "D": "d"}, extra="Extra")
    good = b'{"a": "y", "nested": {"n": 1}, "d": [1], "z": "' + b"[" * 600 + b'"}'  # long, its brackets in a string
    landed = set()
    for depth in (2, 249, 250, 251, 252, 253, 254, 255, 300, 900):
        for bad in (b'{"a": "x", "d": %s}', b'{"a": "x", "nested": {"n": 2, "m": %s}}', b'{"a": "x", "z": %s}'):
            body = b"[" + b",".join([good, bad % nested(depth), good]) + b"]"
            raws = encoded_events(body)
            general = Normalizer(route)
            general.typed = None
            # WHEN the typed path and the general path normalize the chunk
            typed_batch = Normalizer(route).normalize_encoded(raws, now=NOW)
            general_batch = general.normalize_encoded(raws, now=NOW)
            # THEN the same rows land and the same records are rejected, with the same reason
            assert list(map(orjson.loads, typed_batch.rows)) == list(map(orjson.loads, general_batch.rows)), depth
            assert [(r.index, r.reason) for r in typed_batch.rejections] == [
                (r.index, r.reason) for r in general_batch.rejections], (depth, bad)
            assert len(typed_batch.rows) + len(typed_batch.rejections) == 3
            if len(typed_batch.rows) == 3:
                landed.add(depth)
    # (and the bound is where a row can hold the value: the shallow ones land, the deep ones are rejected)
    assert {2, 249, 250, 251, 252} <= landed and not {255, 300, 900} & landed
