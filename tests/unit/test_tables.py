"""Table plans beside the DCR file (shared/tables.py) and the auxiliary check of routes (shared/config.py).

Service facts: plans Analytics, Basic, Auxiliary; Auxiliary tables refuse a call whose TimeGenerated
spans 30 minutes (RecordsTimeRangeIsMoreThan30Minutes), hence routes to them need auxiliary: true.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from shared.config import ConfigError, parse_config
from shared.tables import TablePlan, TablesError, load_table_plans, parse_table, tables_file_for

REPO_ROOT = Path(__file__).resolve().parents[2]
DCR_ID = "dcr-682fbae20f3428bcec4c117c57bea18d"


def test_plans_file_sits_beside_the_dcr_file():
    assert tables_file_for(Path("infra/dcr/relay.json")) == Path("infra/dcr/relay.tables.json")


def test_absent_plans_file_means_analytics(tmp_path):
    assert load_table_plans(tmp_path / "none.tables.json") == {}


@pytest.mark.parametrize(("raw", "plan"), [
    ({}, TablePlan()),
    ({"plan": "Basic"}, TablePlan("Basic")),
    ({"plan": "Auxiliary", "retentionInDays": 30, "totalRetentionInDays": 365}, TablePlan("Auxiliary", 30, 365)),
    ({"plan": "Analytics", "retentionInDays": 90, "totalRetentionInDays": 4383}, TablePlan("Analytics", 90, 4383)),
])
def test_valid_entries(raw, plan):
    assert parse_table("T_CL", raw, "f") == plan


@pytest.mark.parametrize(("raw", "message"), [
    ([], "must be an object"),
    ({"plan": "Cheap"}, "plan 'Cheap' is not one of Analytics, Basic, Auxiliary"),
    ({"tier": "Basic"}, "unknown key 'tier'"),
    ({"retentionInDays": "30"}, "retentionInDays: '30' must be a whole number of days"),
    ({"retentionInDays": 2}, "retentionInDays 2 must be -1 or 4-730 on the Analytics plan"),
    ({"plan": "Basic", "retentionInDays": 60}, "retentionInDays is fixed at 30 on the Basic plan"),
    ({"retentionInDays": 90, "totalRetentionInDays": 60}, "totalRetentionInDays 60 must be -1 or between"),
    ({"totalRetentionInDays": 5000}, "totalRetentionInDays 5000 must be -1 or between"),
])
def test_bad_entries_name_the_table_and_key(raw, message):
    with pytest.raises(TablesError, match="f: table T_CL: " + message.replace("(", r"\(")):
        parse_table("T_CL", raw, "f")


@pytest.mark.parametrize(("content", "message"), [
    ("{nope", "is not valid JSON"),
    ("[]", "must be an object with a 'tables' object"),
])
def test_bad_files_are_named(tmp_path, content, message):
    path = tmp_path / "d.tables.json"
    path.write_text(content)
    with pytest.raises(TablesError, match=message):
        load_table_plans(path)


def write_dcr(folder: Path, plan: str | None) -> Path:
    dcr = json.loads((REPO_ROOT / "infra" / "dcr" / "relay.json").read_text())
    path = folder / "d.json"
    path.write_text(json.dumps(dcr))
    if plan is not None:
        (folder / "d.tables.json").write_text(json.dumps({"tables": {"AppLogs_CL": {"plan": plan}}}))
    return path


def load_route(folder: Path, **extra: object):
    route = {"name": "a", "source": "http", "match": "a", "endpoint": "https://x.example", "dcr": DCR_ID,
             "stream": "Custom-AppLogs", "schema": "d.json", **extra}
    return parse_config(yaml.safe_dump({"routes": [route]}), {}, folder)


@pytest.mark.parametrize(("plan", "auxiliary", "problem"), [
    ("Auxiliary", True, None),
    ("Analytics", False, None),
    (None, False, None),
    ("Basic", False, None),
    (None, True, "route 'a': auxiliary: true, but stream Custom-AppLogs writes to AppLogs_CL, which is on the Analytics plan "
                 "(set its plan to Auxiliary in d.tables.json)"),
    ("Basic", True, "route 'a': auxiliary: true, but stream Custom-AppLogs writes to AppLogs_CL, which is on the Basic plan "
                    "(set its plan to Auxiliary in d.tables.json)"),
    ("Auxiliary", False, "route 'a': auxiliary: stream Custom-AppLogs writes to AppLogs_CL, an Auxiliary table: "
                         "set auxiliary: true (the service refuses calls spanning 30 minutes of TimeGenerated)"),
])
def test_auxiliary_routes_are_checked_against_the_table_plan(tmp_path, plan, auxiliary, problem):
    # GIVEN a DCR file whose AppLogs_CL table has a plan, and a route with or without auxiliary: true
    write_dcr(tmp_path, plan)
    # WHEN the routes file is loaded THEN it passes, or the problem names route, key, table and plans file
    if problem is None:
        assert load_route(tmp_path, auxiliary=auxiliary).routes[0].auxiliary is auxiliary
    else:
        with pytest.raises(ConfigError) as raised:
            load_route(tmp_path, auxiliary=auxiliary)
        assert raised.value.problems == [problem]


def test_broken_plans_file_fails_validation(tmp_path):
    write_dcr(tmp_path, "Cheap")
    with pytest.raises(ConfigError) as raised:
        load_route(tmp_path)
    assert raised.value.problems[0].startswith("route 'a': auxiliary: table plans file ")
    assert "plan 'Cheap' is not one of" in raised.value.problems[0]


def test_shipped_routes_agree_with_the_shipped_plans():
    from shared.config import load_config

    env = {"LOGS_INGESTION_ENDPOINT": "https://x.example", "DCR_IMMUTABLE_ID": DCR_ID,
           "GITHUB_WEBHOOK_SECRET": "0123456789abcdef"}
    assert load_config(REPO_ROOT / "relay.yaml", env).routes
