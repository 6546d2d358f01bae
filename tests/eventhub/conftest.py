"""Fixtures of the Event Hub trigger tests: batches of real ``func.EventHubEvent`` objects, built the
way the host's cardinality-many converter builds them, against the real emulator and Azurite."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.functions.meta import Datum

from tests.conftest import EVENTS, install_relay_env, relay_settings, routes_file_without

RESOURCE_TABLE = "AzureResourceLogs_CL"
RESOURCE_STREAM = "Custom-AzureResourceLogs"
HUB = "relay-events"
DIAGNOSTIC_SAMPLES = (
    "diag_keyvault_auditevent.json",
    "diag_appservice_httplogs.json",
    "diag_sql_security_audit.json",
    "diag_storage_blob_logs.json",
    "activitylog_administrative.json",
)



def sample(name: str) -> bytes:
    return (EVENTS / name).read_bytes()


def sample_records(name: str) -> list[dict[str, Any]]:
    return json.loads(sample(name))["records"]


def make_batch(bodies: list[bytes], *, partition: str = "3", first_sequence: int = 1000, hub: str = HUB,
               properties: list[dict[str, Any]] | None = None, partition_key: str | None = "pk-1",
               consumer_group: str = "$Default") -> list[func.EventHubEvent]:
    """A cardinality-many batch as the worker decodes it: one EventHubEvent per body, all sharing the
    batch's trigger metadata (PartitionContext, PropertiesArray, SystemPropertiesArray, ...)."""
    start = datetime(2024, 5, 1, 10, 5, tzinfo=UTC)
    system = []
    for i in range(len(bodies)):
        system.append({
            "EnqueuedTimeUtc": (start + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
            "SequenceNumber": first_sequence + i, "Offset": 4096 * (first_sequence + i),
            "PartitionKey": partition_key,
        })
    props = properties if properties is not None else [{"producer": "diagnostic-settings"} for _ in bodies]
    metadata = {
        "PartitionContext": Datum(json.dumps({
            "EventHubName": hub, "ConsumerGroup": consumer_group, "PartitionId": partition,
            "FullyQualifiedNamespace": "evhns-relay.servicebus.windows.net",
        }), "json"),
        "PropertiesArray": Datum(json.dumps(props), "json"),
        "SystemPropertiesArray": Datum(json.dumps(system), "json"),
        "SequenceNumberArray": Datum(json.dumps([s["SequenceNumber"] for s in system]), "json"),
    }
    return [
        func.EventHubEvent(
            body=body, trigger_metadata=metadata,
            enqueued_time=start + timedelta(seconds=i), partition_key=partition_key,
            sequence_number=first_sequence + i, offset=str(4096 * (first_sequence + i)), iothub_metadata=None,
        )
        for i, body in enumerate(bodies)
    ]


@dataclass
class HubWorld:
    env: dict[str, str]
    emulator: Any
    azurite: Any

    @property
    def relay(self) -> Any:
        from shared.runtime import get_relay

        return get_relay()

    def ingest(self, events: list[func.EventHubEvent]) -> Any:
        from shared.eventhub_ingest import handle_eventhub
        from shared.runtime import get_relay

        return handle_eventhub(events, get_relay)

    def rows(self, table: str = RESOURCE_TABLE) -> list[dict[str, Any]]:
        return self.emulator.rows(table) if table in self.emulator.tables() else []

    def poison_messages(self) -> int:
        from azure.storage.queue import QueueClient

        queue = QueueClient.from_connection_string(self.azurite.connection_string, self.env["RELAY_POISON_QUEUE"])
        return int(queue.get_queue_properties().approximate_message_count or 0)


#: The shipped example also archives every record and sends Key Vault audits to a table of their own
#: (tests/eventhub/test_eventhub_routing.py); these tests look at the trigger with one route per hub.
EXAMPLE_ROUTES = ("eventhub-archive", "eventhub-keyvault-audit")


def _world(emulator: Any, azurite: Any, monkeypatch: pytest.MonkeyPatch, poison: bool,
           folder: Path) -> Iterator[HubWorld]:
    from shared.runtime import reset_relay

    emulator.reset()
    suffix = uuid.uuid4().hex[:10]
    env = relay_settings(emulator, azurite, RELAY_CONFIG=str(routes_file_without(folder, *EXAMPLE_ROUTES)),
                         RELAY_EVENTHUB_NAME=HUB, RELAY_UPLOAD_DEADLINE_SECONDS="2",
                         RELAY_UPLOAD_TIMEOUT_SECONDS="2", RELAY_POISON_QUEUE=f"poison-{suffix}",
                         RELAY_POISON_CONTAINER=f"poison-{suffix}", RELAY_DEADLETTER_CONTAINER=f"deadletter-{suffix}")
    if not poison:
        env.pop("RelayStorage", None)
    install_relay_env(monkeypatch, env)
    yield HubWorld(env, emulator, azurite)
    emulator.clear_faults()
    reset_relay()


@pytest.fixture
def hub(emulator: Any, azurite: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[HubWorld]:
    """A relay on the emulator with the poison store on Azurite (as deployed)."""
    yield from _world(emulator, azurite, monkeypatch, poison=True, folder=tmp_path)


@pytest.fixture
def hub_without_poison(emulator: Any, azurite: Any, monkeypatch: pytest.MonkeyPatch,
                       tmp_path: Path) -> Iterator[HubWorld]:
    """A relay with no poison store: a failed upload cannot be made safe."""
    yield from _world(emulator, azurite, monkeypatch, poison=False, folder=tmp_path)
