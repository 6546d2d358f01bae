"""``relay poison`` against Azurite: list, show, replay, redrive, purge, stats and their exit codes."""

from __future__ import annotations

import io
import json

import pytest

from relay_cli.exit_codes import Exit
from relay_cli.main import main as relay_main
from shared.records import Item, Row
from shared.sink import UploadResult
from tests.poison.conftest import APPLOGS_STREAM, app_log, ids_of

pytestmark = pytest.mark.e2e

OK, FAILED, USAGE, PARKED, NOTHING = Exit.OK, Exit.FAILED, Exit.USAGE, Exit.PARKED, Exit.NOTHING


def park(world, tag: str, count: int, failure: str = "throttled", permanent: bool = False, status: int = 429):
    """Park rows through the store exactly as the dispatcher does after a failed upload."""
    route = world.route("applogs")
    events = [app_log(n, tag=tag) for n in range(count)]
    batch = world.relay.engine.normalizer(route).normalize(events)
    result = UploadResult("req-" + tag, 1, status, failure, permanent, f"{failure} (test)", None)
    world.store.park(route, [Row(Item(n), row) for n, row in enumerate(batch.rows)], result, "batch-" + tag)
    return events


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = relay_main(["poison", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_list_is_3_when_empty_and_shows_parked_batches(world, capsys):
    # GIVEN an empty poison store WHEN listed THEN exit 5 (nothing found)
    world.store.ensure()
    assert run(capsys, "list")[0] == NOTHING
    # GIVEN two parked batches
    park(world, "a", 3)
    park(world, "b", 2, failure="server_error", status=503)
    # WHEN listed THEN both show with route, rows, class and attempt, exit 0
    code, out, _ = run(capsys, "list")
    assert code == OK
    assert "2 parked batch(es), 5 row(s)" in out and "throttled" in out and "server_error" in out
    code, out, _ = run(capsys, "list", "--json")
    listed = json.loads(out)
    assert sorted(p["rows"] for p in listed["parked"]) == [2, 3]
    assert listed["queue"]["approximate_messages"] == 2 and len(listed["queue"]["visible"]) == 2


def test_list_deadletter_and_show_reason_and_first_rows(world, capsys):
    # GIVEN a dead-lettered batch (403: role missing) and a parked one
    events = park(world, "dl", 4, failure="forbidden", permanent=True, status=403)
    park(world, "p", 1)
    (entry,) = world.store.list_deadletter()
    # WHEN the dead-letter container is listed THEN the entry shows with its class
    code, out, _ = run(capsys, "list", "--deadletter")
    assert code == OK and entry.id in out and "forbidden" in out
    # WHEN it is shown THEN the reason, the hint and the first rows are printed
    code, out, _ = run(capsys, "show", entry.id, "--rows", "2")
    assert code == OK
    assert "dead-lettered" in out and "Monitoring Metrics Publisher" in out and "first 2 of 4 row(s)" in out
    code, out, _ = run(capsys, "show", entry.id, "--json")
    shown = json.loads(out)
    assert shown["class"] == "forbidden" and [r["EventId"] for r in shown["first_rows"]] == ids_of(events, posted=False)[:5]
    # WHEN a parked batch is shown THEN its claim check is printed
    (parked,) = world.store.list_parked()
    code, out, _ = run(capsys, "show", parked.id)
    assert code == OK and "parked" in out and APPLOGS_STREAM in out
    # WHEN an unknown id is shown THEN exit 5 (nothing found)
    assert run(capsys, "show", "no-such-id")[0] == NOTHING


def test_replay_now_ignores_the_back_off_and_lands(world, capsys):
    # GIVEN parked batches whose claim checks wait out a long back-off
    from shared.poison import Backoff

    world.store.backoff = Backoff(base=3600, cap=3600)
    first = park(world, "r1", 3)
    second = park(world, "r2", 2)
    assert world.host.receive() == []  # invisible for an hour
    # WHEN the operator replays one by id, then all
    one = next(b for b in world.store.list_parked() if b.rows == 3)
    code, out, _ = run(capsys, "replay", one.id)
    assert code == OK and "landed=3" in out
    code, out, _ = run(capsys, "replay")
    # THEN everything landed exactly once, and nothing is left to replay
    assert code == OK and "2 row(s) landed" in out
    assert sorted(world.landed_ids()) == sorted(ids_of(first + second, posted=False))
    assert run(capsys, "replay")[0] == NOTHING


def test_replay_that_fails_again_exits_4_parked_and_requeues(world, capsys):
    # GIVEN a parked batch and a service that still throttles
    park(world, "again", 2)
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=429, retry_after=5)
    # WHEN replayed THEN exit 4 (parked again, will replay) and the batch waits for attempt 2
    code, out, _ = run(capsys, "replay")
    assert code == PARKED and "requeued" in out
    assert [b.attempt for b in world.store.list_parked()] == [2]


def test_redrive_needs_a_selection_and_moves_entries_back(world, capsys):
    # GIVEN two dead-lettered batches on the same route
    park(world, "d1", 2, failure="bad_request", permanent=True, status=400)
    park(world, "d2", 3, failure="not_found", permanent=True, status=404)
    ids = [e.id for e in world.store.list_deadletter()]
    # WHEN redrive is called without a selection THEN exit 2 (usage)
    assert run(capsys, "redrive")[0] == USAGE
    # WHEN one is redriven by id THEN it is parked again with a fresh claim check
    code, out, _ = run(capsys, "redrive", ids[0])
    assert code == OK and ids[0] in out
    assert len(world.store.list_deadletter()) == 1 and len(world.store.list_parked()) == 1
    # WHEN the rest are redriven with --all THEN the dead-letter container is empty; again: exit 5
    assert run(capsys, "redrive", "--all")[0] == OK
    assert world.store.list_deadletter() == []
    assert run(capsys, "redrive", "--all")[0] == NOTHING
    # AND the queue trigger lands all five rows
    world.host.drain()
    assert len(world.landed_ids()) == 5


def test_purge_refuses_without_a_terminal_asks_with_one_and_skips_with_yes(world, capsys, monkeypatch):
    park(world, "x1", 2)
    park(world, "x2", 2, failure="bad_request", permanent=True, status=400)
    # GIVEN no terminal WHEN purge runs without --yes THEN it refuses with exit 2 and deletes nothing
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, _, err = run(capsys, "purge")
    assert code == USAGE and "--yes" in err
    assert len(world.store.list_parked()) == 1
    # GIVEN a terminal WHEN the operator answers no THEN nothing is deleted (exit 5: nothing purged)
    tty = io.StringIO("n\n")
    tty.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr("sys.stdin", tty)
    assert run(capsys, "purge")[0] == NOTHING
    assert len(world.store.list_parked()) == 1
    # WHEN the operator answers yes THEN the parked batch and the queue are cleared
    tty = io.StringIO("y\n")
    tty.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr("sys.stdin", tty)
    assert run(capsys, "purge")[0] == OK
    assert world.store.list_parked() == [] and world.store.queue_length() == 0
    # WHEN dead-letters are purged with --yes THEN they are gone; purging again finds nothing (exit 5)
    assert run(capsys, "purge", "--deadletter", "--yes")[0] == OK
    assert world.store.list_deadletter() == []
    assert run(capsys, "purge", "--deadletter", "--yes")[0] == NOTHING


def test_stats_counts_batches_and_rows_by_route_and_class(world, capsys):
    # GIVEN parked and dead-lettered batches of several classes
    park(world, "s1", 3)
    park(world, "s2", 4)
    park(world, "s3", 5, failure="too_large", permanent=True, status=413)
    # WHEN stats are asked for as JSON
    code, out, _ = run(capsys, "stats", "--json")
    stats = json.loads(out)
    # THEN the counts add up per route and class
    assert code == OK
    assert stats["parked"] == {"batches": 2, "rows": 7} and stats["deadletter"] == {"batches": 1, "rows": 5}
    assert {(line["state"], line["class"], line["rows"]) for line in stats["by_route_class"]} == {
        ("parked", "throttled", 7), ("deadletter", "too_large", 5)}
    code, out, err = run(capsys, "stats")
    assert code == OK and "too_large" in out, err


def test_settings_file_and_missing_storage(world, capsys, monkeypatch, tmp_path):
    # GIVEN the storage settings only in a local.settings.json
    park(world, "file", 1)
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": {"RelayStorage": world.env["RelayStorage"]}}))
    monkeypatch.delenv("RelayStorage")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # WHEN listed without the file, in a directory without a local.settings.json THEN exit 2 (configuration)
    # naming the setting
    code, _, err = run(capsys, "list")
    assert code == USAGE and "RelayStorage" in err
    # WHEN listed with --settings THEN the parked batch is found
    assert run(capsys, "list", "--settings", str(settings))[0] == OK
    # WHEN listed with no flag where local.settings.json is (what make serve writes) THEN it is read
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "list")[0] == OK
    # AND a bad subcommand is a usage error
    with pytest.raises(SystemExit) as exit_info:
        relay_main(["poison", "frobnicate"])
    assert exit_info.value.code == USAGE
