"""The Event Hub function as the host sees it (DESIGN 3.1), and how a hub name picks its route."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

import function_app
from shared.eventhub_ingest import EventHubNotSafe, handle_eventhub
from shared.sources.eventhub import batch_metadata, decode_event_body, match_hub_route
from tests.eventhub.conftest import HubWorld, make_batch, sample


def _function(name: str):
    function_app.app.functions_bindings = None
    return next(f for f in function_app.app.get_functions() if f.get_function_name() == name)


def test_eventhub_trigger_binding_reads_batches_of_the_configured_hub_and_consumer_group():
    # GIVEN the app as the Functions host indexes it
    bindings = [json.loads(b) for b in _function("eventhub_ingest").get_raw_bindings()]
    # THEN there is one Event Hub trigger with cardinality many, binary bodies, and settings by %NAME%
    assert len(bindings) == 1
    trigger = bindings[0]
    assert (trigger["type"], trigger["direction"], trigger["cardinality"]) == ("eventHubTrigger", "IN", "MANY")
    assert trigger["eventHubName"] == "%RELAY_EVENTHUB_NAME%"
    assert trigger["consumerGroup"] == "%RELAY_EVENTHUB_CONSUMER_GROUP%"
    assert trigger["connection"] == "EventHubConnection"
    assert trigger["dataType"] == "BINARY"  # gzip bodies and exact UTF-8 checks need the raw bytes


def test_eventhub_function_has_an_exponential_retry_policy_so_unsafe_batches_are_retried_before_checkpointing():
    # GIVEN the function's settings
    retry = _function("eventhub_ingest").get_settings_dict("retry_policy")
    # THEN it retries with exponential back-off, bounded in count and interval
    assert retry["strategy"] == "exponential_backoff"
    assert int(retry["max_retry_count"]) >= 5
    assert (retry["minimum_interval"], retry["maximum_interval"]) == ("00:00:10", "00:15:00")


def test_all_five_functions_are_indexed_under_their_contract_names():
    function_app.app.functions_bindings = None
    names = {f.get_function_name() for f in function_app.app.get_functions()}
    assert {"http_ingest", "health", "blob_ingest", "eventhub_ingest"} <= names


def _routes(*matches: str) -> list[SimpleNamespace]:
    return [SimpleNamespace(name=f"r{i}", match=m) for i, m in enumerate(matches)]


@pytest.mark.parametrize(("hub", "expected"), [
    ("insights-logs-auditevent", "r1"),  # the exact name wins over a glob listed before it
    ("insights-logs-storageread", "r0"),  # then the first glob
    ("app-events", "r2"),  # "*" is the fallback wherever it is listed
])
def test_a_hub_name_picks_the_exact_route_then_a_glob_then_the_fallback(hub: str, expected: str):
    routes = _routes("insights-logs-*", "insights-logs-auditevent", "*")
    assert match_hub_route([routes[2], routes[0], routes[1]], hub).name == expected


def test_no_route_for_a_hub_is_none():
    assert match_hub_route(_routes("orders"), "payments") is None


@pytest.mark.e2e
def test_a_batch_from_a_hub_no_route_takes_raises_for_retry_and_says_why(hub: HubWorld, tmp_path,
                                                                          monkeypatch: pytest.MonkeyPatch):
    # GIVEN routes that only take the hub "orders"
    from shared.runtime import get_relay, reset_relay
    from tests.conftest import ROOT

    routes = tmp_path / "relay.yaml"
    routes.write_text(json.dumps({
        "defaults": {"endpoint": "${LOGS_INGESTION_ENDPOINT}", "dcr": "${DCR_IMMUTABLE_ID}",
                     "schema": str(ROOT / "infra" / "dcr" / "relay.json")},
        "routes": [{"name": "orders", "source": "eventhub", "match": "orders", "stream": "Custom-AppLogs"}],
    }))
    monkeypatch.setenv("RELAY_CONFIG", str(routes))
    reset_relay()
    # WHEN a batch arrives from hub "relay-events"
    result = handle_eventhub(make_batch([sample("diag_keyvault_auditevent.json")]), get_relay)
    # THEN nothing can be made safe: the result says which hub and which matches exist, and raising retries it
    assert not result.safe and "no eventhub route matches event hub 'relay-events'" in result.message
    assert "orders" in result.message
    with pytest.raises(EventHubNotSafe):
        result.raise_if_unsafe()


def test_body_shapes_decode_to_records():
    envelope = b'{"records": [{"a": 1}, {"a": 2}]}'
    assert decode_event_body(envelope, 10_000).events == [{"a": 1}, {"a": 2}]
    assert decode_event_body(b'[{"records": [{"a": 1}]}, {"b": 2}]', 10_000).events == [{"a": 1}, {"b": 2}]
    assert decode_event_body(b'{"a": 1}\n\n{"a": 2}\n', 10_000).events == [{"a": 1}, {"a": 2}]
    assert decode_event_body(b'{"records": [], "other": 1}', 10_000).events == [{"records": [], "other": 1}]
    mixed = decode_event_body(b'{"a": 1}\n{"a": \n', 10_000)
    assert mixed.events == [{"a": 1}] and mixed.problems[0].startswith("line 2: not valid JSON")


def test_an_oversized_or_bomb_body_is_refused_within_the_bound():
    import gzip

    from shared.sources.errors import TooLargeError

    with pytest.raises(TooLargeError):
        decode_event_body(b"{" + b" " * 2000 + b"}", 1000)
    with pytest.raises(TooLargeError):
        decode_event_body(gzip.compress(b"[" + b" " * 5_000_000 + b"]"), 1_000_000)


def test_batch_metadata_reads_the_partition_context_and_properties_the_host_sends():
    batch = make_batch([b"{}", b"{}"], partition="12", properties=[{"a": "1"}, {"b": "2"}])
    meta = batch_metadata(batch[0].metadata)
    assert (meta.event_hub, meta.partition_id, meta.consumer_group) == ("relay-events", "12", "$Default")
    assert meta.namespace == "evhns-relay.servicebus.windows.net"
    assert meta.properties == ({"a": "1"}, {"b": "2"})
