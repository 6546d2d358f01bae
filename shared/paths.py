"""Dotted paths into an event or its trigger metadata: how a route's ``map``, ``time_field`` and
``where:`` conditions read values (one reading for normalization and routing alike)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: A path that leads nowhere (absent key, index past the end, key on a scalar). Normalization
#: treats it like JSON null: the column is left out of the row.
MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING", "__slots__": ()})()


@dataclass(frozen=True)
class FieldPath:
    """Where a value is read: ``text`` as written in the route (``repository.full_name``,
    ``commits.0.id``, ``_http.headers.x-github-event``) split once into its steps."""

    text: str
    #: each step: the key it reads in an object, and the position it reads in an array (a step of
    #: ASCII digits) or None
    steps: tuple[tuple[str, int | None], ...]
    from_context: bool  # the first step names a source's context root (``_http``, ``_blob``, ...)

    @classmethod
    def parse(cls, text: str, context_roots: frozenset[str]) -> FieldPath:
        names = text.split(".")
        steps = tuple((name, int(name) if name.isascii() and name.isdigit() else None) for name in names)
        return cls(text, steps, names[0] in context_roots)

    @property
    def key(self) -> str | None:
        """The top-level event key when the path is just that one key (read with ``event.get``)."""
        return self.steps[0][0] if len(self.steps) == 1 and not self.from_context else None

    def read(self, event: Mapping[str, Any], context: Mapping[str, Any]) -> Any:
        """The value at this path, or :data:`MISSING`."""
        value: Any = context if self.from_context else event
        for name, position in self.steps:
            if isinstance(value, dict):
                value = value.get(name, MISSING)
                if value is MISSING:
                    return MISSING
            elif position is not None and isinstance(value, list) and position < len(value):
                value = value[position]
            else:
                return MISSING
        return value
