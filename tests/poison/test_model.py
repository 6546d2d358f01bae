"""Claim checks, payloads, back-off and re-validation of parked rows (no network)."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import orjson
import pytest

from shared.config import parse_config
from shared.poison import Backoff, InvalidMessage, ParkedBatch
from shared.poison.model import decode_payload, encode_payload, iso, recheck_rows, schema_fingerprint, utcnow

ROOT = Path(__file__).resolve().parents[2]
ENV = {"LOGS_INGESTION_ENDPOINT": "https://127.0.0.1:4443", "DCR_IMMUTABLE_ID": "dcr-" + "a" * 32,
       "GITHUB_WEBHOOK_SECRET": "x"}


def applogs_route():
    config = parse_config((ROOT / "relay.yaml").read_text(), ENV, ROOT)
    return next(r for r in config.routes if r.name == "applogs")


def batch(**changes) -> ParkedBatch:
    values = dict(id="20260101T000000Z-applogs-0123456789ab", route="applogs", endpoint="https://x", dcr="dcr-1",
                  stream="Custom-AppLogs", rows=3, bytes=300, failure="throttled", status=429, message="slow down é",
                  attempt=1, first_failure="2026-01-01T00:00:00.000000Z", last_failure="2026-01-01T00:00:00.000000Z",
                  batch_id="b-1", request_id="r-1", blob="parked/x.ndjson.gz", schema="abc")
    values.update(changes)
    return ParkedBatch(**values)


def test_claim_check_round_trips_as_json_base64_and_metadata():
    original = batch()
    assert ParkedBatch.from_message(original.to_message()) == original
    assert ParkedBatch.from_message(base64.b64encode(original.to_message().encode())) == original
    metadata = original.to_metadata()
    assert all(value.isascii() for value in metadata.values())
    restored = ParkedBatch.from_metadata(metadata, original.blob)
    assert restored.message.startswith("slow down") and restored.attempt == 1 and restored.status == 429
    assert ParkedBatch.from_metadata(batch(status=None).to_metadata(), "b").status is None


def test_claim_check_stays_far_under_the_64_kb_queue_limit():
    huge = batch(message="x" * 100_000, rows=10_000)
    parked = ParkedBatch.from_message(huge.next_attempt("server_error", 503, "y" * 100_000).to_message())
    assert len(base64.b64encode(parked.to_message().encode())) < 8 * 1024
    assert parked.attempt == 2 and parked.failure == "server_error"


@pytest.mark.parametrize("body", [b"not json", b"[1,2]", b'{"route":"x"}', b'{"id":"a/b","route":"x","blob":"b","attempt":1}',
                                  b'{"id":"a","route":"x","blob":"b","attempt":0}'])
def test_anything_else_is_an_invalid_message(body):
    with pytest.raises(InvalidMessage):
        ParkedBatch.from_message(body)


def test_payload_is_gzip_ndjson_and_round_trips():
    rows = [orjson.dumps({"a": "line\nbreak", "n": n}) for n in range(5)]
    data = encode_payload(rows)
    assert data[:2] == b"\x1f\x8b"
    assert decode_payload(data) == rows


def test_backoff_grows_is_capped_and_honours_retry_after():
    backoff = Backoff(base=60, cap=3600, jitter=0.0)
    assert [backoff.delay(n) for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert backoff.delay(20) == 3600
    assert backoff.delay(1, retry_after=300) == 300
    assert Backoff(base=0, cap=0).delay(5, retry_after=30) == 0


def test_recheck_keeps_fitting_rows_and_explains_the_others():
    route = applogs_route()
    good = orjson.dumps({"TimeGenerated": "2024-01-01T00:00:00Z", "Message": "ok", "StatusCode": "200"})
    undeclared = orjson.dumps({"Message": "x", "Gone": 1})
    mistyped = orjson.dumps({"StatusCode": "abc"})
    kept, bad = recheck_rows([good, undeclared, mistyped, b"[]"], route)
    assert [orjson.loads(r)["StatusCode"] for r in kept] == [200]
    assert [position for position, _ in bad] == [1, 2, 3]
    assert "'Gone' is not declared" in bad[0][1] and "StatusCode" in bad[1][1]
    assert len(schema_fingerprint(route)) == 16


def test_grace_window_starts_at_grace_from_and_falls_back_to_the_first_failure():
    # GIVEN a batch that first failed 40 minutes ago and was redriven a minute ago
    now = utcnow()
    first = iso(now - dt.timedelta(minutes=40))
    redriven = batch(first_failure=first, grace_from=iso(now - dt.timedelta(minutes=1)))
    # THEN its 403 window is a minute old; an older claim check without grace_from counts from the first failure
    assert redriven.grace_elapsed(now) == pytest.approx(60, abs=1)
    assert batch(first_failure=first, grace_from="").grace_elapsed(now) == pytest.approx(2400, abs=1)
    # AND grace_from survives the blob metadata and the queue message
    assert ParkedBatch.from_metadata(redriven.to_metadata(), "b").grace_from == redriven.grace_from
    assert ParkedBatch.from_message(redriven.to_message()).grace_from == redriven.grace_from
