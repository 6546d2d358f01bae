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
    """A DCR file or column list breaks the service's rules; the message names where."""


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
    """Check a ``[{name, type}]`` list against the service rules and build a schema."""
    if not isinstance(raw_columns, list) or not raw_columns:
        raise SchemaError(f"{where}: stream {stream!r} must declare a non-empty list of columns")
    if len(raw_columns) > MAX_COLUMNS:
        raise SchemaError(f"{where}: stream {stream!r} declares {len(raw_columns)} columns, limit {MAX_COLUMNS}")
    columns: list[Column] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_columns):
        if not isinstance(raw, dict):
            raise SchemaError(f"{where}: stream {stream!r} column #{index} must be an object with name and type")
        name, kind = raw.get("name"), raw.get("type")
        problem = column_name_problem(name)
        if problem:
            raise SchemaError(f"{where}: stream {stream!r}: {problem}")
        if kind not in COLUMN_TYPES:
            raise SchemaError(
                f"{where}: stream {stream!r} column {name!r}: type {kind!r} is not one of {', '.join(COLUMN_TYPES)}"
            )
        if name.lower() in seen:
            raise SchemaError(f"{where}: stream {stream!r} declares column {name!r} twice")
        seen.add(name.lower())
        columns.append(Column(name, kind))
    return StreamSchema(stream, tuple(columns))


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
    for stream, declaration in declarations.items():
        if not isinstance(declaration, dict):
            raise SchemaError(f"DCR file {str(path)!r}: stream {stream!r} must be an object with columns")
        streams[stream] = parse_columns(stream, declaration.get("columns"), f"DCR file {str(path)!r}")
    return streams
