"""``python -m emulator``: inspection commands read the database, remote commands talk to the server."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from emu_support import ROOT, RawClient, write_dcr

from emulator.cli import main
from emulator.server import Emulator


@pytest.fixture
def landed(tmp_path):
    """An emulator (state in tmp_path/state) that received two rows and one undeclared column."""
    state = tmp_path / "state"
    with Emulator([write_dcr(tmp_path)], state) as emu:
        client = RawClient(emu)
        rows = [
            {"TimeGenerated": "2024-05-01T10:00:00Z", "S": "first", "D": {"k": "v"}, "Extra": 1},
            {"TimeGenerated": "2024-05-01T10:00:01Z", "S": "second\nline", "B": True},
        ]
        assert (
            client.ingest("Custom-Typed", rows, headers={"x-ms-client-request-id": "cli-req"}).status == 204
        )
        yield emu, state


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_rows_prints_a_readable_table(landed, capsys):
    _emu, state = landed
    # WHEN rows are listed while the emulator is still running (the database is read directly)
    code, out, _ = run(capsys, "rows", "Typed_CL", "--state-dir", str(state))
    # THEN a header with the table's columns, one line per row, dynamic as JSON, newlines escaped
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["TimeGenerated", "S", "I", "L", "R", "B", "D"]
    assert "first" in lines[2] and '{"k":"v"}' in lines[2]
    assert "second\\nline" in lines[3] and "true" in lines[3]
    assert lines[-1] == "(2 rows in Typed_CL)"


def test_rows_json_and_limit(landed, capsys):
    _emu, state = landed
    code, out, _ = run(capsys, "rows", "Typed_CL", "--state-dir", str(state), "--json", "--limit", "1")
    assert code == 0
    assert json.loads(out) == [
        {
            "TimeGenerated": "2024-05-01T10:00:01Z",
            "S": "second\nline",
            "I": None,
            "L": None,
            "R": None,
            "B": True,
            "D": None,
        }
    ]


def test_drops_lists_what_the_service_would_have_dropped(landed, capsys):
    _emu, state = landed
    code, out, _ = run(capsys, "drops", "--state-dir", str(state))
    assert code == 0
    assert "Extra" in out and "undeclared column" in out and "cli-req" in out
    code, out, _ = run(capsys, "drops", "--state-dir", str(state), "--json")
    (drop,) = json.loads(out)
    assert drop["column"] == "Extra" and drop["row"] == 0


def test_tables_and_requests(landed, capsys):
    emu, state = landed
    emu.stop()  # also works on a stopped emulator's database
    code, out, _ = run(capsys, "tables", "--state-dir", str(state))
    assert code == 0
    counts = dict(line.split() for line in out.splitlines()[2:])
    assert counts["Typed_CL"] == "2" and counts["Where_CL"] == "0"
    code, out, _ = run(capsys, "requests", "--state-dir", str(state), "--json")
    assert code == 0 and json.loads(out)[0]["client_request_id"] == "cli-req"


def test_unknown_table_and_missing_database_are_runtime_errors(landed, tmp_path, capsys):
    _emu, state = landed
    code, _, err = run(capsys, "rows", "Nope_CL", "--state-dir", str(state))
    assert code == 1 and "no table 'Nope_CL'" in err and "Typed_CL" in err
    code, _, err = run(capsys, "tables", "--state-dir", str(tmp_path / "empty"))
    assert code == 1 and "no emulator database" in err


@pytest.mark.parametrize("argv", [[], ["bogus"], ["rows"], ["serve"], ["rows", "T", "--limit", "x"]])
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "serve" in capsys.readouterr().out


def test_serve_with_a_broken_dcr_is_a_runtime_error(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text("{}")
    code, _, err = run(capsys, "serve", "--dcr", str(path), "--port", "0", "--state-dir", str(tmp_path / "s"))
    assert code == 1 and "bad.json" in err


def test_fault_and_clear_faults_drive_a_running_emulator(emu, client, capsys):
    remote = ["--endpoint", emu.endpoint, "--ca", str(emu.ca_path)]
    # WHEN a fault is added from the command line
    code, out, _ = run(
        capsys,
        "fault",
        *remote,
        "--stream",
        "Custom-Typed",
        "--status",
        "429",
        "--retry-after",
        "2",
        "--count",
        "3",
    )
    assert code == 0 and json.loads(out)["count"] == 3
    # THEN the running emulator applies it
    reply = client.ingest("Custom-Typed", [{"S": "x"}])
    assert reply.status == 429 and reply.headers["retry-after"] == "2"
    # AND clear-faults removes it
    assert run(capsys, "clear-faults", *remote)[0] == 0
    assert client.ingest("Custom-Typed", [{"S": "x"}]).status == 204


def test_fault_without_an_action_is_a_usage_error(emu, capsys):
    code, _, err = run(capsys, "fault", "--endpoint", emu.endpoint, "--ca", str(emu.ca_path), "--stream", "x")
    assert code == 2 and "at least one of" in err


def test_remote_command_without_a_running_emulator_is_a_runtime_error(tmp_path, capsys):
    code, _, err = run(capsys, "clear-faults", "--state-dir", str(tmp_path))
    assert code == 1 and "no --endpoint" in err


def test_serve_runs_until_sigterm_and_prints_what_clients_need(tmp_path):
    # GIVEN `python -m emulator serve` on a free port
    state = tmp_path / "state"
    dcr = write_dcr(tmp_path)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulator",
            "serve",
            "--dcr",
            str(dcr),
            "--port",
            "0",
            "--state-dir",
            str(state),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        # WHEN it has started (poll its output, with a deadline)
        seen: list[str] = []
        deadline = time.monotonic() + 30
        while not any("Ctrl-C" in line for line in seen):
            assert time.monotonic() < deadline and proc.poll() is None, seen
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=0.1))
        text = "".join(seen)
        # THEN it printed the endpoint, the CA path and the DCR immutable id
        endpoint = next(line.split(": ", 1)[1].strip() for line in seen if "endpoint:" in line)
        ca = next(line.split(": ", 1)[1].strip() for line in seen if "CA certificate:" in line)
        assert endpoint.startswith("https://127.0.0.1:") and ca == str((state / "ca.pem").resolve())
        assert Emulator([dcr], state).dcr_ids["test"] in text
        # AND it serves HTTPS with that CA, and records itself for the remote commands
        context = ssl.create_default_context(cafile=ca)
        health = f"{endpoint}/_emulator/health"
        with urllib.request.urlopen(health, context=context, timeout=10) as response:  # noqa: S310 - https
            assert json.loads(response.read())["status"] == "ok"
        assert json.loads((state / "emulator.json").read_text())["endpoint"] == endpoint
    finally:
        # WHEN it receives SIGTERM THEN it stops cleanly with exit code 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert not (state / "emulator.json").exists()
