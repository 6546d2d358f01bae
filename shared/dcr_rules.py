"""The service's rules for a DCR definition, checked where a DCR file is loaded.

A DCR that breaks them fails at deployment, far from the file that caused it; the relay
checks them when it loads the routes file (so ``relay validate`` and every worker start
report them) and the local emulator checks them when it loads a DCR.

Rules (DESIGN.md section 4; the seed page "Logs Ingestion API in Azure Monitor", section
"Supported tables"; the Azure Monitor service limits page, "Data collection rules"):

- a data flow's ``outputStream`` is ``Custom-<table>_CL`` (a custom table) or
  ``Microsoft-<table>`` for one of the Azure tables the API supports (``data/supported_microsoft_tables.txt``);
- a column a data flow writes to an Azure table (``Microsoft-<table>``) is one of that table's
  standard columns (``data/azure_table_columns.json``) or ends in ``_CF`` ("Custom columns you add
  to an Azure table must have the suffix _CF"); what "writes" means is :func:`written_columns`;
- at most 10 data flows and 10 stream declarations per DCR, and a ``transformKql`` of at most
  15,360 characters.

A broken rule is a problem: the routes file or the DCR is refused. Where a rule cannot be checked
(an Azure table whose standard columns are not shipped, a transform the reader cannot follow to the
end) the check says so as a warning and refuses nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).with_name("data")
SUPPORTED_TABLES_FILE = DATA / "supported_microsoft_tables.txt"
TABLE_COLUMNS_FILE = DATA / "azure_table_columns.json"
MAX_DATA_FLOWS = 10
MAX_STREAMS = 10
MAX_TRANSFORM_CHARACTERS = 15_360
CUSTOM_PREFIX = "Custom-"
MICROSOFT_PREFIX = "Microsoft-"
CUSTOM_COLUMN_SUFFIX = "_CF"


@cache
def supported_microsoft_tables(path: Path = SUPPORTED_TABLES_FILE) -> frozenset[str]:
    """Azure tables the Logs Ingestion API accepts (the seed's list, one a line)."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return frozenset(line for line in lines if line and not line.startswith("#"))


@dataclass(frozen=True)
class AzureTableColumns:
    """The shipped standard columns: those of every table, and each documented table's own."""

    every_table: frozenset[str]
    tables: Mapping[str, frozenset[str]]
    not_shipped: Mapping[str, str]  # table -> why its columns are not in the file

    def standard(self, table: str) -> frozenset[str] | None:
        """The table's standard columns, or None when the file does not have them."""
        own = self.tables.get(table)
        return None if own is None else own | self.every_table


@cache
def azure_table_columns(path: Path = TABLE_COLUMNS_FILE) -> AzureTableColumns:
    """The Azure tables' standard columns (the Microsoft Learn table reference pages; see the file's source)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    return AzureTableColumns(
        frozenset(document["every_table"]["columns"]),
        {table: frozenset(columns) for table, columns in document["tables"].items()},
        dict(document.get("not_shipped") or {}),
    )


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


# ------------------------------------------------------------------------------------------------
# The columns a data flow writes


@dataclass(frozen=True)
class WrittenColumns:
    """Columns a data flow writes (name -> where it comes from), and what of the transform was not read."""

    columns: dict[str, str]
    unread: tuple[str, ...] = ()


_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_BRACKETED = r"\[\s*(?:'[^']*'|\"[^\"]*\")\s*\]"
# `Name = expression`: the first top-level `=` that is not `==` or `=~`
_ASSIGNMENT = re.compile(rf"\s*({_NAME}|{_BRACKETED})\s*=(?![=~])(.*)", re.DOTALL)
_BARE = re.compile(rf"\s*({_NAME}|{_BRACKETED})\s*")
_PATTERN = re.compile(r"\s*([A-Za-z0-9_*]+)\s*")  # a name, or a wildcard pattern such as Raw*
_OPERATOR = re.compile(r"\s*([a-z][a-z-]*)\b(.*)", re.DOTALL)
_KEEPS_COLUMNS = frozenset({"where", "filter", "project-reorder", "take", "limit"})
_CREATES_UNREAD = frozenset({"parse", "parse-where", "parse-kv", "mv-expand", "extract-all"})


def _name(text: str) -> str:
    """``Name`` or ``['Name']`` -> ``Name``."""
    text = text.strip()
    return text[1:-1].strip()[1:-1] if text.startswith("[") else text


def _pieces(text: str) -> Iterator[tuple[int, str, bool]]:
    """Each character of KQL text (an escape inside a string as one two-character piece), its place, and
    whether it stands inside a string literal (its quotes included)."""
    quote, i = "", 0
    while i < len(text):
        char = text[i]
        if quote and char == "\\" and i + 1 < len(text):
            yield i, text[i:i + 2], True
            i += 2
            continue
        if quote:
            quote = "" if char == quote else quote
            yield i, char, True
        elif char in "'\"":
            quote = char
            yield i, char, True
        else:
            yield i, char, False
        i += 1


def _strip_comments(text: str) -> str:
    """KQL without its ``//`` comments (outside strings)."""
    out: list[str] = []
    skip_to = -1
    for i, piece, quoted in _pieces(text):
        if i < skip_to:
            continue
        if not quoted and text.startswith("//", i):
            end = text.find("\n", i)
            skip_to = len(text) if end < 0 else end
            continue
        out.append(piece)
    return "".join(out)


def _split_top_level(text: str, separator: str) -> list[str]:
    """Split KQL on a separator outside strings and brackets."""
    parts: list[str] = []
    depth, current = 0, []
    for _, piece, quoted in _pieces(text):
        if not quoted:
            if piece in "([{":
                depth += 1
            elif piece in ")]}":
                depth -= 1
            elif piece == separator and depth == 0:
                parts.append("".join(current).strip())
                current = []
                continue
        current.append(piece)
    parts.append("".join(current).strip())
    return parts


class _Reader:
    """Follows the columns through the stages of a transform it can read (see :func:`written_columns`)."""

    def __init__(self, columns: dict[str, str]):
        self.columns = columns
        self.unread: list[str] = []

    def stage(self, stage: str) -> None:
        match = _OPERATOR.fullmatch(stage)
        operator, arguments = (match.group(1), match.group(2)) if match else (stage.split(" ", 1)[0], "")
        items = [item for item in _split_top_level(arguments, ",") if item]
        if operator in _KEEPS_COLUMNS:
            return
        handler = {"extend": self.extend, "project": self.project, "project-rename": self.rename,
                   "project-away": self.away, "project-keep": self.keep}.get(operator)
        if handler is not None:
            handler(operator, items)
        elif operator in _CREATES_UNREAD:
            self.unread.append(f"operator {operator!r} (the columns it creates are not read)")
        else:  # what survives an operator the reader does not know is unknown: check what later stages create
            self.unread.append(f"operator {operator!r} (the columns before it are not followed past it)")
            self.columns = {}

    def extend(self, operator: str, items: list[str]) -> None:
        for item in items:
            assignment = _ASSIGNMENT.fullmatch(item)
            if assignment:
                self.columns[_name(assignment.group(1))] = "created by extend in transformKql"
            else:
                self.unread.append(f"{operator} {item!r} (a column named by the service)")

    def project(self, operator: str, items: list[str]) -> None:
        before, self.columns = self.columns, {}
        for item in items:
            assignment, bare = _ASSIGNMENT.fullmatch(item), _BARE.fullmatch(item)
            pattern = _PATTERN.fullmatch(item)
            if assignment:
                self.columns[_name(assignment.group(1))] = "created by project in transformKql"
            elif bare:
                name = _name(bare.group(1))
                self.columns[name] = before.get(name, "named by project in transformKql")
            elif pattern:  # a wildcard: the columns it matches
                self.columns.update((n, o) for n, o in before.items() if fnmatchcase(n, pattern.group(1)))
            else:
                self.unread.append(f"{operator} {item!r} (a column named by the service)")

    def rename(self, operator: str, items: list[str]) -> None:
        for item in items:
            assignment = _ASSIGNMENT.fullmatch(item)
            old = _BARE.fullmatch(assignment.group(2)) if assignment else None
            if assignment and old:
                self.columns.pop(_name(old.group(1)), None)
                self.columns[_name(assignment.group(1))] = "renamed by project-rename in transformKql"
            else:
                self.unread.append(f"{operator} {item!r}")

    def away(self, operator: str, items: list[str]) -> None:
        for item in items:
            pattern = _PATTERN.fullmatch(item) or _BARE.fullmatch(item)
            if pattern:
                target = _name(pattern.group(1))
                self.columns = {n: o for n, o in self.columns.items() if not fnmatchcase(n, target)}
            else:
                self.unread.append(f"{operator} {item!r}")

    def keep(self, operator: str, items: list[str]) -> None:
        patterns = [_name(m.group(1)) for m in (_PATTERN.fullmatch(i) or _BARE.fullmatch(i) for i in items) if m]
        if len(patterns) < len(items):
            self.unread.append(f"{operator} (an item that is not a column name)")
            return
        self.columns = {n: o for n, o in self.columns.items() if any(fnmatchcase(n, p) for p in patterns)}


def written_columns(transform: Any, stream: str, input_columns: Sequence[str]) -> WrittenColumns:
    """The columns a data flow writes from one input stream, as far as they can be read reliably.

    Read: without a ``transformKql`` (or an empty one), or with exactly ``source``, the stream's
    declared columns.
    Otherwise the transform is read stage by stage at its top level (``let`` statements before it
    and ``//`` comments are skipped), starting from the stream's columns:

    - ``extend X = ...`` adds X; ``project X = ..., Y`` writes exactly X and Y (Y keeps where it
      came from); ``project-rename X = Y`` replaces Y by X; ``project-away`` and ``project-keep``
      (names or wildcards such as ``Raw*``) remove columns; ``where``, ``filter``,
      ``project-reorder``, ``take`` and ``limit`` change none; names may be written ``['X']``.

    Not read, and reported in ``unread`` instead (never an error): a column the service names itself
    (``extend tostring(x)``, ``project x + 1``), the columns ``parse`` and similar operators create,
    and what survives an operator this reader does not know (the columns before it are no longer
    followed, as it may drop them; columns later stages create are still read). A transform that
    does not start with ``source`` is not read at all.
    """
    origin = f"a column of input stream {stream}"
    columns = {name: origin for name in input_columns}
    if transform is None or (isinstance(transform, str) and transform.strip() in ("", "source")):
        return WrittenColumns(columns)
    if not isinstance(transform, str):
        return WrittenColumns({}, ("not a string (none of it is read)",))
    statements = [s for s in _split_top_level(_strip_comments(transform), ";") if s]
    stages = _split_top_level(statements[-1], "|") if statements else [""]
    if stages[0] != "source":
        return WrittenColumns({}, ("does not start with 'source' (none of it is read)",))
    reader = _Reader(columns)
    for stage in stages[1:]:
        reader.stage(stage)
    return WrittenColumns(reader.columns, tuple(reader.unread))


# ------------------------------------------------------------------------------------------------
# The check


@dataclass
class DcrCheck:
    """What a DCR definition breaks (``problems``) and what could not be checked (``warnings``)."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _declared_columns(streams: Any, stream: Any) -> list[str]:
    declaration = streams.get(stream) if isinstance(streams, Mapping) and isinstance(stream, str) else None
    columns = declaration.get("columns") if isinstance(declaration, Mapping) else None
    return [c["name"] for c in columns or [] if isinstance(c, Mapping) and isinstance(c.get("name"), str)]


def _custom_column_check(flow: Mapping[str, Any], streams: Any, where: str, check: DcrCheck) -> None:
    """The ``_CF`` rule for one data flow to an Azure table that is supported."""
    output = flow["outputStream"]
    table = output[len(MICROSOFT_PREFIX):]
    where = f"{where}: outputStream {output!r}"
    catalog = azure_table_columns()
    standard = catalog.standard(table)
    if standard is None:
        why = catalog.not_shipped.get(table, "not listed")
        check.warnings.append(f"{where}: columns added to {table} are not checked for the _CF suffix: its standard "
                              f"columns are not shipped (shared/data/azure_table_columns.json: {why})")
        return
    by_lower = {name.lower(): name for name in standard}
    reported: set[str] = set()
    inputs = flow.get("streams")
    for stream in inputs if isinstance(inputs, list) else []:  # the schema reader reports streams that are no list
        written = written_columns(flow.get("transformKql"), str(stream), _declared_columns(streams, stream))
        for name, origin in written.columns.items():
            if name in standard or name.endswith(CUSTOM_COLUMN_SUFFIX) or name in reported:
                continue
            reported.add(name)
            hint = f"; the table has {by_lower[name.lower()]!r} (names are case-sensitive)" if name.lower() in by_lower else ""
            check.problems.append(
                f"{where}: column {name!r} ({origin}) is not a standard column of {table}: a column added to an "
                f"Azure table must end in _CF ({name}{CUSTOM_COLUMN_SUFFIX}){hint}")
        for unread in written.unread:
            message = f"{where}: the _CF rule is not checked for all columns: transformKql: {unread}"
            if message not in check.warnings:
                check.warnings.append(message)


def check_dcr(dcr: Mapping[str, Any], name: str) -> DcrCheck:
    """The table rules and limits a DCR definition breaks, each naming the file and the data flow,
    and the warnings of what could not be checked."""
    check = DcrCheck()
    properties = dcr.get("properties", dcr)
    if not isinstance(properties, Mapping):
        return check  # the schema reader reports a DCR without properties
    flows = properties.get("dataFlows") or []
    streams = properties.get("streamDeclarations") or {}
    if len(flows) > MAX_DATA_FLOWS:
        check.problems.append(f"{name}: {len(flows)} data flows, over the limit of {MAX_DATA_FLOWS} per DCR")
    if len(streams) > MAX_STREAMS:
        check.problems.append(f"{name}: {len(streams)} stream declarations, over the limit of {MAX_STREAMS} per DCR")
    for number, flow in enumerate(flows, 1):
        if not isinstance(flow, Mapping):
            continue
        where = f"{name}: dataFlows[{number}] ({', '.join(map(str, flow.get('streams') or [])) or 'no stream'})"
        output = flow.get("outputStream")
        problem = output_problem(output)
        if problem is not None:
            check.problems.append(f"{where}: {problem}")
        elif output.startswith(MICROSOFT_PREFIX):
            _custom_column_check(flow, streams, where, check)
        transform = flow.get("transformKql") or ""
        if isinstance(transform, str) and len(transform) > MAX_TRANSFORM_CHARACTERS:
            check.problems.append(f"{where}: transformKql has {len(transform)} characters, over the limit of "
                                  f"{MAX_TRANSFORM_CHARACTERS}")
    return check


def dcr_problems(dcr: Mapping[str, Any], name: str) -> list[str]:
    """The table rules and limits a DCR definition breaks, each naming the file and the data flow."""
    return check_dcr(dcr, name).problems
