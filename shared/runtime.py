"""The relay of this worker process: settings, routes, sink and processor, built once on first use.

Nothing happens at import time; the first invocation loads and validates the
configuration. A broken configuration is reported on every call (and retried), so
fixing the app settings takes effect without a redeploy of code.
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
from .pipeline import Parker, Processor
from .settings import Settings
from .sink import LogsIngestionSink

log = logging.getLogger("relay")


@dataclass
class Relay:
    settings: Settings
    config: RelayConfig
    sink: LogsIngestionSink
    processor: Processor

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, app_dir: Path | None = None,
                 parker: Parker | None = None) -> Relay:
        env = dict(os.environ if env is None else env)
        settings = Settings.from_env(env, app_dir)
        config = load_config(settings.config_path, env, base=app_dir or settings.config_path.parent)
        check_credential_fits(settings, config)
        sink = LogsIngestionSink(settings, lambda: build_credential(settings))
        processor = Processor(sink, settings.max_request_bytes, settings.upload_concurrency, parker)
        log.info("relay loaded routes=%d from %s", len(config.routes), settings.config_path.name)
        return cls(settings, config, sink, processor)

    def close(self) -> None:
        self.processor.close()
        self.sink.close()


_lock = threading.Lock()
_relay: Relay | None = None


def get_relay() -> Relay:
    """The process-wide relay, loaded on first use; raises ConfigError/SettingsError if broken."""
    global _relay
    if _relay is None:
        with _lock:
            if _relay is None:
                _relay = Relay.from_env()
    return _relay


def reset_relay() -> None:
    """Forget the loaded relay (tests, and after a settings change)."""
    global _relay
    with _lock:
        if _relay is not None:
            _relay.close()
        _relay = None
