"""Routes for tests of per-record routing through the HTTP and blob triggers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.eventhub.conftest import sample_records

AUDIT_COLUMNS = {"ResourceId": "resourceId", "OperationName": "operationName", "CallerIpAddress": "callerIpAddress"}


def audit_route(name: str, source: str, match: str) -> dict[str, Any]:
    return {"name": name, "source": source, "match": match, "where": {"category": "AuditEvent"},
            "stream": "Custom-KeyVaultAudit", "time_field": "time", "map": AUDIT_COLUMNS, "extra": "Properties",
            "id_column": "EventId"}


def rest_route(name: str, source: str, match: str) -> dict[str, Any]:
    return {"name": name, "source": source, "match": match, "stream": "Custom-AzureResourceLogs",
            "time_field": "time", "map": {"Category": "category", "ResourceId": "resourceId"},
            "extra": "Properties", "id_column": "EventId"}


def mixed_records() -> list[dict[str, Any]]:
    return sample_records("diag_keyvault_auditevent.json") + sample_records("diag_appservice_httplogs.json")


def use_routes(monkeypatch: pytest.MonkeyPatch, path: Any) -> None:
    from shared.runtime import reset_relay

    monkeypatch.setenv("RELAY_CONFIG", str(path))
    reset_relay()
