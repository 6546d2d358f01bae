"""The local run follows Functions conventions (issue 16 item 3).

`make serve` asks for Azurite's usual ports and says which it used when they are taken,
writes a `local.settings.json` matching what runs (never over one the user wrote), records
the emulator so `relay emulator fault` finds it, and every `relay` command works against it
with no flags; SIGINT and SIGTERM stop every child process, Azurite included.

The end-to-end tests start the real local run (`python -m devtools.run_local --serve`) in a
child process with its own state dir, settings file and free ports, so they never touch a
`make serve` a developer may have running.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.run_local import WRITTEN_BY_KEY, pick_ports, write_local_settings
from relay_cli.exit_codes import Exit
from relay_cli.settings_file import load_settings_file
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- units


def test_usual_ports_are_kept_when_free_and_given_up_with_a_note_when_taken():
    wanted = {"Blob": 10000, "Queue": 10001, "Table": 10002}
    assert pick_ports(wanted, lambda port: True) == (wanted, [])
    chosen, notes = pick_ports(wanted, lambda port: port != 10001)
    assert chosen == {"Blob": 10000, "Queue": 0, "Table": 10002}
    assert notes == ["queue port 10001 is taken"]


def test_settings_file_is_written_when_absent_and_rewritten_only_when_marked(tmp_path):
    path = tmp_path / "local.settings.json"
    # WHEN absent THEN written, with the marker and the Functions shape
    assert write_local_settings(path, {"RelayStorage": "one"}).startswith("wrote")
    document = json.loads(path.read_text())
    assert WRITTEN_BY_KEY in document and document["IsEncrypted"] is False
    assert document["Values"] == {"RelayStorage": "one"}
    # WHEN it carries the marker THEN a later run rewrites it
    assert write_local_settings(path, {"RelayStorage": "two"}).startswith("rewrote")
    assert json.loads(path.read_text())["Values"] == {"RelayStorage": "two"}


@pytest.mark.parametrize("text", ['{"IsEncrypted": false, "Values": {"RelayStorage": "mine"}}', "not json {"])
def test_a_settings_file_the_user_wrote_is_never_overwritten(tmp_path, text):
    path = tmp_path / "local.settings.json"
    path.write_text(text)
    note = write_local_settings(path, {"RelayStorage": "generated"})
    assert "left unchanged" in note and path.read_text() == text


def test_relay_commands_read_local_settings_json_in_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RELAY_MAX_REPLAYS", raising=False)
    monkeypatch.delenv("RelayStorage", raising=False)
    # GIVEN no file THEN only the environment
    assert "RELAY_MAX_REPLAYS" not in load_settings_file(None)
    # GIVEN a local.settings.json here THEN its Values are read with no flag; the environment still wins
    (tmp_path / "local.settings.json").write_text(json.dumps(
        {"Values": {"RELAY_MAX_REPLAYS": "7", "RelayStorage": "from-file"}}))
    monkeypatch.setenv("RelayStorage", "from-env")
    env = load_settings_file(None)
    assert env["RELAY_MAX_REPLAYS"] == "7" and env["RelayStorage"] == "from-env"


# --------------------------------------------------------------------------- the real local run


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) is gone for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


class LocalRun:
    """``python -m devtools.run_local --serve`` in a child process; its output collected line by line."""

    def __init__(self, workdir: Path, taken_port: int):
        self.workdir = workdir
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devtools.run_local", "--serve", "--no-samples", "--port", "0",
             "--emulator-port", "0", "--azurite-ports", f"{taken_port},0,0",
             "--state-dir", str(workdir / ".emulator"), "--settings-file", str(workdir / "local.settings.json")],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**clean_env(), "PYTHONPATH": str(ROOT)},
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for_line(self, needle: str, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"no line with {needle!r}; output: {self.output}") from None
            self.output.append(line)
            if needle in line:
                return line


def clean_env() -> dict[str, str]:
    """The environment without relay settings, so the commands under test read only local.settings.json."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("RELAY_", "RelayStorage", "AzureWebJobs", "LOGS_INGESTION", "DCR_", "GITHUB_"))}


def relay(workdir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """A ``relay`` command run in ``workdir`` with no settings flag and no relay settings in the environment."""
    return subprocess.run([sys.executable, "-m", "relay_cli.main", *argv], cwd=workdir, capture_output=True,
                          text=True, env={**clean_env(), "PYTHONPATH": str(ROOT)}, timeout=120)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else listens on, standing for a busy 10000."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.e2e
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_works_with_no_flags_and_a_signal_stops_every_child(tmp_path, taken_port, stop_signal):
    # GIVEN the local run started while the blob port it wants is taken
    run = LocalRun(tmp_path, taken_port)
    try:
        # THEN it says which port was taken and which it used instead
        note = run.wait_for_line("usual ports are not all free")
        assert f"blob port {taken_port} is taken" in note
        azurite_line = run.wait_for_line("Azurite (blob, queue):")
        azurite_pid = int(azurite_line.rsplit("(pid ", 1)[1].rstrip(")"))
        run.wait_for_line("Serving.")
        # AND it wrote local.settings.json for what runs, marked as its own
        written = json.loads((tmp_path / "local.settings.json").read_text())
        assert WRITTEN_BY_KEY in written
        blob_url = azurite_line.split()[3]
        assert f"BlobEndpoint={blob_url};" in written["Values"]["RelayStorage"]
        assert written["Values"]["FUNCTIONS_WORKER_RUNTIME"] == "python"  # what `func start` needs
        assert written["Values"]["AzureWebJobs.eventhub_ingest.Disabled"] == "true"
        # WHEN relay commands run there with no flags
        listed = relay(tmp_path, "poison", "list")
        validated = relay(tmp_path, "validate")
        fault = relay(tmp_path, "emulator", "fault", "--status", "503", "--count", "1")
        cleared = relay(tmp_path, "emulator", "clear-faults")
        # THEN they reach Azurite (an empty store: exit 5, nothing found) and the emulator the run started
        assert listed.returncode == Exit.NOTHING, listed.stderr
        assert validated.returncode == 0, validated.stderr
        assert fault.returncode == 0, fault.stderr
        assert cleared.returncode == 0, cleared.stderr
        # WHEN the run gets the signal
        run.process.send_signal(stop_signal)
        # THEN it exits cleanly, Azurite is gone and the emulator's runtime record with it
        assert run.process.wait(timeout=60) == 0
        wait_for(lambda: not pid_alive(azurite_pid), 30, what=f"Azurite (pid {azurite_pid}) to exit")
        assert not (tmp_path / ".emulator" / "emulator.json").exists()
    finally:
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()
