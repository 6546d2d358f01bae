"""The dependency locks (docs/dependencies.md): fully pinned, hashed, consistent with the direct
dependencies, the runtime lock a subset of the dev lock, and what bootstrap installs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path: Path) -> dict[str, str]:
    """name -> version of a lock; fails on a requirement line without a pin or without hashes."""
    pins: dict[str, str] = {}
    text = path.read_text(encoding="utf-8")
    for entry in re.split(r"\n(?=\S)", text):  # one requirement with its continuation lines
        first = entry.split("\n", 1)[0].strip()
        if not first or first.startswith("#"):
            continue
        match = _PIN.match(first)
        assert match, f"{path.name}: not pinned with ==: {first!r}"
        assert "--hash=sha256:" in entry, f"{path.name}: {first!r} has no hash"
        pins[norm(match.group(1))] = match.group(2)
    return pins


def direct(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            match = _PIN.match(line)
            assert match, f"{path.name}: direct dependency not pinned: {line!r}"
            pins[norm(match.group(1))] = match.group(2)
    return pins


@pytest.mark.parametrize(("source", "lock"), [("requirements.in", "requirements.txt"),
                                              ("requirements-dev.in", "requirements-dev.txt")])
def test_every_direct_dependency_is_locked_at_its_pin(source, lock):
    pins, wanted = locked(ROOT / lock), direct(ROOT / source)
    assert {name: pins.get(name) for name in wanted} == wanted


def test_the_dev_lock_holds_the_runtime_lock_exactly():
    runtime, dev = locked(ROOT / "requirements.txt"), locked(ROOT / "requirements-dev.txt")
    assert {name: dev.get(name) for name in runtime} == runtime
    assert "rich" in dev and "rich" not in runtime  # the CLI's library is never deployed


def test_bootstrap_installs_the_dev_lock_with_hashes_required():
    script = (ROOT / "scripts" / "bootstrap.sh").read_text(encoding="utf-8")
    assert re.search(r"pip\" install [^\n]*--require-hashes -r requirements-dev.txt", script)
    ignored = (ROOT / ".funcignore").read_text(encoding="utf-8").split()
    assert {"requirements-dev.txt", "requirements.in", "requirements-dev.in"} <= set(ignored)
    assert "requirements.txt" not in ignored  # the Functions build installs the runtime lock
