"""The typed path of a route plan: events decoded from their JSON bytes straight into typed columns.

Where the fast path (``shared/fastpath.py``) walks dicts that a source decoded, the typed path
never builds them: a per-route msgspec ``Struct`` declares the top-level keys the plan reads,
each with the types its column takes unchanged (an ``int`` column: integers within 32 bits; a
``real`` one: finite floats and integers within 2**53; a ``dynamic`` one: the raw JSON bytes),
and msgspec decodes every event of a chunk into it in C. The event *is* its row: the Struct's
fields are the row's slots in column order (slots no top-level key fills are placeholders, the keys
of dotted roots hidden fields after them), and once the steps have put their values in, each event
takes the class of a second Struct with the same fields named by the columns and is encoded in C
(``None`` left out; hidden fields set to None first). Python touches only what the plan says needs
it: times (``parse_utc``), the nested values of dotted paths, ``extra`` and the ``id_column`` hash;
a value taken unchanged is never read again (same run, callgrind: 2% fewer instructions per event
than building a row Struct from columns, on the issue-12 and ``applogs`` shapes).

What the Struct refuses — a value of another type the coercers would convert, a number out of
range, an event that is not an object, a row over the field size limit, a bad time — is not
decided here: that **record** goes to the general path (``fallback``), which gives its row,
rejection and counters. So the rows, reasons and counters are the general path's
(``tests/unit/test_typed_equivalence.py`` proves it on random routes and events), with two
differences that are the point of it: ``dynamic`` and ``extra`` values keep the sender's
bytes (integers beyond 64 bits stay exact instead of turning into floats; whitespace and
number spelling may differ, the JSON value does not), and a stamped TimeGenerated sits in its
column's place in the row rather than after the other columns.

Unknown keys: a chunk is first decoded by the *strict* Struct, which refuses keys the plan
does not read, so a chunk without any needs no look at its keys. When some event has one,
the chunk is decoded by the *lax* Struct and each event's keys read as a map of raw values,
which is where ``extra`` comes from (in the event's own key order) and what the dropped-field
counts count. The path remembers which kind the last chunk was. Keys that come again in the next
lax chunk are *learned*: the route's next path (:attr:`TypedPath.successor`, which the normalizer
swaps in whole, so a run on another thread keeps the one it started with) declares them as raw
fields too, so its strict Struct takes those events and ``extra`` is built in C, a Struct of the
leftover fields per event (in the order the keys were learned, each value the sender's bytes).

Paths into the trigger's context are read once per chunk (a body has one context) and coerced as
the general path coerces them. ``id_column`` hashes each event's own bytes as they came
(``coercion.canonical_bytes``), and the general path, given the same texts for the records that
fall back, hashes the same. :meth:`TypedPath.of` returns None for plans it does not
cover (array indexes in paths, a key read as two different types, text ``extra``, keys a Struct
field cannot be named; :func:`why_not` says which); those routes keep the fast path, and ``relay
validate`` shows it per route.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from itertools import chain, repeat
from operator import attrgetter, itemgetter, methodcaller
from types import NoneType
from typing import Annotated, Any, NamedTuple

import msgspec
import orjson
from msgspec import Meta, Raw

from .coercion import (
    COERCERS,
    INT32,
    INT64,
    MAX_EXACT_FLOAT_INT,
    MAX_FIELD_BYTES,
    CoercionError,
    EventRejection,
    NormalizedBatch,
    out_of_window,
    route_hash,
    text_ids,
)
from .paths import MISSING, FieldPath
from .plan import RoutePlan
from .sources.jsontext import (
    Unreadable,
    array_text,
    is_utf8,
    maybe_out_of_range,
    nested_too_deep,
    orjson_reads,
    read_element,
)
from .timeparse import TimeFormatError, format_epoch, parse_utc

#: the general path for the records the typed path leaves: (events, ingest_time, start_index, context, texts)
Fallback = Callable[[list[Any], float, int, Any, Sequence[Any]], NormalizedBatch]

ABSENT = Raw(b"")  # a raw field's default: the key is not in the event
NULL = Raw(b"null")
#: a record a step cannot take; the one falsy value among events, rows and times (a Struct, a row's bytes and a
#: datetime are true, and a raw value is never empty but ABSENT), so ``all()`` looks for it, and None, and ABSENT,
#: in C without comparing (``x in list`` compares every value that is not x itself: ~150 instructions each)
FAIL: Any = type("Fail", (), {"__repr__": lambda self: "FAIL", "__bool__": lambda self: False, "__slots__": ()})()
#: what the keys of fields that are always None start with (row slots not read from a top-level key); an event holding
#: it with a value fails the Struct and takes the general path, so no key is ever misread
NONE_KEY = "\ufffe"
#: what a decoder raises for a record it cannot take (RecursionError: nesting deeper than msgspec goes, which
#: depends on the stack the decoder runs on, while orjson goes to 1024 levels)
_DECODE_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, RecursionError)
MAX_KEYS = 200  # keys a route's Struct declares, at most
#: keys a route learns (module docstring): a stream whose events each bring keys of their own stays lax
MAX_LEARNED = 64
#: a body :meth:`TypedPath.predecode` decodes whole is at most this large, about one engine chunk of small events.
#: Measured, same process, issue-12 events: 76-310 KB bodies (500-2,000 events) ran 1.07-1.30x faster decoded whole
#: than split; 820 KB bodies (5,000 events) ran at 0.76x (`bench.issue12 --against`), their Structs all made before
#: the first chunk is normalized: the chunks' passes no longer find them in the cache.
PREDECODE_MAX_BYTES = 320 << 10
#: the keys whose presence makes a body Event Grid's (``sources.http._is_event_grid``)
EVENT_GRID_KEYS = ("eventType", "dataVersion", "metadataVersion")

_Int32 = Annotated[int, Meta(ge=INT32[0], le=INT32[1])]
_Int64 = Annotated[int, Meta(ge=INT64[0], le=INT64[1])]
_ExactInt = Annotated[int, Meta(ge=-MAX_EXACT_FLOAT_INT, le=MAX_EXACT_FLOAT_INT)]
_EpochInt = _Int64  # larger ones fall back: orjson keeps ints to 2**64 - 1, msgspec bounds stop at 64 bits signed
#: per declared type: what the coercer returns unchanged (msgspec refuses NaN, Infinity and 1e400 itself)
FIELD_TYPES: dict[str, Any] = {
    "string": str | None,
    "boolean": bool | None,
    "int": _Int32 | None,
    "long": _Int64 | None,
    "real": _ExactInt | float | None,
    "datetime": str | _EpochInt | float | None,
    "dynamic": Raw,
}
#: what a record that does not fit ``FIELD_TYPES`` is decoded with on its own: also the values the coercers
#: convert (numbers and booleans as strings, 0 and 1, whole floats), converted by them; anything else (an
#: object for a string column, an integer beyond 64 bits) still leaves the record to the general path
WIDE_TYPES: dict[str, Any] = {
    **FIELD_TYPES,
    "string": str | bool | _Int64 | float | None,
    "boolean": bool | _Int64 | str | None,
    "int": _Int32 | float | str | None,
    "long": _Int64 | float | str | None,
    "real": _ExactInt | float | str | None,
}
#: per declared type, the classes a decoded value is stored as (any other goes through the coercer)
_STORED: dict[str, tuple[type, ...]] = {"string": (str,), "boolean": (bool,), "int": (int,), "long": (int,),
                                        "real": (int, float)}


class Mode(NamedTuple):
    strict: bool  # keys the plan does not read are refused (none to look for)
    wide: bool  # values the coercers convert are taken, and converted


MODES = (Mode(True, False), Mode(True, True), Mode(False, False), Mode(False, True))
LAX_WIDE = MODES[-1]


class _Node:
    """A key read by the plan: its type when a column reads it whole, its children when dotted paths
    go through it."""

    def __init__(self, learned: bool = False) -> None:
        self.types: set[str] = {"dynamic"} if learned else set()
        self.children: dict[str, _Node] = {}
        self.learned = learned  # no column reads it: a key the route's events keep bringing, kept raw for extra


def _usable_key(key: str) -> bool:
    return not key.startswith(NONE_KEY) and not any(c in key for c in '\\"') and all(ord(c) > 0x1F for c in key)


def why_not(plan: RoutePlan) -> str | None:
    """Why the typed path does not cover a plan (its route keeps the fast path), or None when it does."""
    reason = _shape(plan)
    if reason is not None:
        return reason
    roots = _tree(plan)
    if roots is None:
        return "a key is read as two types, or both whole and through a dotted path"
    if len(roots) > MAX_KEYS:
        return f"it reads more than {MAX_KEYS} keys"
    if plan.stamp_time and plan.time is None and not any(column.name == "TimeGenerated" for column in plan.columns):
        return "TimeGenerated is stamped but no column holds it"
    if not _class_change_works():
        return f"msgspec {msgspec.__version__} Structs cannot take another Struct's class here"
    return None


@cache
def _class_change_works() -> bool:
    """Whether an event Struct can take its row Struct's class (as :meth:`TypedPath._rows` makes rows):
    CPython allows it between classes of the same layout and attribute names; a msgspec that laid its
    Structs out otherwise would refuse it, and then every route keeps the fast path, as it says."""
    node = _Node()
    node.types.add("string")
    layout = _Layout(names=["A"], keys={"a": _slot(0)})
    try:
        event = msgspec.json.decode(b'{"a": null}', type=layout.event_struct({"a": node}, True, FIELD_TYPES))
        event.__class__ = layout.row_struct()
    except TypeError:
        return False
    return msgspec.json.encode(event) == b"{}"


def _shape(plan: RoutePlan) -> str | None:
    if plan.extra is not None and plan.extra_as_text:
        return "extra is a string column"
    paths = [column.path for column in plan.columns] + ([plan.time] if plan.time is not None else [])
    for path in paths:
        if path.from_context:  # read once per chunk, as the general path reads it
            continue
        if any(position is not None for _, position in path.steps[1:]):
            return f"path {path.text!r} may index an array"
        if not all(_usable_key(step) for step, _ in path.steps):
            return f"path {path.text!r} has a key a Struct field cannot be named"
    return None


def _tree(plan: RoutePlan) -> dict[str, _Node] | None:
    """The keys the plan reads, top level first; None when one is read as two things."""
    roots: dict[str, _Node] = {}
    reads = [(column.path, column.type) for column in plan.columns]
    if plan.time is not None:
        reads.append((plan.time, "datetime"))
    for path, kind in reads:
        if path.from_context:
            continue
        nodes = roots
        for depth, (step, _) in enumerate(path.steps):
            node = nodes.setdefault(step, _Node())
            if depth == len(path.steps) - 1:
                node.types.add(kind)
            nodes = node.children
    for node in _walk(roots):
        kinds = node.types - ({"dynamic"} if node.children else set())
        if len(node.types) > 1 or (node.children and kinds):
            return None  # a key read as two types, or read whole (not dynamic) and through
    return roots


def _walk(nodes: dict[str, _Node]) -> list[_Node]:
    out = list(nodes.values())
    for node in list(out):
        out += _walk(node.children)
    return out


def _struct(name: str, nodes: dict[str, _Node], types: dict[str, Any] = FIELD_TYPES) -> type:
    """A Struct of the keys under a dotted root: fields f0, f1... renamed to the keys (any key JSON can hold works)."""
    fields: list[tuple[str, Any, Any]] = []
    rename: dict[str, str] = {}
    for number, (key, node) in enumerate(nodes.items()):
        attribute = f"f{number}"
        rename[attribute] = key
        if node.children:
            fields.append((attribute, _struct(name, node.children, types) | None, None))
        else:
            fields.append((attribute, *_field_type(node, types)))
    return msgspec.defstruct(name, fields, rename=rename, gc=False)


def _field_type(node: _Node, types: dict[str, Any]) -> tuple[Any, Any]:
    """The type and default of a top-level key's field: a root of dotted paths is kept raw (its children
    read on demand), as a dynamic column is."""
    if node.children:
        return Raw, ABSENT
    (kind,) = node.types
    return types[kind], ABSENT if kind == "dynamic" else None


def _attribute(nodes: dict[str, _Node], steps: Sequence[tuple[str, Any]]) -> str:
    """The dotted attribute name (``f2.f0``) of a path in the Structs made by :func:`_struct`."""
    names = []
    for step, _ in steps:
        names.append(f"f{list(nodes).index(step)}")
        nodes = nodes[step].children
    return ".".join(names)


@dataclass
class _Layout:
    """Per slot of the row (its fields in order), what fills it."""

    names: list[str] = field(default_factory=list)
    #: per top-level key the plan reads, the field it is decoded into: the first slot that reads it whole
    #: (``c<slot>``), else a hidden field (``h<n>``, a root of dotted paths only) the row never shows
    keys: dict[str, str] = field(default_factory=dict)
    copies: list[tuple[int, str]] = field(default_factory=list)  # slots reading a key another slot decoded
    times: list[tuple[int, bool]] = field(default_factory=list)  # datetime slots: (slot, sets the row's time)
    raws: list[int] = field(default_factory=list)  # dynamic slots: raw bytes, null and absent left out
    #: slots read from the trigger's context (one value per chunk): (slot, path, coercer or None to keep it)
    context: list[tuple[int, FieldPath, Callable[[Any], Any] | None]] = field(default_factory=list)
    #: top-level fields a wide decode may hold in another form: (attribute, classes stored as they are, coercer)
    coerced: list[tuple[str, tuple[type, ...], Callable[[Any], Any]]] = field(default_factory=list)
    #: per root of dotted paths: its attribute, the decoders of its value and of a JSON array of them (None
    #: for null), (slot, attribute inside) per path
    nested: list[tuple[str, Callable[[Any], Any], Callable[[Any], Any], list[tuple[int, Callable[[Any], Any]]]]] = (
        field(default_factory=list))

    @property
    def hidden(self) -> list[str]:
        return [attribute for attribute in self.keys.values() if attribute[0] == "h"]

    def event_struct(self, roots: dict[str, _Node], strict: bool, types: dict[str, Any]) -> type:
        """The Struct an event is decoded into: a field per slot of the row, in its order (slots no key fills
        are placeholders, None, under a key no event holds with a value), then the hidden fields."""
        fields: list[tuple[str, Any, Any]] = [(_slot(slot), None, None) for slot in range(len(self.names))]
        rename = {_slot(slot): NONE_KEY + _slot(slot) for slot in range(len(self.names))}
        for key, attribute in self.keys.items():
            kind, default = _field_type(roots[key], types)
            if attribute[0] == "h":
                fields.append((attribute, kind, default))
            else:
                fields[int(attribute[1:])] = (attribute, kind, default)
            rename[attribute] = key
        return msgspec.defstruct("Event", fields, rename=rename, forbid_unknown_fields=strict, gc=False)

    def row_struct(self) -> type:
        """The Struct a row is encoded from: the event's fields named by the columns (hidden ones set to None
        first, so left out); an event becomes its row by taking this class, no value copied."""
        fields = [(_slot(slot), Any, None) for slot in range(len(self.names))] + [
            (attribute, Any, None) for attribute in self.hidden]
        rename = {_slot(slot): name for slot, name in enumerate(self.names)}
        rename.update({attribute: NONE_KEY + attribute for attribute in self.hidden})
        return msgspec.defstruct("Row", fields, rename=rename, omit_defaults=True, gc=False)


class TypedPath:
    """``normalize(raws, ingest_time, start_index, context, fallback)`` of one route, from its plan."""

    def __init__(self, plan: RoutePlan, roots: dict[str, _Node], learned: tuple[str, ...] = ()):
        self.plan, self.roots, self.learned = plan, roots, learned
        roots = {**roots, **{key: _Node(learned=True) for key in learned}}
        #: per mode (strict: unknown keys refused; wide: coercible values taken), decoders of a chunk and of one
        #: (built after the layout, which names their fields)
        self.layout = self._layout(plan, roots)
        layout = self.layout
        self.decoders: dict[Mode, tuple[Callable[[bytes], Any], Callable[[Any], Any]]] = {}
        for mode in MODES:
            event = layout.event_struct(roots, mode.strict, WIDE_TYPES if mode.wide else FIELD_TYPES)
            self.decoders[mode] = (msgspec.json.Decoder(list[event]).decode,  # type: ignore[valid-type]
                                   msgspec.json.Decoder(event).decode)
            if mode == MODES[0]:
                self.predecoded_type = event  # what :meth:`predecode` makes
        self.keys = msgspec.json.Decoder(dict[str, Raw]).decode
        self.keys_of_all = msgspec.json.Decoder(list[dict[str, Raw]]).decode
        self.row_type = layout.row_struct()
        self.encode = msgspec.json.Encoder().encode
        #: the roots of dotted paths no column consumes whole, and the learned keys: leftovers of an event the
        #: strict Struct took
        self.loose_roots = tuple((key, layout.keys[key]) for key, node in roots.items()
                                 if (node.children or node.learned) and key not in plan.consumed)
        self.consumed = tuple(sorted(plan.consumed))
        self.loose_keys = frozenset(key for key, _ in self.loose_roots)
        self.extra_slot = layout.names.index(plan.extra) if plan.extra is not None else None
        #: ``extra`` of an event the strict Struct took: its leftover fields, absent ones left out
        self.leftover_type = msgspec.defstruct(
            "Leftovers", [(attribute, Raw, ABSENT) for _, attribute in self.loose_roots],
            rename={attribute: key for key, attribute in self.loose_roots}, omit_defaults=True, gc=False,
        ) if self.extra_slot is not None and self.loose_roots else None
        self.seen: frozenset[str] = frozenset()  # the leftover keys of the last lax chunk
        #: the path that declares the keys this one learned; the normalizer runs it from the next chunk on
        self.successor: TypedPath | None = None
        self.id_slot = layout.names.index(plan.id_column) if plan.id_column is not None else None
        self.id_hash = route_hash(plan.route)
        self.time_slot = layout.names.index("TimeGenerated") if "TimeGenerated" in layout.names else None
        self.prefer_strict, self.prefer_wide = True, False  # what the last chunk was
        #: a strict decode may take an Event Grid event (its keys are all read): the source must see it first
        self.reads_event_grid = EVENT_GRID_KEYS[0] in roots and any(key in roots for key in EVENT_GRID_KEYS[1:])
        #: the top-level fields kept raw (their numbers are not read by msgspec): dynamic columns, dotted roots
        self.raw_fields = [layout.keys[key] for key, node in roots.items() if node.children or "dynamic" in node.types]
        self.conversions = 0  # values a wide decode took and converted, ever

    @classmethod
    def of(cls, plan: RoutePlan) -> TypedPath | None:
        """The plan's typed path, or None when it does not cover the plan (:func:`why_not` says why)."""
        if why_not(plan) is not None:
            return None
        return cls(plan, _tree(plan))  # type: ignore[arg-type]

    @staticmethod
    def _layout(plan: RoutePlan, roots: dict[str, _Node]) -> _Layout:
        layout = _Layout()
        nested: dict[str, list[tuple[int, Callable[[Any], Any]]]] = {}

        def add(name: str, path: FieldPath, kind: str, sets_time: bool) -> None:
            slot = len(layout.names)
            layout.names.append(name)
            if path.from_context:
                layout.context.append((slot, path, COERCERS[kind] if kind in _STORED else None))
            elif len(path.steps) == 1:
                key = path.steps[0][0]
                if key in layout.keys:
                    layout.copies.append((slot, layout.keys[key]))
                else:
                    layout.keys[key] = _slot(slot)
            else:
                inner = _attribute(roots[path.steps[0][0]].children, path.steps[1:])
                nested.setdefault(path.steps[0][0], []).append((slot, attrgetter(inner)))
            if kind == "datetime":
                layout.times.append((slot, sets_time))
            elif kind == "dynamic":
                layout.raws.append(slot)

        if plan.time is not None:
            add("TimeGenerated", plan.time, "datetime", True)
        for column in plan.columns:
            add(column.name, column.path, column.type, column.drives_time)
        for computed in (plan.extra, plan.id_column):
            if computed is not None:
                layout.names.append(computed)
        for key in roots:
            layout.keys.setdefault(key, sys.intern(f"h{len(layout.hidden)}"))
        for key, node in roots.items():
            if not node.children and next(iter(node.types)) in _STORED:
                kind = next(iter(node.types))
                layout.coerced.append((layout.keys[key], _STORED[kind], COERCERS[kind]))
        for key, reads in nested.items():
            inner = _struct("Nested", roots[key].children)
            layout.nested.append((layout.keys[key], msgspec.json.Decoder(inner).decode,
                                  msgspec.json.Decoder(list[inner | None]).decode, reads))  # type: ignore[valid-type]
        return layout

    # ------------------------------------------------------------------ normalizing

    def normalize(self, raws: Sequence[Raw | bytes], ingest_time: float, start_index: int, context: Any,
                  fallback: Fallback, checked: bool = False, decoded: list[Any] | None = None) -> NormalizedBatch:
        """Rows of a chunk of encoded events, made a column at a time: each step is one pass over the
        chunk through ``map`` or a comprehension (a Python loop body per record is where the fast path
        spends its time). A record a step cannot take is marked FAIL and decided by the general path,
        in one call, keeping its place. ``checked``: the source made sure the raws are JSON orjson reads
        (UTF-8, no number beyond double range), so they are not looked at for that again. ``decoded``: the
        events :meth:`predecode` made of the array ``raws`` (a ``records.LazyRaws``) came from."""
        batch = NormalizedBatch()
        if decoded and type(decoded[0]) is not self.predecoded_type:
            decoded = None  # predecoded by the path this one succeeded (another thread): decoded again here
        text = None if decoded is not None else array_text(raws)
        if text is not None and not checked and not is_utf8(text):
            # raw values (dynamic, extra, dropped keys) are not read: a record holding bytes that are not UTF-8
            # (the service would refuse the whole request) is read as the source reads it and rejected on its own
            self.fall_back(raws, start_index, ingest_time, context, fallback, batch)
            return batch
        if decoded is not None:
            events, laxes, uniform = decoded, [False] * len(decoded), True
            self.prefer_wide = False
        else:
            events, laxes, uniform = self._events(raws, text)  # type: ignore[arg-type]
        strict = uniform and bool(events) and not laxes[0] and all(events)  # raw fields the only raw values
        columns = {attribute: _column(events, attribute) for attribute in self.raw_fields} if strict else None
        for offset in _too_deep(raws, columns):  # raw values are not read: the general path decides these
            events[offset] = FAIL
        whole = all(events)  # every record decoded (a wide decode may leave one it could not convert)
        if not checked and not self._reads_like_orjson(raws, text, columns if whole or text is None else None,
                                                       decoded is not None):
            self.fall_back(raws, start_index, ingest_time, context, fallback, batch)
            return batch
        kept: Sequence[int] = range(len(events))
        if not whole:
            kept = [offset for offset, event in enumerate(events) if event is not FAIL]
            events, laxes = [events[offset] for offset in kept], [laxes[offset] for offset in kept]
        chunk = _Chunk(events, laxes, raws if whole else [raws[offset] for offset in kept],  # type: ignore[arg-type]
                       ingest_time, context or {}, text=text if whole else None,
                       raw_columns=columns if whole else None)
        bodies = self._rows(chunk) if events else []
        if uniform and events:  # strict next time unless a key outside the Struct's came
            self.prefer_strict = not laxes[0] or chunk.leftovers is None or all(
                map(self.loose_keys.issuperset, chunk.leftovers))
        made = [row for row, body in enumerate(bodies) if body is not None] if not all(bodies) else range(
            len(bodies))
        self._take(batch, chunk, bodies, made, list(range(start_index, start_index + len(raws))) if whole else [
            start_index + offset for offset in kept])
        if whole and len(made) == len(raws):  # every record made its row (the common case: nothing to sort out)
            return batch
        deferred = sorted(set(range(len(raws))).difference(kept[row] for row in made))
        if deferred:
            self._general(raws, deferred, start_index, ingest_time, context, fallback, batch)
        return batch

    @staticmethod
    def _reads_like_orjson(raws: Sequence[Any], text: bytes | None, columns: dict[str, list[Any]] | None,
                           utf8: bool) -> bool:
        """Whether what msgspec did not read is what orjson reads: the raw fields after a strict decode (``columns``),
        else (keys skipped) the text. Their UTF-8 when ``utf8`` (a predecoded body: its text was not checked), and
        their numbers: one beyond double range is found by the general path, and rejected naming its field, as in a
        body read whole."""
        unchecked = b",".join([b",".join(column) for column in columns.values()]) if columns is not None else text
        if utf8 and not is_utf8(unchecked or b""):
            return False
        return not maybe_out_of_range(unchecked or b"") or orjson_reads(
            text if text is not None else array_text(raws))

    def predecode(self, body: bytes) -> list[Any] | None:
        """Every event of a JSON array body decoded in one call, as the last chunks were (strict and exact), before
        anything splits the body into its elements: a source that gets them hands the body on as one chunk
        (``records.Encoded.decoded``), split only if something asks for an element. None (split it) when the body
        is over ``PREDECODE_MAX_BYTES``, not an array or not all of it decodes so; or when the route reads the keys that
        make an event Event Grid's, whose body the source must be able to tell (``sources.http``)."""
        if (len(body) > PREDECODE_MAX_BYTES or not self.prefer_strict or self.prefer_wide or self.reads_event_grid
                or body[:64].lstrip()[:1] != b"["):
            return None
        try:
            events = self.decoders[MODES[0]][0](body)
        except _DECODE_ERRORS:
            return None
        return events or None

    def _take(self, batch: NormalizedBatch, chunk: _Chunk, bodies: list[bytes | None], made: Sequence[int],
              indexes: list[int]) -> None:
        """The rows made (positions ``made`` of the kept records) into the batch, with their counts."""
        whole = len(made) == len(bodies)
        batch.rows = bodies if whole else [bodies[row] for row in made]  # type: ignore[assignment]
        batch.indexes = indexes if whole else [indexes[row] for row in made]
        if self.plan.row_times:
            moments = chunk.moments if chunk.moments is not None else [chunk.ingest_time] * len(bodies)
            batch.times = moments if whole else [moments[row] for row in made]
        if self.plan.time is not None and made:
            batch.time_out_of_window = out_of_window(batch.times, chunk.ingest_time) if self.plan.row_times else (
                _in_window_count(chunk.instants if whole else [chunk.instants[row] for row in made],  # type: ignore[index]
                                 chunk.ingest_time))
        if chunk.leftovers is not None and self.extra_slot is None:
            for row in made:
                if chunk.leftovers[row]:
                    batch.dropped_fields.update(chunk.leftovers[row].keys())
        unstamped = whole and chunk.instants is not None and all(chunk.instants)  # (FAIL and None are falsy)
        if chunk.defaulted is not None and not unstamped:  # some stamped with the ingestion time
            batch.time_defaulted += chunk.defaulted.count(None) if whole else sum(
                1 for row in made if chunk.defaulted[row] is None)

    def _events(self, raws: Sequence[Raw | bytes], text: bytes) -> tuple[list[Any], list[bool], bool]:
        """The chunk decoded (in one call when a mode takes it all, else record by record), values a wide
        decode took converted; FAIL where nothing takes a record. With each, whether it was decoded lax
        (keys the plan does not read are then looked for); and whether the chunk decoded in one call."""
        events, mode = self._decode_all(text)
        if events is not None:
            converted = 0
            if mode.wide and self.layout.coerced:
                before = self.conversions
                events = self._converted_columns(events)
                converted = self.conversions - before
            self.prefer_wide = mode.wide and converted > 0
            return events, [not mode.strict] * len(events), True
        pairs = list(map(self._one_or_fail, raws))
        return [pair[0] for pair in pairs], [pair[1] for pair in pairs], False

    def _rows(self, chunk: _Chunk) -> list[bytes | None]:
        """Each kept record's row, or None where a column could not be made (or the row is over the field
        size limit, which the general path counts). The event Structs are the rows: a step reads a slot's
        values (``_column``) and puts back what it made of them (``_put``); slots taken unchanged are not
        touched, and no row object is built (the events take the row's class)."""
        layout, plan, events = self.layout, self.plan, chunk.events
        count = len(events)
        failed: set[int] = set()  # rows a step could not make
        for slot, attribute in layout.copies:  # before any step changes the slot copied
            _put(events, slot, _column(events, attribute))
        for slot, path, coerce in layout.context:  # the same value for every record of the chunk
            _put(events, slot, repeat(_context_value(path, coerce, chunk.context, count, failed), count))
        for attribute, decode, decode_all, reads in layout.nested:
            inners = _inners(decode, decode_all, chunk.column(attribute), failed)
            for slot, get in reads:
                _put(events, slot, _reads(get, inners, failed))
        if plan.time is not None:
            chunk.defaulted = _column(events, _slot(0))  # before stamping: None where the time was missing or null
        for slot, sets_time in layout.times:
            moments, epochs = _moments(chunk.defaulted if slot == 0 and plan.time is not None else
                                       _column(events, _slot(slot)), failed, chunk.ingest_time,
                                       sets_time and plan.row_times)
            _put(events, slot, moments)
            if sets_time:
                chunk.moments, chunk.instants = epochs, moments
        for slot in layout.raws:
            _put(events, slot, [None if value in _NOTHING else value for value in _column(events, _slot(slot))])
        self._leftovers(chunk)
        if self.id_slot is not None:
            _put(events, self.id_slot, self._ids(chunk.raws))
        if self.time_slot is not None and plan.stamp_time:
            stamped = chunk.instants if self.time_slot == 0 and plan.time is not None else _column(
                events, _slot(self.time_slot))  # (the time_field's: what the times step just put there)
            if not all(stamped):
                ingest_text = format_epoch(chunk.ingest_time)
                _put(events, self.time_slot, [ingest_text if value is None else value for value in stamped])
        return self._encoded(events, failed)

    def _encoded(self, events: list[Any], failed: set[int]) -> list[bytes | None]:
        """The events, their steps done, encoded as rows (None for the failed ones and those over the field
        size limit): hidden fields set to None, so left out, and each event given the row's class."""
        count = len(events)
        for attribute in self.layout.hidden:
            deque(map(setattr, events, repeat(attribute, count), repeat(None, count)), maxlen=0)
        deque(map(setattr, events, repeat("__class__", count), repeat(self.row_type, count)), maxlen=0)
        if not failed:
            bodies: list[bytes | None] = list(map(self.encode, events))
            if max(map(len, bodies)) <= MAX_FIELD_BYTES:  # type: ignore[arg-type]
                return bodies
        else:
            bodies = [None if row in failed else self.encode(event) for row, event in enumerate(events)]
        return [None if body is not None and len(body) > MAX_FIELD_BYTES else body for body in bodies]

    def _ids(self, raws: list[Any]) -> list[Any]:
        """``id_column``: ``coercion.event_id`` of each record from its text (``canonical_bytes``: the bytes as
        they came, but for whitespace around them)."""
        return text_ids(self.id_hash, raws)

    def _leftovers(self, chunk: _Chunk) -> None:
        """Per record, the keys no column consumes whole with their raw values (from the key map of a
        record decoded lax, else its dotted roots): ``extra``, or what the dropped-field counts count."""
        if all(chunk.laxes):
            chunk.leftovers = self._chunk_leftovers(chunk)
            self._learn(chunk.leftovers)
        elif not any(chunk.laxes) and self.leftover_type is not None:  # extra of a strict chunk, made in C
            _put(chunk.events, self.extra_slot, self._strict_extra(chunk))  # type: ignore[arg-type]
            return
        elif not any(chunk.laxes) and len(self.loose_roots) == 1:  # (no extra: dropped-field counts) in one pass
            ((key, attribute),) = self.loose_roots
            chunk.leftovers = [{key: value} if value else {} for value in chunk.column(attribute)]  # (ABSENT: falsy)
        elif not any(chunk.laxes):
            chunk.leftovers = list(map(self._strict_leftovers, chunk.events)) if self.loose_roots else None
        else:
            chunk.leftovers = [self._lax_leftovers(raw) if lax else self._strict_leftovers(event)
                               for event, raw, lax in zip(chunk.events, chunk.raws, chunk.laxes, strict=True)]
        if self.extra_slot is not None and chunk.leftovers is not None:
            _put(chunk.events, self.extra_slot, [leftover or None for leftover in chunk.leftovers])

    def _strict_extra(self, chunk: _Chunk) -> list[Any]:
        """``extra`` of each event the strict Struct took: a ``Leftovers`` Struct of its loose fields, made in a
        C-level map (the encoder leaves absent ones out); None for an event that has none of them."""
        columns = [chunk.column(attribute) for _, attribute in self.loose_roots]
        extras = list(map(self.leftover_type, *columns))  # type: ignore[arg-type]
        if all(map(all, columns)):  # every key in every event (ABSENT is the one falsy raw value)
            return extras
        return [extra if any(present) else None for extra, present in zip(extras, zip(*columns, strict=True), strict=True)]

    def _learn(self, leftovers: list[dict[str, Any]]) -> None:
        """Learn the leftover keys of a lax chunk that the last lax chunk had too: the :attr:`successor` declares
        them (a key seen once does not grow the Struct; a route stops learning at ``MAX_LEARNED`` keys)."""
        keys = dict.fromkeys(chain.from_iterable(leftovers))  # in the order they first came
        recurring = tuple(key for key in keys if key in self.seen and key not in self.layout.keys
                          and _usable_key(key))
        self.seen = frozenset(keys)
        if recurring and len(self.learned) + len(recurring) <= MAX_LEARNED and (
                len(self.layout.keys) + len(recurring) <= MAX_KEYS):
            successor = TypedPath(self.plan, self.roots, self.learned + recurring)
            successor.prefer_wide, successor.conversions = self.prefer_wide, self.conversions
            self.successor = successor

    def _chunk_leftovers(self, chunk: _Chunk) -> list[dict[str, Any]]:
        """The key maps of a chunk decoded lax, in one call over its text, the consumed keys popped a key
        at a time over the whole chunk (C-level maps: no Python call per record)."""
        text = chunk.text if chunk.text is not None else array_text(chunk.raws)
        try:
            keymaps = self.keys_of_all(text)
        except _DECODE_ERRORS:
            keymaps = None
        if keymaps is None or len(keymaps) != len(chunk.raws):
            return list(map(self._lax_leftovers, chunk.raws))
        count = len(keymaps)
        for key in self.consumed:
            deque(map(dict.pop, keymaps, repeat(key, count), repeat(None, count)), maxlen=0)
        return keymaps

    def _lax_leftovers(self, raw: Raw | bytes) -> dict[str, Any]:
        keys = self.keys(raw)
        pop = keys.pop
        for key in self.consumed:
            pop(key, None)
        return keys

    def _strict_leftovers(self, event: Any) -> dict[str, Any]:
        return {key: value for key, attribute in self.loose_roots if (value := getattr(event, attribute)) != ABSENT}

    def _general(self, raws: Sequence[Raw | bytes], offsets: list[int], start_index: int, ingest_time: float,
                 context: Any, fallback: Fallback, batch: NormalizedBatch) -> None:
        """The records at ``offsets`` through the general path in one call, their rows put in input order
        among the typed ones (a call per record would cost more than the typed path saves)."""
        part = NormalizedBatch()
        self.fall_back([raws[offset] for offset in offsets], 0, ingest_time, context, fallback, part)
        if not self.plan.row_times:
            part.times = []  # as the typed rows: none taken (the part counted its window itself)
        at = [start_index + offset for offset in offsets]
        part.indexes = [at[index] for index in part.indexes]
        part.rejections = [replace(rejection, index=at[rejection.index]) for rejection in part.rejections]
        if not batch.rows or not part.rows or part.indexes[0] > batch.indexes[-1]:
            merge(batch, part)
            return
        indexes = batch.indexes + part.indexes
        order = sorted(range(len(indexes)), key=indexes.__getitem__)
        rows, times = batch.rows + part.rows, batch.times + part.times
        batch.rows, batch.indexes = [rows[i] for i in order], [indexes[i] for i in order]
        batch.times = [times[i] for i in order] if times else []
        part.rows, part.indexes, part.times = [], [], []
        merge(batch, part)

    def _modes(self) -> list[Mode]:
        """The modes to try, the one the last chunk needed first: strict before lax (no key map to read),
        exact before wide (no value to check)."""
        stricts = (True, False) if self.prefer_strict else (False,)
        wides = (True,) if self.prefer_wide else (False, True)
        return [Mode(strict, wide) for strict in stricts for wide in wides]

    def _decode_all(self, text: bytes) -> tuple[list[Any] | None, Mode]:
        """Every event of the chunk (``text``: a JSON array of them) in one call, in the first mode that
        takes them all; None when none does (then each record on its own)."""
        for mode in self._modes():
            try:
                return self.decoders[mode][0](text), mode
            except _DECODE_ERRORS:
                continue
        return None, LAX_WIDE

    def _one_or_fail(self, raw: Raw | bytes) -> tuple[Any, bool]:
        """One record in the first mode that takes it (values a wide decode took converted), and whether
        it was decoded lax; (FAIL, False) when none does."""
        for mode in MODES:
            try:
                event = self.decoders[mode][1](raw)
            except _DECODE_ERRORS:
                continue
            if mode.wide:
                event = self._converted(event)
            return event, not mode.strict
        return FAIL, False

    def _converted_columns(self, events: list[Any]) -> list[Any]:
        """``_converted`` of a whole chunk a column at a time: a column whose values all have a stored class
        is passed over in C (the common case: one or two columns of a chunk hold another form)."""
        failed: set[int] = set()
        for attribute, stored, coerce in self.layout.coerced:
            values = list(map(attrgetter(attribute), events))
            classes = set(map(type, values))
            if classes.issubset((*stored, NoneType)):
                continue
            if len(classes) == 1 and not failed:
                try:  # one other class, every value of it: converted in C-level maps
                    converted = list(map(coerce, values))
                except CoercionError:
                    pass
                else:
                    deque(map(setattr, events, repeat(attribute), converted), maxlen=0)
                    self.conversions += len(values)
                    continue
            for row, value in enumerate(values):
                if value is not None and value.__class__ not in stored and row not in failed:
                    try:
                        setattr(events[row], attribute, coerce(value))
                    except CoercionError:
                        failed.add(row)
                        continue
                    self.conversions += 1
        return [FAIL if row in failed else event for row, event in enumerate(events)] if failed else events

    def _converted(self, event: Any) -> Any:
        """The event with the values a wide decode took in another form converted as the coercers convert
        them (counted in ``conversions``); FAIL when one cannot be (the general path says why)."""
        for attribute, stored, coerce in self.layout.coerced:
            value = getattr(event, attribute)
            if value is not None and value.__class__ not in stored:
                try:
                    setattr(event, attribute, coerce(value))
                except CoercionError:
                    return FAIL
                self.conversions += 1
        return event

    @staticmethod
    def fall_back(raws: Sequence[Raw | bytes], first: int, ingest_time: float, context: Any, fallback: Fallback,
                  batch: NormalizedBatch) -> None:
        """Records through the general path, decoded as the source would have; outcomes merged in order
        (an element orjson refuses is rejected naming its field, as in a body read whole)."""
        try:
            events = [orjson.loads(memoryview(raw)) for raw in raws]
        except orjson.JSONDecodeError:
            for offset, raw in enumerate(raws):  # one by one: the bad one is rejected on its own
                event = read_element(memoryview(raw))
                if type(event) is Unreadable:
                    batch.rejections.append(EventRejection(first + offset, event.reason,
                                                           bytes(raw).decode("utf-8", "replace")))
                else:
                    merge(batch, fallback([event], ingest_time, first + offset, context, [raw]))
            return
        merge(batch, fallback(events, ingest_time, first, context, raws))


@dataclass
class _Chunk:
    """What the column steps of one chunk share."""

    events: list[Any]
    laxes: list[bool]
    raws: list[Any]
    ingest_time: float
    context: Any = None
    moments: list[float] | None = None  # the rows' epochs, when a column sets them and the plan takes them
    instants: list[Any] | None = None  # the rows' times as that column holds them (None: the ingestion time)
    defaulted: list[Any] | None = None  # the time_field column as decoded (None: stamped)
    leftovers: list[dict[str, Any]] | None = None
    text: bytes | None = None  # the chunk's events as one JSON array, when every one was kept
    raw_columns: dict[str, list[Any]] | None = None  # the raw fields' values, when a strict decode kept every one

    def column(self, attribute: str) -> list[Any]:
        """The values of one field of every event (a raw field's, as taken for the checks, when there)."""
        taken = self.raw_columns.get(attribute) if self.raw_columns is not None else None
        return taken if taken is not None else _column(self.events, attribute)


_NOTHING = (ABSENT, NULL)


def _slot(slot: int) -> str:
    """The attribute of a row slot, interned: ``setattr`` interns names it is given, and a class change
    compares the two classes' attribute names (both are quick only for the very same string)."""
    return sys.intern(f"c{slot}")


def _too_deep(raws: Sequence[Any], columns: dict[str, list[Any]] | None) -> list[int]:
    """The records nested too deep for the typed path (``nested_too_deep``): with ``columns`` (a strict decode:
    the raw fields' values are the only values kept raw), looked for in those values, one level below the record,
    so a body decoded whole is never split for it; else in the records."""
    if columns is None:
        return nested_too_deep(raws)
    deep = [nested_too_deep(column, levels_above=1) for column in columns.values()]
    return sorted(set().union(*deep)) if any(deep) else []


def _context_value(path: FieldPath, coerce: Callable[[Any], Any] | None, context: Any, count: int,
                   failed: set[int]) -> Any:
    """A value read from the trigger's context, coerced as the general path coerces it; when it cannot be,
    every record of the chunk fails (the general path says why, or moves it to extra)."""
    value = path.read({}, context)
    if value is MISSING or value is None or coerce is None:
        return None if value is MISSING else value
    try:
        return coerce(value)
    except CoercionError:
        failed.update(range(count))
        return value


def _column(events: list[Any], attribute: str) -> list[Any]:
    """The values of one field of every event."""
    return list(map(attrgetter(attribute), events))


def _put(events: list[Any], slot: int, values: Any) -> None:
    """``values`` into one slot of every event's row, in a C-level map."""
    deque(map(setattr, events, repeat(_slot(slot)), values), maxlen=0)


def _each(step: Callable[[Any, Any], Any], using: Any, values: list[Any], failed: set[int]) -> list[Any]:
    """``step(using, value)`` for each value, in one comprehension; when one raises (rare), value by value,
    FAIL in its place and its row in ``failed``."""
    try:
        return [step(using, value) for value in values]
    except _STEP_ERRORS:
        out = []
        for row, value in enumerate(values):
            try:
                out.append(step(using, value))
            except _STEP_ERRORS:
                out.append(FAIL)
                failed.add(row)
        return out


def _inners(decode: Callable[[Any], Any], decode_all: Callable[[Any], Any], raws: list[Any],
            failed: set[int]) -> list[Any]:
    """Each record's raw value of a dotted root decoded into its Struct (None when absent or null): the values
    joined into one JSON array and decoded in one call (only their bytes are read again, not the chunk's);
    when that fails (a value that is no object, a wrong type inside), value by value, FAIL where one fails."""
    joined = raws if all(raws) else [NULL if raw == ABSENT else raw for raw in raws]
    try:
        return decode_all(array_text(joined))  # type: ignore[no-any-return]
    except _DECODE_ERRORS:
        return _each(_nested, decode, raws, failed)


def _reads(get: Callable[[Any], Any], inners: list[Any], failed: set[int]) -> list[Any]:
    """A dotted path's values from its root's Structs: one ``map`` when every root is there and every object
    on the way too, else value by value (None where one is null, absent or FAIL)."""
    try:
        return list(map(get, inners))
    except AttributeError:  # a root or an object on the way is null or absent (None), or the root FAIL
        return _each(_read, get, inners, failed)


def _nested(decode: Callable[[Any], Any], inner: Any) -> Any:
    """A dotted root's raw value decoded into its Struct; None when absent or null."""
    return None if inner in _NOTHING else decode(inner)


def _read(get: Callable[[Any], Any], value: Any) -> Any:
    if value is None or value is FAIL:
        return None
    try:
        return get(value)
    except AttributeError:  # an object on the way is null or absent
        return None


def _moment(_: Any, value: Any) -> Any:
    """A datetime column's value in UTC (msgspec writes it as orjson does)."""
    return None if value is None else parse_utc(value)


def _moments(values: list[Any], failed: set[int], ingest_time: float, epochs: bool) -> tuple[list[Any], Any]:
    """A datetime column's values in UTC, and when ``epochs`` (the column sets the rows' times) each row's
    epoch seconds (the ingestion time where the value is null or absent): in C when every value is text
    ``parse_utc`` reads with ``fromisoformat`` alone, else value by value (FAIL where one is no time)."""
    moments = _iso_in_utc(values)
    if moments is not None:
        return moments, list(map(_timestamp, moments)) if epochs else None
    moments = _each(_moment, None, values, failed)
    if not epochs:
        return moments, None
    return moments, [ingest_time if moment is None or moment is FAIL else moment.timestamp() for moment in moments]


_timestamp = datetime.timestamp
_fromisoformat = datetime.fromisoformat
_zone = attrgetter("tzinfo")
_fifth = itemgetter(4)
_to_utc = methodcaller("astimezone", UTC)
_read_as_utc = methodcaller("replace", tzinfo=UTC)


def _iso_in_utc(values: list[Any]) -> list[datetime] | None:
    """``parse_utc`` of each value, a ``map`` at a time, when each is a ``str`` it sends straight to
    ``fromisoformat`` (ten characters or more, ``-`` after a four-digit year: no epoch text) and every one
    parses and has a UTC form; None otherwise (a null, a number, another form, a value ``fromisoformat``
    refuses, a mix of zone-less and zoned values, a moment out of range in UTC): the caller then takes
    each value through ``parse_utc``, which decides it as the general path does."""
    if not values:
        return None
    try:  # (a value that is no str, a number or null, has no len: TypeError)
        if min(map(len, values)) < 10 or "".join(map(_fifth, values)).strip("-"):
            return None
        moments = list(map(_fromisoformat, values))
        zones = set(map(_zone, moments))
        if zones == _UTC_ONLY:  # +00:00 and Z are UTC itself
            return moments
        if None not in zones:  # offsets: as _in_utc converts them (OverflowError: out of range in UTC)
            return list(map(_to_utc, moments))
    except (ValueError, OverflowError, TypeError):
        return None
    return list(map(_read_as_utc, moments)) if zones == _NAIVE_ONLY else None  # zone-less: read as UTC


_UTC_ONLY, _NAIVE_ONLY = frozenset({UTC}), frozenset({None})


_STEP_ERRORS = (*_DECODE_ERRORS, TimeFormatError)


def merge(into: NormalizedBatch, part: NormalizedBatch) -> None:
    into.rows += part.rows
    into.indexes += part.indexes
    into.times += part.times
    into.rejections += part.rejections
    into.oversized_fields.update(part.oversized_fields)
    into.dropped_fields.update(part.dropped_fields)
    into.moved_to_extra.update(part.moved_to_extra)
    into.time_defaulted += part.time_defaulted
    into.time_out_of_window += part.time_out_of_window


def _in_window_count(instants: list[Any], ingest_time: float) -> int:
    """``out_of_window`` of the rows' times as datetimes (None: stamped with the ingestion time, in it)."""
    if not all(instants):
        instants = [instant for instant in instants if instant is not None]
    return out_of_window(instants, ingest_time)
