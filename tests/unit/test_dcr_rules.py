"""The seed's table rules and the DCR limits, checked where a DCR is loaded: relay and emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from emulator.dcr import DcrError, load_dcr
from shared.config import ConfigError, parse_config
from shared.dcr_rules import MAX_DATA_FLOWS, dcr_problems

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = json.loads((ROOT / "infra/dcr/relay.json").read_text(encoding="utf-8"))


def dcr_with(**flow: Any) -> dict[str, Any]:
    dcr = json.loads(json.dumps(SHIPPED))
    dcr["properties"]["dataFlows"][0].update(flow)
    return dcr


@pytest.mark.parametrize(("output", "message"), [
    ("Custom-GitHubEvents", "outputStream 'Custom-GitHubEvents' is a custom table, whose name must end in _CL"),
    ("Microsoft-AzureActivity", "table AzureActivity is not among the Azure tables the Logs Ingestion API supports"),
    ("GitHubEvents_CL", "must start with 'Custom-' or 'Microsoft-'"),
])
def test_each_table_rule_names_the_file_the_flow_and_the_table(output, message):
    (problem,) = dcr_problems(dcr_with(outputStream=output), "relay.json")
    assert problem.startswith("relay.json: dataFlows[1] (Custom-GitHubEvents): ") and message in problem


def test_a_supported_azure_table_is_fine():
    assert dcr_problems(dcr_with(outputStream="Microsoft-Syslog"), "relay.json") == []


def test_limits_of_a_dcr():
    dcr = json.loads(json.dumps(SHIPPED))
    flow = dcr["properties"]["dataFlows"][0]
    dcr["properties"]["dataFlows"] = [dict(flow) for _ in range(MAX_DATA_FLOWS + 1)]
    dcr["properties"]["dataFlows"][0]["transformKql"] = "source | where " + " or ".join(["Level == 'x'"] * 1300)
    problems = dcr_problems(dcr, "big.json")
    assert "big.json: 11 data flows, over the limit of 10 per DCR" in problems
    assert any("transformKql has" in p and "over the limit of 15360" in p for p in problems)


def test_the_relay_refuses_a_routes_file_whose_dcr_breaks_a_rule_once_per_file(tmp_path):
    # GIVEN a DCR whose first flow writes to an unsupported Azure table, used by two routes
    (tmp_path / "bad.json").write_text(json.dumps(dcr_with(outputStream="Microsoft-AzureActivity")))
    routes = [{"name": name, "source": "http", "match": name, "endpoint": "https://relay.example.com",
               "dcr": "dcr-" + "0" * 32, "stream": "Custom-GitHubEvents", "schema": "bad.json"}
              for name in ("a", "b")]
    # WHEN the routes file is loaded THEN the problem is reported once, naming file, flow and table
    with pytest.raises(ConfigError) as raised:
        parse_config(yaml.safe_dump({"routes": routes}), {}, tmp_path)
    assert [p for p in raised.value.problems if "AzureActivity" in p] == [
        "bad.json: dataFlows[1] (Custom-GitHubEvents): outputStream 'Microsoft-AzureActivity': table AzureActivity "
        "is not among the Azure tables the Logs Ingestion API supports (shared/data/supported_microsoft_tables.txt)"]


def test_the_emulator_refuses_to_load_such_a_dcr(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(dcr_with(outputStream="Custom-GitHubEvents")))
    with pytest.raises(DcrError, match="whose name must end in _CL"):
        load_dcr(path)
