"""Batch-sized garbage-collector thresholds: raised once, never lowered."""

from __future__ import annotations

import gc

import pytest

from shared.gctune import BATCH_THRESHOLDS, tune_for_batches


@pytest.fixture
def thresholds():
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


def test_default_thresholds_are_raised_to_the_batch_ones(thresholds):
    # GIVEN CPython's default thresholds
    gc.set_threshold(700, 10, 10)
    # WHEN tuned THEN the batch thresholds are in force
    assert tune_for_batches() == BATCH_THRESHOLDS == gc.get_threshold()


def test_larger_thresholds_are_kept(thresholds):
    # GIVEN a process that chose a larger young generation, but smaller older ones
    gc.set_threshold(200_000, 5, 500)
    # WHEN tuned THEN each threshold is the larger of the two
    assert tune_for_batches() == (200_000, BATCH_THRESHOLDS[1], 500)


def test_a_processor_tunes_the_process(thresholds):
    # GIVEN default thresholds WHEN the processor of the worker is built THEN batch thresholds apply
    from shared.pipeline import Processor

    gc.set_threshold(700, 10, 10)
    processor = Processor(uploader=None, max_request_bytes=1_000_000)  # type: ignore[arg-type]
    processor.close()
    assert gc.get_threshold() == BATCH_THRESHOLDS
