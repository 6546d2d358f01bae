"""The real azure-monitor-ingestion client (sync) against the emulator over verified HTTPS."""

from __future__ import annotations

import io
import json
import time

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.monitor.ingestion import LogsIngestionClient
from emu_support import write_dcr

from emulator.server import Emulator

STATIC_TOKEN = "static-token"


class StaticTokenCredential:
    """Returns a fixed bearer token, like a managed identity would return a real one."""

    def __init__(self, token: str = STATIC_TOKEN) -> None:
        self.token = token

    def get_token(self, *scopes: str, **_kwargs) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


def sdk_client(
    emu: Emulator, credential: StaticTokenCredential | None = None, **kwargs
) -> LogsIngestionClient:
    return LogsIngestionClient(
        emu.endpoint, credential or StaticTokenCredential(), connection_verify=str(emu.ca_path), **kwargs
    )


def events(n: int) -> list[dict]:
    return [
        {
            "TimeGenerated": "2024-05-01T10:00:00Z",
            "Level": "info",
            "Message": f"event {i}",
            "Code": 200 + i,
            "DurationMs": i / 2,
            "Ok": True,
            "Props": {"i": i},
        }
        for i in range(n)
    ]


def test_sdk_upload_lands_every_row(emu):
    # GIVEN the SDK pointed at the emulator, trusting its CA, with a static token credential
    credential = StaticTokenCredential()
    with sdk_client(emu, credential) as client:
        # WHEN a list of dicts is uploaded
        client.upload(rule_id=emu.dcr_ids["test"], stream_name="Custom-Events", logs=events(25))
    # THEN every row landed; the SDK gzipped the body and sent its own request id
    assert sorted(r["Message"] for r in emu.rows("Events_CL")) == sorted(f"event {i}" for i in range(25))
    (request,) = emu.requests()
    assert request["status"] == 204 and request["content_encoding"] == "gzip"
    assert request["client_request_id"]
    assert emu.drops() == []


def test_sdk_splits_a_large_upload_into_requests_under_the_limit(emu):
    big = [{"TimeGenerated": "2024-05-01T10:00:00Z", "Message": "x" * 5000, "Code": i} for i in range(400)]
    with sdk_client(emu) as client:
        client.upload(rule_id=emu.dcr_ids["test"], stream_name="Custom-Events", logs=big)
    assert len(emu.requests()) >= 2
    assert all(r["status"] == 204 and r["bytes_decoded"] <= 1_048_576 for r in emu.requests())
    assert len(emu.rows("Events_CL")) == 400


def test_sdk_retries_a_429_with_retry_after_then_succeeds(emu):
    # GIVEN two throttled answers with a (short) Retry-After
    emu.add_fault(stream="Custom-Events", status=429, retry_after=0.01, count=2)
    # WHEN the SDK uploads
    with sdk_client(emu) as client:
        client.upload(rule_id=emu.dcr_ids["test"], stream_name="Custom-Events", logs=events(3))
    # THEN it honoured Retry-After, retried with the same client request id, and the rows landed once
    log = emu.requests()
    assert [r["status"] for r in log] == [429, 429, 204]
    assert len({r["client_request_id"] for r in log}) == 1
    assert len(emu.rows("Events_CL")) == 3


def test_sdk_raises_on_a_429_that_outlasts_its_retries(emu):
    emu.add_fault(stream="Custom-Events", status=429, retry_after=0.01)
    with sdk_client(emu, retry_total=1) as client, pytest.raises(HttpResponseError) as info:
        client.upload(rule_id=emu.dcr_ids["test"], stream_name="Custom-Events", logs=events(1))
    assert info.value.status_code == 429
    assert [r["status"] for r in emu.requests()] == [429, 429]


def test_sdk_reports_failed_chunks_through_on_error(emu):
    emu.add_fault(stream="Custom-Events", status=400, count=1)
    failed: list = []
    with sdk_client(emu) as client:
        client.upload(
            rule_id=emu.dcr_ids["test"], stream_name="Custom-Events", logs=events(2), on_error=failed.append
        )
    assert len(failed) == 1 and len(failed[0].failed_logs) == 2
    assert emu.rows("Events_CL") == []


def test_sdk_sees_404_for_an_unknown_stream(emu):
    with sdk_client(emu) as client, pytest.raises(ResourceNotFoundError):
        client.upload(rule_id=emu.dcr_ids["test"], stream_name="Custom-Missing", logs=events(1))


def test_sdk_uploads_an_already_gzipped_stream_as_is(emu):
    import gzip

    body = io.BytesIO(gzip.compress(json.dumps(events(2)).encode()))
    with sdk_client(emu) as client:
        client.upload(rule_id=emu.dcr_ids["test"], stream_name="Custom-Events", logs=body)
    assert len(emu.rows("Events_CL")) == 2


def test_sdk_with_a_token_the_emulator_refuses_gets_401(tmp_path):
    # GIVEN an emulator that expects a specific token
    with Emulator([write_dcr(tmp_path)], tmp_path / "state", token="expected") as emu:
        # WHEN the SDK presents another one THEN it raises an authentication error
        with (
            sdk_client(emu, StaticTokenCredential("other")) as client,
            pytest.raises(ClientAuthenticationError),
        ):
            client.upload(rule_id=emu.dcr_ids["test"], stream_name="Custom-Events", logs=events(1))
        # AND with the expected token the rows land
        with sdk_client(emu, StaticTokenCredential("expected")) as client:
            client.upload(rule_id=emu.dcr_ids["test"], stream_name="Custom-Events", logs=events(1))
        assert [r["status"] for r in emu.requests()] == [401, 204]
