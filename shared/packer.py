"""Pack serialized rows into Logs Ingestion requests, byte-exact under the size limit.

Sizes come from arithmetic on the already-serialized rows (brackets and commas
included), so nothing is encoded twice. Auxiliary-tier tables refuse a call whose
TimeGenerated values span 30 minutes or more, so those routes also split by time.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

DEFAULT_MAX_REQUEST_BYTES = 1_000_000
AUXILIARY_MAX_SPAN_SECONDS = 30 * 60


@dataclass(frozen=True)
class PackedRequest:
    """One call's uncompressed JSON array and the positions of its rows in the batch."""

    body: bytes
    positions: tuple[int, ...]


@dataclass(frozen=True)
class Packing:
    requests: list[PackedRequest]
    too_large: list[int]  # positions of rows that cannot fit in any request


def array_size(row_sizes: Sequence[int]) -> int:
    """Bytes of ``[row,row,...]`` for rows of these sizes."""
    return 2 + sum(row_sizes) + max(len(row_sizes) - 1, 0)


def pack(
    rows: Sequence[bytes],
    max_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    times: Sequence[float] | None = None,
    max_span_seconds: float | None = None,
) -> Packing:
    """Greedy packing in input order (by time when a span limit is given)."""
    if max_span_seconds is None:
        return _pack_in_order(rows, max_bytes)
    if times is None or len(times) != len(rows):
        raise ValueError("splitting by time span needs one time per row")
    groups, too_large = split_by_time(list(map(len, rows)), times, max_bytes, max_span_seconds)
    return Packing([PackedRequest(_array([rows[p] for p in group]), group) for group in groups], too_large)


def split_by_time(sizes: Sequence[int], times: Sequence[float], max_bytes: int,
                  max_span_seconds: float) -> tuple[list[tuple[int, ...]], list[int]]:
    """Where the greedy packing by time cuts rows of these sizes and times, without building any
    body: rows in time order, a request closed when the next row would not fit or would make it
    span ``max_span_seconds``; and the positions of the rows too large for any request."""
    groups: list[tuple[int, ...]] = []
    too_large: list[int] = []
    current: list[int] = []
    size = 2
    first_time = 0.0
    for position in sorted(range(len(sizes)), key=times.__getitem__):
        row_size = sizes[position]
        if row_size + 2 > max_bytes:
            too_large.append(position)
            continue
        grows_to = size + row_size + (1 if current else 0)
        if current and (grows_to > max_bytes or times[position] - first_time >= max_span_seconds):
            groups.append(tuple(current))
            current, grows_to = [], 2 + row_size
        if not current:
            first_time = times[position]
        current.append(position)
        size = grows_to
    if current:
        groups.append(tuple(current))
    return groups, too_large


def _pack_in_order(rows: Sequence[bytes], max_bytes: int) -> Packing:
    groups, too_large = split_in_order(list(map(len, rows)), max_bytes)
    return Packing([PackedRequest(array_of(rows, group), group) for group in groups], too_large)


def split_in_order(sizes: Sequence[int], max_bytes: int) -> tuple[list[tuple[int, ...]], list[int]]:
    """Where the greedy in-order packing cuts rows of these sizes, without building any body:
    the positions of each request, and of the rows too large for any. Each request is the
    longest run of rows whose ``[a,b,...]`` fits, found by bisecting the running total of
    row sizes + commas instead of a per-row Python loop."""
    too_large: list[int] = []
    kept: Sequence[int] = range(len(sizes))
    if sizes and max(sizes) + 2 > max_bytes:  # rare: such rows are skipped, the others pack around them
        too_large = [p for p, size in enumerate(sizes) if size + 2 > max_bytes]
        skipped = set(too_large)
        kept = [p for p in kept if p not in skipped]
        sizes = [sizes[p] for p in kept]
    # ends[k] = bytes of rows 0..k-1 each followed by a comma; a run i..j-1 takes 1 + ends[j] - ends[i]
    ends = [0, *accumulate(size + 1 for size in sizes)]
    groups: list[tuple[int, ...]] = []
    start = 0
    while start < len(sizes):
        stop = bisect_right(ends, ends[start] + max_bytes - 1, start + 1) - 1
        groups.append(tuple(kept[start:stop]))
        start = stop
    return groups, too_large


def array_of(rows: Sequence[bytes], positions: Sequence[int]) -> bytes:
    """The request body ``[row,row,...]`` of the rows at ``positions``, in that order."""
    first, last = positions[0], positions[-1]
    if len(positions) == last - first + 1 and isinstance(rows, list) and tuple(positions) == tuple(range(first, last + 1)):
        return _array(rows[first:last + 1])  # a contiguous ascending run: slice, no per-row lookups
    return _array([rows[p] for p in positions])


def _array(rows: Sequence[bytes]) -> bytes:
    """``[row,row,...]`` with one copy of the rows (brackets joined onto the first and last)."""
    if len(rows) == 1:
        return b"[" + rows[0] + b"]"
    return b",".join([b"[" + rows[0], *rows[1:-1], rows[-1] + b"]"])
