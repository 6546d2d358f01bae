"""Write an inferred stream into a DCR definition file and its table plans file (``relay dcr init``).

Why merge rather than overwrite: the DCR file is deployed as is (infra/main.bicep loads it) and
holds other streams. Re-running on new samples only adds: new columns are appended, a column
whose samples need another type is reported as a conflict and keeps its declared type, since
changing a deployed column's type is what makes the service drop values silently.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import yaml

from shared.schema import MAX_COLUMNS
from shared.tables import DEFAULT_PLAN, PLANS

from .dcr_infer import Inference, InferredColumn, fits

DESTINATION = "logAnalyticsDest"
# The file's location and workspace are placeholders: infra/app/ingestion.bicep deploys the DCR in
# the workspace's region and points the destination at the deployment's workspace.
PLACEHOLDER_WORKSPACE = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-relay/providers/"
                         "Microsoft.OperationalInsights/workspaces/log-relay")


class DcrFileError(ValueError):
    """The DCR file cannot take the stream; the message names the file part that is wrong."""


@dataclass
class Merged:
    """The new document and what changed, for the report and the exit code."""

    document: dict[str, Any]
    columns: list[dict[str, str]]  # the stream's columns after the merge
    mapping: dict[str, str]  # column -> event path, for the route's map
    added: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    new_stream: bool = False
    new_flow: bool = False


def new_document(description: str) -> dict[str, Any]:
    return {
        "location": "eastus",
        "kind": "Direct",
        "properties": {
            "description": description,
            "streamDeclarations": {},
            "destinations": {"logAnalytics": [{"workspaceResourceId": PLACEHOLDER_WORKSPACE, "name": DESTINATION}]},
            "dataFlows": [],
        },
    }


def output_stream_for(table: str) -> str:
    """Custom-X_CL for a custom table, Microsoft-X for an Azure table."""
    return f"Custom-{table}" if table.endswith("_CL") else f"Microsoft-{table}"


def merge_stream(document: dict[str, Any] | None, stream: str, table: str, inference: Inference,
                 description: str = "Streams written by relay dcr init.") -> Merged:
    """Add ``stream`` (or its new columns) and a data flow to ``table`` to a copy of ``document``."""
    result = copy.deepcopy(document) if document is not None else new_document(description)
    properties = result.get("properties")
    if not isinstance(properties, dict):
        raise DcrFileError("the DCR file has no 'properties' object")
    declarations = properties.setdefault("streamDeclarations", {})
    if not isinstance(declarations, dict):
        raise DcrFileError("properties.streamDeclarations must be an object")
    merged = Merged(result, [], {})
    declaration = declarations.get(stream)
    if declaration is None:
        merged.new_stream = True
        declaration = declarations[stream] = {"columns": []}
    existing = declaration.get("columns") if isinstance(declaration, dict) else None
    if not isinstance(existing, list):
        raise DcrFileError(f"stream {stream!r}: 'columns' must be a list")
    by_name = {str(c.get("name", "")).lower(): c for c in existing if isinstance(c, dict)}
    for column in inference.columns:
        _merge_column(column, by_name, existing, merged)
    if len(existing) > MAX_COLUMNS:
        raise DcrFileError(f"stream {stream!r} would have {len(existing)} columns, limit {MAX_COLUMNS}: "
                           f"the {len(merged.added)} new ones do not fit; send the rest to an extra column")
    merged.columns = existing
    merged.new_flow = _ensure_flow(properties, stream, output_stream_for(table))
    return merged


def _merge_column(column: InferredColumn, by_name: dict[str, dict[str, Any]], existing: list[dict[str, Any]],
                  merged: Merged) -> None:
    current = by_name.get(column.name.lower())
    if current is None:
        existing.append({"name": column.name, "type": column.type})
        by_name[column.name.lower()] = existing[-1]
        merged.added.append(column.name)
        name = column.name
    else:
        name = current["name"]
        declared = current.get("type")
        if not column.null_only and not fits(str(declared), column.type):
            merged.conflicts.append(
                f"column {name} is declared {declared}, but the samples of {column.path or name!r} need "
                f"{column.type}: kept {declared}; rows whose value does not fit are rejected by the relay "
                "(change the type yourself, with a new column or table, if that is wrong)"
            )
    if column.path is not None:
        merged.mapping[name] = column.path


def _ensure_flow(properties: dict[str, Any], stream: str, output: str) -> bool:
    flows = properties.setdefault("dataFlows", [])
    if not isinstance(flows, list):
        raise DcrFileError("properties.dataFlows must be a list")
    for flow in flows:
        if isinstance(flow, dict) and stream in (flow.get("streams") or []) and flow.get("outputStream") == output:
            return False
    destinations = (properties.get("destinations") or {}).get("logAnalytics") or []
    if not destinations or not isinstance(destinations[0], dict) or "name" not in destinations[0]:
        raise DcrFileError("properties.destinations.logAnalytics must name one destination for the data flow")
    flows.append({"streams": [stream], "destinations": [destinations[0]["name"]], "transformKql": "source",
                  "outputStream": output})
    return True


def merge_table_plan(document: dict[str, Any] | None, table: str, plan: str | None) -> tuple[dict[str, Any], str | None]:
    """Add ``table`` to a plans document; a listed table keeps its plan (reported when ``plan`` differs)."""
    result = copy.deepcopy(document) if document is not None else {"tables": {}}
    tables = result.setdefault("tables", {})
    current = tables.get(table)
    if current is None:
        tables[table] = {"plan": plan or DEFAULT_PLAN}
        return result, None
    declared = current.get("plan", DEFAULT_PLAN) if isinstance(current, dict) else None
    if plan is not None and plan != declared:
        return result, (f"table {table} is on the {declared} plan in the plans file: kept it "
                        f"(a table's plan is changed on purpose, not by --plan {plan})")
    return result, None


def route_snippet(name: str, stream: str, schema: str, inference: Inference, mapping: dict[str, str],
                  plan: str | None) -> str:
    """The relay.yaml route for the stream: every column mapped to the field it comes from."""
    route: dict[str, Any] = {"name": name, "source": "http", "match": name, "stream": stream, "schema": schema}
    if inference.time_field:
        route["time_field"] = inference.time_field
    if mapping:
        route["map"] = dict(mapping)
    if inference.extra:
        route["extra"] = inference.extra
    if plan == "Auxiliary":
        route["auxiliary"] = True
    text = yaml.safe_dump({"routes": [route]}, sort_keys=False, allow_unicode=True, width=120)
    item = text.split("\n", 1)[1]  # the list item only, indented as relay.yaml's routes: append it
    return "".join(f"  {line}" for line in item.splitlines(True))


__all__ = ["PLANS", "DcrFileError", "Merged", "merge_stream", "merge_table_plan", "output_stream_for",
           "route_snippet"]
