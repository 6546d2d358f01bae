"""Telemetry observes the engine, so every path records the same metrics and batch log line.

One test per path: a JSON object, a JSON array, NDJSON, a JSON array over 1 MiB (decoded in
slices), a blob, an Event Hub batch, a replay of a parked batch, and ``relay send``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from azure.storage.blob import BlobServiceClient
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from shared.telemetry import Telemetry
from tests.poison.conftest import APPLOGS_STREAM, app_log, post
from tests.poison.test_telemetry import read

pytestmark = pytest.mark.e2e


@pytest.fixture
def observed(world, monkeypatch, caplog) -> Callable[[str], dict[str, Any]]:
    """The relay with an in-memory meter; returns a reader of what one route recorded."""
    from shared import runtime

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    monkeypatch.setattr(runtime, "Telemetry", lambda env=None: Telemetry(provider))
    world.rebuild(monkeypatch)
    caplog.set_level(logging.INFO, logger="relay.telemetry")

    def recorded(route: str) -> dict[str, Any]:
        metrics = read(reader)
        rows = {dict(k)["outcome"]: v for k, v in metrics["relay.rows"].items() if dict(k)["route"] == route}
        batches = sum(v for k, v in metrics["relay.batch.duration"].items() if dict(k)["route"] == route)
        lines = [orjson.loads(r.getMessage().split(" ", 1)[1]) for r in caplog.records
                 if r.getMessage().startswith("relay.metrics ")]
        return {"rows": rows, "batches": batches, "lines": [x for x in lines if x["event"] == "batch"
                                                             and x["route"] == route]}

    return recorded


def assert_one_batch(seen: dict[str, Any], received: int, landed: int) -> None:
    assert seen["batches"] == 1, seen
    assert (seen["rows"].get("received"), seen["rows"].get("landed")) == (received, landed), seen
    (line,) = seen["lines"]
    assert (line["received"], line["landed"]) == (received, landed)


def test_a_json_object_body_is_observed(observed):
    assert post("applogs", app_log(1, tag="object"))[0] == 200
    assert_one_batch(observed("applogs"), 1, 1)


def test_a_json_array_body_is_observed(observed):
    assert post("applogs", [app_log(n, tag="array") for n in range(5)])[0] == 200
    assert_one_batch(observed("applogs"), 5, 5)


def test_an_ndjson_body_is_observed(observed):
    body = b"\n".join(orjson.dumps(app_log(n, tag="ndjson")) for n in range(7))
    assert post("applogs", body, {"Content-Type": "application/x-ndjson"})[0] == 200
    assert_one_batch(observed("applogs"), 7, 7)


def test_a_json_array_over_one_mib_decoded_in_slices_is_observed(observed):
    events = [app_log(n, tag="big", note="x" * 400) for n in range(3000)]
    assert len(orjson.dumps(events)) > 1 << 20
    assert post("applogs", events)[0] == 200
    assert_one_batch(observed("applogs"), 3000, 3000)


def test_a_blob_is_observed(observed, world):
    from shared.blob_ingest import handle_blob
    from shared.runtime import get_relay

    service = BlobServiceClient.from_connection_string(world.azurite.connection_string)
    container = service.get_container_client(world.env.get("RELAY_BLOB_CONTAINER", "ingest"))
    if not container.exists():
        container.create_container()
    client = container.upload_blob("applogs/observed.ndjson", b"\n".join(
        orjson.dumps(app_log(n, tag="blob")) for n in range(4)), overwrite=True)
    assert handle_blob(client, get_relay).status == "done"
    assert_one_batch(observed("blob-applogs"), 4, 4)


def test_an_event_hub_batch_is_observed(observed):
    from shared.eventhub_ingest import handle_eventhub
    from shared.runtime import get_relay
    from tests.eventhub.conftest import make_batch, sample

    result = handle_eventhub(make_batch([sample("diag_keyvault_auditevent.json")]), get_relay)
    assert result.safe and result.landed == 6  # the shipped routes archive each record and file it by category
    assert_one_batch(observed("eventhub-keyvault-audit"), 3, 3)
    assert_one_batch(observed("eventhub-archive"), 3, 3)


def test_a_replay_is_observed(observed, world):
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=503, count=50)
    assert post("applogs", [app_log(n, tag="replay") for n in range(3)])[0] == 202
    world.emulator.clear_faults()
    world.host.drain()
    seen = observed("applogs")
    assert seen["batches"] == 2 and seen["rows"]["replayed"] == 3
    assert [line.get("stage") for line in seen["lines"]] == [None, "replay"]


def test_relay_send_is_observed(observed, tmp_path):
    from relay_cli.main import main

    path = tmp_path / "send.ndjson"
    path.write_bytes(b"\n".join(orjson.dumps(app_log(n, tag="send")) for n in range(6)))
    assert main(["send", "applogs", str(path), "--quiet"]) == 0
    assert_one_batch(observed("applogs"), 6, 6)
