"""The relay of this worker process: settings, routes, sink, engine and poison store, built once.

Nothing happens at import time; the first invocation loads and validates the
configuration. A broken configuration is reported on every call (and retried), so
fixing the app settings takes effect without a redeploy of code.

With ``RelayStorage`` configured (a connection string, or identity-based
``RelayStorage__blobServiceUri`` + ``__queueServiceUri``) the dispatcher parks what it
cannot upload in the poison store, for every trigger; without it (HTTP-only local
use) nothing can be parked, a warning says so once, and failed uploads answer 503.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .config import RelayConfig, load_config
from .credentials import build_credential, check_credential_fits
from .dispatch import Dispatcher, Parker
from .engine import Engine
from .gctune import tune_for_batches
from .poison import Backoff, PoisonStore, Replayer, StorageConnection
from .settings import Settings
from .sink import LogsIngestionSink
from .telemetry import Telemetry

log = logging.getLogger("relay")
_warned_no_storage = False


def build_poison_store(settings: Settings, env: Mapping[str, str], telemetry: Telemetry | None = None,
                       backoff: Backoff | None = None) -> PoisonStore | None:
    """The poison store on ``RelayStorage``, or None (with one warning per process) without storage."""
    global _warned_no_storage
    connection = StorageConnection.from_env(env)
    if connection is None:
        if not _warned_no_storage:
            _warned_no_storage = True
            log.warning("RelayStorage is not set: failed uploads cannot be parked for replay and are answered "
                        "with 503 (set RelayStorage, or RelayStorage__blobServiceUri and __queueServiceUri)")
        return None
    return PoisonStore(connection, settings.poison_queue, settings.poison_container, settings.deadletter_container,
                       backoff=backoff, telemetry=telemetry)


@dataclass
class Relay:
    settings: Settings
    config: RelayConfig
    sink: LogsIngestionSink
    engine: Engine
    poison: PoisonStore | None = None
    replayer: Replayer | None = None
    telemetry: Telemetry | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, app_dir: Path | None = None,
                 parker: Parker | None = None, *, telemetry: Telemetry | None = None,
                 backoff: Backoff | None = None) -> Relay:
        """Build the relay. ``parker`` overrides the poison store as the dispatcher's parker;
        ``telemetry`` and ``backoff`` let tests use an in-memory meter and short replay delays."""
        env = dict(os.environ if env is None else env)
        settings = Settings.from_env(env, app_dir)
        config = load_config(settings.config_path, env)  # DCR paths are relative to the routes file
        for warning in config.warnings:  # what the DCR rules could not check: said at every start
            log.warning("routes file: %s", warning)
        check_credential_fits(settings, config)
        telemetry = telemetry or Telemetry(env=env)
        poison = build_poison_store(settings, env, telemetry, backoff)
        sink = LogsIngestionSink(settings, lambda: build_credential(settings))
        dispatcher = Dispatcher(sink, parker if parker is not None else poison, settings.upload_concurrency,
                                telemetry)
        engine = Engine(dispatcher, settings.max_request_bytes)
        replayer = None
        if poison is not None:
            replayer = Replayer(poison, dispatcher, config, settings.max_request_bytes, settings.max_replays,
                                telemetry, forbidden_grace_seconds=settings.forbidden_grace_minutes * 60)
        log.info("relay loaded routes=%d from %s poison_store=%s", len(config.routes), settings.config_path.name,
                 poison.connection.describe() if poison is not None else "none")
        return cls(settings, config, sink, engine, poison, replayer, telemetry)

    def close(self) -> None:
        self.engine.close()
        self.sink.close()
        if self.poison is not None:
            self.poison.close()


_lock = threading.Lock()
_relay: Relay | None = None


def get_relay() -> Relay:
    """The process-wide relay, loaded on first use; raises ConfigError/SettingsError if broken.

    This is the worker's start: the one place that tunes the process (batch-sized GC thresholds,
    ``shared/gctune.py``), not a constructor that tests and tools build many times."""
    global _relay
    if _relay is None:
        with _lock:
            if _relay is None:
                tune_for_batches()
                _relay = Relay.from_env()
    return _relay


def reset_relay() -> None:
    """Forget the loaded relay (tests, and after a settings change)."""
    global _relay
    with _lock:
        if _relay is not None:
            _relay.close()
        _relay = None
