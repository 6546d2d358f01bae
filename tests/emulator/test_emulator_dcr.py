"""Loading DCR definition files: immutable ids, streams, flows, and precise errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from emu_support import RELAY_DCR, TEST_DCR, single_flow_dcr, write_dcr

from emulator import immutable_id_for
from emulator.dcr import DcrError, load_dcr, load_dcrs, parse_spec


def test_immutable_id_is_derived_from_the_file_stem():
    expected = "dcr-" + hashlib.sha256(b"relay").hexdigest()[:32]
    assert immutable_id_for(RELAY_DCR) == expected
    assert immutable_id_for("elsewhere/relay.json") == expected  # the directory does not matter
    assert immutable_id_for(Path("other.json")) != expected
    assert len(expected) == 36


def test_explicit_immutable_id_after_an_equals_sign():
    assert parse_spec("infra/dcr/relay.json=dcr-0123abcd") == (Path("infra/dcr/relay.json"), "dcr-0123abcd")
    path, dcr_id = parse_spec("dir=odd/relay.json")  # not an id: the whole text is the path
    assert path == Path("dir=odd/relay.json") and dcr_id == immutable_id_for("relay")


def test_relay_dcr_loads_with_its_streams_columns_and_tables():
    dcr = load_dcr(RELAY_DCR)
    assert dcr.name == "relay" and dcr.immutable_id == immutable_id_for(RELAY_DCR)
    assert set(dcr.streams) == {
        "Custom-GitHubEvents",
        "Custom-CloudEvents",
        "Custom-AppLogs",
        "Custom-AzureResourceLogs",
        "Custom-KeyVaultAudit",
        "Custom-ResourceLogsArchive",
    }
    types = {c.name: c.type for c in dcr.streams["Custom-AppLogs"]}
    assert types["StatusCode"] == "int" and types["Bytes"] == "long" and types["Properties"] == "dynamic"
    assert [f.table for f in dcr.flows_for("Custom-AppLogs")] == ["AppLogs_CL"]


def test_definition_without_the_properties_wrapper_is_accepted(tmp_path):
    path = tmp_path / "inner.json"
    path.write_text(json.dumps(TEST_DCR["properties"]))
    assert set(load_dcr(path).streams) == {"Custom-Typed", "Custom-Events"}


def broken(tmp_path: Path, mutate) -> Path:
    document = json.loads(json.dumps(single_flow_dcr("source")))
    mutate(document["properties"])
    return write_dcr(tmp_path, "broken", document)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda p: p["streamDeclarations"]["Custom-In"]["columns"].append({"name": "X", "type": "float"}),
            "type 'float'",
        ),
        (
            lambda p: p["streamDeclarations"]["Custom-In"]["columns"].append({"name": "1bad", "type": "int"}),
            "invalid column name",
        ),
        (
            lambda p: p["streamDeclarations"]["Custom-In"]["columns"].append(
                {"name": "Level", "type": "int"}
            ),
            "declared twice",
        ),
        (lambda p: p["dataFlows"][0].update(streams=["Custom-Other"]), "not declared"),
        (lambda p: p["dataFlows"][0].update(outputStream="AppLogs_CL"), "must start with 'Custom-'"),
        (lambda p: p.pop("dataFlows"), "dataFlows"),
        (lambda p: p.pop("streamDeclarations"), "streamDeclarations"),
        (lambda p: p["dataFlows"][0].update(transformKql="source | take 10"), "'take'"),
    ],
)
def test_invalid_definitions_are_refused_with_the_file_and_the_part(tmp_path, mutate, message):
    path = broken(tmp_path, mutate)
    with pytest.raises(DcrError) as info:
        load_dcr(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_missing_or_non_json_file_is_refused(tmp_path):
    with pytest.raises(DcrError, match="cannot read"):
        load_dcr(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(DcrError, match="not valid JSON"):
        load_dcr(tmp_path / "bad.json")


def test_two_files_may_not_share_an_immutable_id(tmp_path):
    a = write_dcr(tmp_path, "a")
    b = write_dcr(tmp_path, "b")
    with pytest.raises(DcrError, match="already used"):
        load_dcrs([f"{a}=dcr-same", f"{b}=dcr-same"])
