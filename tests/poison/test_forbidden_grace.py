"""The 403 policy (DESIGN 4): the identity lacks *Monitoring Metrics Publisher* on the DCR, and a new role
assignment can take up to 30 minutes to propagate. So a 403 is parked as transient while the batch is within
``RELAY_FORBIDDEN_GRACE_MINUTES`` (default 30) of its first failure, replayed with back-off whatever the
attempt count, and dead-lettered with the role hint once the window has passed.

The emulator injects the 403s; Azurite holds the poison store; the replays run through the real queue-trigger
function. The replayer's clock is moved forward instead of waiting half an hour.
"""

from __future__ import annotations

import datetime as dt

import pytest

from shared.poison import Backoff
from shared.poison.model import parse_iso, utcnow
from tests.poison.conftest import APPLOGS_STREAM, app_log, ids_of, post
from tests.poison.test_http_faults import assert_exactly_once

pytestmark = pytest.mark.e2e


def later(minutes: float) -> dt.datetime:
    return utcnow() + dt.timedelta(minutes=minutes)


def test_a_fresh_403_is_parked_as_transient_with_the_role_hint(world):
    # GIVEN the role is not effective yet: the service answers 403 to every request
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=403)
    events = [app_log(n, tag="fresh403") for n in range(12)]
    # WHEN events are posted
    status, summary, _ = post("applogs", events)
    # THEN they are parked for replay (202), not dead-lettered, and the failure names the missing role
    assert status == 202, summary
    assert (summary["parked"], summary["deadlettered"], summary["failed"]) == (12, 0, 0)
    failure = summary["failures"][0]
    assert (failure["class"], failure["permanent"]) == ("forbidden", False)
    assert "Monitoring Metrics Publisher" in failure["message"]
    # AND it was tried once in line (a 403 does not heal in seconds), then queued once
    assert len(world.emulator.requests()) == 1
    assert world.host.pending() == 1 and world.store.list_deadletter() == []
    (parked,) = world.store.list_parked()
    assert (parked.failure, parked.status, parked.attempt, parked.permanent) == ("forbidden", 403, 1, False)
    assert parse_iso(parked.grace_from) == parse_iso(parked.first_failure)


def test_403_replays_within_the_window_outlast_max_replays_then_land_when_the_role_arrives(world):
    # GIVEN a batch parked on a 403 (this world dead-letters other failures after 3 replays)
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=403)
    events = [app_log(n, tag="propagating") for n in range(10)]
    assert post("applogs", events)[0] == 202
    # WHEN it is replayed more often than RELAY_MAX_REPLAYS while the 403s go on, inside the window
    for attempt in range(2, 6):
        (message,) = world.host.receive()
        world.host.deliver(message)
        # THEN each replay requeues it with attempt+1: nothing is dead-lettered yet
        assert [(b.attempt, b.failure) for b in world.store.list_parked()] == [(attempt, "forbidden")]
        assert world.store.list_deadletter() == []
    # WHEN the role assignment takes effect and the queue drains
    world.emulator.clear_faults()
    world.host.drain()
    # THEN every event landed exactly once and nothing is left parked or dead-lettered
    assert_exactly_once(world.landed_ids(), ids_of(events))
    assert world.store.list_parked() == [] and world.store.list_deadletter() == []


def test_a_403_after_the_window_is_dead_lettered_with_the_role_hint(world):
    # GIVEN a batch parked on a 403, and a replay that runs 31 minutes after its first failure
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=403)
    events = [app_log(n, tag="late403") for n in range(8)]
    assert post("applogs", events)[0] == 202
    world.relay.replayer.clock = lambda: later(31)
    # WHEN the replay still meets a 403
    world.host.drain()
    # THEN the rows are dead-lettered as forbidden, and the reason says the window passed and which role is missing
    dead = world.deadlettered()
    assert sorted(dead) == sorted(ids_of(events))
    klass, reason = next(iter(dead.values()))
    assert (klass, reason["status"], reason["source"]) == ("forbidden", 403, "upload")
    assert "grace window" in reason["reason"] and "RELAY_FORBIDDEN_GRACE_MINUTES" in reason["reason"]
    assert "Monitoring Metrics Publisher" in reason["message"] and "Monitoring Metrics Publisher" in reason["hint"]
    assert world.store.list_parked() == [] and world.host.pending() == 0 and world.landed_ids() == []


def test_the_last_back_off_is_cut_to_the_end_of_the_window(world):
    # GIVEN a batch parked on a 403, a long back-off, and a replay 29 minutes after the first failure
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=403)
    assert post("applogs", [app_log(n, tag="cut") for n in range(3)])[0] == 202
    world.store.backoff = Backoff(base=600, cap=3600, jitter=0)
    world.relay.replayer.clock = lambda: later(29)
    (message,) = world.host.receive()
    # WHEN it is replayed and refused again
    result = world.relay.replayer.handle_message(message.get_body())
    # THEN the next try is due when the window closes (about a minute), not after the 20-minute back-off
    assert result.status == "requeued" and result.delay is not None and 0 < result.delay <= 61


def test_grace_window_zero_dead_letters_a_403_at_once(world, monkeypatch):
    # GIVEN RELAY_FORBIDDEN_GRACE_MINUTES=0 (the operator wants no grace)
    world.rebuild(monkeypatch, RELAY_FORBIDDEN_GRACE_MINUTES="0")
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=403)
    events = [app_log(n, tag="nograce") for n in range(5)]
    # WHEN events are posted
    status, summary, _ = post("applogs", events)
    # THEN they go straight to dead-letter with the role hint, nothing queued
    assert status == 202 and (summary["parked"], summary["deadlettered"]) == (0, 5)
    assert summary["failures"][0]["permanent"] is True
    assert world.host.pending() == 0
    klass, reason = next(iter(world.deadlettered().values()))
    assert klass == "forbidden" and "Monitoring Metrics Publisher" in reason["hint"]


def test_a_redrive_opens_a_fresh_window(world):
    # GIVEN a 403 batch dead-lettered after its window
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=403)
    events = [app_log(n, tag="redrive403") for n in range(4)]
    assert post("applogs", events)[0] == 202
    world.relay.replayer.clock = lambda: later(31)
    world.host.drain()
    (entry,) = world.store.list_deadletter()
    # WHEN the operator grants the role and redrives it
    redriven = world.store.redrive(entry.id)
    # THEN the fresh parked batch keeps its first failure but its 403 window starts at the redrive
    assert redriven is not None and redriven.first_failure == entry.batch.first_failure
    assert parse_iso(redriven.grace_from) >= parse_iso(entry.batch.first_failure)
    (parked,) = world.store.list_parked()
    assert parked.grace_from == redriven.grace_from
    # AND while the role propagates (the clock at the redrive) a 403 requeues it instead of dead-lettering it
    world.relay.replayer.clock = utcnow
    (message,) = world.host.receive()
    world.host.deliver(message)
    assert [b.failure for b in world.store.list_parked()] == ["forbidden"] and world.store.list_deadletter() == []
    # WHEN the role is effective THEN the rows land once
    world.emulator.clear_faults()
    world.host.drain()
    assert_exactly_once(world.landed_ids(), ids_of(events))
