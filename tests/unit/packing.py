"""The packer seen through positions: rows given as bytes (and times), requests as bodies + positions.

The packer works on Rows whose refs say where they came from; these tests give each row its
position as its ref, so requests and too-large rows read back as positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.packer import DEFAULT_MAX_REQUEST_BYTES, Packer, request_of
from shared.records import Item, Row


@dataclass(frozen=True)
class PackedRequest:
    body: bytes
    positions: tuple[int, ...]


@dataclass(frozen=True)
class Packing:
    requests: list[PackedRequest]
    too_large: list[int]


def pack(rows: Sequence[bytes], max_bytes: int = DEFAULT_MAX_REQUEST_BYTES, times: Sequence[float] | None = None,
         max_span_seconds: float | None = None) -> Packing:
    times = times if times is not None else [0.0] * len(rows)
    packed = [Row(Item(p), row, time) for p, (row, time) in enumerate(zip(rows, times, strict=True))]
    requests, too_large = Packer.pack(packed, max_bytes, max_span_seconds)
    return Packing([PackedRequest(r.body or b"", tuple(ref.index for ref in r.refs)) for r in requests],
                   [row.ref.index for row in too_large])


def array_of(rows: Sequence[bytes], positions: Sequence[int]) -> bytes:
    return request_of([Row(Item(p), rows[p]) for p in positions]).body or b""
