"""Exit codes of ``relay send`` and ``relay poison``, one test per code, against the real emulator
(fault injection) and Azurite: a backfill script must tell "all landed" from "rows were parked" from
"rows were dead-lettered" (issue 16: a 403 dead-letter used to exit 0)."""

from __future__ import annotations

import socket

import orjson
import pytest

from relay_cli.exit_codes import SEVERITY, Exit, for_counts, worst
from relay_cli.main import main as relay_main
from shared.records import Item, Row
from shared.sink import UploadResult
from tests.poison.conftest import APPLOGS_STREAM, app_log

pytestmark = pytest.mark.e2e


def backfill(tmp_path, count: int, bad: int = 0, tag: str = "x"):
    """An NDJSON file of ``count`` good applogs events and ``bad`` lines that are not JSON."""
    path = tmp_path / f"{tag}.ndjson"
    lines = [orjson.dumps(app_log(n, tag=tag)) for n in range(count)] + [b"{oops"] * bad
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def send(capsys, path, *extra: str) -> tuple[int, dict, str]:
    code = relay_main(["send", "applogs", str(path), "--quiet", *extra])
    captured = capsys.readouterr()
    return code, (orjson.loads(captured.out) if captured.out.strip() else {}), captured.err


def closed_port_storage() -> str:
    """A storage connection string whose blob and queue endpoints refuse connections (an outage)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    return (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};"
            f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1;")


# --------------------------------------------------------------------------- the table itself

def test_codes_are_distinct_stable_and_the_worst_wins():
    assert [int(c) for c in Exit] == [0, 1, 2, 3, 4, 5]  # documented in the README: never renumber
    assert worst() == Exit.OK
    assert worst(Exit.REJECTED, Exit.PARKED) == Exit.PARKED
    assert worst(Exit.PARKED, Exit.FAILED, Exit.REJECTED) == Exit.FAILED
    assert worst(Exit.NOTHING, Exit.OK) == Exit.NOTHING
    assert for_counts() == Exit.OK
    assert for_counts(rejected=1) == Exit.REJECTED
    assert for_counts(rejected=1, parked=1) == Exit.PARKED
    assert for_counts(parked=1, deadlettered=1) == Exit.FAILED
    assert for_counts(failed=1) == Exit.FAILED
    assert set(SEVERITY) == set(Exit)


def test_help_shows_the_table_and_version_is_not_an_error(capsys):
    with pytest.raises(SystemExit) as shown:
        relay_main(["--help"])
    assert shown.value.code == 0
    out = capsys.readouterr().out
    for code in Exit:
        assert f"\n  {code.value}  " in out
    with pytest.raises(SystemExit) as version:
        relay_main(["--version"])
    assert version.value.code == 0 and capsys.readouterr().out.startswith("relay ")


# --------------------------------------------------------------------------- relay send

def test_send_all_landed_is_0(world, tmp_path, capsys):
    code, summary, _ = send(capsys, backfill(tmp_path, 5))
    assert (code, summary["accepted"]) == (Exit.OK, 5)


def test_send_with_bad_lines_is_3(world, tmp_path, capsys):
    code, summary, _ = send(capsys, backfill(tmp_path, 3, bad=1))
    assert (code, summary["accepted"], summary["rejected"]) == (Exit.REJECTED, 3, 1)


def test_send_parked_is_4_and_wins_over_rejected(world, tmp_path, capsys):
    # GIVEN a service that answers 503 (transient): the rows are parked for replay
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=503)
    code, summary, _ = send(capsys, backfill(tmp_path, 4, bad=1))
    assert (code, summary["parked"], summary["rejected"]) == (Exit.PARKED, 4, 1)
    assert sum(b.rows for b in world.store.list_parked()) == 4


def test_send_dead_lettered_is_1_the_bug_of_issue_16(world, tmp_path, capsys, monkeypatch):
    # GIVEN a 403 (role missing) with no grace window: the rows are dead-lettered at once
    world.rebuild(monkeypatch, RELAY_FORBIDDEN_GRACE_MINUTES="0")
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=403)
    code, summary, _ = send(capsys, backfill(tmp_path, 5))
    # THEN the exit code is a failure, never 0
    assert (code, summary["deadlettered"], summary["accepted"]) == (Exit.FAILED, 5, 0)


def test_send_during_a_storage_outage_is_1_with_one_line_and_no_traceback(world, tmp_path, capsys, monkeypatch):
    # GIVEN uploads that fail and a poison store that cannot be reached
    world.rebuild(monkeypatch, RelayStorage=closed_port_storage())
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=503)
    code, summary, err = send(capsys, backfill(tmp_path, 3))
    # THEN the rows count as failed, the exit code says so, and stderr names what failed in one line
    assert (code, summary["failed"]) == (Exit.FAILED, 3)
    assert "Traceback" not in err
    assert "parking 3 rows of route applogs" in err and "ServiceRequestError" in err
    assert len([line for line in err.splitlines() if "parking" in line]) == 1


def test_send_usage_and_configuration_errors_are_2(world, tmp_path, capsys, monkeypatch):
    path = backfill(tmp_path, 1)
    assert relay_main(["send", "nosuch", str(path)]) == Exit.USAGE
    assert relay_main(["send", "applogs", str(tmp_path / "missing.ndjson")]) == Exit.USAGE
    assert "cannot open" in capsys.readouterr().err
    broken = tmp_path / "relay.yaml"
    broken.write_text("routes: []\n")
    monkeypatch.setenv("RELAY_CONFIG", str(broken))
    assert relay_main(["send", "applogs", str(path)]) == Exit.USAGE
    assert "routes: must be a non-empty list" in capsys.readouterr().err


# --------------------------------------------------------------------------- relay poison

def park(world, tag: str, count: int) -> None:
    route = world.route("applogs")
    batch = world.relay.engine.normalizer(route).normalize([app_log(n, tag=tag) for n in range(count)])
    result = UploadResult("req-" + tag, 1, 503, "server_error", False, "server_error (test)", None)
    world.store.park(route, [Row(Item(n), row) for n, row in enumerate(batch.rows)], result, "batch-" + tag)


def poison(capsys, *argv: str) -> tuple[int, str]:
    code = relay_main(["poison", *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_poison_replay_landed_is_0_parked_again_is_4_dead_lettered_is_1(world, capsys):
    park(world, "a", 2)
    # WHEN the service still throttles THEN the batch is parked again: 4
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=429, retry_after=5)
    assert poison(capsys, "replay")[0] == Exit.PARKED
    # WHEN it answers 204 THEN it lands: 0
    world.emulator.clear_faults()
    assert poison(capsys, "replay")[0] == Exit.OK
    # WHEN a parked batch meets a permanent 400 THEN it is dead-lettered: 1
    park(world, "b", 2)
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=400)
    code, out = poison(capsys, "replay")
    assert code == Exit.FAILED and "dead-lettered" in out
    assert [e.batch.rows for e in world.store.list_deadletter()] == [2]


def test_poison_nothing_found_is_5(world, capsys):
    world.store.ensure()
    for argv in (["list"], ["list", "--deadletter"], ["show", "nope"], ["replay"], ["replay", "nope"],
                 ["redrive", "--all"], ["redrive", "nope"], ["purge", "--yes"], ["stats"]):
        assert poison(capsys, *argv)[0] == Exit.NOTHING, argv


def test_poison_usage_and_configuration_errors_are_2(world, capsys, monkeypatch, tmp_path):
    assert poison(capsys, "redrive")[0] == Exit.USAGE  # no selection
    monkeypatch.chdir(tmp_path)  # no local.settings.json here
    monkeypatch.delenv("RelayStorage")
    for argv in (["list"], ["stats"], ["replay"], ["purge", "--yes"]):
        code, out = poison(capsys, *argv)
        assert code == Exit.USAGE and "RelayStorage" in out, argv


def test_poison_storage_outage_is_1_in_one_line(world, capsys, monkeypatch):
    monkeypatch.setenv("RelayStorage", closed_port_storage())
    code, out = poison(capsys, "list")
    assert code == Exit.FAILED
    assert "storage failed: ServiceRequestError" in out and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1
