"""The record model every stage speaks: where an event came from, what it became, and why not.

A source turns its input into :class:`Record` s, each with a small ``ref`` that says where
it came from in that source's own words (an HTTP element or line, a file's line or element
and record, an Event Hub partition + sequence + record). The normalizer turns records into
:class:`Row` s or :class:`Rejection` s carrying the same ref; the packer, the dispatcher and
the poison store keep it. No stage translates another stage's positions: summaries, logs
and dead-letter reasons print the ref.

Records and refs are values: nothing changes them once made. They are not declared frozen
only because a frozen dataclass takes twice as long to build, once per event. :class:`Item`,
:class:`Unit` and :class:`Row`, made for every event of a body or line of a file, are msgspec Structs
for the same reason: built in C (50 ns against 250 for a dataclass, whose ``__init__`` is Python),
and not tracked by the garbage collector (they hold no cycle).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import count, repeat
from typing import Any, ClassVar, Protocol

import msgspec
import orjson

#: Rejections and upload failures listed in a result (all of them are counted).
MAX_REPORTED = 100


class Ref(Protocol):
    """Where a record came from. ``str(ref)`` names it for a person (``line 7``, ``element 3 record 2``);
    ``fields()`` gives the same as JSON fields for summaries; ``named`` says whether a reason is
    prefixed with ``str(ref)`` in reports (an HTTP summary lists the index apart instead)."""

    named: ClassVar[bool]

    def fields(self) -> dict[str, Any]: ...


class Item(msgspec.Struct, gc=False):
    """The ``index``-th event of a body (0-based, as the HTTP summary reports it)."""

    index: int
    named: ClassVar[bool] = False

    def __str__(self) -> str:
        return f"event {self.index}"

    def fields(self) -> dict[str, Any]:
        return {"index": self.index}


class Unit(msgspec.Struct, gc=False):
    """A unit of a file (``line``, ``element`` or ``record``, 1-based) and, when the unit is an
    envelope of several records, the record within it (0-based). ``position`` is the unit's
    0-based place among the file's units (blank lines are none): where a resumed run goes on.
    Made for every line of an NDJSON blob, so a Struct too."""

    kind: str
    number: int
    record: int | None = None
    position: int = 0
    named: ClassVar[bool] = True

    def __str__(self) -> str:
        where = f"{self.kind} {self.number}"
        return where if self.record is None else f"{where} record {self.record}"

    def fields(self) -> dict[str, Any]:
        return {self.kind: self.number, **({"record": self.record} if self.record is not None else {})}


class Record(msgspec.Struct, gc=False):
    """One event on its way in: the decoded event, its ref, and the trigger metadata that
    ``_http.``/``_blob.``/``_eventhub.`` map paths read (often one mapping shared by many records).
    A Struct, built in C, as the refs are (nothing refers back to a record, so it holds no cycle)."""

    ref: Any
    event: Any
    context: Any = None
    size: int = 0  # bytes of input it came from, where known (the chunking policy counts them)


def items(events: Iterable[Any], context: Any = None, first: int = 0) -> Iterator[Record]:
    """Records of events that came in one body, one ``context`` for all, refs ``Item(first)`` on."""
    return map(Record, map(Item, count(first)), events, repeat(context))


def item_slices(slices: Iterable[Sequence[Any]], context: Any = None) -> Iterator[list[Record]]:
    """Records of events that arrive a slice at a time (a body decoded as it is read), a list per
    slice: the engine takes a list whole instead of one record at a time."""
    first = 0
    for events in slices:
        yield list(items(events, context, first))
        first += len(events)


class LazyRaws(Sequence[Any]):
    """The elements of a JSON array body that was decoded whole (``Encoded.decoded``), as the bytes of each:
    split in C only when something asks for one (a record the typed path leaves to the general path, an
    ``id_column`` hash, a rejection's text). Its length is known without splitting; a :meth:`part` shares the
    one split of the whole body."""

    def __init__(self, text: bytes, count: int, start: int = 0, whole: LazyRaws | None = None):
        self.text = text
        self.count = count
        self.start = start
        self._whole = whole
        self._raws: list[Any] | None = None

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: Any) -> Any:
        return self.raws[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.raws)

    def part(self, start: int, stop: int) -> LazyRaws:
        whole = self._whole or self
        stop = min(stop, self.count)
        return LazyRaws(self.text, max(stop - start, 0), self.start + start, whole)

    @property
    def raws(self) -> list[Any]:
        if self._raws is None:
            self._raws = (split_array(self.text) if self._whole is None else
                          self._whole.raws[self.start:self.start + self.count])
        return self._raws


#: a JSON array's elements as the bytes of each (``msgspec.Raw`` views into it), split in C
split_array = msgspec.json.Decoder(list[msgspec.Raw]).decode


@dataclass(slots=True)
class Encoded:
    """Events of one input not decoded yet: each the bytes of one JSON value (a ``msgspec.Raw`` view
    into the body, or bytes). Decoding waits for the destination: a route with a typed path
    (``shared/typed.py``) decodes them straight into its columns; for any other the engine makes
    them :class:`Record` s first (:meth:`records`), decoded as a source decodes a body. ``refs``
    names the item at a position (default ``Item``: the ``index``-th event of a body).

    ``mixed``: a source that decoded some of its input itself (a file's bad line, an envelope's records)
    left that :class:`Record` or :class:`Rejection` in its place among the raws, so the chunk is the same
    one a list of records would be (``refs`` names those positions too). ``checked``: the source made sure
    orjson reads each raw (UTF-8, no number beyond double range; what it refuses was decoded, and rejected,
    by the source), so the typed path does not look for that again."""

    raws: Sequence[Any]
    context: Any = None
    first: int = 0
    refs: Callable[[int], Any] = Item
    mixed: bool = False
    checked: bool = False
    #: every event, already decoded by the route's typed path from the array ``raws`` came from (a
    #: :class:`LazyRaws`): nothing splits the array unless asked, not even the engine cutting it into chunks
    decoded: list[Any] | None = None

    def __len__(self) -> int:
        return len(self.raws)

    def __iter__(self) -> Iterator[Record | Rejection]:
        """Its records (decoded): what a list of records from the same events would give."""
        return iter(self.records())

    def part(self, start: int, stop: int) -> Encoded:
        if self.decoded is not None:  # (raws: a LazyRaws, parted without splitting it)
            return Encoded(self.raws.part(start, stop), self.context, self.first + start, self.refs,  # type: ignore[attr-defined]
                           self.mixed, self.checked, self.decoded[start:stop])
        return Encoded(self.raws[start:stop], self.context, self.first + start, self.refs, self.mixed,
                       self.checked)

    def ref_at(self, index: int) -> Any:
        """The ref of the event at ``index`` of this part."""
        return self.refs(self.first + index)

    def event_at(self, index: int) -> Any:
        """The event at ``index`` (of this part), decoded."""
        raw = self.raws[index]
        return raw.event if type(raw) is Record else orjson.loads(memoryview(raw))

    def records(self) -> list[Record | Rejection]:
        from .sources.jsontext import Unreadable, read_element

        out: list[Record | Rejection] = []
        for index, raw in enumerate(self.raws, start=self.first):
            if self.mixed and (type(raw) is Record or type(raw) is Rejection):
                out.append(raw)
                continue
            event = read_element(memoryview(raw))
            ref = self.refs(index)
            out.append(Rejection(ref, event.reason) if type(event) is Unreadable else Record(ref, event, self.context))
        return out


class Row(msgspec.Struct, gc=False):
    """One normalized row, serialized once: the bytes that go on the wire, and its TimeGenerated
    as epoch seconds (auxiliary routes pack by it). Rows to park or replay are these; on their way to
    the packer a part's rows travel as :class:`Rows`."""

    ref: Any
    body: bytes
    time: float = 0.0


class Refs(Sequence[Any]):
    """The refs of some positions of one input, each made only when something reads it: a failure to
    report, rows to park. The engine keeps the refs of a part's rows this way, as their positions (an ``Item``
    made per row that lands, and never read, was a cost of every row); ``name`` makes the ref of a position
    (``Encoded.refs``)."""

    __slots__ = ("name", "positions")

    def __init__(self, name: Callable[[int], Any], positions: Sequence[int]):
        self.name, self.positions = name, positions

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: Any) -> Any:
        if type(index) is slice:
            return Refs(self.name, self.positions[index])
        return self.name(self.positions[index])

    def __iter__(self) -> Iterator[Any]:
        return map(self.name, self.positions)

    def __repr__(self) -> str:
        return f"Refs({list(self)!r})"

    def pick(self, positions: Iterable[int]) -> Refs:
        """The refs at these positions (of this sequence), still unnamed."""
        return Refs(self.name, list(map(self.positions.__getitem__, positions)))


def refs_joined(first: Sequence[Any], second: Sequence[Any]) -> Sequence[Any]:
    """Two runs of refs as one; still unnamed when both are :class:`Refs` of the same input."""
    if not len(first):
        return second
    if type(first) is Refs and type(second) is Refs and first.name == second.name:
        return Refs(first.name, [*first.positions, *second.positions])
    return [*first, *second]


def refs_at(refs: Sequence[Any], positions: Iterable[int]) -> Sequence[Any]:
    """``[refs[p] for p in positions]``, unnamed when ``refs`` are."""
    return refs.pick(positions) if type(refs) is Refs else [refs[p] for p in positions]


@dataclass(slots=True)
class Rows:
    """The rows of one normalized part as columns, in order: what the packer takes. Per row: its ref
    (often :class:`Refs`, named when read), its bytes and their size, and its TimeGenerated as epoch
    seconds (``times`` is empty unless the route packs by time). With :class:`Refs`, this replaced a
    ``Row`` and an ``Item`` per row on the way to the packer: callgrind, issue-12 arrays, 6.7% fewer
    estimated cycles a row."""

    refs: Sequence[Any] = ()
    bodies: list[bytes] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)  # of the bodies: taken once, read by every cut

    def __post_init__(self) -> None:
        if len(self.sizes) != len(self.bodies):
            self.sizes = list(map(len, self.bodies))

    def __len__(self) -> int:
        return len(self.bodies)

    @classmethod
    def of(cls, rows: Sequence[Row]) -> Rows:
        return cls([row.ref for row in rows], [row.body for row in rows], [row.time for row in rows])

    def row(self, position: int) -> Row:
        return Row(self.refs[position], self.bodies[position], self.times[position] if self.times else 0.0)

    def pick(self, positions: Sequence[int]) -> Rows:
        """The rows at these positions, in their order."""
        return Rows(refs_at(self.refs, positions), [self.bodies[p] for p in positions],
                    [self.times[p] for p in positions] if self.times else [], [self.sizes[p] for p in positions])

    def within(self, limit: int) -> tuple[Rows, list[int]]:
        """These rows but those of more than ``limit`` bytes, and the positions of those (in order)."""
        if not self.sizes or max(self.sizes) <= limit:  # (the rule, in C)
            return self, []
        over = [position for position, size in enumerate(self.sizes) if size > limit]
        return self.pick([position for position, size in enumerate(self.sizes) if size <= limit]), over

    def run(self, start: int, stop: int) -> Rows:
        """The rows from ``start`` to ``stop``."""
        return Rows(self.refs[start:stop], self.bodies[start:stop], self.times[start:stop], self.sizes[start:stop])

    def extend(self, more: Rows) -> None:
        self.refs = refs_joined(self.refs, more.refs)
        self.bodies += more.bodies
        self.times += more.times
        self.sizes += more.sizes


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that was not sent because of its own content, and why (never retried)."""

    ref: Any
    reason: str
    event: Any = field(default=None, repr=False, compare=False)
    size: ClassVar[int] = 0  # what the chunking policy counts of it

    def summary(self) -> dict[str, Any]:
        return {**self.ref.fields(), "reason": self.described() if self.ref.named else self.reason}

    def described(self) -> str:
        """The reason prefixed with the ref (``line 3: not valid JSON``), unless it names a place of the
        same kind already (a decoder's ``line 3: ...``, or ``file: ...``): never ``line 3: line 3: ...``."""
        where = str(self.ref)
        kind = getattr(self.ref, "kind", None)
        if self.reason.startswith(where) or (kind and self.reason.startswith((f"{kind} ", f"{kind}:"))):
            return self.reason
        return f"{where}: {self.reason}"


class Fate(StrEnum):
    """What became of one request's rows; each value names the counter of a ``Result`` it adds to."""

    LANDED = "landed"
    PARKED = "parked"  # kept in the poison store, replayed automatically
    DEADLETTERED = "deadlettered"  # refused for good by the service, kept with the reason
    FAILED = "failed"  # neither uploaded nor parked: the trigger must make the sender retry


def _counter() -> Counter[str]:
    """An empty Counter without running ``Counter.__init__`` in Python (a third of a webhook's Result)."""
    return Counter.__new__(Counter)


@dataclass
class Result:
    """What became of the records of one run on one route.

    ``received == landed + rejected + parked + deadlettered + failed``; rejections and failures
    are counted in full and listed up to :data:`MAX_REPORTED`.
    """

    route: str
    batch_id: str
    received: int = 0
    landed: int = 0
    rejected: int = 0
    parked: int = 0
    deadlettered: int = 0
    failed: int = 0
    requests: int = 0
    rejections: list[dict[str, Any]] = field(default_factory=list)  # Rejection.summary() of each
    failures: list[dict[str, Any]] = field(default_factory=list)
    oversized_fields: Counter[str] = field(default_factory=_counter)
    dropped_fields: Counter[str] = field(default_factory=_counter)
    moved_to_extra: Counter[str] = field(default_factory=_counter)
    time_defaulted: int = 0
    #: rows whose TimeGenerated the service will replace with the ingestion time (too old or ahead)
    time_out_of_window: int = 0
    #: per destination route, when records of one input went to several (totals count a record
    #: once per route that took it)
    routes: dict[str, Result] = field(default_factory=dict)

    @property
    def safe(self) -> bool:
        """Everything landed, was rejected with a reason, or is kept in the poison store."""
        return self.failed == 0

    def reject(self, rejection: Rejection) -> None:
        self.rejected += 1
        if len(self.rejections) < MAX_REPORTED:
            self.rejections.append(rejection.summary())

    def count(self, fate: Fate, rows: int) -> None:
        setattr(self, fate, getattr(self, fate) + rows)

    def fail(self, failure: dict[str, Any]) -> None:
        if len(self.failures) < MAX_REPORTED:
            self.failures.append(failure)

    def summary(self, max_reasons: int = MAX_REPORTED) -> dict[str, Any]:
        return {
            "route": self.route,
            "request_id": self.batch_id,
            "received": self.received,
            "accepted": self.landed,
            "rejected": self.rejected,
            "parked": self.parked,
            "deadlettered": self.deadlettered,
            "failed": self.failed,
            "requests": self.requests,
            "rejections": self.rejections[:max_reasons],
            "failures": self.failures[:max_reasons],
            "dropped_fields": dict(self.dropped_fields.most_common(20)),
            "moved_to_extra": dict(self.moved_to_extra),
            "oversized_fields": dict(self.oversized_fields),
            "time_defaulted": self.time_defaulted,
            "time_out_of_window": self.time_out_of_window,
            **({"routes": {name: route.counts() for name, route in self.routes.items()}} if self.routes else {}),
        }

    def counts(self) -> dict[str, int]:
        return {"received": self.received, "accepted": self.landed, "rejected": self.rejected,
                "parked": self.parked, "deadlettered": self.deadlettered, "failed": self.failed}
