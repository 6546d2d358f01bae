"""Per-record routing through the HTTP trigger: one webhook body, several tables."""

from __future__ import annotations

import pytest

from tests.conftest import routes_file_without
from tests.routing_support import audit_route, mixed_records, rest_route, use_routes

pytestmark = pytest.mark.e2e


def test_one_webhook_body_is_split_among_the_routes_of_its_path(world, monkeypatch, tmp_path):
    from tests.poison.conftest import post

    # GIVEN two http routes on one path: audits to their table, the rest to the resource logs
    use_routes(monkeypatch, routes_file_without(tmp_path, first=(audit_route("mixed-audit", "http", "mixed"),
                                                                 rest_route("mixed-rest", "http", "mixed"))))
    records = mixed_records()
    audits = sum(r["category"] == "AuditEvent" for r in records)
    # WHEN one JSON array holding both kinds is posted
    status, summary, _ = post("mixed", records)
    # THEN each record landed in its route's table, and the answer counts per route and in total
    assert status == 200, summary
    assert summary["routes"]["mixed-audit"]["accepted"] == audits
    assert summary["routes"]["mixed-rest"]["accepted"] == len(records) - audits
    assert summary["accepted"] == len(records) and summary["received"] == len(records)
    assert len(world.emulator.rows("KeyVaultAudit_CL")) == audits
    assert len(world.emulator.rows("AzureResourceLogs_CL")) == len(records) - audits
