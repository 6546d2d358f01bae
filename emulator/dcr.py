"""Load data collection rule (DCR) definition files, the same JSON that ``infra/`` deploys.

Reading the deployed file, not a copy, keeps the emulator's streams, column types and
transformations identical to what Azure will enforce.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.kql import KqlError, Transform, compile_transform
from emulator.schema import COLUMN_TYPES
from shared.dcr_rules import check_dcr

_IMMUTABLE_ID = re.compile(r"^dcr-[A-Za-z0-9]{1,64}$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,44}$")
_OUTPUT_NAME = re.compile(r"^(?!__)[A-Za-z_][A-Za-z0-9_]{0,499}$")  # "__" is the store's
_TABLE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
_STREAM = re.compile(r"^(Custom|Microsoft)-[A-Za-z0-9_]{1,100}$")


class DcrError(ValueError):
    """A DCR file cannot be served; the message names the file and the bad part."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str


@dataclass(frozen=True)
class DataFlow:
    """One ``dataFlows`` entry, with its transformation compiled per input stream."""

    index: int
    streams: tuple[str, ...]
    output_stream: str
    table: str
    transform_kql: str
    transforms: dict[str, Transform]


@dataclass(frozen=True)
class Dcr:
    name: str
    path: Path
    immutable_id: str
    streams: dict[str, tuple[Column, ...]]
    data_flows: tuple[DataFlow, ...]
    warnings: tuple[str, ...] = ()  # what the service's rules could not check (shared/dcr_rules.py)

    def flows_for(self, stream: str) -> list[DataFlow]:
        return [flow for flow in self.data_flows if stream in flow.streams]


def immutable_id_for(path: str | Path) -> str:
    """Deterministic local immutable id: ``dcr-`` + 32 hex chars of sha256(file stem).

    Stable across machines and runs, so local settings can name the id before the
    emulator starts.
    """
    stem = Path(path).stem
    return "dcr-" + hashlib.sha256(stem.encode("utf-8")).hexdigest()[:32]


def parse_spec(spec: str | Path) -> tuple[Path, str]:
    """Split ``PATH`` or ``PATH=dcr-xxxx`` into the path and the immutable id to serve it under."""
    text = str(spec)
    head, sep, tail = text.rpartition("=")
    if sep and _IMMUTABLE_ID.match(tail):
        return Path(head), tail
    path = Path(text)
    return path, immutable_id_for(path)


def output_table(output_stream: str) -> str:
    """``Custom-AppLogs_CL`` -> ``AppLogs_CL``; the table the rows land in."""
    for prefix in ("Custom-", "Microsoft-"):
        if output_stream.startswith(prefix):
            return output_stream[len(prefix) :]
    raise ValueError(f"outputStream {output_stream!r} must start with 'Custom-' or 'Microsoft-'")


def load_dcr(spec: str | Path) -> Dcr:
    """Read, validate and compile one DCR file; raise :class:`DcrError` with a precise message."""
    path, immutable_id = parse_spec(spec)
    label = str(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DcrError(f"{label}: cannot read DCR file: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise DcrError(f"{label}: not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise DcrError(f"{label}: a DCR file must be a JSON object")
    props = document.get("properties", document)
    if not isinstance(props, dict):
        raise DcrError(f"{label}: 'properties' must be an object")
    rules = check_dcr(document, label)  # the service's table rules and limits, as the relay checks them
    if rules.problems:
        raise DcrError("; ".join(rules.problems))
    streams = _load_streams(label, props.get("streamDeclarations"))
    flows = _load_flows(label, props.get("dataFlows"), streams)
    return Dcr(path.stem, path, immutable_id, streams, flows, tuple(rules.warnings))


def load_dcrs(specs: list[str | Path]) -> dict[str, Dcr]:
    """Load several DCR files keyed by immutable id; two files may not share an id."""
    loaded: dict[str, Dcr] = {}
    for spec in specs:
        dcr = load_dcr(spec)
        if dcr.immutable_id in loaded:
            other = loaded[dcr.immutable_id].path
            raise DcrError(f"{dcr.path}: immutable id {dcr.immutable_id} is already used by {other}")
        loaded[dcr.immutable_id] = dcr
    return loaded


def _load_streams(label: str, raw: Any) -> dict[str, tuple[Column, ...]]:
    if not isinstance(raw, dict) or not raw:
        raise DcrError(f"{label}: properties.streamDeclarations must be a non-empty object")
    streams: dict[str, tuple[Column, ...]] = {}
    for stream, decl in raw.items():
        where = f"{label}: streamDeclarations[{stream!r}]"
        if not _STREAM.match(stream):
            raise DcrError(f"{where}: stream names look like 'Custom-Name'")
        columns = decl.get("columns") if isinstance(decl, dict) else None
        if not isinstance(columns, list) or not columns:
            raise DcrError(f"{where}: 'columns' must be a non-empty list")
        if len(columns) > 500:
            raise DcrError(f"{where}: at most 500 columns")
        seen: set[str] = set()
        parsed: list[Column] = []
        for i, col in enumerate(columns):
            if not isinstance(col, dict):
                raise DcrError(f"{where}.columns[{i}]: must be an object with name and type")
            name, typ = col.get("name"), col.get("type")
            if not isinstance(name, str) or not _NAME.match(name):
                raise DcrError(f"{where}.columns[{i}]: invalid column name {name!r}")
            if typ not in COLUMN_TYPES:
                raise DcrError(
                    f"{where}.columns[{i}] ({name}): type {typ!r} is not one of {', '.join(COLUMN_TYPES)}"
                )
            if name in seen:
                raise DcrError(f"{where}: column {name!r} declared twice")
            seen.add(name)
            parsed.append(Column(name, typ))
        streams[stream] = tuple(parsed)
    return streams


def _load_flows(label: str, raw: Any, streams: dict[str, tuple[Column, ...]]) -> tuple[DataFlow, ...]:
    if not isinstance(raw, list) or not raw:
        raise DcrError(f"{label}: properties.dataFlows must be a non-empty list")
    flows: list[DataFlow] = []
    for index, entry in enumerate(raw):
        where = f"{label}: dataFlows[{index}]"
        if not isinstance(entry, dict):
            raise DcrError(f"{where}: must be an object")
        in_streams = entry.get("streams")
        if (
            not isinstance(in_streams, list)
            or not in_streams
            or not all(isinstance(s, str) for s in in_streams)
        ):
            raise DcrError(f"{where}: 'streams' must be a non-empty list of stream names")
        out = entry.get("outputStream")
        if not isinstance(out, str):
            # Without outputStream, a Custom- stream goes to the table of the same name.
            if len(in_streams) == 1 and in_streams[0].startswith("Custom-"):
                out = in_streams[0]
            else:
                raise DcrError(f"{where}: 'outputStream' is required")
        try:
            table = output_table(out)
        except ValueError as exc:
            raise DcrError(f"{where}: {exc}") from None
        if not _TABLE.match(table):
            raise DcrError(f"{where}: invalid output table name {table!r}")
        kql = entry.get("transformKql", "source")
        if not isinstance(kql, str) or not kql.strip():
            raise DcrError(f"{where}: 'transformKql' must be a non-empty string")
        where = f"{where} ({', '.join(in_streams)} -> {out})"
        transforms: dict[str, Transform] = {}
        for stream in in_streams:
            if stream not in streams:
                raise DcrError(f"{where}: stream {stream!r} is not declared in streamDeclarations")
            columns = [(c.name, c.type) for c in streams[stream]]
            try:
                transforms[stream] = compile_transform(kql, columns)
            except KqlError as exc:
                raise DcrError(f"{where}: transformKql: {exc}") from None
            for name, _typ in transforms[stream].output_columns:
                if not _OUTPUT_NAME.match(name):
                    raise DcrError(f"{where}: transformKql produces invalid column name {name!r}")
        flows.append(DataFlow(index, tuple(in_streams), out, table, kql, transforms))
    return tuple(flows)
