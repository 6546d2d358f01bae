"""Pack serialized rows into Logs Ingestion requests, byte-exact under the size limit.

Sizes come from arithmetic on the already-serialized rows (brackets and commas
included), so nothing is encoded twice. Auxiliary-tier tables refuse a call whose
TimeGenerated values span 30 minutes or more, so those routes also split by time.
First sends and replays use the same :class:`Packer`.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from isal import igzip

from .records import Row, Rows
from .sources.jsontext import array_text

DEFAULT_MAX_REQUEST_BYTES = 1_000_000
AUXILIARY_MAX_SPAN_SECONDS = 30 * 60


def array_size(row_sizes: Sequence[int]) -> int:
    """Bytes of ``[row,row,...]`` for rows of these sizes."""
    return 2 + sum(row_sizes) + max(len(row_sizes) - 1, 0)


@dataclass(eq=False)
class Request:
    """One call's rows: their refs and sizes, and the body that carries them.

    ``body`` is the uncompressed JSON array the packer built; once it is gzipped (``gzipped``)
    the body may be let go to save memory. :meth:`rows` gives the rows back from whichever is
    kept: the packer wrote the body from these sizes, so the cut is exact. ``refs`` is usually a
    ``records.Refs``: a ref is made when it is read (a failure to report, rows to park).
    """

    refs: Sequence[Any]
    sizes: tuple[int, ...]
    body: bytes | None
    gzipped: bytes | None = None

    def __len__(self) -> int:
        return len(self.refs)

    def rows(self) -> list[Row]:
        body = self.body if self.body is not None else igzip.decompress(self.gzipped or b"")
        rows, offset = [], 1  # past "["
        for ref, size in zip(self.refs, self.sizes, strict=True):
            rows.append(Row(ref, body[offset:offset + size]))
            offset += size + 1  # and its "," (or the closing "]")
        return rows


def request_of(rows: Sequence[Row] | Rows) -> Request:
    """The request carrying ``rows`` in this order."""
    if type(rows) is not Rows:
        rows = Rows.of(rows)  # type: ignore[arg-type]
    return Request(rows.refs, tuple(rows.sizes), array_text(rows.bodies))  # type: ignore[union-attr]


class Packer:
    """Cuts rows into requests as they arrive: greedy in order, each request the longest run whose
    ``[a,b,...]`` fits ``max_bytes``; with ``max_span_seconds`` (auxiliary tables) the rows are
    packed in time order once all are in, a request also closed before it would span that long.

    The cuts are those of one pass over every row, however the rows arrive (a greedy cut of a
    prefix stays where it is as rows are added); a row too large for any request is handed back.
    Rows arrive and wait as columns (:class:`~shared.records.Rows`): no object per row.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_REQUEST_BYTES, max_span_seconds: float | None = None):
        self.max_bytes = max_bytes
        self.max_span_seconds = max_span_seconds
        self._pending = Rows()
        self._pending_bytes = 0  # of the pending rows' bodies plus their commas

    def add(self, rows: Rows) -> tuple[list[Request], list[Row]]:
        """Take more rows: the requests now full, and the rows too large for any request."""
        given = rows
        rows, over = given.within(self.max_bytes - 2)  # ("[" and "]" around it)
        too_large = [given.row(position) for position in over]
        sizes = rows.sizes
        pending = self._pending
        pending.extend(rows)
        self._pending_bytes += sum(sizes) + len(sizes)
        if self.max_span_seconds is not None or self._pending_bytes + 1 <= self.max_bytes:
            return [], too_large  # time order needs every row first; or all of it fits one request still
        groups, _ = split_in_order(pending.sizes, self.max_bytes)
        if len(groups) <= 1:
            return [], too_large
        self._pending = pending.run(groups[-1][0], len(pending))
        self._pending_bytes = sum(self._pending.sizes) + len(self._pending)
        return [request_of(pending.run(group[0], group[-1] + 1)) for group in groups[:-1]], too_large

    def finish(self) -> list[Request]:
        """The requests of the rows still pending."""
        rows, self._pending = self._pending, Rows()
        pending_bytes, self._pending_bytes = self._pending_bytes, 0
        if not len(rows):
            return []
        if self.max_span_seconds is None and pending_bytes + 1 <= self.max_bytes:
            return [request_of(rows)]
        if self.max_span_seconds is None:
            groups, _ = split_in_order(rows.sizes, self.max_bytes)
        else:
            groups, _ = split_by_time(rows.sizes, rows.times or [0.0] * len(rows), self.max_bytes,
                                      self.max_span_seconds)
        return [request_of(rows.pick(group)) for group in groups]

    @classmethod
    def pack(cls, rows: Sequence[Row], max_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
             max_span_seconds: float | None = None) -> tuple[list[Request], list[Row]]:
        """Every request of ``rows`` at once (replays): the requests and the rows too large."""
        packer = cls(max_bytes, max_span_seconds)
        full, too_large = packer.add(Rows.of(rows))
        return full + packer.finish(), too_large


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

