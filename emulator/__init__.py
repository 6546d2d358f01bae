"""Local emulator of the Azure Monitor Logs Ingestion API (development and tests only).

Never imported by the deployed Functions app. ``Emulator`` serves the REST contract
over HTTPS from DCR definition files; ``immutable_id_for`` gives the deterministic
local immutable id of a DCR file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator.dcr import immutable_id_for

if TYPE_CHECKING:
    from emulator.server import Emulator

__all__ = ["Emulator", "immutable_id_for"]


def __getattr__(name: str) -> Any:
    # Lazy, so scripts that only need immutable_id_for do not load ssl/cryptography.
    if name == "Emulator":
        from emulator.server import Emulator

        return Emulator
    raise AttributeError(name)
