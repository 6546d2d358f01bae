"""Garbage-collector thresholds for a process that decodes batches of JSON events.

A batch of 200,000 decoded events is some 500,000 dicts and lists that all stay alive
until the batch is done. With CPython's default thresholds (700, 10, 10) allocating them
triggers hundreds of collections, and the full ones walk every live object again and
again: measured on the CPU benchmark, 30% of the relay's time (decode + normalize + pack +
gzip of 200k events: 2.9 s with the defaults, 2.1 s with the thresholds below).

JSON values cannot form reference cycles, so collecting less often frees nothing later
that matters; the young generation still runs every 50,000 allocations and the full
collection still runs, only not in the middle of every batch. Thresholds are only ever
raised, never lowered, so a process that chose larger ones keeps them.
"""

from __future__ import annotations

import gc

BATCH_THRESHOLDS = (50_000, 20, 100)


def tune_for_batches() -> tuple[int, int, int]:
    """Raise the collector's thresholds to at least ``BATCH_THRESHOLDS``; return the ones in force."""
    current = gc.get_threshold()
    wanted = tuple(max(now, minimum) for now, minimum in zip(current, BATCH_THRESHOLDS, strict=False))
    if wanted != current[: len(wanted)]:
        gc.set_threshold(*wanted)
    return gc.get_threshold()
