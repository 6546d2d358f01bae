"""Shared fixtures of the unit tests: the repo root on sys.path, sample events, route builders."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from shared.config import Route, parse_config  # noqa: E402

EVENTS_DIR = REPO_ROOT / "tests" / "events"
DCR_ID = "dcr-682fbae20f3428bcec4c117c57bea18d"
RELAY_ENV = {
    "LOGS_INGESTION_ENDPOINT": "https://127.0.0.1:4443",
    "DCR_IMMUTABLE_ID": DCR_ID,
    "GITHUB_WEBHOOK_SECRET": "x",
}


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def events_dir() -> Path:
    return EVENTS_DIR


@pytest.fixture
def relay_env() -> dict[str, str]:
    return dict(RELAY_ENV)


@pytest.fixture
def make_route() -> Callable[..., Route]:
    """Build one Route through parse_config, from ``columns`` as {name: type} plus route keys."""

    def build(columns: dict[str, str], **keys: Any) -> Route:
        raw: dict[str, Any] = {
            "name": "r1",
            "source": "http",
            "match": "r1",
            "endpoint": "https://relay-dce.eastus-1.ingest.monitor.azure.com",
            "dcr": DCR_ID,
            "stream": "Custom-T",
            "columns": [{"name": n, "type": t} for n, t in columns.items()],
            **keys,
        }
        return parse_config(yaml.safe_dump({"routes": [raw]}), {}, REPO_ROOT).routes[0]

    return build
