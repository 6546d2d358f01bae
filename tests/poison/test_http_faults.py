"""The HTTP trigger under Logs Ingestion faults: parked (202), replayed, dead-lettered, never lost.

Real ``azure.functions.HttpRequest`` objects go through the decorated ``http_ingest``
function, the real SDK uploads over HTTPS to the emulator, which injects the faults the
service shows (DESIGN 4: 429 with Retry-After, 5xx, timeouts, dropped connections, 400,
403 = Monitoring Metrics Publisher missing, 404 unknown DCR/stream, 413 over 1 MB).
Every event is followed by its unique EventId (the applogs route's ``id_column``).
"""

from __future__ import annotations

import socket
import threading
from collections import Counter

import orjson
import pytest

from tests.conftest import wait_for
from tests.poison.conftest import APPLOGS_STREAM, app_log, ids_of, post

pytestmark = pytest.mark.e2e

TRANSIENT_FAULTS = {
    "429_retry_after": ({"status": 429, "retry_after": 5}, "throttled"),
    "500_burst": ({"status": 500}, "server_error"),
    "503_burst": ({"status": 503}, "server_error"),
    "slow_past_timeout": ({"delay": 2.5, "status": 503}, "timeout"),
    "connection_reset": ({"close": True}, "connection"),
}
PERMANENT_FAULTS = {
    "400_bad_request": ({"status": 400}, "bad_request"),
    "404_unknown_stream": ({"status": 404}, "not_found"),
    "413_too_large": ({"status": 413}, "too_large"),
}
BAD_EVENTS = [{"timestamp": "2024-05-01T10:00:00Z", "message": "bad status", "status": "not-a-number", "seq": -1},
              "not an object"]


def assert_exactly_once(landed: list[str], expected: list[str]) -> None:
    counts = Counter(landed)
    assert sorted(counts) == sorted(expected), "landed set differs from the input"
    assert max(counts.values()) == 1, f"landed twice: {[k for k, v in counts.items() if v > 1][:5]}"


@pytest.mark.parametrize("fault", list(TRANSIENT_FAULTS), ids=list(TRANSIENT_FAULTS))
def test_transient_fault_parks_then_replay_lands_every_event_once(world, fault):
    # GIVEN the stream fails with one transient fault class on every request
    rule, failure = TRANSIENT_FAULTS[fault]
    world.emulator.add_fault(stream=APPLOGS_STREAM, **rule)
    events = [app_log(n, tag=fault) for n in range(20)]
    # WHEN 20 good and 2 bad events are posted
    status, summary, _ = post("applogs", events + BAD_EVENTS)
    # THEN the answer is 202: the good rows are parked with the failure class, the bad ones rejected with reasons
    assert status == 202, summary
    assert (summary["received"], summary["accepted"], summary["rejected"], summary["parked"], summary["failed"]) == \
        (22, 0, 2, 20, 0)
    assert summary["received"] == summary["accepted"] + summary["rejected"] + summary["parked"]
    assert {f["class"] for f in summary["failures"]} == {failure}
    assert all(r["reason"] for r in summary["rejections"])
    assert world.landed_ids() == []
    parked = world.store.list_parked()
    assert [(b.route, b.rows, b.failure, b.attempt) for b in parked] == [("applogs", 20, failure, 1)]
    # WHEN the service heals and the queue trigger runs on what the parker queued
    world.emulator.clear_faults()
    world.host.drain()
    # THEN every good event landed exactly once, and nothing is left parked or dead-lettered
    assert_exactly_once(world.landed_ids(), ids_of(events))
    assert world.store.list_parked() == [] and world.store.list_deadletter() == []


@pytest.mark.parametrize("shape", ["ndjson", "json array"])
def test_a_long_body_parked_in_many_requests_replays_every_row_once(world, shape):
    # GIVEN a body of several decoding slices and requests (its rows are let go once each request is
    # gzipped, and cut back out of the body to be parked), and a service answering 503 to everything
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=503)
    events = [app_log(n, tag=shape, pad="p" * 700) for n in range(4500)]
    lines = [orjson.dumps(event) for event in events]
    if shape == "ndjson":
        body, content_type = b"\n".join(lines) + b"\n", "application/x-ndjson"
    else:
        body, content_type = b"[" + b",".join(lines) + b"]", "application/json"
    assert len(body) > 3_000_000
    # WHEN it is posted
    status, summary, _ = post("applogs", body, {"Content-Type": content_type})
    # THEN every row was parked, in more than one batch
    assert status == 202, summary
    assert (summary["accepted"], summary["parked"], summary["failed"]) == (0, 4500, 0)
    parked = world.store.list_parked()
    assert len(parked) >= 3 and sum(b.rows for b in parked) == 4500
    # WHEN the service heals and the parked batches are replayed
    world.emulator.clear_faults()
    world.host.drain()
    # THEN each event landed exactly once, whole
    assert_exactly_once(world.landed_ids(), ids_of(events))
    rows = world.emulator.rows("AppLogs_CL")
    assert sorted(r["Message"] for r in rows) == sorted(e["message"] for e in events)
    assert all(r["Properties"]["pad"] == "p" * 700 and r["StatusCode"] == 200 for r in rows)
    assert world.store.list_parked() == [] and world.store.list_deadletter() == []


@pytest.mark.parametrize("fault", list(PERMANENT_FAULTS), ids=list(PERMANENT_FAULTS))
def test_permanent_fault_is_dead_lettered_with_the_reason(world, fault):
    # GIVEN the service refuses the stream permanently with one class of error
    rule, failure = PERMANENT_FAULTS[fault]
    world.emulator.add_fault(stream=APPLOGS_STREAM, **rule)
    events = [app_log(n, tag=fault) for n in range(12)]
    # WHEN events are posted
    status, summary, _ = post("applogs", events)
    # THEN they are safe (202), not queued for pointless replays but dead-lettered with the exact reason
    assert status == 202, summary
    assert (summary["parked"], summary["deadlettered"]) == (0, 12)
    assert summary["failures"][0]["permanent"] is True
    assert world.host.pending() == 0
    dead = world.deadlettered()
    assert sorted(dead) == sorted(ids_of(events))
    classes = {klass for klass, _ in dead.values()}
    assert classes == {failure}
    reason = next(iter(dead.values()))[1]
    assert reason["source"] == "upload" and reason["status"] == rule["status"]
    assert reason["route"] == "applogs" and reason["stream"] == APPLOGS_STREAM and reason["hint"]
    assert world.landed_ids() == []


def test_transient_then_healed_during_replay_requeues_with_attempt_plus_one(world):
    # GIVEN a parked batch (throttled with Retry-After on every request while posting)
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=429, retry_after=5)
    events = [app_log(n, tag="heal") for n in range(15)]
    assert post("applogs", events)[0] == 202
    # AND the first replay is throttled once more, then the service heals
    world.emulator.clear_faults()
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=429, retry_after=5, count=1)
    # WHEN the first claim check is delivered
    first = world.host.receive()
    assert len(first) == 1
    world.host.deliver(first[0])
    # THEN a NEW claim check with attempt 2 was queued and the batch is still parked
    parked = world.store.list_parked()
    assert [(b.attempt, b.failure) for b in parked] == [(2, "throttled")]
    # WHEN the queue drains
    world.host.drain()
    # THEN every event landed exactly once
    assert_exactly_once(world.landed_ids(), ids_of(events))


def test_mixed_faults_in_one_body_land_once_or_dead_letter(world, monkeypatch):
    # GIVEN small requests (several per body) and a mix of faults on the stream
    world.rebuild(monkeypatch, RELAY_MAX_REQUEST_BYTES="2048")
    for rule in ({"status": 429, "retry_after": 5, "count": 2}, {"close": True, "count": 1},
                 {"status": 400, "count": 1}, {"status": 503, "count": 6}):
        world.emulator.add_fault(stream=APPLOGS_STREAM, **rule)
    events = [app_log(n, tag="mixed") for n in range(80)]
    # WHEN they are posted with bad events among them
    status, summary, _ = post("applogs", events + BAD_EVENTS)
    assert status in (200, 202), summary
    assert summary["received"] == (summary["accepted"] + summary["rejected"] + summary["parked"]
                                   + summary["deadlettered"])
    assert summary["rejected"] == 2 and summary["failed"] == 0
    # AND the queue drains after the service healed
    world.emulator.clear_faults()
    world.host.drain()
    # THEN each event either landed exactly once or was dead-lettered as bad_request, never both
    landed = world.landed_ids()
    dead = world.deadlettered()
    assert Counter(landed).most_common(1)[0][1] == 1
    assert set(landed).isdisjoint(dead)
    assert sorted(set(landed) | set(dead)) == sorted(ids_of(events))
    assert {klass for klass, _ in dead.values()} <= {"bad_request"}
    assert len(landed) + len(dead) + summary["rejected"] == summary["received"]


def test_storage_unavailable_while_parking_answers_503_with_retry_after(world, monkeypatch):
    # GIVEN RelayStorage points at a closed port and the service fails
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={'A' * 88};"
            f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1;")
    world.rebuild(monkeypatch, RelayStorage=dead)
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=503)
    # WHEN events are posted
    status, summary, headers = post("applogs", [app_log(n, tag="nostorage") for n in range(5)])
    # THEN nothing could be made safe: 503 with Retry-After so the sender retries
    assert status == 503, summary
    assert int(headers["Retry-After"]) > 0
    assert summary["failed"] == 5 and summary["parked"] == 0


def test_duplicate_delivery_of_a_claim_check_uploads_once(world):
    # GIVEN a parked batch and its claim check
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=503)
    events = [app_log(n, tag="dup") for n in range(10)]
    assert post("applogs", events)[0] == 202
    world.emulator.clear_faults()
    world.emulator.reset()
    (message,) = world.host.receive()
    # WHEN the host delivers it twice at the same time, and then once more (the delete was lost)
    threads = [threading.Thread(target=world.host.deliver, args=(message, False)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    world.host.deliver(message, delete=False)
    # THEN the rows were uploaded by exactly one request, and landed once
    successes = [r for r in world.emulator.requests() if r["stream"] == APPLOGS_STREAM and r["status"] == 204]
    assert len(successes) == 1
    assert_exactly_once(world.landed_ids(), ids_of(events))
    assert world.store.list_parked() == []


def test_slow_success_past_the_timeout_is_at_least_once_and_identifiable_by_event_id(world):
    # GIVEN the service stores the rows but answers after the relay's 1 s timeout (a real service can do this)
    world.emulator.add_fault(stream=APPLOGS_STREAM, delay=2.0, count=1)
    events = [app_log(n, tag="slow") for n in range(8)]
    # WHEN events are posted, parked on the timeout and replayed
    status, summary, _ = post("applogs", events)
    assert status == 202 and summary["failures"][0]["class"] == "timeout"
    world.host.drain()
    # THEN every event is present; any duplicate carries the same EventId, so queries can de-duplicate
    wait_for(lambda: len(world.landed_ids()) == 2 * len(events), what="the slow request's rows to be stored too")
    landed = world.landed_ids()
    assert set(landed) == set(ids_of(events))
    assert sorted(Counter(landed).values()) == [2] * len(events)
