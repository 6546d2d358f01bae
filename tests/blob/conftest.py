"""Fixtures of the blob-trigger tests: real Azurite (blob service), the real emulator, the real relay.

Each test gets its own watched container (``RELAY_BLOB_CONTAINER``), its own poison
queue/containers, and a process-wide relay rebuilt on that environment. Blobs are
written into Azurite and handed to the core (or the decorated function) as real
``azure.storage.blob.BlobClient`` objects, which is what the SDK-type binding gives
the function in Azure.
"""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from shared.normalize import event_id
from tests.conftest import install_relay_env, relay_settings

APPLOGS_TABLE = "AppLogs_CL"
RESOURCE_TABLE = "AzureResourceLogs_CL"



def app_log(n: int, tag: str = "t", **fields: Any) -> dict[str, Any]:
    """An applogs event made unique by ``seq`` and ``tag`` (so its EventId is unique)."""
    return {"timestamp": f"2024-05-01T10:{n // 60 % 60:02d}:{n % 60:02d}Z", "level": "info",
            "message": f"{tag} event {n}", "service": "orders-api", "host": f"web-{n % 4}", "status": 200,
            "duration_ms": 1.5 + n % 7, "seq": n, "tag": tag, **fields}


def ndjson(events: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(e) + b"\n" for e in events)


@dataclass
class BlobWorld:
    env: dict[str, str]
    emulator: Any
    azurite: Any
    container_name: str

    @property
    def service(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.azurite.connection_string)

    def put(self, name: str, data: bytes, *, gzipped: bool = False, metadata: dict[str, str] | None = None,
            content_type: str | None = None) -> Any:
        """Write a blob into the watched container; returns its BlobClient (what the binding gives)."""
        from azure.storage.blob import ContentSettings

        client = self.service.get_blob_client(self.container_name, name)
        client.upload_blob(gzip.compress(data) if gzipped else data, overwrite=True, metadata=metadata,
                           content_settings=ContentSettings(content_type=content_type) if content_type else None)
        return client

    def ingest(self, client: Any, **options: Any) -> Any:
        from shared.blob_ingest import BlobOptions, handle_blob
        from shared.runtime import get_relay

        return handle_blob(client, get_relay, BlobOptions(**options))

    def rows(self, table: str = APPLOGS_TABLE) -> list[dict[str, Any]]:
        return self.emulator.rows(table) if table in self.emulator.tables() else []

    def landed_ids(self, table: str = APPLOGS_TABLE) -> list[str]:
        return [row["EventId"] for row in self.rows(table)]

    def checkpoint(self, name: str) -> dict[str, Any] | None:
        from azure.core.exceptions import ResourceNotFoundError

        from shared.blob_ingest import CHECKPOINT_CONTAINER, CheckpointStore

        client = self.service.get_blob_client(CHECKPOINT_CONTAINER,
                                              CheckpointStore.name_for(f"{self.container_name}/{name}"))
        try:
            return orjson.loads(client.download_blob().readall())
        except ResourceNotFoundError:
            return None


def expected_ids(events: list[dict[str, Any]], route: str = "blob-applogs", lines: bool = False) -> list[str]:
    """The EventIds the relay gives these events of a blob on ``route``. ``lines``: they came as NDJSON lines
    written by :func:`ndjson`, which a route with a typed path takes still encoded and hashes as their text
    (``coercion.canonical_bytes``); otherwise (a decoder made them: JSON arrays, records, CSV, or a route
    without a typed path) hashed with sorted keys."""
    from shared.runtime import get_relay

    relay = get_relay()
    encoded = lines and relay.engine.takes_encoded(next(r for r in relay.config.routes if r.name == route))
    return [event_id(route, e, orjson.dumps(e) if encoded else None) for e in events]


def _world(emulator: Any, azurite: Any, monkeypatch: pytest.MonkeyPatch, poison: bool,
           **overrides: str) -> Iterator[BlobWorld]:
    from shared.runtime import reset_relay

    emulator.reset()
    suffix = uuid.uuid4().hex[:10]
    container = f"ingest-{suffix}"
    env = relay_settings(emulator, azurite, RELAY_BLOB_CONTAINER=container, RELAY_UPLOAD_DEADLINE_SECONDS="2",
                         RELAY_UPLOAD_TIMEOUT_SECONDS="2", RELAY_POISON_QUEUE=f"poison-{suffix}",
                         RELAY_POISON_CONTAINER=f"poison-{suffix}", RELAY_DEADLETTER_CONTAINER=f"deadletter-{suffix}",
                         **overrides)
    if not poison:  # no RelayStorage: nothing can be parked, failed uploads stay failed
        env.pop("RelayStorage", None)
    install_relay_env(monkeypatch, env)
    world = BlobWorld(env, emulator, azurite, container)
    world.service.create_container(container)
    yield world
    emulator.clear_faults()
    reset_relay()


@pytest.fixture
def blobs(emulator: Any, azurite: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[BlobWorld]:
    """A relay on the emulator with the poison store on Azurite (as deployed)."""
    yield from _world(emulator, azurite, monkeypatch, poison=True)


@pytest.fixture
def blobs_without_poison(emulator: Any, azurite: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[BlobWorld]:
    """A relay with no poison store: an upload that fails stays failed, so the run must be retried."""
    yield from _world(emulator, azurite, monkeypatch, poison=False)
