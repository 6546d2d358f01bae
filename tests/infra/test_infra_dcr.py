"""Every DCR definition in infra/dcr obeys the Logs Ingestion API's rules, and the custom tables the
Bicep deploys have exactly the columns the DCR's data flows output.

Rules: DESIGN.md section 4 and the seed page "Logs Ingestion API in Azure Monitor" (streams
Custom-, outputStream Custom-<table>_CL or a supported Microsoft-<table>, column names, reserved
names, at most 500 columns, the seven stream types).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from infra_checks import (
    DCR_DIR,
    INFRA,
    MAIN_BICEP,
    ROOT,
    check_dcr_rules,
    check_tables_match_dcr,
    supported_microsoft_tables,
    transform_output_columns,
)

DCR_FILES = sorted(path for path in DCR_DIR.glob("*.json") if not path.name.endswith(".tables.json"))
SUPPORTED = supported_microsoft_tables()
RELAY_DCR = json.loads((DCR_DIR / "relay.json").read_text(encoding="utf-8"))


def broken(mutate: Any) -> list[str]:
    """Problems of a copy of relay.json changed by ``mutate(properties)``."""
    dcr = copy.deepcopy(RELAY_DCR)
    mutate(dcr["properties"])
    return check_dcr_rules(dcr, "broken.json")


def first_stream(properties: dict[str, Any]) -> dict[str, Any]:
    return properties["streamDeclarations"]["Custom-GitHubEvents"]


def test_there_is_a_dcr_to_check() -> None:
    assert DCR_FILES, "infra/dcr holds no DCR definition"


@pytest.mark.parametrize("path", DCR_FILES, ids=[path.name for path in DCR_FILES])
def test_dcr_obeys_the_service_rules(path: Path) -> None:
    dcr = json.loads(path.read_text(encoding="utf-8"))
    assert check_dcr_rules(dcr, path.name) == []


def test_supported_table_list_is_the_seed_list() -> None:
    assert len(SUPPORTED) == 51
    assert {"Syslog", "CommonSecurityLog", "SecurityEvent", "WindowsEvent", "ASimDnsAuditLogs"} <= SUPPORTED
    # GIVEN the seed page beside the repository (../shared/seeds) WHEN its "Supported tables" list is read
    seeds = sorted((ROOT.parent / "shared" / "seeds").glob("*.txt"))
    if not seeds:
        pytest.skip("the seed pages are not beside this checkout")
    text = next(t for t in (p.read_text(encoding="utf-8") for p in seeds) if "## Supported tables" in t)
    section = text.split("## Supported tables", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\* \[?([A-Za-z0-9_]+)\]?(?:\(|<br>)", section, flags=re.M))
    # THEN the shipped list is exactly the seed's
    assert listed == SUPPORTED


# --- one deliberately broken DCR per rule: the message must name the problem -----------------


def test_stream_name_must_start_with_custom() -> None:
    def mutate(p: dict[str, Any]) -> None:
        p["streamDeclarations"]["MyStream"] = p["streamDeclarations"].pop("Custom-CloudEvents")

    problems = broken(mutate)
    assert any("stream 'MyStream' must start with 'Custom-'" in problem for problem in problems)
    # and the flow that still names the old stream is caught too
    assert any("stream 'Custom-CloudEvents' is not declared" in problem for problem in problems)


def test_flow_destination_must_be_declared() -> None:
    problems = broken(lambda p: p["dataFlows"][0]["destinations"].__setitem__(0, "elsewhere"))
    assert any("destination 'elsewhere' is not declared" in problem for problem in problems)


def test_exactly_one_log_analytics_destination() -> None:
    problems = broken(lambda p: p["destinations"]["logAnalytics"].append({"name": "second"}))
    assert any("exactly one logAnalytics destination" in problem for problem in problems)


def test_output_stream_prefix() -> None:
    problems = broken(lambda p: p["dataFlows"][0].__setitem__("outputStream", "GitHubEvents_CL"))
    assert any(
        "'GitHubEvents_CL' must start with 'Custom-' or 'Microsoft-'" in problem for problem in problems
    )


def test_custom_output_table_ends_in_cl() -> None:
    problems = broken(lambda p: p["dataFlows"][0].__setitem__("outputStream", "Custom-GitHubEvents"))
    assert any("custom table, whose name must end in _CL" in problem for problem in problems)


def test_microsoft_table_must_be_supported() -> None:
    problems = broken(lambda p: p["dataFlows"][0].__setitem__("outputStream", "Microsoft-AzureActivity"))
    assert any("table AzureActivity is not among the Azure tables" in problem for problem in problems)
    assert broken(lambda p: p["dataFlows"][0].__setitem__("outputStream", "Microsoft-Syslog")) == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("1stColumn", "breaks the naming rule"),
        ("_Private", "breaks the naming rule"),
        ("Has-Dash", "breaks the naming rule"),
        ("A" * 46, "breaks the naming rule"),
        ("TenantId", "reserved column name"),
        ("Type", "reserved column name"),
        ("id", "reserved column name"),
    ],
)
def test_column_name_rules(name: str, expected: str) -> None:
    problems = broken(lambda p: first_stream(p)["columns"].append({"name": name, "type": "string"}))
    assert any(f"column {name!r}" in problem and expected in problem for problem in problems), problems


def test_column_name_of_45_characters_is_fine() -> None:
    assert broken(lambda p: first_stream(p)["columns"].append({"name": "A" * 45, "type": "string"})) == []


def test_column_type_must_be_a_stream_type() -> None:
    problems = broken(lambda p: first_stream(p)["columns"].append({"name": "When", "type": "timestamp"}))
    assert any("column 'When' has type 'timestamp'" in problem for problem in problems)


def test_at_most_500_columns() -> None:
    def mutate(p: dict[str, Any]) -> None:
        first_stream(p)["columns"] += [{"name": f"Extra{i}", "type": "string"} for i in range(500)]

    assert any("more than the 500 a table can have" in problem for problem in broken(mutate))


def test_duplicate_column() -> None:
    problems = broken(lambda p: first_stream(p)["columns"].append({"name": "repo", "type": "string"}))
    assert any("column 'repo' is declared twice" in problem for problem in problems)


def test_custom_table_needs_time_generated() -> None:
    def mutate(p: dict[str, Any]) -> None:
        p["dataFlows"][0]["transformKql"] = "source | project-away TimeGenerated"

    assert any("needs a TimeGenerated column of type datetime" in problem for problem in broken(mutate))


def test_projected_column_must_exist_in_the_stream() -> None:
    def mutate(p: dict[str, Any]) -> None:
        p["dataFlows"][0]["transformKql"] = "source | project TimeGenerated, Nope"

    assert any("project names column 'Nope'" in problem for problem in broken(mutate))


def test_kind_must_be_direct() -> None:
    dcr = copy.deepcopy(RELAY_DCR)
    dcr["kind"] = "Linux"
    assert any("kind 'Direct'" in problem for problem in check_dcr_rules(dcr, "broken.json"))


# --- transformKql: the output columns of the transforms the relay's DCRs use ------------------

STREAM = [
    {"name": "TimeGenerated", "type": "datetime"},
    {"name": "Level", "type": "string"},
    {"name": "Bytes", "type": "long"},
]


def test_source_and_where_keep_the_stream_columns() -> None:
    assert transform_output_columns('source | where Level != "trace"', STREAM) == STREAM


def test_project_keeps_the_named_columns_in_order() -> None:
    assert transform_output_columns("source | project Bytes, TimeGenerated", STREAM) == [STREAM[2], STREAM[0]]


def test_extend_and_rename_take_their_types() -> None:
    columns = transform_output_columns(
        "source | extend Kb = toreal(Bytes) | project TimeGenerated, Severity = Level, Kb", STREAM
    )
    assert columns == [
        {"name": "TimeGenerated", "type": "datetime"},
        {"name": "Severity", "type": "string"},
        {"name": "Kb", "type": "real"},
    ]


def test_unknown_operator_is_reported_not_guessed() -> None:
    with pytest.raises(ValueError, match="operator 'summarize' is not understood"):
        transform_output_columns("source | summarize count() by Level", STREAM)


# --- tables in the Bicep vs the DCR's output columns ------------------------------------------


def test_bicep_tables_match_the_dcr_output_columns() -> None:
    assert check_tables_match_dcr(MAIN_BICEP) == []


def _template_with(tmp_path: Path, dcr: dict[str, Any], overrides: dict[str, Any] | None = None) -> Path:
    """A main.bicep that deploys the real infra/app/ingestion.bicep with a given DCR."""
    (tmp_path / "app").mkdir(parents=True)
    shutil.copy(INFRA / "app" / "ingestion.bicep", tmp_path / "app" / "ingestion.bicep")
    shutil.copy(INFRA / "app" / "tables.bicep", tmp_path / "app" / "tables.bicep")
    (tmp_path / "dcr.json").write_text(json.dumps(dcr), encoding="utf-8")
    override_param = f"\n    tableColumnOverrides: {_bicep_object(overrides)}" if overrides else ""
    (tmp_path / "main.bicep").write_text(
        "module ingestion 'app/ingestion.bicep' = {\n"
        "  name: 'ingestion'\n"
        "  params: {\n"
        "    location: 'westeurope'\n"
        "    workspaceId: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/log'\n"
        "    dcrDefinition: loadJsonContent('dcr.json')\n"
        f"    dataCollectionRuleName: 'dcr-test'{override_param}\n"
        "  }\n"
        "}\n",
        encoding="utf-8",
    )
    return tmp_path / "main.bicep"


def _bicep_object(value: Any) -> str:
    if isinstance(value, dict):
        return "{\n" + "\n".join(f"'{key}': {_bicep_object(item)}" for key, item in value.items()) + "\n}"
    if isinstance(value, list):
        return "[\n" + "\n".join(_bicep_object(item) for item in value) + "\n]"
    return f"'{value}'"


def test_a_transform_that_drops_a_column_is_caught(tmp_path: Path) -> None:
    dcr = copy.deepcopy(RELAY_DCR)
    dcr["properties"]["dataFlows"][2]["transformKql"] = "source | project-away Host"
    problems = check_tables_match_dcr(_template_with(tmp_path, dcr))
    assert problems == ["table AppLogs_CL: column Host is in the Bicep but dcr.json does not output it"]


def test_a_transform_that_adds_a_column_is_caught(tmp_path: Path) -> None:
    dcr = copy.deepcopy(RELAY_DCR)
    dcr["properties"]["dataFlows"][2]["transformKql"] = "source | extend Region = tostring(Properties.region)"
    problems = check_tables_match_dcr(_template_with(tmp_path, dcr))
    assert problems == [
        "table AppLogs_CL: column Region (string) is output by dcr.json but missing in the Bicep"
    ]


def test_table_column_overrides_fix_such_a_transform(tmp_path: Path) -> None:
    dcr = copy.deepcopy(RELAY_DCR)
    dcr["properties"]["dataFlows"][2]["transformKql"] = "source | project TimeGenerated, Message"
    overrides = {
        "AppLogs_CL": [{"name": "TimeGenerated", "type": "datetime"}, {"name": "Message", "type": "string"}]
    }
    assert check_tables_match_dcr(_template_with(tmp_path, dcr)) != []
    assert check_tables_match_dcr(_template_with(tmp_path / "fixed", dcr, overrides)) == []


def test_a_wrong_override_type_is_caught(tmp_path: Path) -> None:
    overrides = {"AppLogs_CL": [*RELAY_DCR["properties"]["streamDeclarations"]["Custom-AppLogs"]["columns"]]}
    overrides["AppLogs_CL"] = [dict(column) for column in overrides["AppLogs_CL"]]
    overrides["AppLogs_CL"][7]["type"] = "string"  # StatusCode is int in the stream
    problems = check_tables_match_dcr(_template_with(tmp_path, RELAY_DCR, overrides))
    assert problems == ["table AppLogs_CL: column StatusCode is string in the Bicep but int in dcr.json"]


def test_a_table_no_flow_writes_to_is_caught(tmp_path: Path) -> None:
    (tmp_path / "dcr.json").write_text(json.dumps(RELAY_DCR), encoding="utf-8")
    (tmp_path / "main.bicep").write_text(
        "var dcr = loadJsonContent('dcr.json')\n"
        "resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {\n"
        "  name: 'log-test'\n"
        "}\n"
        "resource orphan 'Microsoft.OperationalInsights/workspaces/tables@2022-10-01' = {\n"
        "  parent: workspace\n"
        "  name: 'Orphan_CL'\n"
        "  properties: {\n"
        "    schema: {\n"
        "      name: 'Orphan_CL'\n"
        "      columns: dcr.properties.streamDeclarations['Custom-AppLogs'].columns\n"
        "    }\n"
        "  }\n"
        "}\n",
        encoding="utf-8",
    )
    problems = check_tables_match_dcr(tmp_path / "main.bicep")
    assert (
        "table Orphan_CL: deployed by the Bicep but no data flow of a deployed DCR writes to it" in problems
    )
    assert "table GitHubEvents_CL: dcr.json writes to it but the Bicep does not deploy it" in problems
