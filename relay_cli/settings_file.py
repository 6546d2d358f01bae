"""The ``--settings`` option: a ``local.settings.json`` read as the environment of a command."""

from __future__ import annotations

import json
import os
from pathlib import Path

from shared.settings import SettingsError


def load_settings_file(path: str | None) -> dict[str, str]:
    """``local.settings.json``-style ``Values`` under the real environment (which wins)."""
    env: dict[str, str] = {}
    if path:
        try:
            values = json.loads(Path(path).read_text(encoding="utf-8")).get("Values", {})
        except (OSError, ValueError) as error:
            raise SettingsError(f"settings file {path!r} cannot be read: {error}") from None
        env.update({k: str(v) for k, v in values.items()})
    env.update(os.environ)
    return env
