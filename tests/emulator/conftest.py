"""Fixtures for the emulator's own tests: a DCR written by the test, an emulator on a free port.

Fixtures here are named ``emu*`` so they do not shadow the session ``emulator`` fixture
that tests/conftest.py provides for the relay's tests.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# The repo root first, so `import emulator` finds the package and never this folder; this folder
# for emu_support (also under --import-mode=importlib, which does not touch sys.path).
for entry in (str(HERE), str(ROOT)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from emu_support import RawClient, write_dcr  # noqa: E402

from emulator.server import Emulator  # noqa: E402


@pytest.fixture(scope="module")
def emu_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """One emulator per test module (the DCR above, any bearer token accepted)."""
    state = tmp_path_factory.mktemp("emulator-state")
    dcr = write_dcr(tmp_path_factory.mktemp("dcr"))
    with Emulator([dcr], state, port=0) as instance:
        yield instance


@pytest.fixture
def emu(emu_module: Emulator) -> Iterator[Emulator]:
    """The module's emulator with no rows, drops, requests or faults left by an earlier test."""
    emu_module.reset()
    yield emu_module
    emu_module.clear_faults()


@pytest.fixture
def client(emu: Emulator) -> RawClient:
    return RawClient(emu)
