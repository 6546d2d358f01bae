"""Fixtures of the poison-store tests: real Azurite, the real emulator, the real function app.

Each test gets its own poison queue and containers (fresh names on the worker's
Azurite), a process-wide relay rebuilt on that environment with zero replay back-off
(so requeued claim checks are visible at once: no sleeps), short upload deadlines, and
a ``QueueHost`` that plays the Functions host for the queue trigger: it receives the
base64 messages the parker wrote, decodes them as the host does, calls the decorated
function with a real ``azure.functions.QueueMessage`` and deletes the message when
the function returned.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
import orjson
import pytest

from shared.normalize import event_id
from shared.poison import Backoff
from tests.conftest import install_relay_env, relay_settings, user_function

APPLOGS_TABLE = "AppLogs_CL"
APPLOGS_STREAM = "Custom-AppLogs"



def app_log(n: int, tag: str = "t", **fields: Any) -> dict[str, Any]:
    """An applogs event made unique by ``seq`` and ``tag`` (so its EventId is unique)."""
    return {"timestamp": f"2024-05-01T10:{n // 60 % 60:02d}:{n % 60:02d}Z", "level": "info",
            "message": f"{tag} event {n}", "service": "svc", "status": 200, "seq": n, "tag": tag, **fields}


def ids_of(events: list[dict[str, Any]], route: str = "applogs", posted: bool = True) -> list[str]:
    """The EventIds of events posted by :func:`post` (a JSON body: each event's text is as orjson writes
    it), or with ``posted=False`` of events handed to the engine decoded (as records)."""
    return [event_id(route, e, orjson.dumps(e) if posted else None) for e in events]


def post(route: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    """POST /api/ingest/{route} through the decorated function, as the host would."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    request = func.HttpRequest("POST", f"http://localhost/api/ingest/{route}",
                               headers={"Content-Type": "application/json", **(headers or {})},
                               route_params={"route": route}, body=raw)
    response = user_function("http_ingest")(request)
    return response.status_code, orjson.loads(response.get_body() or b"{}"), dict(response.headers)


@dataclass
class QueueHost:
    """Plays the Functions host's queue listener for the poison queue (messageEncoding base64)."""

    connection_string: str
    queue_name: str
    deliveries: list[bytes] = field(default_factory=list)

    def _client(self) -> Any:
        from azure.storage.queue import QueueClient

        return QueueClient.from_connection_string(self.connection_string, self.queue_name)  # raw: no decode policy

    def receive(self, limit: int = 32) -> list[func.QueueMessage]:
        """Messages as the host hands them to the function: base64 decoded to the original bytes."""
        messages = []
        for raw in self._client().receive_messages(max_messages=limit, visibility_timeout=60):
            body = base64.b64decode(raw.content, validate=True)  # the parker wrote base64 text
            messages.append(func.QueueMessage(id=raw.id, body=body, pop_receipt=raw.pop_receipt))
        return messages

    def deliver(self, message: func.QueueMessage, delete: bool = True) -> None:
        """Run the trigger; like the host, delete the message only when the function returned."""
        self.deliveries.append(message.get_body())
        user_function("poison_replay")(message)
        if delete:
            self._client().delete_message(message.id, message.pop_receipt)

    def pending(self) -> int:
        return int(self._client().get_queue_properties().approximate_message_count or 0)

    def drain(self, timeout: float = 60.0) -> int:
        """Deliver every message (requeues included) until the queue is empty; returns deliveries."""
        delivered = 0
        deadline = time.monotonic() + timeout
        while True:
            batch = self.receive()
            for message in batch:
                self.deliver(message)
                delivered += 1
            if not batch and self.pending() == 0:
                return delivered
            if time.monotonic() > deadline:
                raise AssertionError(f"poison queue {self.queue_name} did not drain: {self.pending()} left")
            if not batch:
                time.sleep(0.05)


@dataclass
class PoisonWorld:
    env: dict[str, str]
    emulator: Any
    azurite: Any
    host: QueueHost

    @property
    def relay(self) -> Any:
        from shared.runtime import get_relay

        return get_relay()

    @property
    def store(self) -> Any:
        return self.relay.poison

    def route(self, name: str = "applogs") -> Any:
        return next(r for r in self.relay.config.routes if r.name == name)

    def landed_ids(self) -> list[str]:
        if APPLOGS_TABLE not in self.emulator.tables():
            return []
        return [row["EventId"] for row in self.emulator.rows(APPLOGS_TABLE)]

    def deadlettered(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """EventId -> (failure class, reason record) of every dead-lettered row."""
        found: dict[str, tuple[str, dict[str, Any]]] = {}
        for entry in self.store.list_deadletter():
            full = self.store.get_deadletter(entry.id)
            for row in self.store.read_rows(full.batch, self.store.deadletters):
                found[orjson.loads(row)["EventId"]] = (full.reason["class"], full.reason)
        return found

    def rebuild(self, monkeypatch: pytest.MonkeyPatch, **changes: str) -> None:
        """Change app settings and rebuild the process-wide relay (what a settings change does)."""
        from shared.runtime import reset_relay

        for key, value in changes.items():
            monkeypatch.setenv(key, value)
            self.env[key] = value
        reset_relay()
        fast_replays()


def fast_replays() -> None:
    from shared.runtime import get_relay

    relay = get_relay()
    if relay.poison is not None:
        relay.poison.backoff = Backoff(base=0, cap=0)


def poison_names() -> dict[str, str]:
    suffix = uuid.uuid4().hex[:10]
    return {"RELAY_POISON_QUEUE": f"poison-{suffix}", "RELAY_POISON_CONTAINER": f"poison-{suffix}",
            "RELAY_DEADLETTER_CONTAINER": f"deadletter-{suffix}"}


@pytest.fixture
def world(emulator: Any, azurite: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[PoisonWorld]:
    """A relay on the emulator and Azurite, own poison queue/containers, zero replay back-off."""
    from shared.runtime import reset_relay

    emulator.reset()
    env = relay_settings(emulator, azurite, RELAY_UPLOAD_DEADLINE_SECONDS="1", RELAY_UPLOAD_TIMEOUT_SECONDS="1",
                         RELAY_MAX_REPLAYS="3", **poison_names())
    install_relay_env(monkeypatch, env)
    fast_replays()
    yield PoisonWorld(env, emulator, azurite, QueueHost(azurite.connection_string, env["RELAY_POISON_QUEUE"]))
    emulator.clear_faults()
    reset_relay()
