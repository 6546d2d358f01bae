"""The app settings the Bicep deploys match the settings the code reads (shared/settings.py).

Every setting in APP_SETTINGS is set by the Bicep, or is in the allow-list below with the reason it
is left out; every setting the Bicep sets is read by the code or by the Functions host (no dead
settings). Names ending in "__" are prefixes of identity-based connection settings.
"""

from __future__ import annotations

from typing import Any

import pytest
from infra_checks import bicep_app_settings, check_identity_connections, check_settings, is_unknown

from shared.settings import APP_SETTINGS

# Settings the code reads that the Bicep deliberately does not set, and why.
NOT_SET_BY_BICEP: dict[str, str] = {
    # The package ships relay.yaml beside function_app.py, which is the code's default.
    "RELAY_CONFIG": "local/optional: the deployed app uses the default relay.yaml in its package",
    # RELAY_CREDENTIAL=static is accepted only when every endpoint is on a loopback address.
    "RELAY_STATIC_TOKEN": "local-only: bearer token for the loopback emulator (RELAY_CREDENTIAL=static)",
    # Azure endpoints present certificates from public CAs the OS already trusts.
    "RELAY_CA_BUNDLE": "local-only: CA of the local emulator's self-made certificate",
    # The storage account refuses shared keys; Azure uses the RelayStorage__* identity settings.
    "RelayStorage": "local-only: connection-string form of the storage connection (Azurite)",
    # Tuning knobs: the code's defaults are the production values; set them by hand to tune.
    "RELAY_MAX_BODY_BYTES": "optional tuning knob, default 25 MB",
    "RELAY_MAX_REQUEST_BYTES": "optional tuning knob, default 1,000,000 bytes (service limit 1 MiB)",
    "RELAY_UPLOAD_CONCURRENCY": "optional tuning knob, default 16",
    "RELAY_UPLOAD_DEADLINE_SECONDS": "optional tuning knob, default 60",
    "RELAY_UPLOAD_TIMEOUT_SECONDS": "optional tuning knob, default 30",
}

# Setting these in Azure would be a bug: a static token or a key-based connection.
MUST_NOT_BE_DEPLOYED = ("RELAY_STATIC_TOKEN", "RELAY_CA_BUNDLE", "RelayStorage")

# Read by the Functions host (and its Application Insights integration), not by the relay's code.
HOST_SETTING_PREFIXES = ("AzureWebJobsStorage__", "FUNCTIONS_", "APPLICATIONINSIGHTS_")


@pytest.fixture(scope="module")
def deployed() -> dict[str, Any]:
    return bicep_app_settings()


def test_bicep_sets_what_the_code_reads_and_nothing_dead(deployed: dict[str, Any]) -> None:
    problems = check_settings(
        APP_SETTINGS, deployed, NOT_SET_BY_BICEP, HOST_SETTING_PREFIXES, MUST_NOT_BE_DEPLOYED
    )
    assert problems == []


def test_connections_are_identity_based_and_complete(deployed: dict[str, Any]) -> None:
    assert check_identity_connections(deployed) == []


def test_relay_settings_have_the_deployed_values(deployed: dict[str, Any]) -> None:
    assert deployed["RELAY_CREDENTIAL"] == "managed_identity"
    assert deployed["RELAY_BLOB_CONTAINER"] == "ingest"
    assert deployed["RELAY_POISON_QUEUE"] == "relay-poison"
    assert deployed["RELAY_POISON_CONTAINER"] == "relay-poison"
    assert deployed["RELAY_DEADLETTER_CONTAINER"] == "relay-deadletter"
    assert deployed["RELAY_MAX_REPLAYS"] == "5"
    # Known only once Azure created the resources: must come from resource outputs, not literals.
    for name in ("AZURE_CLIENT_ID", "LOGS_INGESTION_ENDPOINT", "DCR_IMMUTABLE_ID", "RELAY_CLOUD"):
        assert is_unknown(deployed[name]), (
            f"{name} should come from a resource or environment(), not a literal"
        )


def test_webhook_secret_is_a_key_vault_reference(deployed: dict[str, Any]) -> None:
    # The app setting names the secret in Key Vault; the value itself never appears in app settings.
    assert "'@Microsoft.KeyVault(VaultName=${" in deployed["GITHUB_WEBHOOK_SECRET"].why


# --- the checking functions fail meaningfully -------------------------------------------------

CODE = {"RELAY_CLOUD": "", "RelayStorage__": "", "RELAY_STATIC_TOKEN": ""}
ALLOW = {"RELAY_STATIC_TOKEN": "local-only"}


def test_a_setting_the_code_reads_but_bicep_omits_is_named() -> None:
    problems = check_settings(CODE, ["RelayStorage__blobServiceUri"], ALLOW, HOST_SETTING_PREFIXES)
    assert problems == [
        "app setting RELAY_CLOUD is read by the code (shared/settings.py APP_SETTINGS) but not set by the Bicep "
        "app settings nor in the allow-list of settings left out on purpose"
    ]


def test_a_prefix_without_any_setting_is_named() -> None:
    problems = check_settings(CODE, ["RELAY_CLOUD"], ALLOW, HOST_SETTING_PREFIXES)
    assert any(problem.startswith("app prefix RelayStorage__ is read by the code") for problem in problems)


def test_a_dead_setting_is_named() -> None:
    bicep = ["RELAY_CLOUD", "RelayStorage__blobServiceUri", "RELAY_TYPO", "FUNCTIONS_WORKER_PROCESS_COUNT"]
    problems = check_settings(CODE, bicep, ALLOW, HOST_SETTING_PREFIXES)
    assert problems == [
        "app setting RELAY_TYPO is set by the Bicep but read by neither the code (APP_SETTINGS) nor the "
        "Functions host: a dead setting"
    ]


def test_a_local_only_setting_in_bicep_is_named() -> None:
    bicep = ["RELAY_CLOUD", "RelayStorage__blobServiceUri", "RELAY_STATIC_TOKEN"]
    problems = check_settings(CODE, bicep, ALLOW, HOST_SETTING_PREFIXES, ["RELAY_STATIC_TOKEN"])
    assert problems == [
        "app setting RELAY_STATIC_TOKEN must never be deployed to Azure, but the Bicep sets it"
    ]


def test_a_stale_allow_list_entry_is_named() -> None:
    problems = check_settings(CODE, ["RELAY_CLOUD", "RelayStorage__x"], {**ALLOW, "RELAY_GONE": "x"}, ())
    assert problems == [
        "allow-listed setting RELAY_GONE is not read by the code any more: drop it from the list"
    ]


def test_every_allow_listed_setting_has_a_reason() -> None:
    assert all(reason.strip() for reason in NOT_SET_BY_BICEP.values())


def test_incomplete_identity_connection_is_named(deployed: dict[str, Any]) -> None:
    settings = {key: value for key, value in deployed.items() if key != "RelayStorage__queueServiceUri"}
    settings["EventHubConnection__credential"] = "connectionstring"
    settings["RelayStorage"] = "DefaultEndpointsProtocol=https;AccountName=x"
    assert check_identity_connections(settings) == [
        "RelayStorage is set as a connection string; use identity-based RelayStorage__* settings",
        "RelayStorage__queueServiceUri is missing: the RelayStorage connection needs it",
        "EventHubConnection__credential is 'connectionstring', not 'managedidentity'",
    ]
