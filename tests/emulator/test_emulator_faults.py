"""Fault injection: 429 + Retry-After, 5xx, slow answers and dropped connections, by count or fraction."""

from __future__ import annotations

import http.client
import random
import ssl
from concurrent.futures import ThreadPoolExecutor

import pytest

from emulator.faults import FaultError, FaultInjector, FaultRule


def typed(n: int = 0) -> list[dict]:
    return [{"TimeGenerated": "2024-05-01T10:00:00Z", "I": n}]


def test_429_with_retry_after_for_two_requests_then_success(emu, client):
    # GIVEN the stream answers 429 with Retry-After: 2 for the next two requests
    emu.add_fault(stream="Custom-Typed", status=429, retry_after=2, count=2)
    # WHEN three requests are sent
    replies = [client.ingest("Custom-Typed", typed(n)) for n in range(3)]
    # THEN the first two are throttled with the header and the service's error shape, the third lands
    assert [r.status for r in replies] == [429, 429, 204]
    assert replies[0].headers["retry-after"] == "2" and replies[1].headers["retry-after"] == "2"
    assert replies[0].error_code == "TooManyRequests"
    assert [r["I"] for r in emu.rows("Typed_CL")] == [2]
    # AND the request log shows which answers were injected
    log = emu.requests()
    assert [r["status"] for r in log] == [429, 429, 204]
    assert log[0]["fault"] and log[2]["fault"] is None


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (500, "InternalServerError"),
        (503, "ServiceUnavailable"),
        (413, "ContentLengthLimitExceeded"),
        (403, "OperationFailed"),
        (400, "InvalidRequest"),
        (401, "InvalidToken"),
    ],
)
def test_status_fault_answers_with_the_service_error_shape(emu, client, status, code):
    emu.add_fault(stream="Custom-Typed", status=status, count=1)
    reply = client.ingest("Custom-Typed", typed())
    assert reply.status == status and reply.error_code == code
    assert "retry-after" not in reply.headers
    assert emu.rows("Typed_CL") == []


def test_custom_code_and_message(emu, client):
    emu.add_fault(stream="*", status=400, code="RecordsTimeRangeIsMoreThan30Minutes", message="span too wide")
    reply = client.ingest("Custom-Typed", typed())
    assert reply.json == {
        "error": {"code": "RecordsTimeRangeIsMoreThan30Minutes", "message": "span too wide"}
    }


def test_faults_apply_before_authentication(emu, client):
    emu.add_fault(stream="Custom-Typed", status=503, count=1)
    assert client.ingest("Custom-Typed", typed(), token=None).status == 503
    assert client.ingest("Custom-Typed", typed(), token=None).status == 401


def test_rule_only_matches_its_stream_and_dcr(emu, client):
    emu.add_fault(stream="Custom-Events", status=500)
    emu.add_fault(stream="*", dcr="dcr-someotherrule", status=500)
    assert client.ingest("Custom-Typed", typed()).status == 204
    assert client.ingest("Custom-Events", [{"Message": "x"}]).status == 500
    emu.clear_faults()
    emu.add_fault(stream="*", dcr=client.dcr_id.upper(), status=502, count=1)
    assert client.ingest("Custom-Typed", typed()).status == 502


def test_delay_answers_normally_after_waiting(emu, client):
    emu.add_fault(stream="Custom-Typed", delay=0.05, count=1)
    reply = client.ingest("Custom-Typed", typed(1))
    assert reply.status == 204 and [r["I"] for r in emu.rows("Typed_CL")] == [1]
    assert emu.requests()[0]["fault"]


def test_long_delay_makes_a_client_with_a_short_timeout_give_up(emu, client):
    # GIVEN the stream is much slower than the client is willing to wait
    emu.add_fault(stream="Custom-Typed", delay=60, count=1)
    # WHEN the client sends with a short timeout THEN it times out (the emulator wakes on stop)
    with pytest.raises(TimeoutError):
        client.ingest("Custom-Typed", typed(), timeout=0.3)
    # AND the next request is served at once
    assert client.ingest("Custom-Typed", typed()).status == 204


def test_delay_then_status(emu, client):
    emu.add_fault(stream="Custom-Typed", delay=0.01, status=504, count=1)
    assert client.ingest("Custom-Typed", typed()).status == 504


def test_close_drops_the_connection_without_an_answer(emu, client):
    # GIVEN the next request's connection will be closed
    emu.add_fault(stream="Custom-Typed", close=True, count=1)
    # WHEN a client sends THEN it sees a connection error, not an HTTP status
    with pytest.raises((http.client.HTTPException, ConnectionError, ssl.SSLError)):
        client.ingest("Custom-Typed", typed())
    # AND nothing landed, the log says the connection was closed, the next request is fine
    assert emu.rows("Typed_CL") == []
    assert emu.requests()[0]["error_code"] == "ConnectionClosed"
    assert client.ingest("Custom-Typed", typed()).status == 204


def test_fraction_with_a_seed_is_repeatable(emu, client):
    # GIVEN half of the requests fail, with a fixed seed
    emu.add_fault(stream="Custom-Typed", status=500, fraction=0.5, seed=42)
    # WHEN twenty requests are sent
    statuses = [client.ingest("Custom-Typed", typed(n)).status for n in range(20)]
    # THEN exactly the requests the seeded generator picks fail: the same on every run
    rng = random.Random(42)
    expected = [500 if rng.random() < 0.5 else 204 for _ in range(20)]
    assert statuses == expected
    assert 0 < statuses.count(500) < 20
    assert len(emu.rows("Typed_CL")) == statuses.count(204)


def test_count_is_exact_under_concurrent_requests(emu, client):
    # GIVEN a rule for five requests WHEN twenty arrive at once THEN exactly five are throttled
    emu.add_fault(stream="Custom-Typed", status=429, retry_after=1, count=5)
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda n: client.ingest("Custom-Typed", typed(n)).status, range(20)))
    assert statuses.count(429) == 5 and statuses.count(204) == 15
    assert len(emu.rows("Typed_CL")) == 15


def test_fractional_retry_after_is_sent_as_is(emu, client):
    emu.add_fault(stream="Custom-Typed", status=429, retry_after=0.5, count=1)
    assert client.ingest("Custom-Typed", typed()).headers["retry-after"] == "0.5"


# --------------------------------------------------------------------------- rule validation


@pytest.mark.parametrize(
    "fields",
    [
        {},  # no action
        {"status": 99},
        {"status": "429"},
        {"status": 429, "close": True},
        {"status": 429, "count": 0},
        {"status": 429, "fraction": 1.5},
        {"delay": -1},
        {"status": 429, "retry_after": -2},
        {"status": 429, "unknown": 1},
        {"stream": "", "status": 500},
    ],
)
def test_malformed_rules_are_refused(fields):
    with pytest.raises(FaultError):
        FaultRule.from_mapping(fields)


def test_first_matching_rule_wins_and_spent_rules_disappear():
    injector = FaultInjector()
    first = injector.add(stream="Custom-A", status=429, count=1)
    injector.add(stream="*", status=500, count=1)
    assert injector.pick("dcr-x", "Custom-A") is first
    assert injector.pick("dcr-x", "Custom-A").status == 500
    assert injector.pick("dcr-x", "Custom-A") is None
    assert injector.rules() == []
