"""What the service does with an accepted request body: parse, type-check, transform, route.

Kept apart from HTTP so the rules can be read (and tested) in one place. Everything the
real service would drop silently is returned as a :class:`~emulator.store.Drop`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from emulator.dcr import Dcr
from emulator.schema import (
    MAX_FIELD_BYTES,
    Mistyped,
    check_input,
    encode_output,
    excerpt,
    json_type_name,
    truncate_utf8,
)
from emulator.store import Drop


class IngestError(Exception):
    """The request is rejected as a whole with an HTTP error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class IngestResult:
    rows: int = 0
    rows_written: int = 0
    rows_by_table: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    drops: list[Drop] = field(default_factory=list)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_body(data: bytes) -> list[dict[str, Any]]:
    """Decode a body as a UTF-8 JSON array of objects, as the service requires."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(
            400, "InvalidJson", f"The request body is not valid UTF-8 (byte {exc.start})."
        ) from None
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise IngestError(400, "InvalidJson", "The request body is nested too deeply.") from None
    except ValueError as exc:
        raise IngestError(400, "InvalidJson", f"The request body is not valid JSON: {exc}") from None
    if not isinstance(document, list):
        raise IngestError(
            400,
            "InvalidPayload",
            f"The request body must be a JSON array of objects, got {json_type_name(document)}.",
        )
    for index, element in enumerate(document):
        if not isinstance(element, dict):
            raise IngestError(
                400,
                "InvalidPayload",
                f"Element {index} of the array is {json_type_name(element)}, not an object.",
            )
    return document


def process(dcr: Dcr, stream: str, records: list[dict[str, Any]]) -> IngestResult:
    """Type-check each record against the stream, run every data flow, encode output rows."""
    declared = dict((c.name, c.type) for c in dcr.streams[stream])
    by_lower = {name.lower(): name for name in declared}
    flows = dcr.flows_for(stream)
    tables = ",".join(sorted({flow.table for flow in flows})) or None
    result = IngestResult(rows=len(records))
    for index, record in enumerate(records):
        row: dict[str, Any] = dict.fromkeys(declared)
        for key, value in record.items():
            typ = declared.get(key)
            if typ is None:
                hint = by_lower.get(key.lower())
                reason = "undeclared column" + (f" (did you mean {hint!r}?)" if hint else "")
                result.drops.append(Drop(index, key, reason, excerpt(value), tables))
                continue
            try:
                row[key] = check_input(typ, value)
            except Mistyped as exc:
                result.drops.append(Drop(index, key, str(exc), excerpt(value), tables))
        for flow in flows:
            transform = flow.transforms[stream]
            try:
                out = transform.apply(row)
            except Exception as exc:  # an emulator bug must not take the request down
                result.drops.append(Drop(index, "", f"transform error: {exc!r}", None, flow.table))
                continue
            if out is None:
                continue  # filtered by 'where': intended, not a drop
            encoded: dict[str, Any] = {}
            for name, typ in transform.output_columns:
                value = out.get(name)
                try:
                    stored = encode_output(typ, value)
                except Mistyped as exc:
                    result.drops.append(Drop(index, name, str(exc), excerpt(value), flow.table))
                    stored = None
                if isinstance(stored, str) and typ in ("string", "dynamic"):
                    cut = truncate_utf8(stored)
                    if cut is not None:
                        reason = (
                            f"truncated: value over {MAX_FIELD_BYTES} bytes (the service's 64 KB field limit)"
                        )
                        result.drops.append(Drop(index, name, reason, excerpt(stored), flow.table))
                        stored = cut
                encoded[name] = stored
            result.rows_by_table.setdefault(flow.table, []).append(encoded)
            result.rows_written += 1
    return result
