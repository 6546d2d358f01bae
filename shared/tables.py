"""Table plans: each Log Analytics table's plan and retention, kept as data beside its DCR file.

Why a file and not Bicep: the same data is read by the Bicep (which creates each table with its
plan), by ``relay validate`` (an ``auxiliary: true`` route must write to an Auxiliary table, and a
route to an Auxiliary table must split requests by time, or the service answers
RecordsTimeRangeIsMoreThan30Minutes) and by ``relay dcr init`` (which adds new tables to it).

``infra/dcr/relay.json`` -> ``infra/dcr/relay.tables.json``::

    {"tables": {"AppLogs_CL": {"plan": "Analytics", "retentionInDays": 30, "totalRetentionInDays": 365}}}

A table not listed is Analytics with the workspace's retention. -1 means "the workspace default".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

PLANS = ("Analytics", "Basic", "Auxiliary")
DEFAULT_PLAN = "Analytics"
TABLE_KEYS = frozenset({"plan", "retentionInDays", "totalRetentionInDays"})
# Log Analytics tables API: interactive retention 4-730 days on Analytics; Basic and Auxiliary
# keep 30 days interactive; total retention (long-term included) up to 12 years.
ANALYTICS_RETENTION = (4, 730)
FIXED_RETENTION = 30
MAX_TOTAL_RETENTION = 4383


class TablesError(ValueError):
    """A table plans file breaks a rule; the message names the file, table and key."""


@dataclass(frozen=True)
class TablePlan:
    plan: str = DEFAULT_PLAN
    retention_days: int = -1
    total_retention_days: int = -1


def tables_file_for(dcr_path: Path) -> Path:
    """The plans file beside a DCR file: relay.json -> relay.tables.json."""
    return dcr_path.with_name(f"{dcr_path.stem}.tables.json")


def _days(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TablesError(f"{where}: {value!r} must be a whole number of days (-1: workspace default)")
    return value


def parse_table(name: str, raw: Any, where: str) -> TablePlan:
    """Check one table's entry against the service's plan and retention rules."""
    where = f"{where}: table {name}"
    if not isinstance(raw, dict):
        raise TablesError(f"{where}: must be an object with plan, retentionInDays, totalRetentionInDays")
    unknown = sorted(set(raw) - TABLE_KEYS, key=str)
    if unknown:
        raise TablesError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(TABLE_KEYS))})")
    plan = raw.get("plan", DEFAULT_PLAN)
    if plan not in PLANS:
        raise TablesError(f"{where}: plan {plan!r} is not one of {', '.join(PLANS)}")
    retention = _days(raw.get("retentionInDays", -1), f"{where}: retentionInDays")
    total = _days(raw.get("totalRetentionInDays", -1), f"{where}: totalRetentionInDays")
    if retention != -1:
        if plan == "Analytics" and not ANALYTICS_RETENTION[0] <= retention <= ANALYTICS_RETENTION[1]:
            raise TablesError(f"{where}: retentionInDays {retention} must be -1 or "
                              f"{ANALYTICS_RETENTION[0]}-{ANALYTICS_RETENTION[1]} on the Analytics plan")
        if plan != "Analytics" and retention != FIXED_RETENTION:
            raise TablesError(f"{where}: retentionInDays is fixed at {FIXED_RETENTION} on the {plan} plan "
                              "(use totalRetentionInDays for longer)")
    if total != -1 and not max(retention, FIXED_RETENTION if plan != "Analytics" else 4) <= total <= MAX_TOTAL_RETENTION:
        raise TablesError(f"{where}: totalRetentionInDays {total} must be -1 or between the interactive "
                          f"retention and {MAX_TOTAL_RETENTION}")
    return TablePlan(plan, retention, total)


def load_table_plans(path: Path) -> dict[str, TablePlan]:
    """Plans by table name; an absent file means every table is Analytics."""
    try:
        document = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeError) as error:
        raise TablesError(f"table plans file {str(path)!r} cannot be read: {getattr(error, 'strerror', None) or error}") from None
    except orjson.JSONDecodeError as error:
        raise TablesError(f"table plans file {str(path)!r} is not valid JSON: {error}") from None
    tables = document.get("tables") if isinstance(document, dict) else None
    if not isinstance(tables, dict):
        raise TablesError(f"table plans file {str(path)!r} must be an object with a 'tables' object")
    return {name: parse_table(name, raw, f"table plans file {str(path)!r}") for name, raw in tables.items()}


def output_tables(dcr_path: Path, stream: str) -> list[str]:
    """Tables the DCR file's data flows write ``stream`` to (Custom-X_CL -> X_CL)."""
    try:
        document = orjson.loads(dcr_path.read_bytes())
    except (OSError, ValueError):  # ValueError: JSON, or a NUL in the path (an unset ${VAR})
        return []  # the schema loader reports an unreadable DCR file
    properties = document.get("properties") if isinstance(document, dict) else None
    flows = properties.get("dataFlows") if isinstance(properties, dict) else None
    tables = []
    for flow in flows if isinstance(flows, list) else []:
        if isinstance(flow, dict) and stream in (flow.get("streams") or []):
            output = str(flow.get("outputStream", ""))
            tables.append(output.split("-", 1)[1] if "-" in output else output)
    return tables


def route_table_problems(route: Mapping[str, Any], stream: str | None, base: Path) -> list[str]:
    """Problems of a route's ``auxiliary`` flag against the plans of the tables its stream feeds.

    Only routes whose schema is a DCR file are checked: inline columns name no table.
    """
    schema = route.get("schema")
    if not stream or route.get("columns") is not None or not isinstance(schema, str) or "\0" in schema:
        return []  # nothing to check, or an unset ${VAR} the config loader already reports
    dcr_path = Path(schema) if Path(schema).is_absolute() else base / schema
    tables = output_tables(dcr_path, stream)
    try:
        plans = load_table_plans(tables_file_for(dcr_path))
    except TablesError as error:
        return [str(error)]
    auxiliary = route.get("auxiliary") is True
    problems = []
    for table in tables:
        plan = plans.get(table, TablePlan()).plan
        if auxiliary and plan != "Auxiliary":
            problems.append(f"true, but stream {stream} writes to {table}, which is on the {plan} plan "
                            f"(set its plan to Auxiliary in {tables_file_for(dcr_path).name})")
        elif not auxiliary and plan == "Auxiliary" and route.get("auxiliary", False) is False:
            problems.append(f"stream {stream} writes to {table}, an Auxiliary table: set auxiliary: true "
                            "(the service refuses calls spanning 30 minutes of TimeGenerated)")
    if auxiliary and not tables:
        problems.append(f"true, but no data flow of {schema} writes stream {stream} to a table")
    return problems
