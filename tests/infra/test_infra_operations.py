"""The operators' side in infra/ (issue 16 item 5): workbook, alert rules wired to an action group given as a
parameter, and a diagnostic setting that sends the DCR's error logs to the workspace.

Their KQL lives in one place, queries/relay.kql: the Bicep loads the file and cuts each query out by its
``// query: <name>`` marker up to the next blank lines. These tests do the same cut in Python, so a query
renamed, removed or split by a blank line fails here rather than at deployment.
"""

from __future__ import annotations

import re

import pytest
from infra_checks import INFRA, MAIN_BICEP, ROOT, parse_bicep

KQL = ROOT / "queries" / "relay.kql"
ALERTS = INFRA / "app" / "alerts.bicep"
WORKBOOK = INFRA / "app" / "workbook.bicep"
DCR_DIAGNOSTICS = INFRA / "app" / "dcr-diagnostics.bicep"
CUT = "\n\n\n"
TABLES = ("AppTraces", "AppMetrics", "AppRequests", "DCRLogErrors", "customMetrics", "let ")


def cut(name: str, text: str | None = None) -> str:
    """What the Bicep's split(split(kql, '// query: NAME\\n')[1], '\\n\\n\\n')[0] yields."""
    text = KQL.read_text(encoding="utf-8") if text is None else text
    return text.split(f"// query: {name}\n")[1].split(CUT)[0]


def names_used() -> dict[str, list[str]]:
    alerts = re.findall(r"'// query: ([a-z0-9-]+)\\n'", ALERTS.read_text(encoding="utf-8"))
    workbook = re.findall(r"^\s+name: '([a-z0-9-]+)'$", WORKBOOK.read_text(encoding="utf-8"), re.MULTILINE)
    return {"alerts": alerts, "workbook": [n for n in workbook if n != "intro"]}


def test_the_modules_use_the_queries_of_relay_kql():
    used = names_used()
    assert sorted(used["alerts"]) == ["alert-deadletters", "alert-forbidden", "alert-function-failures",
                                      "alert-parked-backlog"]
    assert {"rows-by-route", "counts-add-up", "upload-latency", "upload-failures", "parked-waiting",
            "replay-lag", "dcr-errors"} <= set(used["workbook"])
    for path in (ALERTS, WORKBOOK):
        assert "loadTextContent('../../queries/relay.kql')" in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted({n for names in names_used().values() for n in names}))
def test_each_query_is_marked_once_and_cuts_to_a_whole_query(name):
    text = KQL.read_text(encoding="utf-8")
    assert text.count(f"// query: {name}\n") == 1, f"marker of {name!r} missing or repeated in queries/relay.kql"
    query = cut(name, text)
    code = [line for line in query.splitlines() if line.strip() and not line.lstrip().startswith("//")]
    assert code and code[0].startswith(TABLES), f"{name}: the cut starts with {code[:1]}"
    assert "\n\n" not in query.strip(), f"{name}: a blank line inside would cut the query short"


@pytest.mark.parametrize("name", ["alert-deadletters", "alert-forbidden", "alert-function-failures"])
def test_alert_queries_leave_the_time_range_to_the_rule(name):
    assert "ago(" not in cut(name)


def test_parked_backlog_threshold_is_the_parameter():
    assert "let threshold_minutes = 60;" in cut("alert-parked-backlog")
    source = ALERTS.read_text(encoding="utf-8")
    assert "'let threshold_minutes = 60;', 'let threshold_minutes = ${parkedAgeMinutes};'" in source


def test_each_alert_measures_and_splits_by_columns_its_query_makes():
    source = ALERTS.read_text(encoding="utf-8")
    blocks = re.findall(r"key: '([a-z-]+)'.*?query: (\w+)\s+measure: '(\w*)'.*?dimension: '(\w+)'", source, re.S)
    assert len(blocks) == 4
    variables = dict(re.findall(r"var (\w+Query) = .*?'// query: ([a-z-]+)\\n'", source, re.S))
    for key, variable, measure, dimension in blocks:
        query = cut(variables[variable])
        summarize = query[query.rindex("summarize"):]
        if measure:
            assert f"{measure} =" in summarize, (key, measure)
        assert dimension in summarize, (key, dimension)


def test_alerts_notify_the_action_group_given_as_a_parameter():
    tree = parse_bicep(ALERTS)
    assert "actionGroupId" in tree["parameters"]
    source = ALERTS.read_text(encoding="utf-8")
    assert "actionGroups: empty(actionGroupId) ? [] : [\n        actionGroupId\n      ]" in source
    main = MAIN_BICEP.read_text(encoding="utf-8")
    assert "actionGroupId: alertActionGroupId" in main
    assert "param alertActionGroupId string = ''" in main


def test_dcr_error_logs_go_to_the_workspace():
    source = DCR_DIAGNOSTICS.read_text(encoding="utf-8")
    assert "scope: dataCollectionRule" in source and "category: 'LogErrors'" in source
    assert "workspaceId: workspaceId" in source
    main = MAIN_BICEP.read_text(encoding="utf-8")
    block = main[main.index("module dcrDiagnostics"):]
    assert "dataCollectionRuleName: ingestion.outputs.dataCollectionRuleName" in block
    assert "workspaceId: monitoring.outputs.logAnalyticsId" in block


def test_the_dcr_errors_query_reads_the_table_the_setting_fills():
    code = [line for line in cut("dcr-errors").splitlines() if line and not line.startswith("//")]
    assert code[0] == "DCRLogErrors"
