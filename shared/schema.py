"""Stream schemas: the columns a DCR stream declares, and the service's column rules."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import orjson

COLUMN_TYPES = ("string", "int", "long", "real", "boolean", "datetime", "dynamic")
#: Names the service reserves (Logs Ingestion API overview, "Supported tables" note).
RESERVED_COLUMNS = frozenset({"_ResourceId", "id", "_SubscriptionId", "TenantId", "Type", "UniqueId", "Title"})
MAX_COLUMNS = 500
_COLUMN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,44}")


class SchemaError(ValueError):
    """A DCR file or column list breaks the service's rules; ``problems`` lists every finding (each
    naming where), so one run of ``relay validate`` shows them all."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or [message]


@dataclass(frozen=True)
class Column:
    name: str
    type: str


@dataclass(frozen=True)
class StreamSchema:
    """The declared columns of one DCR input stream, in declaration order."""

    stream: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def type_of(self, name: str) -> str | None:
        for column in self.columns:
            if column.name == name:
                return column.type
        return None


def column_name_problem(name: object) -> str | None:
    """Why ``name`` is not a valid column name, or None when it is."""
    if not isinstance(name, str) or not name:
        return "column name must be a non-empty string"
    if name in RESERVED_COLUMNS:
        return f"column name {name!r} is reserved by Azure Monitor"
    if not _COLUMN_NAME.fullmatch(name):
        return (
            f"column name {name!r} must start with a letter and have at most 45 letters, digits or '_'"
        )
    return None


def parse_columns(stream: str, raw_columns: object, where: str) -> StreamSchema:
    """Check a ``[{name, type}]`` list against the service rules and build a schema; raises
    :class:`SchemaError` with every bad column, not just the first."""
    if not isinstance(raw_columns, list) or not raw_columns:
        raise SchemaError(f"{where}: stream {stream!r} must declare a non-empty list of columns")
    problems = [f"{where}: stream {stream!r}{p}" for p in _column_problems(raw_columns)]
    if problems:
        raise SchemaError("; ".join(problems), problems)
    return StreamSchema(stream, tuple(Column(raw["name"], raw["type"]) for raw in raw_columns))


def _column_problems(raw_columns: list[object]) -> list[str]:
    """What is wrong with each column, each text following ``stream 'NAME'`` (the caller's prefix)."""
    problems: list[str] = []
    if len(raw_columns) > MAX_COLUMNS:
        problems.append(f" declares {len(raw_columns)} columns, limit {MAX_COLUMNS}")
    seen: set[str] = set()
    for index, raw in enumerate(raw_columns):
        if not isinstance(raw, dict):
            problems.append(f" column #{index} must be an object with name and type")
            continue
        name, kind = raw.get("name"), raw.get("type")
        problem = column_name_problem(name)
        if problem:
            problems.append(f": {problem}")
        if kind not in COLUMN_TYPES:
            problems.append(f" column {name!r}: type {kind!r} is not one of {', '.join(COLUMN_TYPES)}")
        if isinstance(name, str) and name.lower() in seen:
            problems.append(f" declares column {name!r} twice")
        seen.add(str(name).lower())
    return problems


def load_dcr_streams(path: Path) -> dict[str, StreamSchema]:
    """Read ``properties.streamDeclarations`` of a DCR definition file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SchemaError(f"DCR file {str(path)!r} does not exist") from None
    except (OSError, ValueError) as error:  # a directory, no permission, a NUL in the path (an unset ${VAR})
        reason = getattr(error, "strerror", None) or error
        raise SchemaError(f"DCR file {str(path)!r} cannot be read: {reason}") from None
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise SchemaError(f"DCR file {str(path)!r} is not valid JSON: {error}") from None
    properties = document.get("properties", document) if isinstance(document, dict) else None
    declarations = properties.get("streamDeclarations") if isinstance(properties, dict) else None
    if not isinstance(declarations, dict) or not declarations:
        raise SchemaError(f"DCR file {str(path)!r} has no properties.streamDeclarations")
    streams = {}
    problems: list[str] = []
    for stream, declaration in declarations.items():  # every stream is checked: all problems in one run
        if not isinstance(declaration, dict):
            problems.append(f"DCR file {str(path)!r}: stream {stream!r} must be an object with columns")
            continue
        try:
            streams[stream] = parse_columns(stream, declaration.get("columns"), f"DCR file {str(path)!r}")
        except SchemaError as error:
            problems.extend(error.problems)
    if problems:
        raise SchemaError("; ".join(problems), problems)
    return streams
