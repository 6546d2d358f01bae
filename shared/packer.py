"""Pack serialized rows into Logs Ingestion requests, byte-exact under the size limit.

Sizes come from arithmetic on the already-serialized rows (brackets and commas
included), so nothing is encoded twice. Auxiliary-tier tables refuse a call whose
TimeGenerated values span 30 minutes or more, so those routes also split by time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    order: Sequence[int] = range(len(rows))
    if max_span_seconds is not None:
        if times is None or len(times) != len(rows):
            raise ValueError("splitting by time span needs one time per row")
        order = sorted(order, key=times.__getitem__)
    requests: list[PackedRequest] = []
    too_large: list[int] = []
    current: list[int] = []
    size = 2
    first_time = 0.0

    def flush() -> None:
        nonlocal current, size
        if current:
            body = b"[" + b",".join([rows[p] for p in current]) + b"]"
            requests.append(PackedRequest(body, tuple(current)))
        current, size = [], 2

    for position in order:
        row_size = len(rows[position])
        if row_size + 2 > max_bytes:
            too_large.append(position)
            continue
        grows_to = size + row_size + (1 if current else 0)
        over_span = (
            max_span_seconds is not None and current and times[position] - first_time >= max_span_seconds
        )
        if grows_to > max_bytes or over_span:
            flush()
            grows_to = 2 + row_size
        if not current and max_span_seconds is not None:
            first_time = times[position]
        current.append(position)
        size = grows_to
    flush()
    return Packing(requests, too_large)
