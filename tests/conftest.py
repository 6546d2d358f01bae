"""Fixtures shared by every test folder: real Azurite, the real emulator, relay settings.

Each pytest worker starts its own Azurite (in memory, free ports) and emulator
(HTTPS, own CA) once; tests reset their state instead of restarting them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "tests" / "events"
RELAY_DCR = ROOT / "infra" / "dcr" / "relay.json"
EMULATOR_TOKEN = "test-emulator-token"
GITHUB_SECRET = "test-github-secret"


@pytest.fixture(scope="session")
def azurite() -> Iterator[Any]:
    from devtools.azurite import Azurite

    with Azurite() as instance:
        yield instance


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from emulator.server import Emulator

    instance = Emulator([RELAY_DCR], tmp_path_factory.mktemp("emulator"), port=0, token=EMULATOR_TOKEN)
    instance.start()
    yield instance
    instance.stop()


def relay_settings(emulator: Any, azurite: Any | None = None, **overrides: str) -> dict[str, str]:
    """App settings of a relay wired to the test emulator (and Azurite when given)."""
    env = {
        "RELAY_CONFIG": str(ROOT / "relay.yaml"),
        "RELAY_CREDENTIAL": "static",
        "RELAY_STATIC_TOKEN": EMULATOR_TOKEN,
        "RELAY_CA_BUNDLE": str(emulator.ca_path),
        "RELAY_UPLOAD_DEADLINE_SECONDS": "20",
        "RELAY_UPLOAD_TIMEOUT_SECONDS": "5",
        "LOGS_INGESTION_ENDPOINT": emulator.endpoint,
        "DCR_IMMUTABLE_ID": emulator.dcr_ids["relay"],
        "GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
        "RELAY_EVENTHUB_NAME": "relay-events",
    }
    if azurite is not None:
        env["RelayStorage"] = azurite.connection_string
        env["AzureWebJobsStorage"] = azurite.connection_string
    env.update(overrides)
    return env


def wait_for(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05, what: str = "") -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(interval)


def routes_file_without(folder: Path, *names: str, first: tuple[dict[str, Any], ...] = ()) -> Path:
    """The shipped routes file less the named routes (and with ``first`` routes before the others),
    written in ``folder`` with its DCR path made absolute: for tests of one trigger's mechanics that
    the shipped example's fan-out would only blur, or of routing on top of the shipped routes."""
    document = yaml.safe_load((ROOT / "relay.yaml").read_text(encoding="utf-8"))
    document["defaults"]["schema"] = str(ROOT / document["defaults"]["schema"])
    document["routes"] = [*first, *(route for route in document["routes"] if route["name"] not in names)]
    path = folder / "relay.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def user_function(name: str) -> Callable[..., Any]:
    """The undecorated body of a function of ``function_app``, to call as the host would."""
    import function_app

    function_app.app.functions_bindings = None  # get_functions() may be called once per app otherwise
    for function in function_app.app.get_functions():
        if function.get_function_name() == name:
            return function.get_user_function()
    raise LookupError(name)


def install_relay_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """Make ``env`` the relay's whole environment for one test and rebuild the process-wide relay."""
    from shared.runtime import reset_relay

    for key in [k for k in os.environ if k.startswith(("RELAY_", "RelayStorage", "APPLICATIONINSIGHTS_"))]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_relay()


@pytest.fixture
def relay_env(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Process environment of a relay on the emulator; the process-wide relay is rebuilt around the test."""
    from shared.runtime import reset_relay

    emulator.reset()
    emulator.clear_faults()
    env = relay_settings(emulator)
    install_relay_env(monkeypatch, env)
    yield env
    reset_relay()
