"""Shape decoded events into rows of a DCR stream, catching what the service would drop.

The service silently drops undeclared columns and values of the wrong type (the
"204 but no rows" complaint). Here each declared column is filled from the
event, coerced only where no information is lost, and anything else is either
rejected with a reason, kept in the route's ``extra`` column, or counted.
Each row is serialized exactly once; the packer works on those bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson

from .coercion import (
    COERCERS,
    MAX_FIELD_BYTES,
    CoercionError,
    EventRejection,
    NormalizedBatch,
    _datetime_and_epoch,
    event_id,
    flag_oversized,
    out_of_window,
)
from .config import Route
from .fastpath import FastPath
from .paths import MISSING
from .plan import RoutePlan
from .timeparse import TimeFormatError, format_epoch, normalize_time
from .typed import TypedPath, merge

__all__ = ["MAX_FIELD_BYTES", "CoercionError", "EventRejection", "NormalizedBatch", "Normalizer", "event_id"]

#: Most records the typed path makes rows of at a time. Its steps each walk every event of what they are given,
#: so a slice whose events, strings and rows outgrow the core's L2 cache (~1 MB here: ~1,800 app-log lines of a
#: blob chunk are ~5 MB of them) is fetched again from memory by every step; a slice of 500 stays in it. The
#: chunk (its requests, its checkpoint) stays as the engine cut it.
TYPED_SLICE_ROWS = 500


class Normalizer:
    """One route's normalizer, built once from the route's plan (``shared/plan.py``)."""

    def __init__(self, route: Route, fast: bool = True):
        """``fast``: run the plan's fast path (``shared.fastpath``), which gives the same rows, reasons
        and counters; ``fast=False`` is the general path below, the reference."""
        self.route = route
        self.plan = RoutePlan.of(route)
        self._coercers = tuple(COERCERS[column.type] for column in self.plan.columns)
        self._fast: Callable[..., NormalizedBatch] | None = None
        #: events still encoded go straight into typed columns on this path (None: the plan has a shape it
        #: does not cover, or ``fast=False``)
        self.typed = TypedPath.of(self.plan) if fast else None
        if fast:
            self._fast = FastPath(self.plan).normalize

    def normalize(
        self,
        events: Iterable[Any],
        now: float | None = None,
        start_index: int = 0,
        context: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        texts: Sequence[Any] | None = None,
    ) -> NormalizedBatch:
        """``context`` is metadata shared by all events (a mapping) or one mapping per event. ``texts``: the
        JSON text of each event, when it came encoded (``id_column`` hashes it: ``coercion.canonical_bytes``)."""
        ingest_time = now if now is not None else time.time()
        if self._fast is not None:
            batch = self._fast(events, ingest_time, start_index, context, orjson, texts)
        else:
            batch = self._general(events, ingest_time, start_index, context, texts)
        if self.plan.time is not None:
            batch.time_out_of_window = out_of_window(batch.times, ingest_time)
        return batch

    def _general(self, events: Iterable[Any], ingest_time: float, start_index: int, context: Any,
                 texts: Sequence[Any] | None) -> NormalizedBatch:
        """The general path: the plan walked event by event (``_row``), the reference the others equal."""
        batch = NormalizedBatch()
        shared_context = context if isinstance(context, Mapping) or context is None else None
        shared_context = shared_context or {}
        ingest_text = format_epoch(ingest_time)
        for offset, event in enumerate(events):
            index = start_index + offset
            try:
                event_context = shared_context if context is None or isinstance(context, Mapping) else context[offset]
                row, moment = self._row(event, event_context, batch, ingest_text, ingest_time,
                                        texts[offset] if texts is not None else None)
                encoded = orjson.dumps(row)
            except CoercionError as error:
                batch.rejections.append(EventRejection(index, str(error), event))
                continue
            except orjson.JSONEncodeError as error:
                batch.rejections.append(EventRejection(index, f"cannot be encoded as JSON: {error}", event))
                continue
            if len(encoded) > MAX_FIELD_BYTES:
                flag_oversized(row, batch, orjson.dumps)
            batch.rows.append(encoded)
            batch.indexes.append(index)
            batch.times.append(moment)
        return batch

    def normalize_encoded(self, raws: Sequence[Any], now: float | None = None, start_index: int = 0,
                          context: Mapping[str, Any] | None = None, checked: bool = False,
                          decoded: list[Any] | None = None) -> NormalizedBatch:
        """``normalize`` of events still encoded (each the bytes of one JSON value): on the typed path, each
        record it cannot take through ``normalize``; without one, decoded as a source decodes them.
        ``checked``: the source made sure orjson reads every one (``records.Encoded.checked``); ``decoded``: the
        typed path decoded them all already (``records.Encoded.decoded``)."""
        ingest_time = now if now is not None else time.time()
        if self.typed is None:
            batch = NormalizedBatch()
            TypedPath.fall_back(raws, start_index, ingest_time, context, self._fall_back, batch)
            return batch
        if decoded is not None or len(raws) <= TYPED_SLICE_ROWS:  # (decoded: one body, already in memory whole)
            return self._typed(raws, ingest_time, start_index, context, checked, decoded)
        batch = NormalizedBatch()
        for start in range(0, len(raws), TYPED_SLICE_ROWS):
            merge(batch, self._typed(raws[start:start + TYPED_SLICE_ROWS], ingest_time, start_index + start,
                                     context, checked, None))
        return batch

    def _typed(self, raws: Sequence[Any], ingest_time: float, start_index: int, context: Any, checked: bool,
               decoded: list[Any] | None) -> NormalizedBatch:
        typed = self.typed
        batch = typed.normalize(raws, ingest_time, start_index, context, self._fall_back, checked, decoded)
        if typed.successor is not None:  # it learned keys: the next slices on the path that declares them
            self.typed = typed.successor
        return batch

    def _fall_back(self, events: list[Any], ingest_time: float, start_index: int, context: Any,
                   texts: Sequence[Any]) -> NormalizedBatch:
        return self.normalize(events, ingest_time, start_index, context, texts)

    def _row(self, event: Any, context: Mapping[str, Any], batch: NormalizedBatch, ingest_text: str,
             ingest_time: float, text: Any = None) -> tuple[dict, float]:
        """The plan, walked for one event: time_field, the columns in order, the stamped time,
        extra (or the dropped-field counts), the id."""
        if not isinstance(event, dict):
            raise CoercionError(f"event is a {type(event).__name__}, not a JSON object")
        plan = self.plan
        row: dict[str, Any] = {}
        moment = ingest_time
        if plan.time is not None:
            raw_time = plan.time.read(event, context)
            if raw_time is MISSING or raw_time is None:
                batch.time_defaulted += 1  # kept, stamped with the ingestion time below
            else:
                try:
                    row["TimeGenerated"], moment = normalize_time(raw_time)
                except TimeFormatError as error:
                    raise CoercionError(f"time_field {plan.time.text!r}: {error}") from None
        extra: dict[str, Any] | None = None
        for column, coerce in zip(plan.columns, self._coercers, strict=True):
            value = column.path.read(event, context)
            if value is MISSING or value is None:
                continue
            try:
                if column.drives_time:  # the packer splits auxiliary routes by these times
                    row[column.name], moment = _datetime_and_epoch(value)
                else:
                    row[column.name] = coerce(value)
            except CoercionError as error:
                if not plan.move_bad_values:
                    raise CoercionError(f"column {column.name!r} ({column.type}): {error}") from None
                extra = extra if extra is not None else {}
                extra[column.name] = value
                batch.moved_to_extra[column.name] += 1
        if plan.stamp_time and "TimeGenerated" not in row:
            row["TimeGenerated"] = ingest_text
        self._leftovers(event, row, extra, batch)
        if plan.id_column:
            row[plan.id_column] = event_id(plan.route, event, text)
        return row, moment

    def _leftovers(self, event: dict, row: dict[str, Any], extra: dict[str, Any] | None,
                   batch: NormalizedBatch) -> None:
        """Top-level keys no column consumed whole: into ``extra`` (after values moved there), or counted."""
        plan = self.plan
        unmapped = [key for key in event if key not in plan.consumed]
        if plan.extra is None:
            for key in unmapped:
                batch.dropped_fields[key] += 1
            return
        if unmapped:
            extra = extra if extra is not None else {}
            for key in unmapped:
                extra.setdefault(key, event[key])
        if extra:
            row[plan.extra] = orjson.dumps(extra).decode() if plan.extra_as_text else extra
