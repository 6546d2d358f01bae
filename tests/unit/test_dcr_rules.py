"""The seed's table rules (custom tables end in _CL, supported Azure tables, columns added to an Azure table end
in _CF) and the DCR limits, checked where a DCR is loaded: relay and emulator."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from emulator.dcr import DcrError, load_dcr
from relay_cli.dcr_file import merge_stream
from relay_cli.dcr_infer import infer
from relay_cli.exit_codes import Exit
from relay_cli.main import main as relay_main
from shared.config import ConfigError, load_config, parse_config
from shared.dcr_rules import MAX_DATA_FLOWS, azure_table_columns, check_dcr, dcr_problems, supported_microsoft_tables
from shared.tables import TABLE_KEYS

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
    """GIVEN a flow to Microsoft-Syslog that writes Syslog's own columns and a _CF one WHEN checked THEN no problem."""
    transform = "source | project TimeGenerated, SyslogMessage = tostring(RawData), Repo_CF = Repo"
    assert dcr_problems(dcr_with(outputStream="Microsoft-Syslog", transformKql=transform), "relay.json") == []


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


# --- columns added to an Azure table end in _CF ------------------------------------------------------------

COLUMNS_FILE = ROOT / "shared/data/azure_table_columns.json"
COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def azure_dcr(columns: list[str], transform: str | None = None, table: str = "Syslog") -> dict[str, Any]:
    """One stream Custom-In (TimeGenerated datetime, the rest strings) and one flow to Microsoft-<table>."""
    flow: dict[str, Any] = {"streams": ["Custom-In"], "destinations": ["la"], "outputStream": f"Microsoft-{table}"}
    if transform is not None:
        flow["transformKql"] = transform
    declared = [{"name": n, "type": "datetime" if n == "TimeGenerated" else "string"} for n in columns]
    return {"kind": "Direct", "properties": {
        "streamDeclarations": {"Custom-In": {"columns": declared}},
        "destinations": {"logAnalytics": [{"workspaceResourceId": "/subscriptions/0/x", "name": "la"}]},
        "dataFlows": [flow]}}


FLOW = "d.json: dataFlows[1] (Custom-In): outputStream 'Microsoft-Syslog': "


@pytest.mark.parametrize(("columns", "transform", "column", "origin"), [
    (["TimeGenerated", "Computer", "Repo"], None, "Repo", "a column of input stream Custom-In"),
    (["TimeGenerated", "Computer", "Repo"], "source", "Repo", "a column of input stream Custom-In"),
    (["TimeGenerated", "Raw"], "source | project-away Raw | extend Level = 'x'", "Level",
     "created by extend in transformKql"),
    (["TimeGenerated", "Raw"], "source | project TimeGenerated, Level = tostring(Raw)", "Level",
     "created by project in transformKql"),
    (["TimeGenerated", "Raw"], "source | project TimeGenerated, Raw", "Raw", "a column of input stream Custom-In"),
    (["TimeGenerated", "Raw"], "source | project-rename Message = Raw", "Message",
     "renamed by project-rename in transformKql"),
])
def test_a_column_added_to_an_azure_table_without_cf_is_refused(columns, transform, column, origin):
    """GIVEN a flow to Microsoft-Syslog that writes a column Syslog does not have, without _CF, in each form the
    rule reads (the stream's columns as they are, extend, project X = ..., project Y, project-rename)
    WHEN checked THEN that column is the one problem, naming the file, the flow, its outputStream and the column."""
    assert dcr_problems(azure_dcr(columns, transform), "d.json") == [
        f"{FLOW}column {column!r} ({origin}) is not a standard column of Syslog: a column added to an Azure "
        f"table must end in _CF ({column}_CF)"]


def test_standard_columns_and_cf_columns_pass():
    """GIVEN a flow writing Syslog's own columns, the standard columns every table has, and _CF columns
    (by source, extend, project and project-rename) WHEN checked THEN nothing is wrong and nothing is warned."""
    dcr = azure_dcr(["TimeGenerated", "Computer", "HostName", "Repo_CF", "Raw"],
                    "let cut = 10;\nsource // keep what Syslog has\n| where Computer != 'x'\n"
                    "| extend SyslogMessage = tostring(Raw), _ResourceId = '/subscriptions/0', Level_CF = 'a|b'\n"
                    "| project-rename Host_CF = HostName | project-away Raw")
    check = check_dcr(dcr, "d.json")
    assert (check.problems, check.warnings) == ([], [])


def test_a_column_differing_from_a_standard_one_in_case_says_so():
    """GIVEN a stream column 'computer' written to Syslog, which has 'Computer' WHEN checked THEN the problem
    says names are case-sensitive."""
    (problem,) = dcr_problems(azure_dcr(["TimeGenerated", "computer"]), "d.json")
    assert problem.endswith("(computer_CF); the table has 'Computer' (names are case-sensitive)")


def test_a_table_whose_columns_are_not_shipped_is_warned_not_refused():
    """GIVEN a flow writing a column without _CF to StorageInsightsDailyMetrics, a supported table whose standard
    columns are not shipped WHEN checked THEN it is no problem, and a warning says the rule was not checked."""
    check = check_dcr(azure_dcr(["TimeGenerated", "Repo"], table="StorageInsightsDailyMetrics"), "d.json")
    assert check.problems == []
    assert check.warnings == [
        "d.json: dataFlows[1] (Custom-In): outputStream 'Microsoft-StorageInsightsDailyMetrics': columns added to "
        "StorageInsightsDailyMetrics are not checked for the _CF suffix: its standard columns are not shipped "
        "(shared/data/azure_table_columns.json: no Azure Monitor Logs reference page (the Supported tables list "
        "names it without a link))"]


@pytest.mark.parametrize(("transform", "problems", "warning"), [
    ("source | parse Raw with * 'id=' Id ' ' * | extend Level = 'x'", ["Raw", "Level"],
     "transformKql: operator 'parse' (the columns it creates are not read)"),
    ("source | mystery-op Raw | extend Level = 'x'", ["Level"],
     "transformKql: operator 'mystery-op' (the columns before it are not followed past it)"),
    ("source | extend tostring(Raw) | project-away Raw", [],
     "transformKql: extend 'tostring(Raw)' (a column named by the service)"),
    ("print x = 1", [], "transformKql: does not start with 'source' (none of it is read)"),
])
def test_kql_the_rule_cannot_read_is_warned_never_an_error(transform, problems, warning):
    """GIVEN a transform with parts the rule does not read WHEN checked THEN those parts are a warning, not a
    failure, and the columns it can read are still checked."""
    check = check_dcr(azure_dcr(["TimeGenerated", "Raw"], transform), "d.json")
    assert [p.split("column ", 1)[1].split(" ", 1)[0].strip("'") for p in check.problems] == problems
    assert check.warnings == [f"{FLOW}the _CF rule is not checked for all columns: {warning}"]


def test_the_shipped_table_columns_are_well_formed():
    """GIVEN shared/data/azure_table_columns.json WHEN read THEN it names its source, covers only tables of
    supported_microsoft_tables.txt (each either with its columns and page date, or in not_shipped with a reason),
    and lists valid column names, each once, with the standard columns every table has."""
    document = json.loads(COLUMNS_FILE.read_text(encoding="utf-8"))
    assert "learn.microsoft.com/azure/azure-monitor/reference/tables" in " ".join(document["source"])
    supported = supported_microsoft_tables()
    tables, not_shipped = document["tables"], document["not_shipped"]
    assert set(tables) <= supported and set(not_shipped) <= supported and not set(tables) & set(not_shipped)
    assert set(tables) | set(not_shipped) == supported
    assert set(document["page_dates"]) == set(tables)
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", date) for date in document["page_dates"].values())
    assert all(reason for reason in not_shipped.values())
    every = document["every_table"]["columns"]
    assert {"TenantId", "TimeGenerated", "Type", "_ResourceId", "_SubscriptionId"} <= set(every)
    for table, columns in [*tables.items(), ("every_table", every)]:
        assert columns and all(COLUMN_NAME.fullmatch(c) for c in columns), table
        assert len(columns) == len(set(columns)), table
        assert not any(c.endswith("_CF") for c in columns), table
    catalog = azure_table_columns()
    assert catalog.standard("Syslog") >= {"SyslogMessage", "TenantId"} and catalog.standard("UCDOStatus") is not None
    assert catalog.standard("StorageInsightsDailyMetrics") is None


def test_the_shipped_dcr_files_and_routes_file_pass_every_rule(relay_env):
    """GIVEN infra/dcr/*.json and the shipped relay.yaml WHEN checked and loaded THEN no problem and no warning."""
    for path in sorted((ROOT / "infra/dcr").glob("*.json")):
        if path.name.endswith(".tables.json"):
            continue
        check = check_dcr(json.loads(path.read_text(encoding="utf-8")), path.name)
        assert (path.name, check.problems, check.warnings) == (path.name, [], [])
    assert load_config(ROOT / "relay.yaml", relay_env, base=ROOT).warnings == ()


def test_a_tables_file_declares_no_columns_for_the_rule_to_check():
    """GIVEN the table plans file beside a DCR (shared/tables.py) WHEN its keys are read THEN it holds plans and
    retention only: no columns are added to an Azure table there, so the _CF rule has nothing to check in it
    (columns of custom tables come from the DCR's streams; infra/app/tables.bicep deploys Custom- tables only).
    Should it ever declare columns, this fails to say the rule must be applied there too."""
    assert sorted(TABLE_KEYS) == ["plan", "retentionInDays", "totalRetentionInDays"]
    plans = json.loads((ROOT / "infra/dcr/relay.tables.json").read_text(encoding="utf-8"))["tables"]
    assert all(set(entry) <= TABLE_KEYS for entry in plans.values())


def test_relay_dcr_init_for_an_azure_table_writes_a_dcr_that_passes_the_rule():
    """GIVEN samples inferred for the Azure table CommonSecurityLog (relay dcr init adds _CF to the columns it
    generates) WHEN merged into a new DCR and checked THEN the _CF rule holds."""
    samples = [({"DeviceVendor": "acme", "level": "info", "count": 3, "when": "2024-05-01T10:00:00Z"}, False)]
    merged = merge_stream(None, "Custom-Acme", "CommonSecurityLog", infer(samples, azure_table=True, time_field="when"))
    check = check_dcr(merged.document, "acme.json")
    assert (check.problems, check.warnings) == ([], [])


def test_the_relay_refuses_a_routes_file_whose_dcr_adds_a_column_without_cf_and_warns_what_it_cannot_check(
        tmp_path):
    """GIVEN two DCR files used by routes: one adds Repo to Syslog, one writes to a table without shipped columns
    WHEN the routes file is loaded THEN the first is a problem; the second is a warning, carried with the error
    (and on the config once the first is fixed)."""
    (tmp_path / "bad.json").write_text(json.dumps(azure_dcr(["TimeGenerated", "Repo"])))
    (tmp_path / "unknown.json").write_text(
        json.dumps(azure_dcr(["TimeGenerated", "Repo"], table="StorageInsightsDailyMetrics")))
    routes = [{"name": name, "source": "http", "match": name, "endpoint": "https://relay.example.com",
               "dcr": "dcr-" + "0" * 32, "stream": "Custom-In", "schema": schema}
              for name, schema in (("a", "bad.json"), ("b", "unknown.json"))]
    with pytest.raises(ConfigError) as raised:
        parse_config(yaml.safe_dump({"routes": routes}), {}, tmp_path)
    assert [p for p in raised.value.problems if "_CF" in p] == [
        "bad.json: dataFlows[1] (Custom-In): outputStream 'Microsoft-Syslog': column 'Repo' (a column of input "
        "stream Custom-In) is not a standard column of Syslog: a column added to an Azure table must end in _CF "
        "(Repo_CF)"]
    assert len(raised.value.warnings) == 1 and "StorageInsightsDailyMetrics" in raised.value.warnings[0]
    (tmp_path / "bad.json").write_text(json.dumps(azure_dcr(["TimeGenerated", "Repo_CF"])))
    config = parse_config(yaml.safe_dump({"routes": routes}), {}, tmp_path)
    assert config.warnings == tuple(raised.value.warnings)


def test_relay_validate_prints_the_warning_and_passes(tmp_path, capsys, monkeypatch):
    """GIVEN a routes file whose DCR writes to a supported table with no shipped columns WHEN relay validate runs
    THEN it passes (exit 0) and says on stderr that the _CF rule was not checked there."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.json").write_text(json.dumps(azure_dcr(["TimeGenerated", "Repo"], table="ASimDnsAuditLogs")))
    config = tmp_path / "relay.yaml"
    config.write_text(yaml.safe_dump({"routes": [{
        "name": "a", "source": "http", "match": "a", "endpoint": "https://relay.example.com",
        "dcr": "dcr-" + "0" * 32, "stream": "Custom-In", "schema": str(tmp_path / "d.json")}]}))
    assert relay_main(["validate", "--config", str(config)]) == Exit.OK
    err = capsys.readouterr().err
    assert err.startswith("warning: ") and "columns added to ASimDnsAuditLogs are not checked for the _CF suffix" in err
    # AND relay route, which loads the same file, says it too
    sample = tmp_path / "sample.json"
    sample.write_text('{"Repo": "x"}')
    assert relay_main(["route", str(sample), "--source", "http", "--match", "a", "--config", str(config)]) == Exit.OK
    assert "columns added to ASimDnsAuditLogs are not checked" in capsys.readouterr().err


def test_the_emulator_refuses_a_dcr_adding_a_column_without_cf_and_keeps_the_warnings(tmp_path):
    """GIVEN a DCR adding Repo to Syslog, and one writing to a table without shipped columns WHEN the emulator
    loads them THEN the first is refused naming the column; the second loads, with its warning on the Dcr."""
    bad, unknown = tmp_path / "bad.json", tmp_path / "unknown.json"
    bad.write_text(json.dumps(azure_dcr(["TimeGenerated", "Repo"], "source | extend Host = 'h'")))
    unknown.write_text(json.dumps(azure_dcr(["TimeGenerated", "Repo"], table="StorageInsightsDailyMetrics")))
    with pytest.raises(DcrError, match=r"column 'Host' \(created by extend in transformKql\) is not a standard"):
        load_dcr(bad)
    (warning,) = load_dcr(unknown).warnings
    assert "columns added to StorageInsightsDailyMetrics are not checked" in warning


def test_every_worker_start_logs_what_the_rules_could_not_check(relay_env, monkeypatch, caplog):
    """GIVEN a routes file whose load leaves a warning WHEN the relay is built (a worker start) THEN the warning is
    logged, and the relay is built all the same."""
    from shared import runtime

    config = load_config(ROOT / "relay.yaml", relay_env, base=ROOT)
    monkeypatch.setattr(runtime, "load_config", lambda *_: dataclasses.replace(config, warnings=("d.json: not checked",)))
    with caplog.at_level("WARNING", logger="relay"):
        relay = runtime.Relay.from_env({**relay_env, "RELAY_CONFIG": str(ROOT / "relay.yaml")}, ROOT)
    try:
        assert [r.getMessage() for r in caplog.records if "not checked" in r.getMessage()] == [
            "routes file: d.json: not checked"]
    finally:
        relay.close()


def test_relay_dcr_init_fills_an_azure_tables_own_columns_and_suffixes_the_rest():
    """GIVEN samples for CommonSecurityLog, one key its own standard column WHEN inferred for that table THEN the
    standard column keeps its name (it fills it), the others get _CF, and the DCR passes the rule."""
    samples = [({"DeviceVendor": "acme", "level": "info", "when": "2024-05-01T10:00:00Z"}, False)]
    inference = infer(samples, azure_table="CommonSecurityLog", time_field="when")
    assert [column.name for column in inference.columns] == ["TimeGenerated", "DeviceVendor", "Level_CF"]
    assert any("fills DeviceVendor, a standard column of CommonSecurityLog" in w for w in inference.warnings)
    check = check_dcr(merge_stream(None, "Custom-Acme", "CommonSecurityLog", inference).document, "acme.json")
    assert (check.problems, check.warnings) == ([], [])
