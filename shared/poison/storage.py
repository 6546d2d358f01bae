"""The ``RelayStorage`` connection: a connection string, or identity-based service URIs.

Mirrors how the Functions host reads the same connection for the blob and queue
triggers, so the poison store always talks to the storage account the triggers use:

* ``RelayStorage`` = a connection string (Azurite locally; ``UseDevelopmentStorage=true`` too);
* ``RelayStorage__blobServiceUri`` + ``RelayStorage__queueServiceUri`` (or ``__accountName``)
  with ``__credential=managedidentity`` and optionally ``__clientId`` (user-assigned identity).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..settings import SettingsError

CONNECTION_NAME = "RelayStorage"
# Azurite's documented development account (public well-known values, not a secret).
_DEV_ACCOUNT = "devstoreaccount1"
_DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEVELOPMENT_CONNECTION_STRING = (
    f"DefaultEndpointsProtocol=http;AccountName={_DEV_ACCOUNT};AccountKey={_DEV_KEY};"
    f"BlobEndpoint=http://127.0.0.1:10000/{_DEV_ACCOUNT};QueueEndpoint=http://127.0.0.1:10001/{_DEV_ACCOUNT};"
)
#: Storage calls fail fast: a caller waiting on a park (an HTTP sender, an Event Hub batch)
#: is better served by a quick 503 / retry than by the SDK's default 15 s first back-off.
STORAGE_RETRY = {"initial_backoff": 0.5, "increment_base": 2, "retry_total": 2, "random_jitter_range": 0.5}
STORAGE_TIMEOUTS = {"connection_timeout": 5, "read_timeout": 30}


@dataclass(frozen=True)
class StorageConnection:
    """Where the poison store lives and how to authenticate to it."""

    name: str = CONNECTION_NAME
    connection_string: str | None = field(default=None, repr=False)
    blob_service_uri: str | None = None
    queue_service_uri: str | None = None
    credential_kind: str | None = None  # "managedidentity", or None (managed identity / developer default)
    client_id: str | None = None
    developer_credential: bool = False  # RELAY_CREDENTIAL=default: DefaultAzureCredential for local use

    @property
    def kind(self) -> str:
        return "connection_string" if self.connection_string else "identity"

    @classmethod
    def from_env(cls, env: Mapping[str, str], name: str = CONNECTION_NAME) -> StorageConnection | None:
        """The connection named ``name``, or None when no storage setting is present."""
        connection_string = env.get(name, "").strip()
        if connection_string:
            if connection_string.replace(" ", "").lower() == "usedevelopmentstorage=true":
                connection_string = DEVELOPMENT_CONNECTION_STRING
            return cls(name=name, connection_string=connection_string)

        def value(key: str) -> str | None:
            return env.get(f"{name}__{key}", "").strip() or None

        blob, queue, account = value("blobServiceUri"), value("queueServiceUri"), value("accountName")
        if account and not (blob or queue):
            blob = f"https://{account}.blob.core.windows.net"
            queue = f"https://{account}.queue.core.windows.net"
        if not (blob or queue):
            return None
        if not blob:
            raise SettingsError(f"setting {name}__blobServiceUri: required with {name}__queueServiceUri "
                                "(the poison store keeps payloads in blobs)")
        if not queue:
            raise SettingsError(f"setting {name}__queueServiceUri: required with {name}__blobServiceUri "
                                "(the poison store queues replays)")
        for key, uri in (("blobServiceUri", blob), ("queueServiceUri", queue)):
            if not uri.startswith("https://"):
                raise SettingsError(f"setting {name}__{key}: {uri!r} must be an https:// URI")
        kind = value("credential")
        if kind is not None and kind.lower() != "managedidentity":
            raise SettingsError(f"setting {name}__credential: {kind!r} is not supported (use managedidentity)")
        return cls(
            name=name,
            blob_service_uri=blob.rstrip("/"),
            queue_service_uri=queue.rstrip("/"),
            credential_kind=kind.lower() if kind else None,
            client_id=value("clientId") or (None if kind else env.get("AZURE_CLIENT_ID", "").strip() or None),
            developer_credential=kind is None and env.get("RELAY_CREDENTIAL", "").strip() == "default",
        )

    def credential(self) -> Any:
        """The token credential of an identity-based connection (None with a connection string)."""
        if self.connection_string:
            return None
        if self.developer_credential:
            from azure.identity import DefaultAzureCredential

            return DefaultAzureCredential(managed_identity_client_id=self.client_id)
        from azure.identity import ManagedIdentityCredential

        if self.client_id:
            return ManagedIdentityCredential(client_id=self.client_id)
        return ManagedIdentityCredential()

    def describe(self) -> str:
        """Where the store is, without secrets (for logs and ``relay poison``)."""
        if self.connection_string:
            parts = dict(
                p.split("=", 1) for p in self.connection_string.split(";") if "=" in p
            )
            return parts.get("BlobEndpoint") or f"account {parts.get('AccountName', '?')}"
        return f"{self.blob_service_uri} (identity)"

    @staticmethod
    def _options(retry: Any, **overrides: Any) -> dict[str, Any]:
        options: dict[str, Any] = {"retry_policy": retry(**STORAGE_RETRY), **STORAGE_TIMEOUTS}
        options.update(overrides)
        return options

    def blob_service(self, **overrides: Any) -> Any:
        from azure.storage.blob import BlobServiceClient, ExponentialRetry

        options = self._options(ExponentialRetry, **overrides)
        if self.connection_string:
            return BlobServiceClient.from_connection_string(self.connection_string, **options)
        return BlobServiceClient(self.blob_service_uri, credential=self.credential(), **options)

    def queue_client(self, queue: str, **overrides: Any) -> Any:
        """A queue client whose messages are base64 text: the queue trigger's default encoding."""
        from azure.storage.queue import ExponentialRetry, QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

        options = self._options(
            ExponentialRetry, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy(),
            **overrides,
        )
        if self.connection_string:
            return QueueClient.from_connection_string(self.connection_string, queue, **options)
        return QueueClient(self.queue_service_uri, queue, credential=self.credential(), **options)
