"""Route plans: the normalization rule of one route, decided once from its DCR stream and its settings.

A :class:`RoutePlan` says, for one route, everything normalization needs and nothing it has
to work out again per event: which columns are filled and in what order, where each one's
value is read (a top-level event key, a dotted path, a path into the trigger's context),
which declared type it has, where TimeGenerated comes from, which top-level keys the
columns consume whole (the rest goes to ``extra`` or is counted as dropped), the ``extra``
and ``id_column`` columns and the ``on_type_error`` policy.

It is the single statement of the rule. Two executors read it and give the same rows,
rejection reasons and counters (``tests/unit/test_plan_equivalence.py`` proves it on random
routes and events):

- the general path (``Normalizer(route, fast=False)`` in ``shared/normalize.py``): a plain
  walk of the plan, every value through the coercer of its declared type; the reference;
- the fast path (``shared/fastpath.py``): the same walk with the per-column decisions laid
  out as tuples once per route, storing values that already have their column's type as
  they are. No source text is generated and nothing is ``exec``-uted.

The typed path (``shared/typed.py``) is derived from the same plan: a per-route msgspec Struct
of the keys the columns and the time read (top-level and dotted), each with the types its
column takes unchanged, decoding events straight from their bytes; a record it refuses takes
the general path (``tests/unit/test_typed_equivalence.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Route
from .paths import FieldPath
from .sources import registry


@dataclass(frozen=True)
class ColumnRule:
    """One column filled from the event: its name, declared type and where its value is read."""

    name: str
    type: str
    path: FieldPath
    #: TimeGenerated filled through ``map`` (no ``time_field``): its epoch is the row's time, which
    #: the packer splits auxiliary routes by, so it must be the column's own value
    drives_time: bool = False


@dataclass(frozen=True)
class RoutePlan:
    route: str
    #: filled in this order, after TimeGenerated from ``time_field`` and before the stamped time,
    #: ``extra`` and ``id_column`` (the row's key order)
    columns: tuple[ColumnRule, ...]
    time: FieldPath | None  # ``time_field``: TimeGenerated (missing or null: the ingestion time, counted)
    stamp_time: bool  # TimeGenerated is declared: stamp the ingestion time when nothing filled it
    extra: str | None  # the column that keeps unconsumed top-level keys (and values moved on type errors)
    extra_as_text: bool  # ``extra`` is a string column: it holds the leftovers as compact JSON text
    id_column: str | None  # a deterministic id of the event on this route (``normalize.event_id``)
    move_bad_values: bool  # ``on_type_error: extra``: a value that does not fit goes to ``extra``
    consumed: frozenset[str]  # top-level keys read whole by a column or the time: never in ``extra``
    uses_context: bool  # some path reads the trigger's context
    #: auxiliary: the packer splits requests by the rows' times, so every row's epoch is needed (else the
    #: typed path takes none: the window count compares its datetimes as they are)
    row_times: bool = False

    @classmethod
    def of(cls, route: Route) -> RoutePlan:
        roots = registry.context_roots()  # map paths starting with these read the trigger's metadata
        computed = {route.extra, route.id_column}
        if route.time_field:
            computed.add("TimeGenerated")
        columns = []
        for column in route.schema.columns:
            if column.name in computed:
                continue
            path = FieldPath.parse(route.map.get(column.name, column.name), roots)
            drives_time = column.name == "TimeGenerated" and column.type == "datetime"
            columns.append(ColumnRule(column.name, column.type, path, drives_time))
        time = FieldPath.parse(route.time_field, roots) if route.time_field else None
        paths = [column.path for column in columns] + ([time] if time is not None else [])
        consumed = frozenset(path.key for path in paths if path.key is not None)
        return cls(
            route=route.name,
            columns=tuple(columns),
            time=time,
            stamp_time="TimeGenerated" in route.schema.names and route.extra != "TimeGenerated",
            extra=route.extra,
            extra_as_text=route.schema.type_of(route.extra) == "string" if route.extra else False,
            id_column=route.id_column,
            move_bad_values=route.on_type_error == "extra",
            consumed=consumed,
            uses_context=any(path.from_context for path in paths),
            row_times=route.auxiliary,
        )
