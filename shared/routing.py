"""Per-record routing: which routes take a record, by the route's ``where:`` conditions.

The routes a trigger's input may go to are its *candidates* (the source's routes whose
``match`` holds for the input, in the source's order: file order, with the Event Hub
source's exact names before globs before ``*``). Each record is offered to them in turn:
the first whose ``where`` holds takes it; with ``continue: true`` the record is also offered
to the later ones (fan-out). A record no route takes follows the file's ``unrouted:``
policy: rejected with a reason (default), or sent to a named catch-all route.

Conditions are data, never code. On a dotted path (an event field, or ``_http``/``_blob``/
``_eventhub`` metadata):

- ``path: value``        equals, comparing JSON types (the string ``"1"`` is not the number 1);
- ``path: [a, b]``       equals any of;
- ``path: {prefix: s}``  a string starting with ``s``;
- ``path: {exists: b}``  the path is present (true) or absent (false); null counts as present.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .paths import MISSING, FieldPath

CONDITION_FORMS = ("prefix", "exists")
REJECT = "reject"
UNROUTED_REASON = "no route takes this record"


def _json_kind(value: Any) -> type:
    """The JSON type of a decoded value: bool, number, string, null, array or object."""
    kind = type(value)
    return float if kind is int else kind


def json_equal(left: Any, right: Any) -> bool:
    """Equality of JSON values: numbers equal numbers (1 == 1.0), a boolean is no number."""
    return _json_kind(left) is _json_kind(right) and left == right


@dataclass(frozen=True)
class Condition:
    """One ``where`` entry: a dotted path and what its value must be."""

    path: str
    equals: tuple[Any, ...] = ()  # any of these (an empty tuple: see prefix / exists)
    prefix: str | None = None
    exists: bool | None = None

    def holds(self, value: Any) -> bool:
        if self.exists is not None:
            return (value is not MISSING) is self.exists
        if value is MISSING:
            return False
        if self.prefix is not None:
            return isinstance(value, str) and value.startswith(self.prefix)
        return any(json_equal(value, wanted) for wanted in self.equals)


def parse_where(raw: Any, problem: Callable[[str, str], None]) -> tuple[Condition, ...]:
    """``where:`` of a route as conditions; each mistake is reported with its key."""
    if raw is None:
        return ()
    if not isinstance(raw, dict) or not raw:
        problem("where", "must be a non-empty mapping of dotted.path: value")
        return ()
    conditions = []
    for path, wanted in raw.items():
        key = f"where.{path}"
        if not isinstance(path, str) or not path or path.startswith(".") or path.endswith(".") or ".." in path:
            problem(key, f"{path!r} must be a dotted path like category or _eventhub.properties.kind")
            continue
        condition = _condition(path, wanted, lambda message, key=key: problem(key, message))
        if condition is not None:
            conditions.append(condition)
    return tuple(conditions)


def _condition(path: str, wanted: Any, problem: Callable[[str], None]) -> Condition | None:
    if isinstance(wanted, dict):
        if len(wanted) != 1 or next(iter(wanted)) not in CONDITION_FORMS:
            problem(f"a mapping must be exactly one of {{prefix: text}} or {{exists: true|false}}, not {wanted!r}")
            return None
        (form, value), = wanted.items()
        if form == "prefix" and (not isinstance(value, str) or not value):
            problem("prefix must be a non-empty string")
            return None
        if form == "exists" and not isinstance(value, bool):
            problem("exists must be true or false")
            return None
        return Condition(path, prefix=value) if form == "prefix" else Condition(path, exists=value)
    values = tuple(wanted) if isinstance(wanted, list) else (wanted,)
    if not values:
        problem("an empty list matches nothing: give at least one value")
        return None
    for value in values:
        if isinstance(value, (dict, list)):
            problem(f"{value!r}: compare with a string, number, boolean or null")
            return None
    return Condition(path, equals=values)


@dataclass
class Destination:
    """A candidate route with its conditions compiled."""

    route: Any
    tests: list[tuple[FieldPath, Condition]] = field(default_factory=list)

    def takes(self, event: Any, context: Any) -> bool:
        return all(condition.holds(path.read(event, context)) for path, condition in self.tests)


class Router:
    """Where each record of one input goes, among its candidate routes."""

    def __init__(self, candidates: Sequence[Any], catch_all: Any | None, roots: frozenset[str]):
        self.candidates = [Destination(route, [(FieldPath.parse(c.path, roots), c) for c in route.where])
                           for route in candidates]
        self.catch_all = catch_all
        #: one candidate taking everything: no per-record work at all
        self.single = candidates[0] if len(candidates) == 1 and not candidates[0].where else None

    def destinations(self, event: Any, context: Any) -> list[Any]:
        """The routes that take this record, in order (empty: unrouted and no catch-all)."""
        taken = []
        for destination in self.candidates:
            if destination.takes(event, context):
                taken.append(destination.route)
                if not destination.route.continue_:
                    break
        if not taken and self.catch_all is not None:
            taken.append(self.catch_all)
        return taken
