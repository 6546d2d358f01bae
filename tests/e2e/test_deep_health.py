"""Deep health (issue 16 item 6): ``GET /api/health/deep`` (function key; ``/api/health?deep=1`` redirects
to it) checks storage reachability, token acquisition and the ingestion endpoint with short timeouts, names
what failed and never a secret. The anonymous ``/api/health`` stays configuration-only.

Real parts: the decorated functions with real ``func.HttpRequest`` objects, the HTTPS emulator, Azurite, and
azure-identity's ManagedIdentityCredential against an App Service identity endpoint that refuses connections.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import orjson
import pytest

from shared.health import deep_health, redact
from shared.runtime import get_relay, reset_relay
from tests.conftest import EMULATOR_TOKEN, GITHUB_SECRET, install_relay_env, relay_settings, user_function

pytestmark = pytest.mark.e2e


def get(name: str, url: str, params: dict[str, str] | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    request = func.HttpRequest("GET", url, body=b"", params=params or {})
    response = user_function(name)(request)
    return response.status_code, orjson.loads(response.get_body() or b"{}"), dict(response.headers)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port that accepts TCP connections (backlog) but never speaks TLS: a hung endpoint."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


@pytest.fixture
def deep_env(emulator: Any, azurite: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    emulator.reset()
    env = relay_settings(emulator, azurite)
    install_relay_env(monkeypatch, env)
    get_relay().poison.ensure()
    yield env
    reset_relay()


def assert_no_secret(body: dict[str, Any], env: dict[str, str], *more: str) -> None:
    text = orjson.dumps(body).decode()
    account_key = env["RelayStorage"].split("AccountKey=")[1].split(";")[0]
    for secret in (EMULATOR_TOKEN, GITHUB_SECRET, account_key, *more):
        assert secret not in text


def test_every_check_passes_against_the_emulator_and_azurite(deep_env):
    status, body, _ = get("health_deep", "http://localhost/api/health/deep")
    assert status == 200, body
    assert body["status"] == "ok" and body["failed"] == []
    assert {c["name"]: c["ok"] for c in body["checks"]} == {"token": True, "storage": True, "ingestion": True}
    assert_no_secret(body, deep_env)


def test_storage_down_is_named(deep_env, monkeypatch):
    # GIVEN RelayStorage points at a closed port
    port = closed_port()
    dead = deep_env["RelayStorage"].split("BlobEndpoint=")[0] + \
        f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    install_relay_env(monkeypatch, {**deep_env, "RelayStorage": dead})
    status, body, _ = get("health_deep", "http://localhost/api/health/deep")
    # THEN 503 naming storage alone, with the error class, and no account key
    assert status == 503 and body["failed"] == ["storage"], body
    storage = next(c for c in body["checks"] if c["name"] == "storage")
    assert storage["ok"] is False and "Error" in storage["detail"]
    assert_no_secret(body, {**deep_env, "RelayStorage": dead})


def test_ingestion_endpoint_unreachable_is_named(deep_env, monkeypatch):
    install_relay_env(monkeypatch, {**deep_env, "LOGS_INGESTION_ENDPOINT": f"https://127.0.0.1:{closed_port()}"})
    status, body, _ = get("health_deep", "http://localhost/api/health/deep")
    assert status == 503 and body["failed"] == ["ingestion"], body
    assert "ConnectionError" in next(c for c in body["checks"] if c["name"] == "ingestion")["detail"]


def test_a_hung_endpoint_times_out_within_the_deadline(deep_env, monkeypatch, silent_listener):
    # GIVEN an endpoint that accepts the connection and then says nothing
    install_relay_env(monkeypatch, {**deep_env, "LOGS_INGESTION_ENDPOINT": f"https://127.0.0.1:{silent_listener}"})
    # WHEN the deep check runs with a one-second budget
    answer = deep_health(get_relay, timeout=1.0)
    # THEN it answers, naming the endpoint check as failed (by the timeout, whichever layer noticed first)
    assert answer.status == 503 and answer.body["failed"] == ["ingestion"], answer.body
    detail = next(c for c in answer.body["checks"] if c["name"] == "ingestion")["detail"]
    assert "timed out" in detail.lower() or "Timeout" in detail


def test_token_failure_is_named_without_the_identity_header(deep_env, monkeypatch):
    # GIVEN a managed identity whose (App Service style) identity endpoint refuses connections
    header = "identity-header-value-0123456789"
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"http://127.0.0.1:{closed_port()}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", header)
    install_relay_env(monkeypatch, {**deep_env, "RELAY_CREDENTIAL": "managed_identity"})
    status, body, _ = get("health_deep", "http://localhost/api/health/deep")
    assert status == 503 and body["failed"] == ["token"], body
    token = next(c for c in body["checks"] if c["name"] == "token")
    assert token["ok"] is False and token["detail"]
    assert_no_secret(body, deep_env, header)


def test_without_storage_the_storage_check_does_not_apply(emulator, monkeypatch):
    install_relay_env(monkeypatch, relay_settings(emulator))
    try:
        status, body, _ = get("health_deep", "http://localhost/api/health/deep")
        assert status == 200, body
        assert next(c for c in body["checks"] if c["name"] == "storage")["ok"] is None
    finally:
        reset_relay()


def test_broken_configuration_is_named(deep_env, monkeypatch, tmp_path):
    broken = tmp_path / "relay.yaml"
    broken.write_text("routes:\n  - name: x\n    source: ftp\n")
    install_relay_env(monkeypatch, {**deep_env, "RELAY_CONFIG": str(broken)})
    status, body, _ = get("health_deep", "http://localhost/api/health/deep")
    assert status == 503 and body["failed"] == ["configuration"] and body["problems"]


def test_anonymous_health_stays_configuration_only_and_redirects_deep_to_the_keyed_check(deep_env, emulator):
    emulator.reset()
    # WHEN the anonymous health is asked for a deep check, with the key as a query parameter
    status, body, headers = get("health", "http://localhost/api/health?deep=1&code=abc",
                                {"deep": "1", "code": "abc"})
    # THEN it checks nothing itself and sends the caller (query kept) to the keyed function
    assert status == 307 and headers["Location"] == "/api/health/deep?deep=1&code=abc"
    assert "function key" in body["error"]
    # AND without deep it answers configuration only: no check reached the ingestion endpoint
    status, body, _ = get("health", "http://localhost/api/health")
    assert status == 200 and "checks" not in body and body["routes"] >= 4
    assert emulator.requests() == []


def test_redact_masks_known_secrets_and_token_fields():
    text = "failed: Bearer eyJabc.def AccountKey=Zm9v;x sig=abc123&y mysecretvalue\nsecond line"
    assert redact(text, ["mysecretvalue"]) == \
        "failed: Bearer <redacted> AccountKey=<redacted>;x sig=<redacted>&y <redacted>"
