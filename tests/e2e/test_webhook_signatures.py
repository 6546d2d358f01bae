"""Signed webhooks from SaaS senders (route key ``signature:``, issue 14), end to end.

Each sample under ``tests/events/webhooks/`` holds a sender's event, the route's ``signature:``
block for it and, in words, how that sender signs. Here each sender's signing is written out
as its documentation states it (not with the relay's code), the delivery is posted through the
HTTP function, and the row lands; a wrong secret or a stale timestamp is a 401 naming the
header expected, never the secret, with nothing uploaded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import yaml

from shared.runtime import reset_relay
from tests.conftest import EVENTS, ROOT

pytestmark = pytest.mark.e2e

SAMPLES = EVENTS / "webhooks"
SENDERS = sorted(path.stem for path in SAMPLES.glob("*.json"))
SECRET = "whsec-test-9f8e7d6c"


def sample(sender: str) -> dict:
    return orjson.loads((SAMPLES / f"{sender}.json").read_bytes())


def _mac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def signed_headers(sender: str, secret: str, body: bytes, now: float) -> dict[str, str]:
    """The headers each sender sends, computed the way its documentation says."""
    epoch = str(int(now))
    if sender == "shopify":
        return {"X-Shopify-Hmac-Sha256": base64.b64encode(_mac(secret, body)).decode()}
    if sender == "slack":
        mac = _mac(secret, b"v0:" + epoch.encode() + b":" + body).hex()
        return {"X-Slack-Request-Timestamp": epoch, "X-Slack-Signature": f"v0={mac}"}
    if sender == "stripe":
        mac = _mac(secret, epoch.encode() + b"." + body).hex()
        return {"Stripe-Signature": f"t={epoch},v1={mac},v0={'6' * 64}"}
    if sender == "zendesk":
        stamp = datetime.fromtimestamp(int(now), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        mac = base64.b64encode(_mac(secret, stamp.encode() + body)).decode()
        return {"X-Zendesk-Webhook-Signature-Timestamp": stamp, "X-Zendesk-Webhook-Signature": mac}
    if sender == "pagerduty":
        return {"X-PagerDuty-Signature": f"v1={'0' * 64},v1={_mac(secret, body).hex()}"}  # an old secret's first
    if sender == "typeform":
        return {"Typeform-Signature": "sha256=" + base64.b64encode(_mac(secret, body)).decode()}
    if sender == "sentry":
        return {"Sentry-Hook-Signature": _mac(secret, body).hex()}
    raise LookupError(f"no signing written out for sample {sender!r}")


@pytest.fixture
def senders_relay(relay_env, monkeypatch, tmp_path: Path):
    """A routes file with one signed http route per sample, all into the AppLogs stream (raw in Properties)."""
    routes = [{
        "name": sender, "source": "http", "match": sender, "stream": "Custom-AppLogs",
        "schema": str(ROOT / "infra" / "dcr" / "relay.json"), "extra": "Properties",
        "signature": {"secret": "${SENDER_SECRET}", **sample(sender)["signature"]},
    } for sender in SENDERS]
    document = {"defaults": {"endpoint": "${LOGS_INGESTION_ENDPOINT}", "dcr": "${DCR_IMMUTABLE_ID}"}, "routes": routes}
    path = tmp_path / "relay.yaml"
    path.write_text(yaml.safe_dump(document))
    monkeypatch.setenv("RELAY_CONFIG", str(path))
    monkeypatch.setenv("SENDER_SECRET", SECRET)
    reset_relay()
    yield
    reset_relay()


def test_every_sample_names_its_sender_scheme_and_signature_block():
    assert len(SENDERS) >= 7
    for sender in SENDERS:
        data = sample(sender)
        assert {"sender", "scheme", "signature", "headers", "body"} <= set(data)
        assert "secret" not in data["signature"]


@pytest.mark.parametrize("sender", SENDERS)
def test_a_delivery_signed_as_the_sender_signs_lands(http, emulator, senders_relay, sender):
    data = sample(sender)
    body = orjson.dumps(data["body"])
    headers = {**data["headers"], **signed_headers(sender, SECRET, body, time.time())}
    status, summary, _ = http.post(sender, body, headers)
    assert status == 200, summary
    assert (summary["received"], summary["accepted"], summary["rejected"]) == (1, 1, 0)
    (row,) = emulator.rows("AppLogs_CL")
    assert row["Properties"] == data["body"]


@pytest.mark.parametrize("sender", SENDERS)
def test_a_delivery_signed_with_another_secret_is_401_naming_the_header_not_the_secret(
        http, emulator, senders_relay, sender):
    data = sample(sender)
    body = orjson.dumps(data["body"])
    status, answer, _ = http.post(sender, body, {**data["headers"], **signed_headers(sender, "not-it", body, time.time())})
    assert status == 401
    assert answer["error"] == f"missing or wrong {data['signature']['header']} signature"
    assert SECRET not in orjson.dumps(answer).decode()
    assert emulator.requests() == []


@pytest.mark.parametrize("sender", [s for s in SENDERS if "timestamp_header" in sample(s)["signature"]])
def test_a_replayed_delivery_outside_the_tolerance_window_is_401(http, emulator, senders_relay, sender):
    data = sample(sender)
    body = orjson.dumps(data["body"])
    stale = time.time() - 10 * 60
    status, answer, _ = http.post(sender, body, {**data["headers"], **signed_headers(sender, SECRET, body, stale)})
    assert status == 401
    assert data["signature"]["timestamp_header"] in answer["error"] and "tolerance window" in answer["error"]
    assert emulator.requests() == []


def test_an_unsigned_delivery_is_401_naming_the_header(http, emulator, senders_relay):
    status, answer, _ = http.post("shopify", sample("shopify")["body"])
    assert (status, answer["error"]) == (401, "missing X-Shopify-Hmac-Sha256 signature header")
    assert emulator.requests() == []
