"""The blob function as the host sees it (DESIGN 3.1) and as it runs: bindings, then a real BlobClient."""

from __future__ import annotations

import inspect
import json
import typing

import pytest

import function_app
from tests.blob.conftest import APPLOGS_TABLE, BlobWorld, app_log, ndjson
from tests.conftest import EVENTS, user_function


def _function(name: str):
    function_app.app.functions_bindings = None
    return next(f for f in function_app.app.get_functions() if f.get_function_name() == name)


def test_blob_trigger_binding_is_event_grid_on_the_watched_container_through_relay_storage():
    # GIVEN the app as the Functions host indexes it
    function = _function("blob_ingest")
    # WHEN its raw bindings are read
    bindings = [json.loads(b) for b in function.get_raw_bindings()]
    # THEN there is one blob trigger: Event Grid source (Flex Consumption), %RELAY_BLOB_CONTAINER%, RelayStorage
    assert len(bindings) == 1
    trigger = bindings[0]
    assert trigger["type"] == "blobTrigger" and trigger["direction"] == "IN"
    assert trigger["source"] == "EventGrid"
    assert trigger["path"] == "%RELAY_BLOB_CONTAINER%/{name}"
    assert trigger["connection"] == "RelayStorage"


def test_blob_function_takes_the_sdk_blob_client_type_so_blobs_are_streamed():
    # GIVEN the user function behind blob_ingest
    user = _function("blob_ingest").get_user_function()
    # WHEN its parameter annotation is resolved (as the worker does)
    hints = typing.get_type_hints(user)
    # THEN it is the SDK-type BlobClient of azurefunctions-extensions-bindings-blob (an azure.storage.blob.BlobClient)
    import azurefunctions.extensions.bindings.blob as blob
    from azure.storage.blob import BlobClient

    assert list(inspect.signature(user).parameters) == ["client"]
    assert hints["client"] is blob.BlobClient and issubclass(blob.BlobClient, BlobClient)


@pytest.mark.e2e
def test_the_decorated_function_lands_a_dropped_gzip_file(blobs: BlobWorld):
    # GIVEN the NDJSON sample dropped gzip-compressed into the watched container
    client = blobs.put("applogs/2024/05/01/applogs.ndjson.gz", (EVENTS / "applogs.ndjson").read_bytes(), gzipped=True)
    # WHEN the function runs with the real BlobClient the binding gives
    user_function("blob_ingest")(client)
    # THEN the sample's rows are in the AppLogs table (the DCR's transform drops its one trace line)
    rows = blobs.rows(APPLOGS_TABLE)
    assert len(rows) == 4 and {r["Service"] for r in rows} >= {"orders-api", "payments"}


@pytest.mark.e2e
def test_the_decorated_function_returns_normally_when_rows_are_parked(blobs: BlobWorld):
    # GIVEN a service that answers 503 to everything (retried until the upload deadline, then parked)
    events = [app_log(n, "fn") for n in range(20)]
    client = blobs.put("applogs/fn.ndjson", ndjson(events))
    blobs.emulator.add_fault(stream="Custom-AppLogs", status=503, retry_after=0)
    # WHEN the function runs
    user_function("blob_ingest")(client)
    # THEN it did not raise (parked rows are safe): the poison queue holds them and the checkpoint is done
    checkpoint = blobs.checkpoint("applogs/fn.ndjson")
    assert checkpoint["status"] == "done" and checkpoint["parked"] == 20
    assert blobs.landed_ids() == []
