"""The blob checkpoint's arithmetic: chunks complete out of order when several are in flight, and
the checkpoint must still say exactly which units are safe, so a retry neither re-sends nor skips."""

from __future__ import annotations

from shared.blob_ingest import Checkpoint


def pending_units(checkpoint: Checkpoint, total: int) -> list[int]:
    return [index for index in range(total) if checkpoint.pending(index)]


def test_chunks_completing_in_order_grow_the_prefix():
    # GIVEN a fresh checkpoint
    checkpoint = Checkpoint("c/b.ndjson", '"e"')
    # WHEN chunks [0,10) and [10,25) land in order
    checkpoint.mark(0, 10)
    checkpoint.mark(10, 25)
    # THEN the prefix covers both and no range is kept apart
    assert (checkpoint.handled, checkpoint.done) == (25, [])
    assert pending_units(checkpoint, 30) == list(range(25, 30))


def test_a_chunk_that_lands_before_an_earlier_one_is_kept_as_a_range_past_the_gap():
    # GIVEN chunk [0,10) still in flight
    checkpoint = Checkpoint("c/b.ndjson", '"e"')
    # WHEN chunks [20,30) and [10,20) land first
    checkpoint.mark(20, 30)
    checkpoint.mark(10, 20)
    # THEN the prefix is still empty, and the landed units are not pending
    assert checkpoint.handled == 0 and checkpoint.done == [[10, 20], [20, 30]]
    assert pending_units(checkpoint, 35) == [*range(10), *range(30, 35)]
    # WHEN chunk [0,10) lands too
    checkpoint.mark(0, 10)
    # THEN the ranges fold into the prefix
    assert (checkpoint.handled, checkpoint.done) == (30, [])


def test_a_failed_first_chunk_leaves_only_it_pending_on_resume():
    # GIVEN chunks 2 and 3 landed and chunk 1 failed (never marked), saved and read back
    checkpoint = Checkpoint("c/b.ndjson", '"e"')
    checkpoint.mark(8, 16)
    checkpoint.mark(16, 24)
    restored = Checkpoint.from_json(checkpoint.to_json())
    # THEN a retry handles the first chunk's units and what was never sent, nothing else
    assert pending_units(restored, 30) == [*range(8), *range(24, 30)]
