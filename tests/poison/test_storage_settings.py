"""RelayStorage settings -> storage clients: connection string or identity-based URIs (no network)."""

from __future__ import annotations

import pytest
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

from shared.poison.storage import DEVELOPMENT_CONNECTION_STRING, StorageConnection
from shared.settings import SettingsError

KEY = "A" * 88
CONNECTION = (f"DefaultEndpointsProtocol=https;AccountName=relaysa;AccountKey={KEY};"
              "EndpointSuffix=core.windows.net")
BLOB = "https://relaysa.blob.core.windows.net"
QUEUE = "https://relaysa.queue.core.windows.net"


def test_no_storage_setting_means_no_store():
    # GIVEN no RelayStorage setting of any form WHEN read THEN there is no connection (HTTP-only local use)
    assert StorageConnection.from_env({"RELAY_CONFIG": "relay.yaml"}) is None


def test_connection_string_selects_shared_key_clients():
    # GIVEN a connection string
    connection = StorageConnection.from_env({"RelayStorage": CONNECTION})
    # WHEN clients are built THEN they use the account of the string, with its key, and base64 queue messages
    assert connection is not None and connection.kind == "connection_string"
    blobs = connection.blob_service()
    queue = connection.queue_client("relay-poison")
    assert blobs.url.startswith(BLOB) and blobs.credential.account_name == "relaysa"
    assert queue.url.startswith(QUEUE) and queue.queue_name == "relay-poison"
    assert type(queue._message_encode_policy).__name__ == "TextBase64EncodePolicy"
    assert "AccountKey" not in repr(connection) and KEY not in connection.describe()


def test_use_development_storage_means_azurite_defaults():
    connection = StorageConnection.from_env({"RelayStorage": "UseDevelopmentStorage=true"})
    assert connection is not None and connection.connection_string == DEVELOPMENT_CONNECTION_STRING
    assert connection.blob_service().url.startswith("http://127.0.0.1:10000/devstoreaccount1")


def test_identity_uris_select_a_user_assigned_managed_identity():
    # GIVEN identity-based settings as the Functions host reads them
    env = {"RelayStorage__blobServiceUri": BLOB + "/", "RelayStorage__queueServiceUri": QUEUE,
           "RelayStorage__credential": "managedidentity", "RelayStorage__clientId": "11111111-2222-3333-4444-555555555555"}
    connection = StorageConnection.from_env(env)
    # WHEN clients are built THEN they go to those URIs with ManagedIdentityCredential(client_id)
    assert connection is not None and connection.kind == "identity"
    assert connection.client_id == "11111111-2222-3333-4444-555555555555"
    blobs = connection.blob_service()
    queue = connection.queue_client("relay-poison")
    assert blobs.url.rstrip("/") == BLOB and queue.url.startswith(QUEUE)
    assert isinstance(blobs.credential, ManagedIdentityCredential)
    assert isinstance(queue.credential, ManagedIdentityCredential)


def test_identity_uris_without_credential_use_system_identity_or_the_developer_default():
    env = {"RelayStorage__blobServiceUri": BLOB, "RelayStorage__queueServiceUri": QUEUE}
    system = StorageConnection.from_env(env)
    assert system is not None and system.client_id is None
    assert isinstance(system.credential(), ManagedIdentityCredential)
    developer = StorageConnection.from_env({**env, "RELAY_CREDENTIAL": "default"})
    assert developer is not None and isinstance(developer.credential(), DefaultAzureCredential)


def test_account_name_expands_to_both_service_uris():
    connection = StorageConnection.from_env({"RelayStorage__accountName": "relaysa"})
    assert connection is not None
    assert (connection.blob_service_uri, connection.queue_service_uri) == (BLOB, QUEUE)


@pytest.mark.parametrize(("env", "names"), [
    ({"RelayStorage__blobServiceUri": BLOB}, "RelayStorage__queueServiceUri"),
    ({"RelayStorage__queueServiceUri": QUEUE}, "RelayStorage__blobServiceUri"),
    ({"RelayStorage__blobServiceUri": "http://relaysa.blob.core.windows.net", "RelayStorage__queueServiceUri": QUEUE},
     "must be an https:// URI"),
    ({"RelayStorage__blobServiceUri": BLOB, "RelayStorage__queueServiceUri": QUEUE,
      "RelayStorage__credential": "clientsecret"}, "RelayStorage__credential"),
])
def test_incomplete_identity_settings_are_refused_with_the_setting_named(env, names):
    with pytest.raises(SettingsError, match=names):
        StorageConnection.from_env(env)
