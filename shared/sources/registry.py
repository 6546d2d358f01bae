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


def globs(routes: Sequence[Any], key: str) -> list[Any]:
    """The routes whose ``match`` glob matches ``key`` (case-sensitive, ``*`` crosses '/'), in order."""
    return [route for route in routes if fnmatch.fnmatchcase(key, route.match)]


def exact(routes: Sequence[Any], key: str) -> list[Any]:
    """The routes whose ``match`` is ``key``, in order."""
    return [route for route in routes if route.match == key]


@dataclass(frozen=True)
class Source:
    """One kind of input. ``candidates`` lists the routes (of this source, in file order) whose
    ``match`` holds for a trigger's key (the HTTP ``{route}`` segment, ``container/blob`` path, hub
    name), in the order records are offered to them (``shared/routing.py``)."""

    name: str
    match_help: str  # what ``match`` means for this source, for messages
    candidates: Callable[[Sequence[Any], str], list[Any]] = globs
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


def candidates(source: str, routes: Iterable[Any], key: str) -> list[Any]:
    """The routes of ``source`` that may take input keyed ``key``, in the order records try them."""
    return _SOURCES[source].candidates([route for route in routes if route.source == source], key)
