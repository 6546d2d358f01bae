"""HTTP bodies (DESIGN 3.1): JSON, NDJSON, gzip, CloudEvents 1.0, Event Grid and their handshakes.

Inputs are hostile (DESIGN 4): every size is bounded before it is allocated, the inflated size of a
gzip body too, and each bad body gets a DecodeError (400) or TooLargeError (413) that says where.
"""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.records import Record, Rejection
from shared.sources.compression import gunzip_bounded
from shared.sources.errors import DecodeError, TooLargeError
from shared.sources.http import check_declared_length, decode_http_body, header, options_handshake
from shared.sources.jsontext import (
    Unreadable,
    _decode_ndjson_lines,
    _require_some,
    array_text,
    decode_json_events,
    decode_ndjson,
    json_array_slices,
    loads,
    ndjson_slices,
    require_objects,
)

MB = 1024 * 1024
LIMIT = MB


def decode(body: bytes, headers: dict[str, str] | None = None, limit: int = LIMIT):
    return decode_http_body(headers or {}, body, limit)


def gzip_of_zeros(total: int, chunk: int = MB) -> bytes:
    """A gzip member of `total` zero bytes, built without holding them all in memory."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(bytes(chunk)) for _ in range(total // chunk)]
    return b"".join(parts) + compressor.flush()


# --- JSON text ------------------------------------------------------------------------------------


def test_json_object_is_one_event():
    """GIVEN one JSON object WHEN decoded THEN one event, kind json."""
    decoded = decode(b'{"a": 1}')

    assert (decoded.all_events(), decoded.kind, decoded.handshake) == ([{"a": 1}], "json", None)


def test_json_array_gives_its_elements():
    """GIVEN a JSON array WHEN decoded THEN each element is an event."""
    assert decode(b'[{"a": 1}, {"b": 2}]').all_events() == [{"a": 1}, {"b": 2}]


def test_pretty_printed_json_object_is_one_event(events_dir):
    """GIVEN github_push.json (an object over many lines) WHEN decoded THEN one event, not NDJSON."""
    body = (events_dir / "github_push.json").read_bytes()

    decoded = decode(body)

    assert decoded.kind == "json"
    assert decoded.all_events() == [orjson.loads(body)]


def test_ndjson_with_blank_lines(events_dir):
    """GIVEN applogs.ndjson with blank lines added WHEN decoded without a content type THEN one event per line."""
    lines = (events_dir / "applogs.ndjson").read_bytes().splitlines()
    body = b"\n\n".join(lines) + b"\n\r\n"

    decoded = decode(body)

    assert decoded.kind == "json"
    assert [e["message"] for e in decoded.all_events()] == [
        "GET /orders 200", "slow query", "payment declined", "cache probe", "POST /orders 201",
    ]


@pytest.mark.parametrize("content_type", ["application/x-ndjson", "application/ndjson", "application/jsonl",
                                          "application/x-jsonlines", "Application/X-NDJSON; charset=utf-8"])
def test_ndjson_by_content_type(content_type):
    """GIVEN an NDJSON content type WHEN a single line is decoded THEN kind ndjson."""
    decoded = decode(b'{"a": 1}', {"Content-Type": content_type})

    assert (decoded.all_events(), decoded.kind) == ([{"a": 1}], "ndjson")


def test_malformed_json_names_line_column_and_offset():
    """GIVEN a JSON object with a missing value WHEN decoded THEN DecodeError with line, column and byte offset."""
    with pytest.raises(DecodeError) as caught:
        decode(b'{"a": 1, "b": }')

    assert str(caught.value) == (
        "body is not valid JSON at line 1, column 15 (byte offset 14): unexpected character, expected a JSON value"
    )


def test_malformed_json_array_on_line_two():
    """GIVEN an array broken on its second line WHEN decoded THEN line 2 is named."""
    with pytest.raises(DecodeError) as caught:
        decode(b'[{"a": 1},\n {"b" 2}]')

    assert str(caught.value) == (
        "body is not valid JSON at line 2, column 7 (byte offset 17): unexpected character, expected ':' after key"
    )


def test_malformed_json_offset_is_in_bytes_after_multibyte_characters():
    """GIVEN an error after 'éé' and '€' (7 bytes for 3 characters) WHEN decoded THEN the byte offset counts bytes
    (orjson reports characters) and the column counts characters."""
    with pytest.raises(DecodeError) as caught:
        decode('{"éé": "€", x}'.encode())

    assert str(caught.value) == (
        "body is not valid JSON at line 1, column 13 (byte offset 16): unexpected character, expected a string key"
    )


def flat(decoded) -> list:
    """The records and rejections of a decoded body, in order (it yields them a slice at a time)."""
    return [item for batch in decoded.records() for item in batch]


def rejections(decoded) -> list[tuple[dict, str]]:
    """(ref fields, reason) of each rejection a decoded body gives, in body order (slices are used up)."""
    return [(item.ref.fields(), item.reason) for item in flat(decoded) if isinstance(item, Rejection)]


def events_and_rejections(decoded) -> tuple[list, list[tuple[dict, str]]]:
    """The good events and the rejections of a decoded body, reading its records once."""
    records = flat(decoded)
    return ([r.event for r in records if isinstance(r, Record)],
            [(r.ref.fields(), r.reason) for r in records if isinstance(r, Rejection)])


def test_malformed_ndjson_line_is_a_rejection_naming_it_and_the_others_stay():
    """GIVEN NDJSON whose third line is broken WHEN decoded THEN lines 1-2 are events, line 3 a rejection naming it."""
    decoded = decode(b'{"a": 1}\n{"b": 2}\n{"c": \n')

    assert events_and_rejections(decoded) == (
        [{"a": 1}, {"b": 2}], [({"index": 2, "line": 3}, "line 3: not valid JSON at column 6: unexpected end of data")])


def test_malformed_ndjson_by_content_type_counts_blank_lines():
    """GIVEN NDJSON by content type, a blank line, then garbage on line 3 WHEN decoded THEN line 3 is named."""
    decoded = decode(b'{"a": 1}\n\nnope\n', {"Content-Type": "application/x-ndjson"})

    assert rejections(decoded) == [
        ({"index": 1, "line": 3}, "line 3: not valid JSON at column 1: invalid literal, expected 'null'")]


def test_ndjson_without_one_good_line_is_refused_whole():
    """GIVEN NDJSON of which no line is JSON WHEN its records are read THEN DecodeError (400) naming the first."""
    decoded = decode(b'nope\nnot json either\n', {"Content-Type": "application/x-ndjson"})

    with pytest.raises(DecodeError, match=r"^body holds no valid JSON line: line 1: not valid JSON at column 1: .*"
                                          r"\(and 1 more bad line\(s\)\)$"):
        list(decoded.records())


def test_ndjson_slices_give_the_events_of_the_whole_body_in_order():
    # GIVEN NDJSON with blank lines, CRLF endings, a value between vertical tabs and no final newline
    body = b'{"n": 0}\r\n\n{"n": 1}\n\x0b{"n": 2}\x0b\n \n{"n": 3}\n{"n": 4}'
    # WHEN decoded three lines at a time
    slices = list(ndjson_slices(body, 3))
    # THEN the slices hold at most three lines' events, and together they are decode_ndjson's events
    assert [len(part) for part in slices] == [2, 2, 1]
    assert [event for part in slices for event in part] == decode_ndjson(body) == [{"n": n} for n in range(5)]


def test_ndjson_slices_yield_the_bad_line_in_its_place_and_go_on():
    # GIVEN NDJSON whose 5th line is broken
    body = b'{"n": 0}\n{"n": 1}\n{"n": 2}\n\n{"n": \n{"n": 5}\n'
    slices = ndjson_slices(body, 2)
    # WHEN read slice by slice THEN line 5 is an Unreadable in its place (blank line counted), line 6 still comes
    assert next(slices) == [{"n": 0}, {"n": 1}]
    assert next(slices) == [{"n": 2}]
    assert next(slices) == [Unreadable("line 5: not valid JSON at column 6: unexpected end of data", 5), {"n": 5}]
    assert next(slices, None) is None


def decoded_or_error(decode):
    """("events", what ``decode()`` gives) or ("error", its DecodeError's message)."""
    try:
        return "events", decode()
    except DecodeError as error:
        return "error", str(error)


ndjson_lines = st.lists(st.sampled_from([
    b'{"a": 1}', b'  {"b": [1, 2]}\t', b"", b" ", b"\x0b{\"c\": null}\x0c", b'{"d": "x"}\r', b"[1]", b"7",
    b'{"e": }', b"nope", b'"\xff"',
]), max_size=12)


@settings(max_examples=300, deadline=None)
@given(lines=ndjson_lines, slice_lines=st.integers(1, 5), final_newline=st.booleans())
def test_ndjson_slices_agree_with_decode_ndjson_on_any_body(lines, slice_lines, final_newline):
    # GIVEN any mix of good, blank, padded and bad lines
    body = b"\n".join(lines) + (b"\n" if final_newline else b"")

    # WHEN decoded in slices and whole THEN the events, or the error naming the first bad line, agree
    sliced = decoded_or_error(lambda: [event for part in ndjson_slices(body, slice_lines) for event in part])
    assert sliced == decoded_or_error(lambda: decode_ndjson(body))


# values whose text holds seams (``},{``) that are not between elements: in strings and nested arrays
tricky_values = st.recursive(
    st.one_of(st.integers(-3, 3), st.sampled_from(["},{", "} , {", '"}],[{"', "x", "\\},{", ""]), st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(["a", "b", "},{"]), inner, max_size=3)),
    max_leaves=8,
)
array_elements = st.lists(st.one_of(st.dictionaries(st.sampled_from(["k", "},{", "n"]), tricky_values, max_size=3),
                                    tricky_values), max_size=12)
separators = st.sampled_from([b",", b", ", b",\n  ", b"\n,\t"])


@settings(max_examples=400, deadline=None)
@given(elements=array_elements, separator=separators, slice_bytes=st.integers(1, 60),
       damage=st.one_of(st.none(), st.integers(0, 10_000)), padding=st.sampled_from([b"", b" \n", b"\x0b"]))
def test_json_array_slices_agree_with_parsing_the_whole_array(elements, separator, slice_bytes, damage, padding):
    # GIVEN an array of objects and other values, with seams inside strings and nested values, maybe damaged
    text = padding + b"[" + separator.join(orjson.dumps(e) for e in elements) + b"]" + padding
    if damage is not None and text:
        cut = damage % len(text)
        text = text[:cut] + text[cut + 1:]  # one byte gone: usually no longer valid JSON

    # WHEN read in slices of a few bytes, and whole
    sliced = decoded_or_error(lambda: [event for part in json_array_slices(text, slice_bytes) for event in part])
    whole = decoded_or_error(lambda: loads(text))
    # THEN they give the same events, or the same error (that of the whole body)
    if whole[0] == "error" or isinstance(whole[1], list):
        assert sliced == whole
    else:  # one byte less made it another JSON value
        assert sliced == ("error", "body is not a JSON array")


def test_a_long_array_is_parsed_in_slices_cut_between_objects():
    # GIVEN an array of 300 objects, some holding seams in strings and nested arrays of objects
    events = [{"n": n, "text": "a},{b" if n % 7 == 0 else "", "tags": [{"t": 1}, {"t": 2}]} for n in range(300)]
    text = orjson.dumps(events)
    # WHEN read 2 KB at a time
    slices = list(json_array_slices(text, 2048))
    # THEN it came in several slices, each cut between two objects, with every event in order
    assert len(slices) > 5 and all(slices)
    assert [event for part in slices for event in part] == events


def test_a_long_array_with_a_broken_element_late_names_the_position_in_the_whole_body():
    # GIVEN a long array whose 250th element is broken
    good = [orjson.dumps({"n": n}) for n in range(300)]
    good[250] = b'{"n": }'
    text = b"[" + b",".join(good) + b"]"
    # WHEN its slices are read THEN the first ones come, then the error names the offset in the whole body
    slices = json_array_slices(text, 256)
    assert next(slices)[0] == {"n": 0}
    with pytest.raises(DecodeError) as caught:
        list(slices)
    with pytest.raises(DecodeError) as whole:
        decode_json_events(text)
    assert str(caught.value) == str(whole.value) and "byte offset" in str(caught.value)


def test_ndjson_sent_as_json_is_decoded_lazily_unless_it_is_event_grid():
    # GIVEN NDJSON posted as application/json, plain and as Event Grid events
    plain = b'{"a": 1}\n{"a": 2}\n'
    grid = b'{"id": "1", "eventType": "t", "dataVersion": "1"}\n{"id": "2", "eventType": "t", "dataVersion": "1"}\n'
    # WHEN decoded THEN plain NDJSON comes as slices, Event Grid whole (each event is checked)
    lazy = decode(plain)
    assert lazy.slices is not None and lazy.events == [] and lazy.all_events() == [{"a": 1}, {"a": 2}]
    eager = decode(grid)
    assert eager.slices is None and eager.kind == "eventgrid" and [e["id"] for e in eager.events] == ["1", "2"]


@pytest.mark.parametrize("body", [b"", b"  \n\t "], ids=["empty", "whitespace"])
def test_empty_body(body):
    """GIVEN an empty body WHEN decoded THEN DecodeError 'body is empty'."""
    with pytest.raises(DecodeError, match=r"^body is empty$"):
        decode(body)


def test_invalid_utf8_is_refused():
    """GIVEN a string with a byte that is not UTF-8 WHEN decoded THEN DecodeError (the service needs UTF-8)."""
    with pytest.raises(DecodeError) as caught:
        decode(b'{"a": "\xff"}')

    assert "str is not valid UTF-8" in str(caught.value)


def test_decode_ndjson_skips_blank_and_whitespace_lines():
    """GIVEN NDJSON with CRLF and blank lines WHEN decoded THEN only the values."""
    assert decode_ndjson(b'1\r\n\r\n  \n{"a":2}\r\n') == [1, {"a": 2}]


def test_decode_ndjson_bad_line_is_named_after_the_fast_read_fails():
    """GIVEN NDJSON whose third line is broken WHEN decoded THEN the line-by-line reading names it in its place."""
    events = decode_ndjson(b'{"a":1}\n\n{"b":}\n{"c":3}\n')
    assert events[0] == {"a": 1} and events[2] == {"c": 3}
    assert events[1].reason.startswith("line 3: not valid JSON at column 6: ")


def test_decode_ndjson_vertical_tab_and_form_feed_around_values_are_stripped():
    """GIVEN lines with \\v or \\f around values (not JSON whitespace, which the fast read refuses)
    WHEN decoded THEN the line-by-line reading strips them as before and every value comes back."""
    assert decode_ndjson(b'\x0b{"a":1}\x0c\n\x0c\n 2\x0b\r\n') == [{"a": 1}, 2]


def test_decode_ndjson_lines_that_only_parse_together_are_refused():
    """GIVEN one value split over two lines WHEN decoded THEN no line is good: an error on line 1, not one event."""
    with pytest.raises(DecodeError, match=r"^body holds no valid JSON line: line 1: not valid JSON"):
        decode_ndjson(b'{"a":\n1}\n')


_PIECES = st.sampled_from([b'{"a":1}', b"[1, 2]", b'"x"', b"7", b"null", b'{"b":', b"}", b"", b" ", b"\t", b"\r",
                           b"\x0b", b"\x0c", b"\xef\xbb\xbf", b'"\xff"', b"1 2", b"\x00", b'"\\u00e9"'])


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.lists(_PIECES, max_size=4).map(b"".join), max_size=6).map(b"\n".join))
def test_decode_ndjson_is_the_line_by_line_reading(body):
    """GIVEN any body of lines made of values, broken values and whitespace JSON counts or not
    WHEN decoded THEN the events, or the error and its message, are the line-by-line reading's."""
    def run(decode):
        try:
            return decode(body, "body")
        except DecodeError as error:
            return str(error)

    def line_by_line(body, what):
        events = _decode_ndjson_lines(body, what)
        _require_some(events, what)
        return events

    assert run(decode_ndjson) == run(line_by_line)


def test_decode_json_events_array_that_is_not_closed():
    """GIVEN '[' followed by NDJSON-looking lines WHEN decoded THEN it is a broken array, not NDJSON."""
    with pytest.raises(DecodeError, match=r"^body is not valid JSON at line 2"):
        decode_json_events(b'[{"a":1}\n{"b":2}')


def test_require_objects_names_the_first_non_object():
    """GIVEN events with a number at index 1 WHEN objects are required THEN its index and type are named."""
    with pytest.raises(DecodeError) as caught:
        require_objects([{"a": 1}, 5])

    assert str(caught.value) == "event #1 is a int, not a JSON object"


# --- gzip -------------------------------------------------------------------------------------------


def test_gzip_body():
    """GIVEN Content-Encoding: gzip WHEN decoded THEN the inflated JSON is decoded."""
    decoded = decode(gzip.compress(b'[{"a": 1}, {"b": 2}]'), {"Content-Encoding": "gzip"})

    assert decoded.all_events() == [{"a": 1}, {"b": 2}]


def test_gzip_bomb_is_refused_without_inflating_it():
    """GIVEN a ~50 KB gzip of 50 MB of zeros and a 1 MB limit WHEN inflated THEN TooLargeError, and the peak
    memory stays near the limit instead of the inflated size."""
    bomb = gzip_of_zeros(50 * MB)
    assert len(bomb) < 100_000

    tracemalloc.start()
    try:
        with pytest.raises(TooLargeError) as caught:
            gunzip_bounded(bomb, LIMIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert str(caught.value) == "decompressed body is over the limit of 1048576 bytes"
    assert peak < 4 * MB


def test_gzip_bomb_through_the_http_decoder():
    """GIVEN the bomb as an HTTP body WHEN decoded THEN TooLargeError (413), not a DecodeError."""
    with pytest.raises(TooLargeError, match="decompressed body is over the limit of 1048576 bytes"):
        decode(gzip_of_zeros(50 * MB), {"Content-Encoding": "GZIP"})


def test_gzip_that_inflates_to_exactly_the_limit_is_accepted():
    """GIVEN a gzip of exactly `limit` bytes WHEN inflated THEN all of it comes back."""
    assert gunzip_bounded(gzip.compress(b"x" * 1000), 1000) == b"x" * 1000


def test_gzip_one_byte_over_the_limit_is_refused():
    """GIVEN a gzip of limit + 1 bytes WHEN inflated THEN TooLargeError."""
    with pytest.raises(TooLargeError):
        gunzip_bounded(gzip.compress(b"x" * 1001), 1000)


@pytest.mark.parametrize("cut", [4, 20], ids=["trailer", "stream"])
def test_truncated_gzip(cut):
    """GIVEN a gzip body with its end cut off WHEN inflated THEN DecodeError 'truncated'."""
    body = gzip.compress(b'{"a": 1}\n' * 50)[:-cut]

    with pytest.raises(DecodeError, match=r"^gzip body is truncated$"):
        decode(body, {"Content-Encoding": "gzip"})


def test_not_gzip_at_all():
    """GIVEN Content-Encoding gzip and plain JSON WHEN decoded THEN DecodeError naming gzip."""
    with pytest.raises(DecodeError, match=r"^body is not valid gzip: "):
        decode(b'{"a": 1}', {"Content-Encoding": "gzip"})


def test_concatenated_gzip_members():
    """GIVEN two gzip members back to back (as `cat a.gz b.gz`) WHEN decoded THEN both members' lines."""
    body = gzip.compress(b'{"a": 1}\n') + gzip.compress(b'{"b": 2}\n')

    assert decode(body, {"Content-Encoding": "gzip"}).all_events() == [{"a": 1}, {"b": 2}]


def test_concatenated_gzip_members_share_the_limit():
    """GIVEN two members of 600 bytes each and a limit of 1000 WHEN inflated THEN TooLargeError."""
    body = gzip.compress(b"x" * 600) + gzip.compress(b"y" * 600)

    with pytest.raises(TooLargeError):
        gunzip_bounded(body, 1000)


def test_trailing_garbage_after_gzip_is_ignored():
    """GIVEN bytes after the last member that are not another member WHEN inflated THEN ignored, as gzip(1) does."""
    assert gunzip_bounded(gzip.compress(b"abc") + b"\x00\x00junk", 100) == b"abc"


@pytest.mark.parametrize("encoding", ["br", "deflate", "compress"])
def test_unsupported_content_encoding(encoding):
    """GIVEN Content-Encoding other than gzip/identity WHEN decoded THEN DecodeError naming it."""
    with pytest.raises(DecodeError) as caught:
        decode(b"{}", {"Content-Encoding": encoding})

    assert str(caught.value) == f"Content-Encoding {encoding!r} is not supported (use gzip or none)"


def test_identity_encoding_is_plain():
    """GIVEN Content-Encoding identity WHEN decoded THEN the body is read as is."""
    assert decode(b'{"a": 1}', {"Content-Encoding": "identity"}).all_events() == [{"a": 1}]


# --- sizes --------------------------------------------------------------------------------------------


def test_body_over_the_limit():
    """GIVEN a body one byte over the limit WHEN decoded THEN TooLargeError before anything is parsed."""
    with pytest.raises(TooLargeError) as caught:
        decode(b"x" * 11, limit=10)

    assert str(caught.value) == "body of 11 bytes is over the limit of 10 bytes"


def test_body_at_the_limit_is_decoded():
    """GIVEN a body exactly at the limit WHEN decoded THEN it is decoded."""
    assert decode(b'{"a":"1"}', limit=9).all_events() == [{"a": "1"}]


def test_declared_content_length_over_the_limit():
    """GIVEN Content-Length over the limit WHEN checked THEN TooLargeError before the body is read."""
    with pytest.raises(TooLargeError) as caught:
        check_declared_length({"content-length": "26214401"}, 26214400)

    assert str(caught.value) == "body of 26214401 bytes is over the limit of 26214400 bytes"


@pytest.mark.parametrize("value", ["100", "", "abc", "-5", "\u00b2\u00b2\u00b2"],
                         ids=["at-limit", "absent", "garbage", "negative", "superscript-digits"])
def test_declared_content_length_that_is_fine_or_not_a_number(value):
    """GIVEN Content-Length at the limit, missing or not an ASCII number WHEN checked THEN no error
    (the real body length is checked after reading)."""
    assert check_declared_length({"Content-Length": value}, 100) is None


# --- CloudEvents ------------------------------------------------------------------------------------------


def test_cloudevents_structured(events_dir):
    """GIVEN cloudevent_structured.json as application/cloudevents+json WHEN decoded THEN one cloudevent."""
    body = (events_dir / "cloudevent_structured.json").read_bytes()

    decoded = decode(body, {"Content-Type": "application/cloudevents+json; charset=utf-8"})

    assert decoded.kind == "cloudevents"
    assert decoded.all_events() == [orjson.loads(body)]
    assert decoded.all_events()[0]["id"] == "A234-1234-1234"


def test_cloudevents_batch(events_dir):
    """GIVEN cloudevents_batch.json as application/cloudevents-batch+json WHEN decoded THEN both events."""
    body = (events_dir / "cloudevents_batch.json").read_bytes()

    decoded = decode(body, {"Content-Type": "application/cloudevents-batch+json"})

    assert decoded.kind == "cloudevents"
    assert [e["id"] for e in decoded.all_events()] == ["9aeb0fdf-c01e-0131-0922-9eb54906e209", "A234-1234-1235"]


def test_cloudevents_binary_mode_json_data():
    """GIVEN ce-* headers and a JSON body WHEN decoded THEN attributes from headers (lower-cased), data from body."""
    headers = {"ce-specversion": "1.0", "CE-ID": "b-1", "ce-source": "/contoso", "ce-type": "com.contoso.t",
               "ce-time": "2024-05-01T17:31:00Z", "Content-Type": "application/json"}

    decoded = decode(b'{"orderId": 4711}', headers)

    assert decoded.kind == "cloudevents"
    assert decoded.all_events() == [{
        "specversion": "1.0", "id": "b-1", "source": "/contoso", "type": "com.contoso.t",
        "time": "2024-05-01T17:31:00Z", "datacontenttype": "application/json", "data": {"orderId": 4711},
    }]


def test_cloudevents_binary_mode_text_data():
    """GIVEN ce-* headers and a text/plain body WHEN decoded THEN data is the text."""
    headers = {"ce-specversion": "1.0", "ce-id": "b-2", "ce-source": "/s", "ce-type": "t", "Content-Type": "text/plain"}

    (event,) = decode(b"hello", headers).all_events()

    assert (event["data"], event["datacontenttype"]) == ("hello", "text/plain")


def test_cloudevents_binary_mode_bad_json_data():
    """GIVEN ce-* headers and broken JSON data WHEN decoded THEN DecodeError naming CloudEvent data."""
    headers = {"ce-specversion": "1.0", "ce-id": "b", "ce-source": "/s", "ce-type": "t",
               "Content-Type": "application/json"}

    with pytest.raises(DecodeError, match=r"^CloudEvent data is not valid JSON at line 1"):
        decode(b"{nope", headers)


def test_cloudevents_missing_required_attribute():
    """GIVEN a structured CloudEvent without source and id WHEN decoded THEN the missing ones are named."""
    body = b'{"specversion": "1.0", "type": "t"}'

    with pytest.raises(DecodeError) as caught:
        decode(body, {"Content-Type": "application/cloudevents+json"})

    assert str(caught.value) == "CloudEvent #0 lacks required attribute(s): id, source"


def test_cloudevents_binary_missing_required_attribute():
    """GIVEN ce-* headers without ce-source WHEN decoded THEN DecodeError naming source."""
    with pytest.raises(DecodeError) as caught:
        decode(b"", {"ce-specversion": "1.0", "ce-id": "x", "ce-type": "t"})

    assert str(caught.value) == "CloudEvent #0 lacks required attribute(s): source"


def test_cloudevents_wrong_specversion():
    """GIVEN specversion 0.3 WHEN decoded THEN only 1.0 is supported."""
    body = b'{"specversion": "0.3", "id": "1", "source": "/s", "type": "t"}'

    with pytest.raises(DecodeError) as caught:
        decode(body, {"Content-Type": "application/cloudevents+json"})

    assert str(caught.value) == "CloudEvent #0 has specversion '0.3', only 1.0 is supported"


def test_cloudevents_batch_event_index_is_named(events_dir):
    """GIVEN a batch whose second event lacks type WHEN decoded THEN '#1' is named."""
    # (per event, issue 14: one bad CloudEvent of a batch does not lose the others)
    events = orjson.loads((events_dir / "cloudevents_batch.json").read_bytes())
    del events[1]["type"]

    decoded = decode(orjson.dumps(events), {"Content-Type": "application/cloudevents-batch+json"})

    # THEN it alone is rejected, naming what it lacks; the first lands
    assert events_and_rejections(decoded) == (
        [events[0]], [({"index": 1}, "CloudEvent #1 lacks required attribute(s): type")])


def test_cloudevents_batch_not_an_array(events_dir):
    """GIVEN a single object sent as a batch WHEN decoded THEN DecodeError 'must be a JSON array'."""
    body = (events_dir / "cloudevent_structured.json").read_bytes()

    with pytest.raises(DecodeError) as caught:
        decode(body, {"Content-Type": "application/cloudevents-batch+json"})

    assert str(caught.value) == "application/cloudevents-batch+json body must be a JSON array"


def test_cloudevents_structured_not_an_object(events_dir):
    """GIVEN an array sent as structured mode WHEN decoded THEN DecodeError 'must be one JSON object'."""
    body = (events_dir / "cloudevents_batch.json").read_bytes()

    with pytest.raises(DecodeError) as caught:
        decode(body, {"Content-Type": "application/cloudevents+json"})

    assert str(caught.value) == "application/cloudevents+json body must be one JSON object"


def test_cloudevents_batch_element_not_an_object():
    """GIVEN a batch with a number beside an event WHEN decoded THEN the number is rejected naming its index."""
    good = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}
    decoded = decode(orjson.dumps([1, good]), {"Content-Type": "application/cloudevents-batch+json"})

    assert events_and_rejections(decoded) == ([good], [({"index": 0}, "CloudEvent #0 is not a JSON object")])


# --- Event Grid -------------------------------------------------------------------------------------------


def test_event_grid_events(events_dir):
    """GIVEN eventgrid_blob_created.json WHEN decoded (no special content type) THEN kind eventgrid, both events."""
    body = (events_dir / "eventgrid_blob_created.json").read_bytes()

    decoded = decode(body, {"Content-Type": "application/json"})

    assert (decoded.kind, decoded.handshake) == ("eventgrid", None)
    assert [e["eventType"] for e in decoded.all_events()] == ["Microsoft.Storage.BlobCreated", "Microsoft.Storage.BlobDeleted"]


def test_event_grid_subscription_validation(events_dir):
    """GIVEN eventgrid_subscription_validation.json WHEN decoded THEN the handshake echoes the validation code
    and no events are kept."""
    body = (events_dir / "eventgrid_subscription_validation.json").read_bytes()

    decoded = decode(body, {"aeg-event-type": "SubscriptionValidation"})

    assert decoded.handshake == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert (decoded.all_events(), decoded.kind) == ([], "eventgrid")


@pytest.mark.parametrize("data", [{}, None, {"validationCode": ""}, "code"])
def test_event_grid_validation_without_code(events_dir, data):
    """GIVEN a validation event without data.validationCode WHEN decoded THEN DecodeError."""
    events = orjson.loads((events_dir / "eventgrid_subscription_validation.json").read_bytes())
    events[0]["data"] = data

    with pytest.raises(DecodeError) as caught:
        decode(orjson.dumps(events))

    assert str(caught.value) == "Event Grid subscription validation event lacks data.validationCode"


def test_event_grid_header_with_events_lacking_event_type():
    """GIVEN aeg-event-type and an event without eventType WHEN decoded THEN DecodeError naming its index."""
    with pytest.raises(DecodeError, match=r"^Event Grid event #1 lacks eventType$"):
        decode(b'[{"eventType": "x"}, {"id": 1}]', {"aeg-event-type": "Notification"})


def test_plain_json_with_an_event_type_key_is_not_event_grid():
    """GIVEN an object with eventType but no dataVersion/metadataVersion WHEN decoded THEN plain json."""
    assert decode(b'{"eventType": "deploy"}').kind == "json"


# --- OPTIONS handshake and headers --------------------------------------------------------------------------


def test_options_handshake_echoes_the_origin():
    """GIVEN WebHook-Request-Origin WHEN the OPTIONS handshake is answered THEN the origin is allowed."""
    assert options_handshake({"webhook-request-origin": " eventemitter.example.com "}) == {
        "WebHook-Allowed-Origin": "eventemitter.example.com",
        "WebHook-Allowed-Rate": "*",
        "Allow": "POST, OPTIONS",
    }


@pytest.mark.parametrize("headers", [{}, {"WebHook-Request-Origin": "  "}])
def test_options_handshake_without_origin(headers):
    """GIVEN no (or a blank) WebHook-Request-Origin WHEN answered THEN None (the caller answers 400)."""
    assert options_handshake(headers) is None


@pytest.mark.parametrize("name", ["content-type", "CONTENT-TYPE", "Content-Type", "cOnTeNt-TyPe"])
def test_header_lookup_is_case_insensitive(name):
    """GIVEN a plain dict with 'Content-Type' WHEN looked up in any case THEN found."""
    assert header({"Content-Type": "application/json"}, name) == "application/json"


def test_header_missing_is_empty_string():
    """GIVEN no such header WHEN looked up THEN ''."""
    assert header({"A": "1"}, "B") == ""


def test_ndjson_of_scalars_only_holds_no_event_objects():
    """GIVEN NDJSON whose every line is a number, string, null or array WHEN its records are read
    THEN DecodeError (400): the body holds no events, as a scalar body does not."""
    decoded = decode(b'42\n"hello"\nnull\n[1, 2]\n', {"Content-Type": "application/x-ndjson"})

    with pytest.raises(DecodeError, match=r"^the body holds no event objects: no line of it is a JSON object$"):
        flat(decoded)


def test_ndjson_with_one_object_among_scalars_keeps_it_and_rejects_the_rest():
    decoded = decode(b'42\n{"a": 1}\n"x"\n', {"Content-Type": "application/x-ndjson"})

    events = [item for item in flat(decoded) if isinstance(item, Record)]
    assert [record.event for record in events] == [42, {"a": 1}, "x"]  # the engine rejects the scalars


@pytest.mark.parametrize("count", [0, 1, 2, 3, 50])
def test_array_text_is_the_json_array_of_its_texts_bytes_or_raw_views(count):
    """GIVEN JSON texts as bytes and as msgspec.Raw views into a body WHEN array_text joins them THEN the
    bytes are those of ``[a,b,...]``, and they decode to the texts' values in order."""
    values = [{"n": n, "s": "x" * n} if n % 2 else [n, None] for n in range(count)]
    texts = [orjson.dumps(value) for value in values]
    views = msgspec.json.decode(orjson.dumps(values), type=list[msgspec.Raw])

    for joined in (texts, views):
        assert array_text(joined) == b"[" + b",".join(texts) + b"]"
        assert orjson.loads(array_text(joined)) == values
