"""Poison store, replay and dead-letter: nothing is lost under faults, everything is visible.

``PoisonStore`` parks requests the Logs Ingestion API did not take (claim check: rows
in a blob, a small message in the poison queue) and dead-letters what can never
land; ``Replayer`` replays claim checks with back-off, idempotently; the queue
trigger and ``relay poison`` share both.
"""

from __future__ import annotations

from .model import InvalidMessage, ParkedBatch
from .replay import Replayer, ReplayResult, handle_queue_message
from .storage import StorageConnection
from .store import Backoff, DeadLetter, PoisonStore

__all__ = [
    "Backoff",
    "DeadLetter",
    "InvalidMessage",
    "ParkedBatch",
    "PoisonStore",
    "ReplayResult",
    "Replayer",
    "StorageConnection",
    "handle_queue_message",
]
