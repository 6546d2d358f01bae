"""Byte-exact packing (DESIGN 4: 1 MB per call; auxiliary tables: one call's TimeGenerated span < 30 min)."""

from __future__ import annotations

from itertools import pairwise

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.packer import AUXILIARY_MAX_SPAN_SECONDS, DEFAULT_MAX_REQUEST_BYTES, Packer, Request, array_size
from shared.records import Item, Refs, Row, Rows, refs_at, refs_joined
from tests.unit.packing import array_of, pack


def make_rows(pads: list[int]) -> list[bytes]:
    """Distinct JSON rows of varied sizes: {"i":<index>,"p":"xxx..."}."""
    return [orjson.dumps({"i": i, "p": "x" * pad}) for i, pad in enumerate(pads)]


pads_strategy = st.lists(st.integers(min_value=0, max_value=300), max_size=60)
limit_strategy = st.integers(min_value=2, max_value=1200)


def check_request_invariants(rows: list[bytes], packing, limit: int) -> None:
    for request in packing.requests:
        assert len(request.body) <= limit
        assert request.positions, "no empty requests"
        assert request.body == b"[" + b",".join(rows[p] for p in request.positions) + b"]"
        assert orjson.loads(request.body) == [orjson.loads(rows[p]) for p in request.positions]
    for position in packing.too_large:
        assert len(rows[position]) + 2 > limit


@settings(max_examples=300, deadline=None)
@given(pads=pads_strategy, limit=limit_strategy)
def test_requests_stay_under_the_limit_and_keep_every_row_once_in_order(pads, limit):
    """GIVEN random rows and a limit WHEN packed THEN every body is a JSON array of at most `limit` bytes,
    the requests' positions are every fitting row exactly once in input order, and only rows that
    cannot fit alone are too_large."""
    rows = make_rows(pads)

    packing = pack(rows, limit)

    check_request_invariants(rows, packing, limit)
    sent = [p for request in packing.requests for p in request.positions]
    assert sent == [i for i in range(len(rows)) if i not in set(packing.too_large)]
    assert packing.too_large == [i for i, row in enumerate(rows) if len(row) + 2 > limit]


@settings(max_examples=300, deadline=None)
@given(pads=pads_strategy, limit=limit_strategy)
def test_packing_is_tight(pads, limit):
    """GIVEN random rows WHEN packed THEN no request could also have taken the first row of the next one."""
    rows = make_rows(pads)

    requests = pack(rows, limit).requests

    for current, following in pairwise(requests):
        sizes = [len(rows[p]) for p in current.positions] + [len(rows[following.positions[0]])]
        assert array_size(sizes) > limit


@given(rows=st.lists(st.binary(max_size=50), max_size=40))
def test_array_size_is_the_length_of_the_joined_array(rows):
    """GIVEN any rows WHEN array_size is computed from their lengths THEN it equals len('[' + ','.join + ']')."""
    assert array_size([len(r) for r in rows]) == len(b"[" + b",".join(rows) + b"]")


def test_array_size_of_nothing_is_the_empty_array():
    """GIVEN no rows WHEN sized THEN 2 ('[]')."""
    assert array_size([]) == 2


def test_row_exactly_at_the_limit_fits_alone():
    """GIVEN a row with len(row) + 2 == limit between two small rows WHEN packed THEN it goes alone in a body of
    exactly `limit` bytes."""
    big = orjson.dumps("x" * 96)  # 98 bytes
    rows = [b"1", big, b"2"]

    packing = pack(rows, 100)

    assert [r.positions for r in packing.requests] == [(0,), (1,), (2,)]
    assert len(packing.requests[1].body) == 100
    assert packing.too_large == []


def test_row_one_byte_over_is_too_large_and_the_rest_still_pack():
    """GIVEN a row with len(row) + 2 == limit + 1 WHEN packed THEN it is too_large and the others share a request."""
    rows = [b"1", orjson.dumps("x" * 97), b"2"]  # the middle row is 99 bytes

    packing = pack(rows, 100)

    assert packing.too_large == [1]
    assert [(r.body, r.positions) for r in packing.requests] == [(b"[1,2]", (0, 2))]


def test_two_rows_that_exactly_fill_the_limit_share_a_request():
    """GIVEN two rows whose array is exactly `limit` bytes WHEN packed THEN one request."""
    rows = [b"x" * 48, b"y" * 49]  # 2 + 48 + 1 + 49 = 100

    assert [r.positions for r in pack(rows, 100).requests] == [(0, 1)]


def test_no_rows_no_requests():
    """GIVEN no rows WHEN packed THEN no requests and nothing too large."""
    packing = pack([], 100)

    assert (packing.requests, packing.too_large) == ([], [])


def test_default_limit_is_under_the_service_limit():
    """GIVEN the default WHEN compared THEN 1,000,000 bytes: under the service's 1,048,576."""
    assert DEFAULT_MAX_REQUEST_BYTES == 1_000_000
    rows = [orjson.dumps("x" * 99_998)] * 12  # 100,000 bytes each

    packing = pack(rows)

    assert [len(r.positions) for r in packing.requests] == [9, 3]
    assert max(len(r.body) for r in packing.requests) == 2 + 9 * 100_000 + 8


# --- auxiliary tables: split by TimeGenerated span -----------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_auxiliary_requests_span_less_than_30_minutes_and_are_time_sorted(data):
    """GIVEN random rows with random times and a span limit WHEN packed THEN each request spans < 1800 s, its rows
    are in time order, all fitting rows are sent once, sizes hold, and requests follow each other in time."""
    pads = data.draw(pads_strategy)
    times = data.draw(st.lists(st.floats(min_value=0, max_value=20_000, allow_nan=False),
                               min_size=len(pads), max_size=len(pads)))
    limit = data.draw(limit_strategy)
    rows = make_rows(pads)

    packing = pack(rows, limit, times, AUXILIARY_MAX_SPAN_SECONDS)

    check_request_invariants(rows, packing, limit)
    sent = [p for request in packing.requests for p in request.positions]
    assert sorted(sent) == [i for i in range(len(rows)) if len(rows[i]) + 2 <= limit]
    assert [times[p] for p in sent] == sorted(times[p] for p in sent)
    for request in packing.requests:
        request_times = [times[p] for p in request.positions]
        assert max(request_times) - min(request_times) < AUXILIARY_MAX_SPAN_SECONDS


@settings(max_examples=200, deadline=None)
@given(times=st.lists(st.floats(min_value=0, max_value=20_000, allow_nan=False), max_size=50))
def test_auxiliary_split_is_only_where_needed(times):
    """GIVEN small rows (size never forces a split) WHEN packed by span THEN a new request starts only when the
    next row is 1800 s or more after the request's first row."""
    rows = [b"1"] * len(times)

    requests = pack(rows, 10_000, times, AUXILIARY_MAX_SPAN_SECONDS).requests

    for current, following in pairwise(requests):
        assert times[following.positions[0]] - times[current.positions[0]] >= AUXILIARY_MAX_SPAN_SECONDS


def test_auxiliary_span_of_exactly_30_minutes_splits():
    """GIVEN two rows exactly 1800 s apart WHEN packed for an auxiliary table THEN two requests (span must be < 30 min)."""
    packing = pack([b"1", b"2"], 100, [1000.0, 1000.0 + 1800], AUXILIARY_MAX_SPAN_SECONDS)

    assert [r.positions for r in packing.requests] == [(0,), (1,)]


def test_auxiliary_span_just_under_30_minutes_stays_together():
    """GIVEN two rows 1799.999 s apart WHEN packed THEN one request."""
    packing = pack([b"1", b"2"], 100, [1000.0, 2799.999], AUXILIARY_MAX_SPAN_SECONDS)

    assert [r.positions for r in packing.requests] == [(0, 1)]


def test_auxiliary_rows_are_sorted_by_time():
    """GIVEN rows out of time order WHEN packed by span THEN bodies list them by time (stable for equal times)."""
    packing = pack([b"1", b"2", b"3", b"4"], 100, [30.0, 10.0, 20.0, 10.0], AUXILIARY_MAX_SPAN_SECONDS)

    assert [(r.body, r.positions) for r in packing.requests] == [(b"[2,4,3,1]", (1, 3, 2, 0))]


def test_a_body_lists_its_rows_in_the_order_of_its_positions_even_when_they_span_a_run():
    """GIVEN positions covering a contiguous run out of order (as time ordering gives) WHEN the body is built
    THEN the rows follow the positions, not the run."""
    rows = [b"0", b"1", b"2", b"3"]

    assert array_of(rows, (0, 2, 1, 3)) == b"[0,2,1,3]"
    assert array_of(rows, (1, 2, 3)) == b"[1,2,3]"


class NamingCounter:
    """The ``name`` of a :class:`Refs`: an ``Item`` per position, counting how many it made."""

    def __init__(self) -> None:
        self.made = 0

    def __call__(self, position: int) -> Item:
        self.made += 1
        return Item(position)


@settings(max_examples=200, deadline=None)
@given(pads=pads_strategy, limit=limit_strategy, cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=6),
       timed=st.booleans())
def test_rows_added_in_parts_pack_as_all_at_once_and_name_no_ref(pads, limit, cuts, timed):
    """GIVEN rows with unnamed refs (Refs), handed to the packer in parts as the engine hands them
    WHEN packed THEN the requests are those of the same rows packed at once (bodies, sizes and refs), the
    too-large rows are handed back, and no ref was made until a request's refs are read."""
    rows = make_rows(pads)
    times = [float(p * 97 % 3600) for p in range(len(rows))]
    span = AUXILIARY_MAX_SPAN_SECONDS if timed else None
    counter = NamingCounter()
    packer = Packer(limit, span)
    requests, too_large = [], []
    bounds = sorted({0, len(rows), *(cut for cut in cuts if cut < len(rows))})
    for start, stop in pairwise(bounds):
        part = Rows(Refs(counter, list(range(start, stop))), rows[start:stop], times[start:stop] if timed else [])
        full, large = packer.add(part)
        requests += full
        too_large += large
    requests += packer.finish()

    assert counter.made == len(too_large)  # only the rows handed back were named
    whole = Packer.pack([Row(Item(p), row, times[p]) for p, row in enumerate(rows)], limit, span)
    assert [request.body for request in requests] == [request.body for request in whole[0]]
    assert [request.sizes for request in requests] == [request.sizes for request in whole[0]]
    assert [[ref.index for ref in request.refs] for request in requests] == [
        [ref.index for ref in request.refs] for request in whole[0]]
    assert [row.ref.index for row in too_large] == [row.ref.index for row in whole[1]]


def test_refs_are_named_when_read_and_stay_unnamed_when_joined_sliced_or_picked():
    """GIVEN Refs of one input WHEN sliced, picked and joined THEN they stay unnamed Refs that name the same
    positions when read; joined with refs of another input, or plain refs, they become a list of refs."""
    counter = NamingCounter()
    refs = Refs(counter, [3, 4, 5, 6])

    joined = refs_joined(refs[1:3], refs_at(refs, [3, 0]))

    assert type(joined) is Refs and counter.made == 0
    assert [ref.index for ref in joined] == [4, 5, 6, 3] and counter.made == 4
    assert joined[-1] == Item(3) and len(joined) == 4
    assert refs_joined((), refs) is refs
    other = Refs(NamingCounter(), [9])
    assert refs_joined(refs[:1], other) == [Item(3), Item(9)]
    assert refs_joined(refs[:1], [Item(7)]) == [Item(3), Item(7)]
    assert Request(refs, (1, 1, 1, 1), b"[1,2,3,4]").rows()[2] == Row(Item(5), b"3")
