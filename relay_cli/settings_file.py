"""The ``--settings`` option: a ``local.settings.json`` read as the environment of a command.

Without the option, ``local.settings.json`` in the current directory is read when it is there
(the file ``make serve`` writes and ``func start`` reads), so every command works with no flags.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from shared.settings import SettingsError

DEFAULT_SETTINGS_FILE = "local.settings.json"


def load_settings_file(path: str | None) -> dict[str, str]:
    """``local.settings.json``-style ``Values`` under the real environment (which wins)."""
    env: dict[str, str] = {}
    if path is None and Path(DEFAULT_SETTINGS_FILE).is_file():
        path = DEFAULT_SETTINGS_FILE
    if path:
        try:
            values = json.loads(Path(path).read_text(encoding="utf-8")).get("Values", {})
        except (OSError, ValueError) as error:
            raise SettingsError(f"settings file {path!r} cannot be read: {error}") from None
        env.update({k: str(v) for k, v in values.items()})
    env.update(os.environ)
    return env
