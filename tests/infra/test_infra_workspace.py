"""Bring your own workspace and table plans (issue 15): the Bicep in both workspace modes.

Seeds: the DCR "must match the region of the Log Analytics workspace"; tables API: plans
Analytics, Basic, Auxiliary. shared/tables.py holds the plan rules the relay checks.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from infra_checks import INFRA, MAIN_BICEP, BicepEvaluator, parse_bicep, role_assignments

from shared.tables import load_table_plans, output_tables, tables_file_for

MONITORING = INFRA / "app" / "monitoring.bicep"
TABLES = INFRA / "app" / "tables.bicep"
RBAC = INFRA / "app" / "rbac.bicep"
RELAY_DCR = INFRA / "dcr" / "relay.json"
EXISTING = ("/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-sentinel/providers/"
            "Microsoft.OperationalInsights/workspaces/log-sentinel")


def condition_of(path: Path, symbol: str, params: dict[str, object]) -> object:
    evaluator = BicepEvaluator(path, params)
    return evaluator.value(evaluator.tree["resources"][symbol]["config"]["condition"], {})


@pytest.mark.parametrize(("existing", "created"), [("", True), (EXISTING, False)])
def test_workspace_is_created_only_without_an_existing_one(existing: str, created: bool) -> None:
    # GIVEN the monitoring module WHEN given (or not) an existing workspace id THEN it creates one or none
    params = {"logAnalyticsName": "log-new", "applicationInsightsName": "appi", "location": "westeurope",
              "existingWorkspaceId": existing}
    assert condition_of(MONITORING, "logAnalytics", params) is created


def test_existing_workspace_is_read_where_it_lives_and_sets_the_dcr_region() -> None:
    tree = parse_bicep(MONITORING)
    scope = json.dumps(tree["resources"]["workspace"]["config"]["scope"])
    assert "workspaceIdParts" in scope  # its own subscription and resource group, not the relay's
    outputs = json.dumps(tree["outputs"]["logAnalyticsLocation"])
    assert "workspace" in outputs and "location" in outputs
    main = MAIN_BICEP.read_text(encoding="utf-8")
    assert "location: monitoring.outputs.logAnalyticsLocation" in main  # the DCR follows the workspace
    assert "existingWorkspaceId: existingLogAnalyticsWorkspaceId" in main


def test_tables_go_to_the_workspace_resource_group() -> None:
    module = parse_bicep(INFRA / "app" / "ingestion.bicep")["modules"]["tables"]
    assert module["detail"]["path"] == "tables.bicep"
    assert "workspaceIdParts" in json.dumps(module["config"]["scope"])


def test_azd_environment_variable_feeds_the_parameter() -> None:
    given = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert given["existingLogAnalyticsWorkspaceId"] == {"value": "${EXISTING_LOG_ANALYTICS_WORKSPACE_ID}"}
    assert parse_bicep(MAIN_BICEP)["parameters"]["existingLogAnalyticsWorkspaceId"]["default"] == ""


def test_no_role_is_granted_on_an_existing_workspace() -> None:
    # GIVEN the role assignments WHEN the workspace is someone else's THEN the relay's identity has none on it,
    # and the developer's reader role is only granted on a workspace this deployment created
    assignments, _ = role_assignments(RBAC)
    assert not [a for a in assignments if a.scope_type.startswith("Microsoft.OperationalInsights")
                and a.principal == "appPrincipalId"]
    params = {"appPrincipalId": "a", "developerPrincipalId": "d", "logAnalyticsName": ""}
    assert condition_of(RBAC, "developerLogAnalyticsReader", params) is False
    assert condition_of(RBAC, "developerLogAnalyticsReader", {**params, "logAnalyticsName": "log-new"}) is True
    assert "logAnalyticsName string = createWorkspace ? logAnalytics.name : ''" in MONITORING.read_text()


# --- table plans ------------------------------------------------------------------------------


def test_plans_file_is_valid_and_names_only_tables_a_flow_writes() -> None:
    plans = load_table_plans(tables_file_for(RELAY_DCR))
    dcr = json.loads(RELAY_DCR.read_text(encoding="utf-8"))
    written = {table for stream in dcr["properties"]["streamDeclarations"] for table in output_tables(RELAY_DCR, stream)}
    assert plans and set(plans) <= written


def deployed_tables(folder: Path, plans: dict[str, object]) -> dict[str, dict[str, object]]:
    """Table name -> properties, evaluated from the real tables.bicep with a plans document."""
    shutil.copy(TABLES, folder / "tables.bicep")
    shutil.copy(RELAY_DCR, folder / "dcr.json")
    (folder / "plans.json").write_text(json.dumps(plans), encoding="utf-8")
    (folder / "main.bicep").write_text(
        "var plans = loadJsonContent('plans.json')\n"
        "module tables 'tables.bicep' = {\n  name: 'tables'\n  params: {\n    workspaceName: 'log'\n"
        "    dcrDefinition: loadJsonContent('dcr.json')\n    tablePlans: plans.tables\n  }\n}\n",
        encoding="utf-8",
    )
    evaluator = next(iter(BicepEvaluator(folder / "main.bicep").modules()))
    return {table.value("name"): {key: table.value("properties", key)
                                  for key in ("plan", "retentionInDays", "totalRetentionInDays")}
            for table in evaluator.resources("Microsoft.OperationalInsights/workspaces/tables")}


def test_each_table_is_created_with_the_plan_of_the_plans_file(tmp_path: Path) -> None:
    # GIVEN a plans file with an Auxiliary and a Basic table WHEN the Bicep is evaluated
    tables = deployed_tables(tmp_path, {"tables": {
        "AppLogs_CL": {"plan": "Auxiliary", "totalRetentionInDays": 365},
        "CloudEvents_CL": {"plan": "Basic", "retentionInDays": 30},
    }})
    # THEN those tables get their plan and retention; the others are Analytics with the workspace retention
    assert tables["AppLogs_CL"] == {"plan": "Auxiliary", "retentionInDays": -1, "totalRetentionInDays": 365}
    assert tables["CloudEvents_CL"] == {"plan": "Basic", "retentionInDays": 30, "totalRetentionInDays": -1}
    assert tables["GitHubEvents_CL"] == {"plan": "Analytics", "retentionInDays": -1, "totalRetentionInDays": -1}


def test_main_bicep_deploys_the_shipped_plans_file() -> None:
    text = MAIN_BICEP.read_text(encoding="utf-8")
    assert "loadJsonContent('dcr/relay.tables.json')" in text
    assert "tablePlans: relayTablePlans.tables" in text
