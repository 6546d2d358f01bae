"""The blob checkpoint's arithmetic: chunks complete out of order when several are in flight, and
the checkpoint must still say exactly which units are safe, so a retry neither re-sends nor skips."""

from __future__ import annotations

from shared.blob_ingest import Checkpoint, SafeUnits
from shared.records import Unit


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


# --- SafeUnits: which units a run's chunk reports make safe ---------------------------------------------------


def line(position: int) -> Unit:
    """The ref of a plain unit (one record) at ``position``."""
    return Unit("line", position + 1, None, position)


def record(position: int, number: int) -> Unit:
    """The ref of record ``number`` of the envelope unit at ``position``."""
    return Unit("line", position + 1, number, position)


def test_chunks_reported_out_of_order_are_marked_in_chunk_order():
    # GIVEN a run whose chunks 2 and 3 are reported before chunk 1
    checkpoint = Checkpoint("c/b.ndjson", '"e"')
    units = SafeUnits(checkpoint)
    units.report(3, line(20), line(29), True)
    units.report(2, line(10), line(19), True)
    # THEN nothing is marked while chunk 1 is out
    assert (checkpoint.handled, checkpoint.done) == (0, [])
    # WHEN chunk 1 is reported safe
    units.report(1, line(0), line(9), True)
    # THEN all three are
    assert (checkpoint.handled, checkpoint.done) == (30, [])


def test_an_envelope_spanning_chunks_is_safe_only_once_its_last_chunk_is():
    # GIVEN units 0-2, then unit 3 an envelope of 13 records over chunks 1-3, then units 4-5
    checkpoint = Checkpoint("c/b.ndjson", '"e"')
    units = SafeUnits(checkpoint)
    # WHEN chunks 1 and 2 (records 0-9 of the envelope) are safe
    units.report(1, line(0), record(3, 4), True)
    units.report(2, record(3, 5), record(3, 9), True)
    # THEN the envelope is still pending: a run that stops now sends it again whole
    assert pending_units(checkpoint, 6) == [3, 4, 5] and units.left_open() == "line 4"
    # WHEN chunk 3, its last records and units 4-5, is safe
    units.report(3, record(3, 10), line(5), True)
    # THEN every unit is safe
    assert (checkpoint.handled, checkpoint.done, units.left_open()) == (6, [], None)


def test_an_envelope_with_a_chunk_that_failed_stays_pending_and_the_units_around_it_do_not():
    # GIVEN the same file, whose chunk 2 (the middle of the envelope) failed
    checkpoint = Checkpoint("c/b.ndjson", '"e"')
    units = SafeUnits(checkpoint)
    units.report(1, line(0), record(3, 4), True)
    units.report(2, record(3, 5), record(3, 9), False)
    units.report(3, record(3, 10), line(5), True)
    units.close()
    # THEN only the envelope is pending: a retry sends it whole, and nothing else again
    assert pending_units(checkpoint, 6) == [3] and units.left_open() is None


def test_a_chunk_that_ends_with_an_envelope_record_leaves_it_open_until_the_next_chunk_or_the_end():
    # GIVEN chunk 1 ending with the last record of the envelope at unit 2 (which the chunk cannot tell)
    checkpoint = Checkpoint("c/b.ndjson", '"e"')
    units = SafeUnits(checkpoint)
    units.report(1, line(0), record(2, 7), True)
    assert checkpoint.handled == 2
    # WHEN chunk 2 starts with the next unit, and fails
    units.report(2, line(3), line(4), False)
    # THEN the envelope was whole in chunk 1, and safe
    assert pending_units(checkpoint, 5) == [3, 4]
    # AND an envelope that ends the input is safe once the input ends
    more = SafeUnits(other := Checkpoint("c/b.ndjson", '"e"'))
    more.report(1, line(0), record(1, 3), True)
    more.close()
    assert (other.handled, more.left_open()) == (2, None)


def test_an_envelope_that_fills_a_chunk_alone_after_another_one_is_judged_on_its_own_chunks():
    # GIVEN envelope A (unit 1) ending chunk 1, envelope B (unit 2) filling chunk 2 and going on into chunk 3
    checkpoint = Checkpoint("c/b.ndjson", '"e"')
    units = SafeUnits(checkpoint)
    units.report(1, line(0), record(1, 4), True)
    units.report(2, record(2, 0), record(2, 9), False)
    units.report(3, record(2, 10), line(3), True)
    units.close()
    # THEN A is safe, B (part of it failed) is pending, and the unit after B is safe
    assert pending_units(checkpoint, 4) == [2]


def test_units_between_two_chunks_that_held_no_records_are_marked_with_the_later_chunk():
    # GIVEN unit 3 gave no records (an empty envelope, or a unit skipped on resume) between chunks 1 and 2
    checkpoint = Checkpoint("c/b.ndjson", '"e"')
    units = SafeUnits(checkpoint)
    units.report(1, line(0), line(2), True)
    units.report(2, line(4), line(6), True)
    # THEN the prefix runs past it: no range is kept apart, and a retry does not read it again
    assert (checkpoint.handled, checkpoint.done) == (7, [])


def test_a_checkpoint_written_before_it_kept_done_ranges_still_loads_and_resumes_from_them():
    # GIVEN a checkpoint as an older relay wrote it, with units safe past a gap
    old = b'{"blob": "c/b.ndjson", "etag": "\\"e\\"", "status": "in_progress", "handled": 8, "done": [[16, 24]]}'
    restored = Checkpoint.from_json(old)
    # THEN a retry handles the gap and what was never sent, and its chunks fold the range into the prefix
    assert pending_units(restored, 30) == [*range(8, 16), *range(24, 30)]
    units = SafeUnits(restored)
    units.report(1, line(8), line(15), True)
    assert (restored.handled, restored.done) == (24, [])
