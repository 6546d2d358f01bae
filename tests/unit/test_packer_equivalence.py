"""The arithmetic in-order packer cuts exactly where the row-by-row greedy loop cuts."""

from __future__ import annotations

import math

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.packer import split_in_order
from tests.unit.packing import array_of, pack


@settings(max_examples=500, deadline=None)
@given(pads=st.lists(st.integers(min_value=0, max_value=400), max_size=80), limit=st.integers(2, 2000))
def test_in_order_packing_matches_the_greedy_loop(pads, limit):
    # GIVEN random rows (some too large for any request) and a limit
    rows = [orjson.dumps({"i": i, "p": "x" * pad}) for i, pad in enumerate(pads)]
    # WHEN packed by arithmetic, and by the row-by-row loop (equal times, a span that never splits)
    fast = pack(rows, limit)
    loop = pack(rows, limit, times=[0.0] * len(rows), max_span_seconds=math.inf)
    # THEN the requests, their bodies and positions, and the too-large rows are the same
    assert fast == loop


def test_many_rows_fill_requests_to_the_byte():
    # GIVEN 10,000 rows of 100 bytes and a 10,000-byte limit
    rows = [b'"' + b"x" * 98 + b'"'] * 10_000
    # WHEN packed
    packing = pack(rows, 10_000)
    # THEN each full request holds 99 rows: 2 + 99 * 100 + 98 = 10,000 bytes
    assert [len(r.positions) for r in packing.requests[:-1]] == [99] * 101
    assert all(len(r.body) == 10_000 for r in packing.requests[:-1])
    assert sum(len(r.positions) for r in packing.requests) == 10_000


@settings(max_examples=300, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=400), max_size=60), limit=st.integers(2, 1500))
def test_split_in_order_cuts_where_pack_does_and_array_of_builds_the_same_body(sizes, limit):
    # GIVEN rows of random sizes
    rows = [b"1" * size for size in sizes]
    # WHEN only the cut points are computed
    groups, too_large = split_in_order(sizes, limit)
    packing = pack(rows, limit)
    # THEN they are pack's positions, and the bodies built from them are pack's bodies
    assert groups == [r.positions for r in packing.requests] and too_large == packing.too_large
    assert [array_of(rows, g) for g in groups] == [r.body for r in packing.requests]
