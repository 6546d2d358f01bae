"""``relay`` output without services: validate's grouped problems (each once, every bad column),
rejection reasons without a doubled prefix, the send progress line, one-line errors, --version."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from rich.console import Console

from relay_cli import main as cli
from relay_cli.console import OneLineHandler
from relay_cli.exit_codes import Exit
from shared.blob_ingest import file_records
from shared.engine import ChunkReport
from shared.records import Rejection, Result, Unit
from shared.sources.blob import open_file

DCR_ID = "dcr-0123456789abcdef0123456789abcdef"


def broken_setup(tmp_path: Path, routes: int = 7) -> Path:
    """``routes`` routes sharing one DCR stream that has two bad columns (and a bad second stream)."""
    dcr = tmp_path / "dcr.json"
    dcr.write_text(json.dumps({"properties": {"streamDeclarations": {
        "Custom-T": {"columns": [{"name": "TimeGenerated", "type": "datetime"}, {"name": "Type", "type": "string"},
                                 {"name": "Count", "type": "integer"}]},
        "Custom-U": {"columns": [{"name": "id", "type": "string"}]},
    }}}))
    lines = ["defaults:", "  endpoint: https://dce.example.com", f"  dcr: {DCR_ID}", f"  schema: {dcr}", "routes:"]
    for n in range(routes):
        lines += [f"  - name: r{n}", "    source: http", f"    match: r{n}", "    stream: Custom-T"]
    lines += ["  - name: typo", "    source: http", "    match: typo", "    stream: Custom-T", "    tim_field: ts"]
    config = tmp_path / "relay.yaml"
    config.write_text("\n".join(lines) + "\n")
    return config


def test_validate_reports_each_problem_once_grouped_by_file_then_route(tmp_path, capsys, monkeypatch):
    # GIVEN seven routes on one DCR stream with a reserved and a mistyped column, and a route with a typo
    monkeypatch.chdir(tmp_path)
    config = broken_setup(tmp_path)
    # WHEN validated
    code = cli.main(["validate", "--config", str(config)])
    err = capsys.readouterr().err
    # THEN it is a configuration error, every bad column is named (not only the first), each once
    assert code == Exit.USAGE
    assert err.count("column name 'Type' is reserved") == 1
    assert err.count("column 'Count': type 'integer' is not one of") == 1
    assert err.count("column name 'id' is reserved") == 1  # the second stream is checked too
    # AND problems are grouped: the routes file with its routes, then the DCR file with its streams
    assert f"{config}:\n  route 'typo':\n    - tim_field: unknown key" in err
    dcr_part = err[err.index(f"{tmp_path / 'dcr.json'}:"):]
    assert "\n  stream 'Custom-T':\n    - column name 'Type'" in dcr_part
    assert "\n  stream 'Custom-U':\n    - column name 'id'" in dcr_part
    assert err.startswith("relay validate: 4 problem(s)")


def test_group_problems_keeps_order_and_drops_repeats():
    grouped = cli.group_problems([
        "route 'a': map.X: column is not declared in stream Custom-T",
        "route 'a': map.X: column is not declared in stream Custom-T",
        "defaults.foo: not allowed in defaults",
        "route 'b': schema: DCR file 'd.json' has no properties.streamDeclarations",
    ], "relay.yaml")
    assert grouped == {
        "relay.yaml": {"route 'a'": ["map.X: column is not declared in stream Custom-T"],
                       "": ["defaults.foo: not allowed in defaults"]},
        "d.json": {"": ["has no properties.streamDeclarations"]},
    }


def test_a_reason_is_never_prefixed_twice():
    # GIVEN decoder reasons that already name their place, and one that does not
    assert Rejection(Unit("line", 3), "line 3: not valid JSON").described() == "line 3: not valid JSON"
    assert Rejection(Unit("line", 3, 0), "line 3: bad").described() == "line 3: bad"
    assert Rejection(Unit("file", 4), "file: gzip data is truncated").described() == "file: gzip data is truncated"
    assert Rejection(Unit("line", 3), "StatusCode: 'abc' is no int").described() == "line 3: StatusCode: 'abc' is no int"
    # AND a JSON document that does not parse reads "element 1: not valid JSON", not "element 1: document: ..."
    opened = open_file(iter([b'{"a": oops}']), "a.json")
    (rejection,) = [r for r in file_records(opened.units, opened.where) if isinstance(r, Rejection)]
    assert rejection.summary()["reason"].startswith("element 1: not valid JSON")


def test_progress_shows_percentage_and_eta_for_a_file_of_known_size(monkeypatch):
    # GIVEN a terminal (captured) and an input of 4 MiB
    screen = io.StringIO()
    monkeypatch.setattr(cli, "console", lambda stderr=False: Console(file=screen, force_terminal=True, width=160))
    progress = cli._Progress(True, 4 << 20, "big.ndjson")
    # WHEN half of it was read and a chunk reported
    pieces = progress.reader(io.BytesIO(b"x" * (2 << 20)))
    assert sum(map(len, pieces)) == 2 << 20
    total = Result("r", "b", landed=10)
    progress.update(ChunkReport(1, records=10), total)
    progress.progress.refresh()
    progress.done()
    # THEN the line has the percentage, an ETA and the counts
    text = screen.getvalue()
    assert "50%" in text and "ETA" in text and "10 landed" in text


def test_progress_of_stdin_has_no_percentage(monkeypatch):
    screen = io.StringIO()
    monkeypatch.setattr(cli, "console", lambda stderr=False: Console(file=screen, force_terminal=True, width=160))
    progress = cli._Progress(True, None, "stdin")
    progress.update(ChunkReport(1, records=3), Result("r", "b", landed=3))
    progress.done()
    assert "%" not in screen.getvalue() and "3 landed" in screen.getvalue()


def test_one_line_handler_names_the_error_once_without_a_traceback(capsys):
    handler = OneLineHandler("relay")
    log = logging.getLogger("test.oneline")
    log.addHandler(handler)
    try:
        for _ in range(3):
            try:
                raise ConnectionError("connection refused\nmore detail")
            except ConnectionError:
                log.exception("parking %d rows of route %s failed", 5, "applogs")
    finally:
        log.removeHandler(handler)
    err = capsys.readouterr().err
    assert err == "relay: parking 5 rows of route applogs failed: ConnectionError: connection refused\n"
    assert handler.repeats() == 2


def test_an_unexpected_error_is_one_line_unless_debug(monkeypatch, capsys):
    def boom(args):
        raise RuntimeError("disk on fire\ntraceback-ish detail")

    monkeypatch.setattr(cli, "cmd_validate", boom)
    assert cli.main(["validate"]) == Exit.FAILED
    err = capsys.readouterr().err
    assert err == "relay validate: failed: RuntimeError: disk on fire (--debug shows the traceback)\n"
    with pytest.raises(RuntimeError):
        cli.main(["validate", "--debug"])
