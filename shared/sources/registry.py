"""The registry of sources: which ``source:`` values a route may name, and what each one means.

A source is a kind of trigger input (``http``, ``blob``, ``eventhub``). Its module declares a
:class:`Source` with :func:`register`; the route validator's list of sources, the context
roots that map paths may read (``_http``, ``_blob``, ``_eventhub``) and route matching all
come from here. Adding a trigger is its module (a ``Source``, and records built from its
input) plus one decorated function in ``function_app.py``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any


def first_glob(routes: Sequence[Any], key: str) -> Any | None:
    """The first route whose ``match`` glob matches ``key`` (case-sensitive, ``*`` crosses '/')."""
    return next((route for route in routes if fnmatch.fnmatchcase(key, route.match)), None)


def exact(routes: Sequence[Any], key: str) -> Any | None:
    return next((route for route in routes if route.match == key), None)


@dataclass(frozen=True)
class Source:
    """One kind of input. ``select`` picks the route for a trigger's key (the HTTP ``{route}``
    segment, ``container/blob`` path, hub name) among the routes of this source, in file order."""

    name: str
    match_help: str  # what ``match`` means for this source, for messages
    select: Callable[[Sequence[Any], str], Any | None] = first_glob
    formats: bool = False  # does ``format:`` (file formats) apply to its routes?

    @property
    def context_root(self) -> str:
        """The first segment of map paths that read this source's metadata: ``_<name>``."""
        return f"_{self.name}"


_SOURCES: dict[str, Source] = {}


def register(source: Source) -> Source:
    """Declare a source (once per name; registering the same declaration again is harmless)."""
    known = _SOURCES.get(source.name)
    if known is not None and known != source:
        raise ValueError(f"source {source.name!r} is registered twice with different declarations")
    _SOURCES[source.name] = source
    return source


def unregister(name: str) -> None:
    """Forget a source (tests that declare one of their own)."""
    _SOURCES.pop(name, None)


def names() -> tuple[str, ...]:
    return tuple(_SOURCES)


def get(name: str) -> Source | None:
    return _SOURCES.get(name)


def context_roots() -> frozenset[str]:
    return frozenset(source.context_root for source in _SOURCES.values())


def select(source: str, routes: Iterable[Any], key: str) -> Any | None:
    """The route of ``source`` that takes input keyed ``key``, or None."""
    declared = _SOURCES[source]
    return declared.select([route for route in routes if route.source == source], key)
