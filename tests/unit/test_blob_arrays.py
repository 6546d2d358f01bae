"""Blob files that are one JSON array (or a ``{"records": [...]}`` export), streamed (issue 14).

ijson reads them fast but stops at NaN, ±Infinity, 1e400 or a lone low surrogate escape and reads
a lone high one as "?". An element holding any of these is rejected on its own, with its index and
the HTTP path's reason naming the field, and every other element lands; garbage still ends the file.
"""

from __future__ import annotations

import gzip
import json
import re
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.sources.blob import SKIPPED, open_file
from shared.sources.jsonstream import FEED_BYTES
from shared.sources.jsontext import Unreadable, decode_json_events

MB = 1 << 20

#: what JSON cannot carry, and the HTTP path's reason for it (tests/e2e/test_http_ingest.py)
BAD_VALUES = [
    (b"NaN", "field 'status' holds NaN: JSON has no NaN or Infinity"),
    (b"Infinity", "field 'status' holds Infinity: JSON has no NaN or Infinity"),
    (b"-Infinity", "field 'status' holds -Infinity: JSON has no NaN or Infinity"),
    (b"1e400", "field 'status' holds 1e400, a number beyond double range"),
    (b'"\\ud800"', "field 'status' holds an invalid Unicode escape (a lone surrogate)"),
    (b'"\\udc00x"', "field 'status' holds an invalid Unicode escape (a lone surrogate)"),
    (b'"\\ud800\\ud800\\udc00"', "field 'status' holds an invalid Unicode escape (a lone surrogate)"),
]
BAD_IDS = ["nan", "infinity", "minus-infinity", "1e400", "lone-high-surrogate", "lone-low-surrogate",
           "high-before-a-pair"]


def event(n: int, **fields: Any) -> dict[str, Any]:
    return {"timestamp": f"2024-05-01T10:00:{n % 60:02d}Z", "message": f"event {n}", "status": 200, "seq": n,
            "props": {"tags": [{"k": "a"}, {"k": "}, {"}], "nested": {}}, **fields}


def element(n: int, status: bytes | None = None, **fields: Any) -> bytes:
    text = orjson.dumps(event(n, **fields))
    return text if status is None else text.replace(b'"status":200', b'"status":' + status)


def array(elements: list[bytes], pretty: bool = False) -> bytes:
    if pretty:
        return b"[\n  " + b",\n  ".join(elements) + b"\n]\n"
    return b"[" + b",".join(elements) + b"]"


def pieces_of(data: bytes, size: int) -> Iterator[bytes]:
    return (data[i:i + size] for i in range(0, len(data), size))


def read(data: bytes, name: str = "export.json", piece: int = MB, *,
         should_parse: Callable[[int], bool] | None = None, max_event_bytes: int = 8 * MB) -> list[tuple]:
    opened = open_file(pieces_of(data, piece), name, should_parse=should_parse, max_event_bytes=max_event_bytes)
    return [(where, payload, error) for where, payload, error, _size in opened.units]


def good(units: list[tuple]) -> list[tuple[int, Any]]:
    return [(where, payload) for where, payload, error in units if error is None]


def bad(units: list[tuple]) -> list[tuple[int, str]]:
    return [(where, error) for where, payload, error in units if error is not None]


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("piece", [7, MB], ids=["7-byte-pieces", "1-MiB-pieces"])
@pytest.mark.parametrize("value, reason", BAD_VALUES, ids=BAD_IDS)
def test_an_element_json_cannot_carry_is_rejected_with_its_index_and_the_others_land(value, reason, piece, gzipped):
    """GIVEN a JSON array (plain or gzip, read in tiny or large pieces) whose 3rd of 6 elements holds what
    JSON cannot carry WHEN decoded THEN element 3 is rejected with the HTTP path's reason, naming the field,
    and the elements before and after it land in order."""
    text = array([element(n, value if n == 2 else None) for n in range(6)])
    data = gzip.compress(text) if gzipped else text

    units = read(data, piece=piece)

    assert bad(units) == [(3, f"element 3: {reason}")]
    assert good(units) == [(n + 1, event(n)) for n in range(6) if n != 2]
    assert bad(units)[0][1] == f"element 3: {decode_json_events(text)[2].reason}"  # one rule, one wording


@pytest.mark.parametrize("where", [0, 4], ids=["first", "last"])
def test_the_first_or_last_element_can_be_the_bad_one(where):
    """GIVEN a bad first or last element WHEN decoded THEN only it is rejected."""
    units = read(array([element(n, b"NaN" if n == where else None) for n in range(5)]))

    assert [where_ for where_, _ in bad(units)] == [where + 1]
    assert [payload["seq"] for _, payload in good(units)] == [n for n in range(5) if n != where]


@pytest.mark.parametrize("pretty", [False, True], ids=["compact", "pretty"])
def test_bad_elements_spread_over_a_large_array_are_each_rejected_and_nothing_else_is_lost(pretty):
    """GIVEN a 1.7 MB array (many ijson reads) with bad elements near its start, around read boundaries and
    at its end, surrogate pairs and escaped backslashes before 'u' everywhere (which must not be taken
    for lone surrogates) WHEN decoded THEN exactly the bad ones are rejected and the rest land in order."""
    count = 12_000
    bad_at = {1, 2, 700, 701, 5_000, count - 1}
    bad_at |= {n for n in range(count) if n % 997 == 0 and n}
    elements = [element(n, b"1e400" if n in bad_at else None) for n in range(count)]
    for n in range(0, count, 3):  # a pair, and the text \ud800 (an escaped backslash, then "ud800")
        elements[n] = elements[n].replace(b'"message":"', b'"message":"\\ud83d\\ude00 \\\\ud800 ')
    text = array(elements, pretty)
    assert len(text) > 25 * FEED_BYTES

    units = read(text, piece=MB)

    assert [where for where, _ in bad(units)] == sorted(n + 1 for n in bad_at)
    landed = good(units)
    assert [payload["seq"] for _, payload in landed] == [n for n in range(count) if n not in bad_at]
    assert landed[0][1]["message"] == "\U0001f600 \\ud800 event 0"


def test_a_surrogate_pair_and_an_escaped_backslash_before_u_land_as_they_are():
    """GIVEN valid surrogate pairs (any case) and the text backslash-u-d-8-0-0 WHEN decoded THEN they land."""
    values = [b'"\\ud83d\\ude00"', b'"\\uD83D\\uDE00"', b'"\\\\ud800"', b'"\\\\\\ud800\\udc00"']
    units = read(array([element(n, value) for n, value in enumerate(values)]))

    assert bad(units) == []
    assert [payload["status"] for _, payload in good(units)] == ["\U0001f600", "\U0001f600", "\\ud800",
                                                                 "\\\U00010000"]


def test_a_lone_surrogate_in_a_field_name_is_rejected_naming_it():
    units = read(b'[{"a": 1}, {"\\ud800x": 2}, {"b": 3}]')

    assert bad(units) == [(2, "element 2: field '\\ud800x' has a name with an invalid Unicode escape "
                              "(a lone surrogate)")]
    assert good(units) == [(1, {"a": 1}), (3, {"b": 3})]


def test_a_records_export_rejects_a_bad_record_by_number_and_lands_the_others():
    """GIVEN a diagnostic-settings export whose 2nd record holds Infinity WHEN decoded THEN record 2 is
    rejected and records 1 and 3 land."""
    text = b'{"records": [' + b",".join(element(n, b"Infinity" if n == 1 else None) for n in range(3)) + b"]}"

    units = read(text, "PT1H.json")

    assert bad(units) == [(2, "record 2: field 'status' holds Infinity: JSON has no NaN or Infinity")]
    assert good(units) == [(1, event(0)), (3, event(2))]


def test_an_element_that_is_a_records_envelope_still_expands():
    units = read(b'[{"records": [{"a": 1}, {"a": 2}]}, {"a": NaN}, {"records": [{"b": 3}]}]')

    assert [(where, list(payload)) for where, payload in good(units)] == [(1, [{"a": 1}, {"a": 2}]),
                                                                          (3, [{"b": 3}])]
    assert bad(units) == [(2, "element 2: field 'a' holds NaN: JSON has no NaN or Infinity")]


def test_a_resumed_run_skips_the_handled_elements_and_still_rejects_the_bad_one_after_them():
    """GIVEN elements 0-3 handled by an earlier run WHEN the file is decoded again THEN they are SKIPPED,
    and the bad element after them is rejected with the same number as in the first run."""
    text = array([element(n, b"NaN" if n in (2, 6) else None) for n in range(9)])

    units = read(text, should_parse=lambda index: index >= 4)

    assert [payload for _, payload, _ in units[:4]] == [SKIPPED] * 4
    assert bad(units) == [(7, "element 7: field 'status' holds NaN: JSON has no NaN or Infinity")]
    assert [payload["seq"] for _, payload in good(units)[4:]] == [4, 5, 7, 8]


def test_an_array_cut_short_after_a_bad_element_still_says_where_it_broke():
    """GIVEN an array with a NaN element, cut off inside its 6th element WHEN decoded THEN the NaN element
    is rejected, the others before the cut land, and element 6 ends the file as before."""
    text = array([element(n, b"NaN" if n == 1 else None) for n in range(8)])
    cut = text.index(b'"event 5"')

    units = read(text[:cut])

    assert [where for where, _ in good(units)] == [1, 3, 4, 5]
    assert bad(units)[0] == (2, "element 2: field 'status' holds NaN: JSON has no NaN or Infinity")
    assert bad(units)[1][0] == 6 and bad(units)[1][1].startswith("element 6: not valid JSON")
    assert bad(units)[1][1].endswith("; the rest of the file cannot be read")


@pytest.mark.parametrize("text, message", [
    (b'[{"a": NaN}, {"b": 1}] trailing', "parse error: trailing garbage"),
    (b'[{"a": NaN}, {"b": 1} {"c": 2}]', "expected ',' or ']' after element 2"),
    (b'[{"a": NaN}, {"b": tru}, {"c": 2}]', "not valid JSON"),
], ids=["trailing-garbage", "missing-comma", "bad-literal"])
def test_garbage_after_a_bad_element_ends_the_file_there(text, message):
    units = read(text)

    assert bad(units)[0] == (1, "element 1: field 'a' holds NaN: JSON has no NaN or Infinity")
    assert len(bad(units)) == 2 and message in bad(units)[1][1]
    assert bad(units)[1][1].endswith("; the rest of the file cannot be read")


def test_garbage_without_a_bad_element_reads_as_it_did():
    """GIVEN garbage in the 2nd element and nothing ijson refuses before it WHEN decoded THEN element 2 ends
    the file with ijson's own message, as before this change."""
    units = read(b'[{"a": 1}, {"b": 1 2}, {"c": 3}]')

    assert good(units) == [(1, {"a": 1})]
    assert len(bad(units)) == 1 and re.fullmatch(
        r"element 2: not valid JSON \(near byte \d+ of the decompressed file\): parse error: after key and value, "
        r"inside map, I expect ',' or '}'; the rest of the file cannot be read", bad(units)[0][1])


def test_a_bad_element_longer_than_the_event_limit_ends_the_file_as_an_oversized_one_does():
    text = array([element(0), element(1, b"NaN", blob="x" * 300_000), element(2)])

    units = read(text, max_event_bytes=100_000)

    assert good(units) == [(1, event(0))]
    assert bad(units) == [(2, "element 2: longer than 100000 bytes; the rest of the file cannot be read")]


def peak_memory(count: int, bad_every: int) -> tuple[int, int, int]:
    """(rejected, peak traced bytes, decompressed size) of decoding a gzip array of 2 KB elements."""
    elements = [element(n, b"NaN" if n % bad_every == bad_every // 2 else None, pad="p" * 2000)
                for n in range(count)]
    size = sum(map(len, elements))
    data = gzip.compress(array(elements))
    del elements
    tracemalloc.start()
    try:
        rejected = sum(1 for *_, error, _size in open_file(pieces_of(data, MB), "big.json.gz").units if error)
        return rejected, tracemalloc.get_traced_memory()[1], size
    finally:
        tracemalloc.stop()


def test_memory_stays_bounded_when_bad_elements_are_spread_through_a_big_file():
    """GIVEN gzip arrays of 3 and 12 MB streamed in 1 MiB pieces, with a bad element in every 256 KB (so the
    scanner takes over again and again) WHEN decoded THEN the peak does not grow with the file: it is a few
    pieces, far below the size of the file."""
    small = peak_memory(1_500, 120)
    big = peak_memory(6_000, 120)

    assert (small[0], big[0]) == (1_500 // 120, 6_000 // 120)
    assert big[2] > 12_000_000
    assert big[1] < small[1] * 1.25 and big[1] < 8 * MB, (small, big)


# --- the same rule as the HTTP path, for any array --------------------------------------------------

values = st.one_of(st.integers(-(1 << 70), 1 << 70), st.floats(allow_nan=False, allow_infinity=False),
                   st.text(max_size=8), st.booleans(), st.none())
objects = st.dictionaries(st.text(max_size=5), st.one_of(values, st.lists(values, max_size=3),
                                                         st.dictionaries(st.text(max_size=3), values, max_size=3)),
                          max_size=4)
hostile = st.sampled_from([value for value, _ in BAD_VALUES] + [b'"}, {"', b'"\\\\ud800"', b'"\\ud83d\\ude00"'])


@settings(max_examples=150, deadline=None)
@given(events=st.lists(st.tuples(objects, st.none() | hostile), min_size=1, max_size=25),
       piece=st.integers(1, 300), pretty=st.booleans())
def test_any_array_reads_as_the_http_path_reads_it(events, piece, pretty):
    """GIVEN any array of objects, some holding what JSON cannot carry WHEN decoded from a blob in any
    piece size THEN each element lands or is rejected exactly as the HTTP path decides for the same text."""
    elements = [json.dumps(value).encode() if extra is None  # ASCII: non-ASCII text as escapes, pairs too
                else json.dumps(value).encode()[:-1] + (b", " if value else b"") + b'"zz": ' + extra + b"}"
                for value, extra in events]
    text = array(elements, pretty)

    units = read(text, piece=piece)

    expected = decode_json_events(text)
    assert len(units) == len(expected)
    for number, (where, payload, error) in enumerate(units, start=1):
        want = expected[number - 1]
        assert where == number
        if type(want) is Unreadable:
            assert (payload, error) == (None, f"element {number}: {want.reason}")
        else:
            assert (payload, error) == (want, None)
