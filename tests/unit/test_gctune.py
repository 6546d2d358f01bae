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


def test_the_worker_tunes_the_process_once_at_start_and_an_engine_does_not(thresholds, monkeypatch):
    # GIVEN default thresholds
    from shared import runtime
    from shared.dispatch import Dispatcher
    from shared.engine import Engine

    gc.set_threshold(700, 10, 10)
    # WHEN an engine is built (as tests and tools do many times) THEN the process is left alone
    Engine(Dispatcher(uploader=None), 1_000_000).close()  # type: ignore[arg-type]
    assert gc.get_threshold() == (700, 10, 10)

    # WHEN the worker's relay is first loaded THEN the batch thresholds apply
    class Loaded:
        def close(self) -> None:
            pass

    monkeypatch.setattr(runtime.Relay, "from_env", classmethod(lambda cls: Loaded()))
    runtime.reset_relay()
    try:
        runtime.get_relay()
        assert gc.get_threshold() == BATCH_THRESHOLDS
    finally:
        runtime.reset_relay()
