"""The upload sink keeps one connection per call in flight: no new TLS handshake for each call over 10."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest

from shared.credentials import StaticTokenCredential
from shared.dispatch import gzip_body
from shared.settings import Settings
from shared.sink import LogsIngestionSink
from tests.conftest import EMULATOR_TOKEN, relay_settings

pytestmark = pytest.mark.e2e
IN_FLIGHT = 16  # the default RELAY_UPLOAD_CONCURRENCY; more than requests' default pool of 10
ROUNDS = 3


def test_concurrent_uploads_reuse_one_connection_per_call_in_flight(emulator, caplog):
    # GIVEN a service that answers each call after 150 ms, and a sink allowed 16 calls in flight
    emulator.reset()
    emulator.clear_faults()
    emulator.add_fault(delay=0.15, status=204, count=IN_FLIGHT * ROUNDS)
    settings = Settings.from_env(relay_settings(emulator, RELAY_UPLOAD_CONCURRENCY=str(IN_FLIGHT)))
    sink = LogsIngestionSink(settings, lambda: StaticTokenCredential(EMULATOR_TOKEN))
    body = gzip_body(orjson.dumps([{"TimeGenerated": "2024-05-01T10:00:00Z", "Message": "m"}]))
    dcr, endpoint = emulator.dcr_ids["relay"], emulator.endpoint
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    try:
        # WHEN three rounds of 16 calls go out 16 at a time
        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            results = list(pool.map(
                lambda n: sink.upload(endpoint, dcr, "Custom-AppLogs", body, f"req-{n}"), range(IN_FLIGHT * ROUNDS)))
    finally:
        sink.close()
    # THEN every call landed, over at most one TLS connection per call in flight
    assert all(result.landed for result in results), [r for r in results if not r.landed]
    assert emulator.connections_opened <= IN_FLIGHT, (
        f"{emulator.connections_opened} TLS connections for {IN_FLIGHT} calls in flight")
    # AND no connection was dropped for want of room in the pool
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
