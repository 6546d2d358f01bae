"""``relay validate`` and ``relay send`` against the real emulator (and a real routes file)."""

from __future__ import annotations

import gzip

import orjson
import pytest

from relay_cli.main import EXIT_OK, EXIT_REJECTED, EXIT_USAGE, main
from tests.conftest import ROOT

pytestmark = pytest.mark.e2e


def test_validate_lists_every_route_of_the_shipped_file(relay_env, capsys):
    # GIVEN the shipped relay.yaml and its variables WHEN validated THEN it passes and lists the routes
    assert main(["validate"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "route(s) OK" in out
    for name in ("github", "cloudevents", "eventgrid", "applogs"):
        assert f"  {name} " in out
    # AND says per route how its events are decoded, and why not typed
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert lines["cloudevents"].rstrip().endswith("typed")
    assert lines["applogs"].rstrip().endswith("typed") and lines["github"].rstrip().endswith("typed")  # (id_column)
    assert "dicts: extra is a string column" in lines["eventhub-archive"]


def test_validate_names_every_problem_of_a_broken_file(relay_env, tmp_path, capsys):
    # GIVEN a routes file with a typo in a key, an undeclared stream and a plain-http endpoint
    broken = tmp_path / "relay.yaml"
    broken.write_text(
        f"defaults:\n  schema: {ROOT / 'infra/dcr/relay.json'}\n"
        "routes:\n  - name: web\n    source: http\n    match: web\n    endpoint: http://logs.example.com\n"
        "    dcr: dcr-0123456789abcdef0123456789abcdef\n    stream: Custom-Nope\n    tim_field: ts\n"
    )
    # WHEN it is validated
    code = main(["validate", "--config", str(broken)])
    # THEN it fails as a configuration error and each problem names the route and key
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert "route 'web':\n    - tim_field: unknown key" in err
    assert "    - endpoint: 'http://logs.example.com' must use https" in err
    assert "stream 'Custom-Nope' is not declared" in err


def test_send_streams_a_gzip_ndjson_backfill_into_the_table(relay_env, emulator, tmp_path, capsys):
    # GIVEN a gzip NDJSON backfill of 2,500 events
    path = tmp_path / "backfill.ndjson.gz"
    lines = [orjson.dumps({"timestamp": "2024-05-01T10:00:00Z", "level": "info", "message": f"m{n}",
                           "status": 200}) for n in range(2500)]
    path.write_bytes(gzip.compress(b"\n".join(lines)))
    # WHEN it is sent through the applogs route in chunks of 1,000
    code = main(["send", "applogs", str(path), "--chunk-rows", "1000", "--quiet"])
    # THEN every event landed once and the summary says so
    assert code == EXIT_OK
    summary = orjson.loads(capsys.readouterr().out)
    assert (summary["received"], summary["accepted"], summary["rejected"]) == (2500, 2500, 0)
    assert len(emulator.rows("AppLogs_CL")) == 2500


def test_send_csv_with_a_bad_line_lands_the_rest_and_exits_3(relay_env, emulator, tmp_path, capsys):
    # GIVEN a CSV whose second record has a status that is no integer
    path = tmp_path / "logs.csv"
    path.write_text("timestamp,level,message,status\n"
                    "2024-05-01T10:00:00Z,info,one,200\n"
                    "2024-05-01T10:00:01Z,info,two,abc\n"
                    "2024-05-01T10:00:02Z,info,three,201\n")
    # WHEN it is sent
    code = main(["send", "applogs", str(path), "--quiet"])
    # THEN two rows land, the bad one is reported with its reason, and the exit code says "rejected"
    assert code == EXIT_REJECTED
    summary = orjson.loads(capsys.readouterr().out)
    assert (summary["accepted"], summary["rejected"]) == (2, 1)
    assert "StatusCode" in summary["rejections"][0]["reason"]
    assert sorted(r["Message"] for r in emulator.rows("AppLogs_CL")) == ["one", "three"]


def test_send_reports_a_malformed_ndjson_line_by_number(relay_env, emulator, tmp_path, capsys):
    path = tmp_path / "logs.ndjson"
    path.write_bytes(b'{"level": "info", "message": "ok", "timestamp": 1714557600}\n{oops\n')
    code = main(["send", "applogs", str(path), "--quiet"])
    summary = orjson.loads(capsys.readouterr().out)
    assert code == EXIT_REJECTED
    assert summary["accepted"] == 1
    assert summary["rejections"][0]["reason"].startswith("line 2")


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_send_a_json_array_rejects_the_elements_json_cannot_carry_and_lands_the_rest(relay_env, emulator, tmp_path,
                                                                                     capsys, gzipped):
    # GIVEN a JSON array file (as Python's json.dumps writes NaN) whose 2nd and 4th elements hold NaN and a
    # lone surrogate escape
    events = [orjson.dumps({"timestamp": "2024-05-01T10:00:00Z", "level": "info", "message": f"m{n}",
                            "status": 200}) for n in range(6)]
    events[1] = events[1].replace(b'"status":200', b'"status":NaN')
    events[3] = events[3].replace(b'"m3"', b'"\\ud800"')
    text = b"[" + b",\n".join(events) + b"]"
    path = tmp_path / ("export.json.gz" if gzipped else "export.json")
    path.write_bytes(gzip.compress(text) if gzipped else text)
    # WHEN it is sent
    code = main(["send", "applogs", str(path), "--quiet"])
    # THEN the two are rejected by element number naming the field, the four others land, the exit code says so
    assert code == EXIT_REJECTED
    summary = orjson.loads(capsys.readouterr().out)
    assert (summary["received"], summary["accepted"], summary["rejected"]) == (6, 4, 2)
    assert summary["rejections"] == [
        {"element": 2, "reason": "element 2: field 'status' holds NaN: JSON has no NaN or Infinity"},
        {"element": 4, "reason": "element 4: field 'message' holds an invalid Unicode escape (a lone surrogate)"},
    ]
    assert sorted(r["Message"] for r in emulator.rows("AppLogs_CL")) == ["m0", "m2", "m4", "m5"]


def test_send_to_an_unknown_route_is_a_usage_error(relay_env, tmp_path, capsys):
    path = tmp_path / "x.ndjson"
    path.write_text("{}\n")
    assert main(["send", "nosuch", str(path)]) == EXIT_USAGE
    assert "no route named 'nosuch'" in capsys.readouterr().err


def test_send_gives_an_ndjson_file_the_event_ids_the_blob_trigger_gives_it(relay_env, emulator, tmp_path, capsys):
    from shared.normalize import event_id

    # GIVEN an NDJSON backfill whose lines are not compact sorted-keys JSON (as most writers leave them)
    events = [{"timestamp": "2024-05-01T10:00:00Z", "message": f"m{n}", "level": "info", "status": 200}
              for n in range(300)]
    path = tmp_path / "backfill.ndjson"
    path.write_bytes(b"\n".join(orjson.dumps(event) for event in events) + b"\n")
    # WHEN it is sent through the applogs route (typed: its lines stay encoded, as the blob trigger keeps them)
    code = main(["send", "applogs", str(path), "--chunk-rows", "100", "--quiet"])
    # THEN every row landed with the EventId the blob trigger gives the same lines, so a file sent and also
    # dropped into the container de-duplicates on EventId
    assert code == EXIT_OK
    as_lines = [event_id("applogs", event, orjson.dumps(event)) for event in events]  # the line's own bytes
    assert sorted(row["EventId"] for row in emulator.rows("AppLogs_CL")) == sorted(as_lines)
    assert not set(as_lines) & {event_id("applogs", event) for event in events}  # (not the sorted-keys form)
