"""The poison-queue trigger: binding contract, replay from a real QueueMessage, and its edge cases."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

import azure.functions as func
import orjson
import pytest
import yaml
from azure.core.exceptions import AzureError

from relay_cli.main import main as relay_main
from tests.conftest import ROOT, user_function
from tests.poison.conftest import APPLOGS_STREAM, app_log, ids_of, post

pytestmark = pytest.mark.e2e


def queue_binding() -> dict:
    import function_app

    function_app.app.functions_bindings = None
    function = next(f for f in function_app.app.get_functions() if f.get_function_name() == "poison_replay")
    return next(json.loads(b) for b in function.get_raw_bindings())


def test_queue_trigger_binding_contract():
    # GIVEN the function app WHEN its bindings are read
    binding = queue_binding()
    # THEN the replay function listens on the poison queue setting through the RelayStorage connection (DESIGN 3.1)
    assert binding["type"] == "queueTrigger" and binding["direction"] == "IN"
    assert binding["queueName"] == "%RELAY_POISON_QUEUE%"
    assert binding["connection"] == "RelayStorage"
    # AND the host decodes base64 messages, which is what the parker writes (the default encoding)
    queues = json.loads((ROOT / "host.json").read_text()).get("extensions", {}).get("queues", {})
    assert queues.get("messageEncoding", "base64") == "base64"


def test_parker_writes_base64_claim_checks_without_payload(world):
    # GIVEN a parked batch of large-ish rows
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=503)
    events = [app_log(n, tag="claim", blob="x" * 2000) for n in range(40)]
    assert post("applogs", events)[0] == 202
    # WHEN the raw queue message is read
    (raw,) = list(world.host._client().peek_messages())
    body = base64.b64decode(raw.content, validate=True)
    claim = orjson.loads(body)
    # THEN it is base64 JSON (the trigger's default encoding), small, and points at the blob holding the rows
    assert len(raw.content) < 4096 < sum(len(orjson.dumps(e)) for e in events)
    assert {"route", "dcr", "stream", "rows", "failure", "message", "attempt", "first_failure", "batch_id",
            "blob"} <= set(claim)
    assert (claim["route"], claim["stream"], claim["rows"], claim["attempt"]) == ("applogs", APPLOGS_STREAM, 40, 1)
    assert claim["dcr"] == world.env["DCR_IMMUTABLE_ID"] and claim["failure"] == "server_error"
    assert "x" * 100 not in body.decode()  # no row content in the message
    blob = world.store.poison.get_blob_client(claim["blob"])
    stored = blob.download_blob().readall()
    assert stored[:2] == b"\x1f\x8b" and len(stored) < 40 * 2000 // 10  # gzip NDJSON
    lines = gzip.decompress(stored).splitlines()
    assert [orjson.loads(line)["EventId"] for line in lines] == ids_of(events)


def test_replay_from_a_real_queue_message_lands_and_returns_normally(world):
    # GIVEN a parked batch and the message the host would deliver
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=500)
    events = [app_log(n, tag="real") for n in range(6)]
    assert post("applogs", events)[0] == 202
    world.emulator.clear_faults()
    (message,) = world.host.receive()
    assert isinstance(message, func.QueueMessage)
    # WHEN the decorated function is called with it
    result = user_function("poison_replay")(message)
    # THEN it returns normally and the rows landed
    assert result is None
    assert sorted(world.landed_ids()) == sorted(ids_of(events))


def test_invalid_message_is_kept_visible_and_does_not_raise(world):
    # GIVEN a message that is not a claim check
    message = func.QueueMessage(id="m1", body=b"this is not json")
    # WHEN the trigger runs
    user_function("poison_replay")(message)
    # THEN nothing is uploaded and the message is kept in the dead-letter container with the reason
    kept = [b.name for b in world.store.deadletters.list_blobs(name_starts_with="invalid-messages/")]
    assert len(kept) == 1
    assert world.store.deadletters.get_blob_client(kept[0]).download_blob().readall() == b"this is not json"
    assert world.emulator.requests() == []


def test_storage_failure_during_replay_raises_so_the_host_retries(world, monkeypatch):
    # GIVEN a claim check and storage that is down
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=503)
    assert post("applogs", [app_log(1, tag="raise")])[0] == 202
    (message,) = world.host.receive()
    world.rebuild(monkeypatch, RelayStorage="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                  f"AccountKey={'A' * 88};BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
                  "QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;")
    # WHEN the trigger runs THEN it raises (the host retries, then moves the message to <queue>-poison)
    with pytest.raises(AzureError):
        user_function("poison_replay")(message)


def test_stale_claim_check_after_a_requeue_does_nothing(world):
    # GIVEN a claim check whose replay was throttled and requeued as attempt 2
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=429, retry_after=5)
    events = [app_log(n, tag="stale") for n in range(5)]
    assert post("applogs", events)[0] == 202
    (first,) = world.host.receive()
    world.host.deliver(first, delete=False)  # the host's delete of attempt 1 was lost
    world.emulator.clear_faults()
    world.emulator.reset()
    # WHEN the old attempt-1 message comes back
    world.host.deliver(first)
    # THEN it is dropped as stale: no upload; the attempt-2 claim check lands the rows once
    assert world.emulator.requests() == []
    world.host.drain()
    assert sorted(world.landed_ids()) == sorted(ids_of(events))


def test_after_max_replays_the_batch_is_dead_lettered_with_the_last_failure(world):
    # GIVEN a stream that stays throttled
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=429, retry_after=5)
    events = [app_log(n, tag="max") for n in range(7)]
    assert post("applogs", events)[0] == 202
    # WHEN the queue drains (RELAY_MAX_REPLAYS=3 in these tests)
    deliveries = world.host.drain()
    # THEN three replays were tried and the rows are dead-lettered with the reason, nothing left in the queue
    assert deliveries == 3
    dead = world.deadlettered()
    assert sorted(dead) == sorted(ids_of(events))
    klass, reason = next(iter(dead.values()))
    assert (klass, reason["source"], reason["attempts"], reason["status"]) == ("throttled", "max_replays", 3, 429)
    assert "gave up after 3 replay(s)" in reason["message"]
    assert world.store.list_parked() == [] and world.host.pending() == 0


def write_routes(tmp_path: Path, edit) -> Path:
    document = yaml.safe_load((ROOT / "relay.yaml").read_text())
    document["defaults"]["schema"] = str(ROOT / "infra" / "dcr" / "relay.json")
    edit(document)
    path = tmp_path / "relay.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_rows_that_no_longer_fit_a_changed_route_are_dead_lettered_with_the_new_reason(world, monkeypatch, tmp_path):
    # GIVEN parked rows, half of them with unmapped fields kept in the Properties column
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=503)
    plain = [{k: v for k, v in app_log(n, tag="plain").items() if k in ("timestamp", "level", "message")}
             for n in range(4)]
    rich = [app_log(n, tag="rich") for n in range(4)]
    assert post("applogs", plain + rich)[0] == 202
    world.emulator.clear_faults()

    # AND the route was changed meanwhile: no Properties column any more
    def drop_properties(document):
        route = next(r for r in document["routes"] if r["name"] == "applogs")
        route.pop("extra")
        columns = json.loads((ROOT / "infra" / "dcr" / "relay.json").read_text())
        declared = columns["properties"]["streamDeclarations"][APPLOGS_STREAM]["columns"]
        route["columns"] = [c for c in declared if c["name"] != "Properties"]

    world.rebuild(monkeypatch, RELAY_CONFIG=str(write_routes(tmp_path, drop_properties)))
    # WHEN the claim check is replayed
    world.host.drain()
    # THEN rows that still fit land; the others are dead-lettered saying which column no longer exists
    assert sorted(world.landed_ids()) == sorted(ids_of(plain))
    dead = world.deadlettered()
    assert sorted(dead) == sorted(ids_of(rich))
    klass, reason = next(iter(dead.values()))
    assert (klass, reason["source"]) == ("validation", "validation")
    assert "'Properties' is not declared" in reason["message"]


def test_route_removed_replays_to_the_parked_dcr_and_stream(world, monkeypatch, tmp_path):
    # GIVEN a parked batch of the applogs route
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=503)
    events = [app_log(n, tag="gone") for n in range(3)]
    assert post("applogs", events)[0] == 202
    world.emulator.clear_faults()
    # AND the route is removed from the routes file
    world.rebuild(monkeypatch, RELAY_CONFIG=str(write_routes(
        tmp_path, lambda d: d.update(routes=[r for r in d["routes"] if r["name"] != "applogs"]))))
    # WHEN the claim check is replayed THEN the rows land on the endpoint, DCR and stream they were parked for
    world.host.drain()
    assert sorted(world.landed_ids()) == sorted(ids_of(events))


def test_redrive_after_fixing_the_route_lands_the_dead_lettered_rows(world, monkeypatch, capsys):
    # GIVEN a route pointing at a DCR that does not exist: the service answers 404, the rows are dead-lettered
    good_dcr = world.env["DCR_IMMUTABLE_ID"]
    world.rebuild(monkeypatch, DCR_IMMUTABLE_ID="dcr-" + "0" * 32)
    events = [app_log(n, tag="redrive") for n in range(9)]
    status, summary, _ = post("applogs", events)
    assert status == 202 and summary["failures"][0]["class"] == "not_found"
    (entry,) = world.store.list_deadletter()
    # WHEN the operator fixes the setting and redrives the route's dead-letters
    world.rebuild(monkeypatch, DCR_IMMUTABLE_ID=good_dcr)
    assert relay_main(["poison", "redrive", "--route", "applogs"]) == 0
    assert entry.id in capsys.readouterr().out
    # AND the queue trigger replays the claim check
    world.host.drain()
    # THEN every row landed once and the dead-letter container is empty
    assert sorted(world.landed_ids()) == sorted(ids_of(events))
    assert world.store.list_deadletter() == [] and world.store.list_parked() == []
