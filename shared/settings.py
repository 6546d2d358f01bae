"""App settings (environment variables) the relay reads, as one typed object.

Every setting the code reads is listed in ``APP_SETTINGS`` so infrastructure
checks can prove that the Bicep sets each of them (and sets nothing dead).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: Setting name -> one-line meaning. Names ending in ``__`` are prefixes of
#: identity-based connection settings (``RelayStorage__blobServiceUri`` ...).
APP_SETTINGS: dict[str, str] = {
    "RELAY_CONFIG": "path of the routes file (YAML); default relay.yaml beside function_app.py",
    "RELAY_CREDENTIAL": "managed_identity (default) | default | static",
    "AZURE_CLIENT_ID": "client id of the user-assigned managed identity",
    "RELAY_STATIC_TOKEN": "bearer token for RELAY_CREDENTIAL=static (loopback emulator only)",
    "RELAY_CLOUD": "public (default) | china | usgov: selects the token scope",
    "RELAY_CA_BUNDLE": "extra CA file to trust (the local emulator's CA)",
    "RELAY_MAX_BODY_BYTES": "largest HTTP body accepted, compressed or not (default 25 MB)",
    "RELAY_MAX_REQUEST_BYTES": "largest uncompressed Logs Ingestion request body (default 1,000,000)",
    "RELAY_UPLOAD_CONCURRENCY": "upload requests in flight at once per worker process (default 16)",
    "RELAY_UPLOAD_DEADLINE_SECONDS": "time budget for in-line retries of one request before it is parked (default 20)",
    "RELAY_UPLOAD_TIMEOUT_SECONDS": "read timeout of one upload request (default 30)",
    "RelayStorage": "storage connection string (Azurite locally)",
    "RelayStorage__": "identity-based storage connection (__blobServiceUri, __queueServiceUri, __credential, __clientId)",
    "RELAY_BLOB_CONTAINER": "container the blob trigger watches (default ingest)",
    "RELAY_EVENTHUB_NAME": "event hub the Event Hub trigger reads",
    "RELAY_EVENTHUB_CONSUMER_GROUP": "consumer group of the Event Hub trigger (default $Default)",
    "EventHubConnection__": "identity-based Event Hubs connection (__fullyQualifiedNamespace, __credential, __clientId)",
    "RELAY_POISON_QUEUE": "queue of parked batches (default relay-poison)",
    "RELAY_POISON_CONTAINER": "container of parked payloads (default relay-poison)",
    "RELAY_DEADLETTER_CONTAINER": "container of dead-lettered payloads (default relay-deadletter)",
    "RELAY_MAX_REPLAYS": "replays before a parked batch is dead-lettered (default 5)",
    "RELAY_FORBIDDEN_GRACE_MINUTES": "minutes from a batch's first failure during which a 403 is replayed as transient "
                                     "(role assignments take up to 30 to propagate; default 30, 0 dead-letters at once)",
    "LOGS_INGESTION_ENDPOINT": "DCR or DCE logs ingestion endpoint, used by relay.yaml",
    "DCR_IMMUTABLE_ID": "immutable id of the relay's DCR, used by relay.yaml",
    "GITHUB_WEBHOOK_SECRET": "secret of the github route's X-Hub-Signature-256 check, used by relay.yaml",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "Application Insights connection (metrics and logs)",
}

CLOUD_SCOPES: dict[str, str] = {
    "public": "https://monitor.azure.com/.default",
    "china": "https://monitor.azure.cn/.default",
    "usgov": "https://monitor.azure.us/.default",
}

CREDENTIAL_KINDS = ("managed_identity", "default", "static")


class SettingsError(ValueError):
    """A setting has a value the relay cannot use; the message names it."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"setting {name}: {raw!r} is not an integer") from None
    if value < minimum:
        raise SettingsError(f"setting {name}: must be at least {minimum}, got {value}")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, "").strip() or default
    if value not in choices:
        raise SettingsError(f"setting {name}: {value!r} is not one of {', '.join(choices)}")
    return value


@dataclass(frozen=True)
class Settings:
    """The relay's app settings, parsed and checked once."""

    config_path: Path
    credential: str = "managed_identity"
    client_id: str | None = None
    static_token: str | None = None
    cloud: str = "public"
    ca_bundle: str | None = None
    max_body_bytes: int = 25 * 1024 * 1024
    max_request_bytes: int = 1_000_000
    upload_concurrency: int = 16  # measured: bench/upload_path.py, docs/benchmarks.md
    upload_deadline_seconds: int = 20  # webhook senders time out near 10-30 s; the poison store takes over
    upload_timeout_seconds: int = 30
    blob_container: str = "ingest"
    eventhub_name: str = ""
    eventhub_consumer_group: str = "$Default"
    poison_queue: str = "relay-poison"
    poison_container: str = "relay-poison"
    deadletter_container: str = "relay-deadletter"
    max_replays: int = 5
    forbidden_grace_minutes: int = 30  # DESIGN 4: role assignments take up to 30 minutes to propagate

    @property
    def token_scope(self) -> str:
        return CLOUD_SCOPES[self.cloud]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, app_dir: Path | None = None) -> Settings:
        env = os.environ if env is None else env
        app_dir = app_dir or Path(__file__).resolve().parent.parent
        config = env.get("RELAY_CONFIG", "").strip()
        config_path = Path(config) if config else app_dir / "relay.yaml"
        if not config_path.is_absolute():
            config_path = app_dir / config_path
        credential = _choice(env, "RELAY_CREDENTIAL", "managed_identity", CREDENTIAL_KINDS)
        static_token = env.get("RELAY_STATIC_TOKEN") or None
        if credential == "static" and not static_token:
            raise SettingsError("setting RELAY_STATIC_TOKEN: required when RELAY_CREDENTIAL=static")
        ca_bundle = env.get("RELAY_CA_BUNDLE", "").strip() or None
        if ca_bundle and not Path(ca_bundle).is_file():
            raise SettingsError(f"setting RELAY_CA_BUNDLE: file {ca_bundle!r} does not exist")
        max_request = _int(env, "RELAY_MAX_REQUEST_BYTES", 1_000_000, minimum=1024)
        if max_request > 1_048_576:
            raise SettingsError(
                "setting RELAY_MAX_REQUEST_BYTES: the service refuses calls over 1048576 bytes"
            )
        return cls(
            config_path=config_path,
            credential=credential,
            client_id=env.get("AZURE_CLIENT_ID", "").strip() or None,
            static_token=static_token,
            cloud=_choice(env, "RELAY_CLOUD", "public", tuple(CLOUD_SCOPES)),
            ca_bundle=ca_bundle,
            max_body_bytes=_int(env, "RELAY_MAX_BODY_BYTES", 25 * 1024 * 1024),
            max_request_bytes=max_request,
            upload_concurrency=_int(env, "RELAY_UPLOAD_CONCURRENCY", 16),
            upload_deadline_seconds=_int(env, "RELAY_UPLOAD_DEADLINE_SECONDS", 20),
            upload_timeout_seconds=_int(env, "RELAY_UPLOAD_TIMEOUT_SECONDS", 30),
            blob_container=env.get("RELAY_BLOB_CONTAINER", "").strip() or "ingest",
            eventhub_name=env.get("RELAY_EVENTHUB_NAME", "").strip(),
            eventhub_consumer_group=env.get("RELAY_EVENTHUB_CONSUMER_GROUP", "").strip() or "$Default",
            poison_queue=env.get("RELAY_POISON_QUEUE", "").strip() or "relay-poison",
            poison_container=env.get("RELAY_POISON_CONTAINER", "").strip() or "relay-poison",
            deadletter_container=env.get("RELAY_DEADLETTER_CONTAINER", "").strip() or "relay-deadletter",
            max_replays=_int(env, "RELAY_MAX_REPLAYS", 5),
            forbidden_grace_minutes=_int(env, "RELAY_FORBIDDEN_GRACE_MINUTES", 30, minimum=0),
        )
