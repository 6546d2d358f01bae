"""The issue-12 benchmark shapes (wide GitHub webhooks, Event Hub diagnostic logs) run end to end at a
tiny size: every row lands and the ratios are reported. Times are printed by ``make bench``, never asserted."""

from __future__ import annotations

import gc
import importlib

import pytest


@pytest.fixture
def thresholds():
    saved = gc.get_threshold()  # run() tunes the process's GC thresholds, as the worker does
    yield
    gc.set_threshold(*saved)


@pytest.mark.parametrize("module", ["bench.wide_webhook", "bench.eventhub_diagnostics"])
def test_a_bench_shape_lands_every_row_and_reports_its_ratios(module, thresholds):
    # GIVEN one of the issue-12 benchmark shapes
    bench = importlib.import_module(module)
    # WHEN it runs on 200 events, once
    result = bench.run(200, repeat=1)
    # THEN the relay landed every row, rejected none, and the ratios against the SDK and passthrough are there
    assert (result["relay_landed"], result["relay_rejected"]) == (200, 0)
    assert {"relay_vs_sdk", "relay_vs_passthrough"} <= result.keys()
    assert bench.lines(result)


def test_the_issue_12_bench_reports_its_bulk_posts(thresholds, monkeypatch):
    # GIVEN the issue-12 benchmark with small bulk bodies and instant calls
    import bench.issue12 as issue12

    monkeypatch.setattr(issue12, "BULK_BYTES", 200_000)
    monkeypatch.setattr(issue12, "BULK_CALL_SECONDS", 0.0)  # no service latency: nothing waits
    # WHEN it runs
    result = issue12.run(200, repeat=1, bulk_bodies=2)
    # THEN every row of both workloads landed and the bulk ratio is reported
    assert (result["relay_landed"], result["relay_rejected"]) == (200, 0)
    assert result["bulk"]["relay_landed"] == result["bulk"]["events"] and result["bulk"]["relay_vs_sdk"] > 0
    assert any("Bulk posts" in line for line in issue12.lines(result))


def test_the_event_hub_shape_against_a_checkout_lands_the_same_rows_in_each_tree():
    # GIVEN the Event Hub shape's --against, pointed at this checkout itself (its child builds the relay of
    # whatever tree it is given: this one has shared.engine, an older one shared.pipeline.Processor)
    import bench.eventhub_diagnostics as eventhub
    from bench.common import ROOT

    # WHEN it takes two turns on 200 records
    lines = eventhub.against(ROOT, 200, repeat=2)
    # THEN both contenders landed every row, and the ratio line says so
    assert sum("200 rows landed, 0 rejected" in line for line in lines) == 2
    assert "rows landed equal" in lines[-1]


def test_the_paired_ratio_is_the_median_of_each_rounds_own_ratio():
    # GIVEN interleaved rounds where the passthrough had one fast outlier and the machine slowed down midway
    from bench.common import paired_rate_ratio

    result = {"relay": {"runs_s": [2.0, 2.0, 4.0, 4.0, 4.0]}, "passthrough": {"runs_s": [1.2, 0.5, 2.4, 2.4, 2.8]}}
    # WHEN the relay's rate is compared with the passthrough's round by round
    # THEN the ratio is the median of the rounds' (0.6, 0.25, 0.6, 0.6, 0.7), not the two bests' (0.5 / 2.0)
    assert paired_rate_ratio(result) == pytest.approx(0.6)
    # AND there is none without rounds to pair
    assert paired_rate_ratio({"relay": {"runs_s": [1.0]}, "passthrough": {}}) is None
