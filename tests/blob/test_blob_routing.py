"""Per-record routing through the blob trigger: one file, several tables."""

from __future__ import annotations

import orjson
import pytest

from tests.conftest import routes_file_without
from tests.routing_support import audit_route, mixed_records, use_routes

pytestmark = pytest.mark.e2e


def test_one_blob_is_split_among_the_routes_of_its_path(blobs, monkeypatch, tmp_path):
    # GIVEN audits routed apart from the other resource logs of the same folder
    path = f"{blobs.container_name}/resourcelogs/*"
    use_routes(monkeypatch, routes_file_without(tmp_path, first=(audit_route("blob-audit", "blob", path),)))
    records = mixed_records()
    audits = sum(r["category"] == "AuditEvent" for r in records)
    client = blobs.put("resourcelogs/mixed.json", orjson.dumps({"records": records}))
    # WHEN the file is ingested
    result = blobs.ingest(client)
    # THEN audits went to their table, the rest to the resource logs, and the checkpoint says done
    assert result.status == "done" and result.safe, result.summary()
    assert result.routes["blob-audit"].landed == audits
    assert result.routes["blob-resourcelogs"].landed == len(records) - audits
    assert len(blobs.rows("KeyVaultAudit_CL")) == audits
    assert len(blobs.rows("AzureResourceLogs_CL")) == len(records) - audits
    assert blobs.checkpoint("resourcelogs/mixed.json")["status"] == "done"
