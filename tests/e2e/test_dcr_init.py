"""``relay dcr init`` as written in the issue: the DCR it emits loads in the relay and in the emulator,
and the same samples sent through it land every row with an empty drop report."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from emulator.dcr import load_dcr
from emulator.server import Emulator
from relay_cli.dcr import read_samples
from relay_cli.exit_codes import Exit
from relay_cli.main import EXIT_OK, main
from shared.config import ConfigError, load_config
from shared.tables import load_table_plans
from tests.conftest import EVENTS, install_relay_env

pytestmark = pytest.mark.e2e

SAMPLES = sorted(path for path in EVENTS.iterdir() if path.is_file())
TOKEN = "dcr-init-token"
TIME_FIELDS = {  # where the shipped samples keep their event time
    "applogs.csv": "timestamp", "cloudevent_structured.json": "time", "cloudevents_batch.json": "time",
    "eventgrid_blob_created.json": "eventTime", "resourcelogs_PT1H.json": "time",
    "activitylog_administrative.json": "time", "diag_keyvault_auditevent.json": "time",
}
TRICKY = [
    {"when": "2024-05-01T10:00:00Z", "n": 1, "mixed": 1, "nested": {"a": [1, 2]}, "user_id": "u1", "userId": 7,
     "id": "e1", "Type": "x", "big": 2**40, "huge": 2**70, "gone": None, "at": "2024-05-01 10:00:00.1234567+02:00"},
    {"when": "2024-05-01T10:05:00.123+0100", "n": 2.5, "mixed": "one", "nested": [1], "user-id": "u2",
     "id": "e2", "Type": "y", "big": 3, "huge": 1, "gone": None, "at": "2024-05-01T08:00:00Z", "title": "t"},
    {"when": "Wed, 01 May 2024 10:10:00 GMT", "n": -3, "mixed": 2.5, "nested": None, "big": 5, "huge": -(2**65),
     "at": "2024-05-01T08:00:00.5-07:00", "TenantId": "tid", "UniqueId": "u", "_ResourceId": "/r"},
]


def init(*args: str) -> int:
    return main(["dcr", "init", *args])


def stream_name(path: Path) -> str:
    return "Custom-" + "".join(part.title() for part in path.name.replace(".", "_").split("_"))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One DCR file per shipped sample (and one of tricky samples), emitted by `relay dcr init`."""
    folder = tmp_path_factory.mktemp("dcrs")
    tricky = folder / "tricky.ndjson.gz"
    tricky.write_bytes(gzip.compress(b"\n".join(json.dumps(event).encode() for event in TRICKY)))
    routes: dict[str, dict[str, Any]] = {}
    for sample in [*SAMPLES, tricky]:
        dcr = folder / f"{sample.name.replace('.', '_')}.json"
        time_field = "when" if sample == tricky else TIME_FIELDS.get(sample.name)
        args = [str(sample), "--stream", stream_name(sample), "--dcr", str(dcr)]
        if time_field:
            args += ["--time-field", time_field]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert init(*args) == EXIT_OK, sample.name
        snippet = yaml.safe_load(out.getvalue())[0]
        routes[sample.name] = {"sample": sample, "dcr": dcr, "route": snippet}
    return routes


@pytest.fixture(scope="module")
def emu(built: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with Emulator([item["dcr"] for item in built.values()], tmp_path_factory.mktemp("emu"), port=0,
                  token=TOKEN) as instance:
        yield instance


def relay_yaml(path: Path, item: dict[str, Any]) -> Path:
    route = dict(item["route"], dcr="${DCR_IMMUTABLE_ID}")
    path.write_text(yaml.safe_dump({"defaults": {"endpoint": "${LOGS_INGESTION_ENDPOINT}"}, "routes": [route]}))
    return path


@pytest.mark.parametrize("name", [*(p.name for p in SAMPLES), "tricky.ndjson.gz"])
def test_emitted_dcr_loads_in_relay_and_emulator_and_every_sample_lands(name, built, emu, tmp_path, monkeypatch,
                                                                         capsys):
    # GIVEN the DCR and route `relay dcr init` made from a sample file
    item = built[name]
    dcr = load_dcr(item["dcr"])  # the emulator's loader accepts it
    config_path = relay_yaml(tmp_path / "relay.yaml", item)
    env = {"RELAY_CONFIG": str(config_path), "RELAY_CREDENTIAL": "static", "RELAY_STATIC_TOKEN": TOKEN,
           "RELAY_CA_BUNDLE": str(emu.ca_path), "LOGS_INGESTION_ENDPOINT": emu.endpoint,
           "DCR_IMMUTABLE_ID": emu.dcr_ids[item["dcr"].stem]}
    load_config(config_path, env)  # the relay accepts DCR and route
    install_relay_env(monkeypatch, env)
    emu.reset()
    capsys.readouterr()
    # WHEN the same sample is sent through the route into the emulator
    code = main(["send", item["route"]["name"], str(item["sample"]), "--quiet"])
    # THEN every event lands as a row, nothing is rejected and the emulator dropped nothing
    summary = json.loads(capsys.readouterr().out)
    events = len(list(read_samples([str(item["sample"])])))
    assert (code, summary["accepted"], summary["rejected"]) == (EXIT_OK, events, 0), summary
    output = item["route"]["stream"].removeprefix("Custom-") + "_CL"
    assert [flow.table for flow in dcr.flows_for(item["route"]["stream"])] == [output]
    assert len(emu.rows(output)) == events
    assert emu.drops() == []


def test_tricky_samples_get_the_documented_types(built):
    # Huge (beyond 64 bits) is real: the relay's JSON decoder (orjson) reads such integers as doubles, and the
    # inference types what the relay will hold. From CSV text it stays exact (string): tests/unit/test_dcr_infer.py.
    columns = {c["name"]: c["type"] for c in json.loads(built["tricky.ndjson.gz"]["dcr"].read_text())
               ["properties"]["streamDeclarations"]["Custom-TrickyNdjsonGz"]["columns"]}
    assert columns == {
        "TimeGenerated": "datetime", "N": "real", "Mixed": "dynamic", "Nested": "dynamic", "UserId": "string",
        "UserId_2": "int", "OriginalId": "string", "OriginalType": "string", "Big": "long", "Huge": "real",
        "Gone": "string", "At": "datetime", "UserId_3": "string", "OriginalTitle": "string",
        "OriginalTenantId": "string", "OriginalUniqueId": "string", "ResourceId": "string",
    }


def test_rerun_is_idempotent_and_dry_run_writes_nothing(built, tmp_path, capsys):
    # GIVEN a DCR file made from a sample
    item = built["diag_keyvault_auditevent.json"]
    dcr = tmp_path / "kv.json"
    args = [str(item["sample"]), "--stream", "Custom-KV", "--dcr", str(dcr), "--time-field", "time"]
    assert init(*args) == EXIT_OK
    first = dcr.read_text()
    capsys.readouterr()
    # WHEN the same command runs again, and then as a dry run with a new sample
    assert init(*args) == EXIT_OK
    assert dcr.read_text() == first
    assert "15 columns, 0 added" in capsys.readouterr().err
    assert init(str(EVENTS / "diag_storage_blob_logs.json"), "--stream", "Custom-KV", "--dcr", str(dcr),
                "--dry-run") == EXIT_OK
    # THEN the file is unchanged and the diff shows the columns that would be added
    out = capsys.readouterr().out
    assert dcr.read_text() == first
    assert out.startswith(f"--- a/{dcr}\n+++ b/{dcr}\n")
    assert '+            "name": "ResourceType",' in out


def test_conflicting_types_are_reported_and_kept(tmp_path, capsys):
    sample = tmp_path / "a.json"
    sample.write_text('{"n": 1}')
    dcr = tmp_path / "d.json"
    assert init(str(sample), "--stream", "Custom-A", "--dcr", str(dcr)) == EXIT_OK
    sample.write_text('{"n": "text"}')
    code = init(str(sample), "--stream", "Custom-A", "--dcr", str(dcr))
    assert code == Exit.REJECTED  # written; the conflicting columns are listed
    assert "conflict: column N is declared int, but the samples of 'n' need string: kept int" in capsys.readouterr().err
    assert '"type": "int"' in dcr.read_text()


def test_plan_goes_to_the_plans_file_and_the_route_is_auxiliary(tmp_path, capsys):
    sample = tmp_path / "a.csv"
    sample.write_text("ts,level\n2024-05-01T10:00:00Z,info\n")
    dcr = tmp_path / "d.json"
    assert init(str(sample), "--stream", "Custom-Verbose", "--dcr", str(dcr), "--time-field", "ts",
                "--plan", "Auxiliary") == EXIT_OK
    assert load_table_plans(tmp_path / "d.tables.json")["Verbose_CL"].plan == "Auxiliary"
    assert "auxiliary: true" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--stream", "MyStream"], 2, "--stream 'MyStream' must look like Custom-NAME"),
    (["--stream", "Custom-A", "--table", "bad name"], 2, "--table 'bad name': a table name is"),
    (["--stream", "Custom-A", "--table", "Syslog", "--plan", "Basic"], 2, "--plan applies to custom (_CL) tables"),
    (["--stream", "Custom-A", "--time-field", "nope"], 2, "--time-field 'nope' is in none of the 1 sample(s)"),
])
def test_bad_usage_is_named(args, code, message, tmp_path, capsys):
    sample = tmp_path / "a.json"
    sample.write_text('{"a": 1}')
    assert init(str(sample), "--dcr", str(tmp_path / "d.json"), *args) == code
    assert message in capsys.readouterr().err
    assert not (tmp_path / "d.json").exists()


@pytest.mark.parametrize(("content", "message"), [
    (b'{"a": 1', "is not valid JSON"),
    (None, "No such file"),
])
def test_unreadable_samples_are_named(content, message, tmp_path, capsys):
    sample = tmp_path / "a.json"
    if content is not None:
        sample.write_bytes(content)
    assert init(str(sample), "--stream", "Custom-A", "--dcr", str(tmp_path / "d.json")) == Exit.USAGE
    err = capsys.readouterr().err
    assert err.startswith("relay dcr init: ") and str(sample) in err


def test_broken_dcr_or_plans_file_is_named_and_left_alone(tmp_path, capsys):
    sample = tmp_path / "a.json"
    sample.write_text('{"a": 1}')
    dcr = tmp_path / "d.json"
    dcr.write_text("{nope")
    assert init(str(sample), "--stream", "Custom-A", "--dcr", str(dcr)) == Exit.USAGE
    assert "DCR file" in capsys.readouterr().err and dcr.read_text() == "{nope"
    dcr.unlink()
    (tmp_path / "d.tables.json").write_text('{"tables": {"A_CL": {"plan": "Cheap"}}}')
    assert init(str(sample), "--stream", "Custom-A", "--dcr", str(dcr)) == Exit.USAGE
    assert "plan 'Cheap' is not one of Analytics, Basic, Auxiliary" in capsys.readouterr().err
    assert not dcr.exists()


def test_emitted_route_passes_relay_validate_rules_for_auxiliary(tmp_path):
    # GIVEN an Auxiliary table and a route that does not say auxiliary: true
    sample = tmp_path / "a.json"
    sample.write_text('{"ts": "2024-05-01T10:00:00Z"}')
    dcr = tmp_path / "d.json"
    assert init(str(sample), "--stream", "Custom-A", "--dcr", str(dcr), "--time-field", "ts", "--plan",
                "Auxiliary") == EXIT_OK
    route = {"name": "a", "source": "http", "match": "a", "stream": "Custom-A", "schema": str(dcr),
             "endpoint": "https://x.example", "dcr": "dcr-0123456789abcdef0123456789abcdef"}
    config = tmp_path / "relay.yaml"
    config.write_text(yaml.safe_dump({"routes": [route]}))
    # WHEN the routes file is loaded THEN the missing flag is named
    with pytest.raises(ConfigError) as raised:
        load_config(config, {})
    assert raised.value.problems == [
        "route 'a': auxiliary: stream Custom-A writes to A_CL, an Auxiliary table: set auxiliary: true "
        "(the service refuses calls spanning 30 minutes of TimeGenerated)"
    ]
    config.write_text(yaml.safe_dump({"routes": [dict(route, auxiliary=True)]}))
    assert load_config(config, {}).routes[0].auxiliary is True
