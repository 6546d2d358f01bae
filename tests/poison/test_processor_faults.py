"""The engine as the Event Hub and blob triggers use it (``relay.engine.run``), under faults.

Those triggers hand whole batches to the same engine and must return normally
once everything is safe (DESIGN 4: the Event Hub trigger checkpoints whether or not
the function succeeded). These tests push many batches through a seeded mix of every
fault class, let the poison queue drain through the real queue-trigger function, and
account for every event by its EventId.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from shared.records import items
from tests.poison.conftest import APPLOGS_STREAM, app_log, ids_of

pytestmark = pytest.mark.e2e

MATRIX = [
    {"status": 429, "retry_after": 5, "fraction": 0.12, "seed": 1},
    {"status": 503, "fraction": 0.10, "seed": 2},
    {"status": 500, "fraction": 0.05, "seed": 3},
    {"close": True, "fraction": 0.05, "seed": 4},
    {"delay": 1.5, "status": 503, "fraction": 0.03, "seed": 5},
    {"status": 400, "fraction": 0.03, "seed": 6},
    {"status": 413, "fraction": 0.02, "seed": 7},
]


def test_fault_matrix_every_event_lands_once_or_is_dead_lettered_or_rejected(world, monkeypatch):
    # GIVEN small requests (about a dozen rows each) and every fault class, seeded, on the stream
    world.rebuild(monkeypatch, RELAY_MAX_REQUEST_BYTES="4096")
    for rule in MATRIX:
        world.emulator.add_fault(stream=APPLOGS_STREAM, **rule)
    route = world.route("applogs")
    batches = []
    for number in range(12):
        events = [app_log(number * 100 + n, tag="matrix") for n in range(100)]
        events[7] = {**events[7], "status": "four hundred"}  # bad input: rejected with a reason
        batches.append(events)
    # WHEN each batch goes through the processor (as an Event Hub or blob trigger would hand it over)
    outcomes = [world.relay.engine.run(route, items(events), batch_id=f"eh-{i}") for i, events in enumerate(batches)]
    # THEN nothing is unsafe and each batch's counts add up
    for outcome in outcomes:
        assert outcome.failed == 0, outcome.failures
        assert outcome.received == outcome.landed + outcome.rejected + outcome.parked + outcome.deadlettered
    # WHEN the service heals except for lingering throttling, and the poison queue drains
    world.emulator.clear_faults()
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=429, retry_after=5, fraction=0.3, seed=8)
    world.host.drain(timeout=120)
    # THEN every valid event landed exactly once, or was dead-lettered with the right reason; bad input was rejected
    valid = [e for events in batches for e in events if e["status"] != "four hundred"]
    expected = set(ids_of(valid, posted=False))
    landed = world.landed_ids()
    dead = world.deadlettered()
    assert Counter(landed).most_common(1)[0][1] == 1, "an event landed twice"
    assert set(landed).isdisjoint(dead)
    assert set(landed) | set(dead) == expected
    for klass, reason in dead.values():
        if reason["source"] == "upload":
            assert klass in ("bad_request", "too_large") and reason["status"] in (400, 413)
        else:
            assert (reason["source"], klass, reason["attempts"]) == ("max_replays", "throttled", 3)
    received = sum(o.received for o in outcomes)
    rejected = sum(o.rejected for o in outcomes)
    assert all(r["reason"].startswith("column 'StatusCode'") for o in outcomes for r in o.rejections)
    assert received == len(landed) + rejected + len(dead)
    assert world.store.list_parked() == []
    print("fault matrix counts:", json.dumps({
        "received": received, "landed": len(landed), "rejected": rejected, "deadlettered": len(dead),
        "parked_in_line": sum(o.parked for o in outcomes),
        "deadlettered_in_line": sum(o.deadlettered for o in outcomes), "landed_in_line": sum(o.landed for o in outcomes),
        "requests": sum(o.requests for o in outcomes), "replay_deliveries": len(world.host.deliveries),
        "deadletter_classes": dict(Counter(k for k, _ in dead.values())),
    }))


def test_processor_parks_for_other_triggers_and_returns_normally_when_storage_is_down(world, monkeypatch):
    # GIVEN storage that refuses connections and a failing service
    world.rebuild(monkeypatch, RelayStorage="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                  f"AccountKey={'A' * 88};BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
                  "QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;")
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=503)
    # WHEN a batch is processed
    outcome = world.relay.engine.run(world.route(), items([app_log(n, tag="down") for n in range(4)]))
    # THEN the processor reports it unsafe (the trigger then raises so its retry policy runs) instead of losing it
    assert (outcome.failed, outcome.parked, outcome.safe) == (4, 0, False)
    assert outcome.failures[0]["parked"] is False


def test_without_storage_settings_the_relay_has_no_parker_and_warns_once(emulator, monkeypatch, caplog):
    from shared import runtime
    from tests.conftest import relay_settings

    # GIVEN app settings without RelayStorage
    env = relay_settings(emulator)
    monkeypatch.setattr(runtime, "_warned_no_storage", False)
    # WHEN the relay is built twice
    with caplog.at_level("WARNING", logger="relay"):
        first = runtime.Relay.from_env(env)
        second = runtime.Relay.from_env(env)
    # THEN nothing can be parked (HTTP-only local use) and one warning says why
    try:
        assert first.poison is None and first.replayer is None and first.engine.dispatcher.parker is None
        assert sum("RelayStorage is not set" in r.getMessage() for r in caplog.records) == 1
    finally:
        first.close()
        second.close()
