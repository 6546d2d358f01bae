"""The service's rules for a DCR definition, checked where a DCR file is loaded.

A DCR that breaks them fails at deployment, far from the file that caused it; the relay
checks them when it loads the routes file (so ``relay validate`` and every worker start
report them) and the local emulator checks them when it loads a DCR.

Rules (DESIGN.md section 4; the seed page "Logs Ingestion API in Azure Monitor", section
"Supported tables"; the Azure Monitor service limits page, "Data collection rules"):

- a data flow's ``outputStream`` is ``Custom-<table>_CL`` (a custom table) or
  ``Microsoft-<table>`` for one of the Azure tables the API supports (``data/supported_microsoft_tables.txt``);
- at most 10 data flows and 10 stream declarations per DCR, and a ``transformKql`` of at most
  15,360 characters.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

SUPPORTED_TABLES_FILE = Path(__file__).with_name("data") / "supported_microsoft_tables.txt"
MAX_DATA_FLOWS = 10
MAX_STREAMS = 10
MAX_TRANSFORM_CHARACTERS = 15_360
CUSTOM_PREFIX = "Custom-"
MICROSOFT_PREFIX = "Microsoft-"


@cache
def supported_microsoft_tables(path: Path = SUPPORTED_TABLES_FILE) -> frozenset[str]:
    """Azure tables the Logs Ingestion API accepts (the seed's list, one a line)."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return frozenset(line for line in lines if line and not line.startswith("#"))


def output_problem(output: Any) -> str | None:
    """What is wrong with one data flow's ``outputStream``, or None."""
    if not isinstance(output, str):
        return "has no outputStream (Custom-<table>_CL or Microsoft-<table>)"
    if output.startswith(CUSTOM_PREFIX):
        if not output.endswith("_CL"):
            return f"outputStream {output!r} is a custom table, whose name must end in _CL"
        return None
    if output.startswith(MICROSOFT_PREFIX):
        table = output[len(MICROSOFT_PREFIX):]
        if table not in supported_microsoft_tables():
            return (f"outputStream {output!r}: table {table} is not among the Azure tables the Logs Ingestion API "
                    f"supports (shared/data/supported_microsoft_tables.txt)")
        return None
    return f"outputStream {output!r} must start with 'Custom-' or 'Microsoft-'"


def dcr_problems(dcr: Mapping[str, Any], name: str) -> list[str]:
    """The table rules and limits a DCR definition breaks, each naming the file and the data flow."""
    properties = dcr.get("properties", dcr)
    if not isinstance(properties, Mapping):
        return []  # the schema reader reports a DCR without properties
    problems = []
    flows = properties.get("dataFlows") or []
    streams = properties.get("streamDeclarations") or {}
    if len(flows) > MAX_DATA_FLOWS:
        problems.append(f"{name}: {len(flows)} data flows, over the limit of {MAX_DATA_FLOWS} per DCR")
    if len(streams) > MAX_STREAMS:
        problems.append(f"{name}: {len(streams)} stream declarations, over the limit of {MAX_STREAMS} per DCR")
    for number, flow in enumerate(flows, 1):
        if not isinstance(flow, Mapping):
            continue
        where = f"{name}: dataFlows[{number}] ({', '.join(map(str, flow.get('streams') or [])) or 'no stream'})"
        problem = output_problem(flow.get("outputStream"))
        if problem is not None:
            problems.append(f"{where}: {problem}")
        transform = flow.get("transformKql") or ""
        if isinstance(transform, str) and len(transform) > MAX_TRANSFORM_CHARACTERS:
            problems.append(f"{where}: transformKql has {len(transform)} characters, over the limit of "
                            f"{MAX_TRANSFORM_CHARACTERS}")
    return problems
