"""The shipped example routes each diagnostic record on its own: an archive copy of everything in an
Auxiliary table, Key Vault audits to their own table, the rest to AzureResourceLogs_CL."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.conftest import install_relay_env, relay_settings
from tests.eventhub.conftest import HUB, make_batch, sample, sample_records

pytestmark = pytest.mark.e2e


@pytest.fixture
def shipped(emulator: Any, azurite: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    from shared.runtime import reset_relay

    emulator.reset()
    env = relay_settings(emulator, azurite, RELAY_EVENTHUB_NAME=HUB)
    env.pop("RelayStorage", None)
    install_relay_env(monkeypatch, env)
    yield emulator
    reset_relay()


def handle(batch: list[Any]) -> Any:
    from shared.eventhub_ingest import handle_eventhub
    from shared.runtime import get_relay

    return handle_eventhub(batch, get_relay)


def test_one_batch_lands_in_three_tables_and_counts_each_route(shipped):
    # GIVEN one batch from diagnostic settings of a Key Vault, an App Service and a storage account
    names = ("diag_keyvault_auditevent.json", "diag_appservice_httplogs.json", "diag_storage_blob_logs.json")
    records = sum(len(sample_records(name)) for name in names)
    audits = len(sample_records("diag_keyvault_auditevent.json"))
    # WHEN the Event Hub trigger handles it
    result = handle(make_batch([sample(name) for name in names]))
    # THEN every record is archived, audits went to their table and the rest to AzureResourceLogs_CL
    assert result.safe and result.rejected == 0
    assert len(shipped.rows("ResourceLogsArchive_CL")) == records
    audit_rows = shipped.rows("KeyVaultAudit_CL")
    assert len(audit_rows) == audits and {row["OperationName"] for row in audit_rows} >= {"SecretGet"}
    assert all(isinstance(row["HttpStatusCode"], int) for row in audit_rows)
    assert len(shipped.rows("AzureResourceLogs_CL")) == records - audits
    assert shipped.drops() == []
    # AND the answer counts each record once per route that took it, per route and in total
    routes = result.summary()["routes"]
    assert routes["eventhub-archive"]["accepted"] == records
    assert routes["eventhub-keyvault-audit"]["accepted"] == audits
    assert routes["eventhub-diagnostics"]["accepted"] == records - audits
    assert result.landed == 2 * records
    # AND the archive keeps what no column takes as JSON text (EventIds are per route: hashed with its name)
    archived = {orjson.loads(row["RawData"]).get("correlationId"): row for row in shipped.rows("ResourceLogsArchive_CL")}
    for row in audit_rows:
        assert "identity" in orjson.loads(archived[row["CorrelationId"]]["RawData"])


def test_a_replayed_batch_goes_back_to_the_stream_it_was_routed_to(shipped, azurite, monkeypatch):
    # GIVEN the poison store, and the Key Vault audit stream refusing for a while
    from shared.runtime import get_relay, reset_relay
    from tests.poison.conftest import QueueHost, fast_replays, poison_names

    names = poison_names()
    for key, value in {"RelayStorage": azurite.connection_string, **names}.items():
        monkeypatch.setenv(key, value)
    reset_relay()
    fast_replays()
    shipped.add_fault(stream="Custom-KeyVaultAudit", status=503, count=20)
    # WHEN a Key Vault batch arrives, then the stream heals and the poison queue drains
    result = handle(make_batch([sample("diag_keyvault_auditevent.json")]))
    assert result.safe and result.routes["eventhub-keyvault-audit"].parked == 3
    shipped.clear_faults()
    QueueHost(azurite.connection_string, names["RELAY_POISON_QUEUE"]).drain()
    # THEN the parked rows landed in the audit table, not in another route's
    assert len(shipped.rows("KeyVaultAudit_CL")) == 3 and len(shipped.rows("ResourceLogsArchive_CL")) == 3
    assert shipped.rows("AzureResourceLogs_CL") == []
    assert get_relay().poison is not None
