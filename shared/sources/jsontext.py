"""JSON text in its common shapes: one object, an array of objects, or NDJSON.

Nothing good is lost because of one bad element or line (issue 14). The fast path is one
``orjson.loads``; only text that fails it is read again, slower, by :func:`lenient_loads`
(the standard library's parser with hooks), which finds what orjson refused inside an
element — NaN, ±Infinity, a number beyond double range, a lone surrogate escape — so that
element is rejected with a reason naming its field while the others land. A decoded list
that holds such elements is a :class:`Marked` list with :class:`Unreadable` entries in
their places (a plain ``list`` otherwise: consumers test ``type(events) is list``).
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, compress, islice
from typing import Any

import msgspec
import orjson

from .errors import DecodeError

UTF8_BOM = b"\xef\xbb\xbf"


def skip_bom(text: bytes) -> bytes:
    """The text without a leading UTF-8 byte order mark (PowerShell 5, .NET stream writers)."""
    return text[3:] if text[:3] == UTF8_BOM else text


# --- elements that do not decode ---------------------------------------------------------


@dataclass(slots=True)
class Unreadable:
    """Stands in a decoded list for an element or line that could not be read, and says why."""

    reason: str
    line: int | None = None  # the 1-based line of an NDJSON body


class Marked(list):  # type: ignore[type-arg]
    """A decoded list in which some entries are :class:`Unreadable`."""


def good_events(events: list[Any]) -> list[Any]:
    """The events of a decoded list without its Unreadable entries."""
    return events if type(events) is list else [e for e in events if type(e) is not Unreadable]


class _Bad:
    """What the lenient parser puts where orjson would have failed."""

    __slots__ = ("what",)

    def __init__(self, what: str):
        self.what = what


LENIENT_FAILED: Any = object()
_SURROGATE = re.compile("[\ud800-\udfff]")
_INT_RANGE = range(-(1 << 63), 1 << 64)  # orjson keeps these as int, bigger ones become float


def _constant(name: str) -> _Bad:
    return _Bad(f"holds {name}: JSON has no NaN or Infinity")


def _float(text: str) -> float | _Bad:
    value = float(text)
    return value if math.isfinite(value) else _Bad(f"holds {text[:40]}, a number beyond double range")


def _int(text: str) -> int | float | _Bad:
    value = int(text)
    return value if value in _INT_RANGE else _float(text)


def lenient_loads(text: bytes) -> Any:
    """The value of ``text`` read by the standard library's parser (UTF-8 only, nesting bound by
    the interpreter), with a marker where orjson would have refused a value; ``LENIENT_FAILED``
    when even this cannot read it. Only ever called on text orjson refused: it is the slow path."""
    try:
        return json.loads(text.decode("utf-8"), parse_constant=_constant, parse_float=_float, parse_int=_int)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return LENIENT_FAILED


def problem(value: Any) -> str | None:
    """Why a leniently read value cannot be sent (naming the field), or None when it can."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        kind = type(item)
        if kind is dict:
            for key, inner in reversed(item.items()):
                where = f"{path}.{key}" if path else key
                if _SURROGATE.search(key):
                    return f"field {where!r} has a name with an invalid Unicode escape (a lone surrogate)"
                stack.append((where, inner))
        elif kind is list:
            stack.extend((f"{path}[{i}]", inner) for i, inner in reversed(list(enumerate(item))))
        elif kind is _Bad:
            return f"{f'field {path!r}' if path else 'the value'} {item.what}"
        elif kind is str and _SURROGATE.search(item):
            return f"{f'field {path!r}' if path else 'the value'} holds an invalid Unicode escape (a lone surrogate)"
    return None


def marked(values: list[Any]) -> list[Any]:
    """Leniently read elements, each that cannot be sent replaced by an Unreadable naming its field."""
    out = Marked()
    for value in values:
        reason = problem(value)
        out.append(value if reason is None else Unreadable(reason))
    return out if any(type(v) is Unreadable for v in out) else list(out)


def read_line(line: bytes, number: int) -> Any:
    """One NDJSON line orjson refused: its value when the lenient reading finds nothing wrong,
    else an Unreadable naming the line and, when it can, the field."""
    stripped = line.strip()
    try:
        return orjson.loads(stripped)
    except orjson.JSONDecodeError as error:
        value = lenient_loads(stripped)
        if value is LENIENT_FAILED:
            return Unreadable(f"line {number}: not valid JSON at column {error.pos + 1}: {error.msg}", number)
        reason = problem(value)
        return value if reason is None else Unreadable(f"line {number}: {reason}", number)


def read_element(text: bytes | memoryview) -> Any:
    """One element of an array (its bytes, as a body split into them gives it): its value, or an
    Unreadable naming the field orjson refused, as the element of a whole array read is named."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        value = lenient_loads(bytes(text))
        if value is LENIENT_FAILED:
            return Unreadable(f"not valid JSON at column {error.pos + 1}: {error.msg}")
        reason = problem(value)
        return value if reason is None else Unreadable(reason)


#: bytes mapped to the shape of JSON around numbers: digits, points and + to 0, e and E to e, what may end
#: a number (``,`` ``}`` ``]`` and whitespace) to s, anything else (``-`` too) to x. No deletions, so
#: ``bytes.translate`` runs at memory speed.
_NUMBER_SHAPES = bytes(ord("0") if 48 <= c <= 57 or c in b".+" else ord("e") if c in b"eE" else
                       ord("s") if c in b",}] \t\r\n" else ord("x") for c in range(256))
#: an exponent of three digits or more (``e-`` is a tiny one, its - is x), ended as a number ends: an ``E`` inside
#: a string (``"sha256:1816E67516CADB6F"``) goes on with letters, so it is no alarm. It starts with the ``e``, which
#: is rarer than a digit (every digit is a 0 here), so the regex engine's literal search skips more; the digit
#: before it is checked for each match (same process, app-log lines: 210 against 300 ns per line with it first).
_FAR_EXPONENT = re.compile(rb"e000+(?:s|\Z)")
_DIGIT_SHAPE = ord("0")
#: a mantissa of 200 digits or more: with it even a two-digit exponent may pass 1.8e308
_LONG_DIGITS = b"0" * 200


def maybe_out_of_range(text: bytes) -> bool:
    """Whether ``text`` may hold a number beyond double range, which orjson refuses and a split into
    raw values lets through. False alarms (a string holding ``9e123,``, a tiny ``1e-400`` with 200
    digits) only cost a full parse (so do exponents from 100 to 308); a miss is impossible."""
    shapes = text.translate(_NUMBER_SHAPES)
    if _LONG_DIGITS in shapes:
        return True
    return any(match.start() and shapes[match.start() - 1] == _DIGIT_SHAPE for match in _FAR_EXPONENT.finditer(shapes))


def array_text(texts: Sequence[Any]) -> bytes:
    """``[a,b,...]`` of JSON texts (bytes, or ``msgspec.Raw`` views), with one copy of them: the brackets go onto
    the first and last, where ``b"[" + b",".join(texts) + b"]"`` copies the whole array twice more (the typed
    path builds one per slice of a chunk: callgrind, blob app logs, 1.7% of its cycles went to those copies)."""
    if len(texts) <= 1:
        return b"[" + texts[0] + b"]" if texts else b"[]"
    return b",".join([b"[" + texts[0], *texts[1:-1], b"".join((texts[-1], b"]"))])


def is_utf8(text: bytes) -> bool:
    """Whether ``text`` is UTF-8 (msgspec checks only the strings it decodes, not the values it skips)."""
    if text.isascii():
        return True
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def orjson_reads(text: bytes) -> bool:
    """Whether orjson reads ``text`` (what a body read whole would be refused for, it refuses)."""
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


#: orjson encodes values nested at most 254 levels deep (a row: its object, a column, the value's levels);
#: a record nested this deep may make a deeper row, which the general path rejects ("Recursion limit reached")
MAY_BE_TOO_DEEP = 250
#: a JSON string (what may hold brackets that nest nothing)
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_NESTING = [1 if c in b"[{" else -1 for c in range(256)]  # indexed by the bytes left: brackets only


def nested_too_deep(raws: Sequence[Any], levels_above: int = 0) -> list[int]:
    """Offsets of the ``raws`` nested at least ``MAY_BE_TOO_DEEP`` levels (``levels_above``: how deep they sit in
    their record, for values of one): the typed path keeps their values raw, so it leaves them to the general
    path, which rejects or lands them as a body read whole would. A value that deep has as many opening and
    closing brackets, so a shorter one is never looked at and one with fewer opening brackets is never
    scanned: typical chunks cost one ``len`` per value."""
    levels = MAY_BE_TOO_DEEP - levels_above
    least = 2 * levels
    if not raws or max(map(len, raws)) < least:
        return []
    deep = []
    for offset in compress(range(len(raws)), map(least.__le__, map(len, raws))):  # the long ones, found in C
        raw = raws[offset]
        text = raw if raw.__class__ is bytes else bytes(raw)  # (msgspec.Raw: no count of its own)
        if text.count(b"[") + text.count(b"{") >= levels and _depth(text) >= levels:
            deep.append(offset)
    return deep


def _depth(text: bytes) -> int:
    """How deep ``text`` (JSON) nests: its brackets outside strings, counted."""
    brackets = _STRING.sub(b"", text).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_NESTING.__getitem__, brackets)), default=0)


_JSON_NAMES = {type(None): "null", bool: "true or false", int: "a number", float: "a number", str: "a string"}


def require_event_objects(value: Any, what: str = "body") -> None:
    """A top-level value that is no object and no array holds no events: the whole body is refused."""
    if type(value) is not dict and type(value) is not list:
        name = _JSON_NAMES.get(type(value), "not an object")
        raise DecodeError(f"the {what} holds no event objects: it is {name}")


def _position(text: bytes, offset: int) -> str:
    """orjson's error position counts characters, not bytes: convert it for the byte offset."""
    before = text[: 4 * offset].decode("utf-8", "surrogateescape")[:offset]  # a character is at most 4 bytes
    line = before.count("\n") + 1
    column = offset - (before.rfind("\n") + 1) + 1
    return f"line {line}, column {column} (byte offset {len(before.encode('utf-8', 'surrogateescape'))})"


def loads(text: bytes, what: str = "body") -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise DecodeError(f"{what} is not valid JSON at {_position(text, error.pos)}: {error.msg}") from None


def decode_ndjson(text: bytes, what: str = "body") -> list[Any]:
    """One JSON value per line; blank lines are skipped; a bad line is an :class:`Unreadable`
    naming it (the list is then :class:`Marked`); DecodeError only when no line is good.

    Lines are read one at a time off a buffer (no list of every line: on 200k events of 424
    bytes 0.49 s -> 0.42 s, a quarter fewer page faults) and parsed as they are, with their
    newline: orjson skips the JSON whitespace around a value, which ``strip`` would have
    removed. A line that does not parse so (a bad line, or \\v or \\f around a value, which
    ``strip`` removes and JSON does not) sends the whole body through the line-by-line reading,
    which gives the same events and names the bad lines.
    """
    try:
        return [orjson.loads(line) for line in io.BytesIO(text) if not line.isspace()]
    except orjson.JSONDecodeError:
        events = _decode_ndjson_lines(text, what)
        _require_some(events, what)
        return events


class RawSlice(list):  # type: ignore[type-arg]
    """A slice of NDJSON lines that each hold one JSON value, kept as the bytes of each value (views,
    checked in C): the destination route decodes them (``shared/typed.py``)."""

    objects: bool = False  # some line holds an object


_one_value = msgspec.json.Decoder(msgspec.Raw).decode


def _raw_slice(chunk: list[bytes]) -> RawSlice | None:
    """The slice's values as raw bytes, or None when a line is blank or not one JSON value (then the
    line reader takes the slice and names the bad lines)."""
    try:
        raws = RawSlice(map(_one_value, chunk))
    except (msgspec.DecodeError, RecursionError):
        return None
    raws.objects = any(line.lstrip()[:1] == b"{" for line in chunk)
    return raws


def ndjson_slices(text: bytes, slice_lines: int, what: str = "body", raw: bool = False) -> Iterator[list[Any]]:
    """``decode_ndjson`` a slice of lines at a time, so a caller can let each slice's events go
    before the next is decoded; the same events in the same order, bad lines as Unreadable entries
    where they stand. Raises DecodeError after the last slice when no line at all was good.
    ``raw``: a slice whose every line is one JSON value comes as a :class:`RawSlice` instead."""
    lines = io.BytesIO(text)
    before = 0  # lines in earlier slices
    good, bad = False, Marked()
    while True:
        chunk = list(islice(lines, slice_lines))
        if not chunk:
            break
        raws = _raw_slice(chunk) if raw else None
        if raws is not None:
            before += len(chunk)
            good = True
            yield raws
            continue
        try:
            events = [orjson.loads(line) for line in chunk if not line.isspace()]
        except orjson.JSONDecodeError:
            events = _decode_lines(chunk, before, what)
        before += len(chunk)
        if not good:
            kept = good_events(events)
            good = bool(kept)
            bad.extend(event for event in events if type(event) is Unreadable)
        yield events
    if not good:
        _require_some(bad, what)


def _require_some(events: list[Any], what: str) -> None:
    """An NDJSON body of which not one line is good is not NDJSON at all: a 400 naming the first line."""
    bad = [event for event in events if type(event) is Unreadable]
    if bad and len(bad) == len(events):
        more = f" (and {len(bad) - 1} more bad line(s))" if len(bad) > 1 else ""
        raise DecodeError(f"{what} holds no valid JSON line: {bad[0].reason}{more}")


def _decode_lines(lines: Iterable[bytes], before: int, what: str) -> list[Any]:
    """Stripped lines, one JSON value each, numbered from ``before + 1``; blank lines skipped; a
    bad line an Unreadable naming it (and its field, when the value is JSON orjson refuses)."""
    events = Marked()
    for number, line in enumerate(lines, start=before + 1):
        line = line.strip()
        if not line:
            continue
        try:
            events.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            events.append(read_line(line, number))
    return events if any(type(e) is Unreadable for e in events) else list(events)


def _decode_ndjson_lines(text: bytes, what: str) -> list[Any]:
    return _decode_lines(text.split(b"\n"), 0, what)


def decode_json_events(text: bytes, what: str = "body") -> list[Any]:
    """An array gives its elements; one object gives itself; several lines are NDJSON."""
    return _json_events(text, what, None)  # type: ignore[return-value]


def json_events_or_slices(text: bytes, slice_lines: int, slice_bytes: int,
                          what: str = "body", raw: bool = False) -> list[Any] | Iterator[list[Any]]:
    """``decode_json_events``, except that NDJSON comes back as its ``ndjson_slices`` (good slices as
    :class:`RawSlice` s) and an array longer than ``slice_bytes`` as its ``json_array_slices``."""
    return _json_events(text, what, (slice_lines, slice_bytes, raw))


def _json_events(text: bytes, what: str, lazy: tuple[int, int, bool] | None) -> list[Any] | Iterator[list[Any]]:
    text = skip_bom(text)
    stripped = text.strip()
    if not stripped:
        raise DecodeError(f"{what} is empty")
    if stripped[:1] == b"[":
        if lazy is not None and len(text) > lazy[1]:
            return json_array_slices(text, lazy[1], what)
        return _array(text, what)
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        value = lenient_loads(stripped) if stripped[:1] == b"{" else LENIENT_FAILED
        if value is not LENIENT_FAILED:  # one object orjson refused: it is rejected, naming its field
            return marked([value])
        if b"\n" in stripped:
            return decode_ndjson(text, what) if lazy is None else ndjson_slices(text, lazy[0], what, raw=lazy[2])
        raise DecodeError(f"{what} is not valid JSON at {_position(text, error.pos)}: {error.msg}") from None
    require_event_objects(value, what)
    return [value]


def _array(text: bytes, what: str) -> list[Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        value = lenient_loads(text)
        if type(value) is not list:
            raise DecodeError(f"{what} is not valid JSON at {_position(text, error.pos)}: {error.msg}") from None
        return marked(value)
    if not isinstance(value, list):
        raise DecodeError(f"{what} is not a JSON array")
    return value  # type: ignore[no-any-return]


_JSON_SPACE = b" \t\n\r"
#: where two objects of an array may meet: ``}`` ``,`` ``{`` with JSON whitespace between
_OBJECT_SEAM = re.compile(rb"\}[ \t\n\r]*,[ \t\n\r]*\{")
#: seams tried per slice before the rest of the array is parsed in one piece
MAX_FALSE_SEAMS = 4


def json_array_slices(text: bytes, slice_bytes: int, what: str = "body") -> Iterator[list[Any]]:
    """The elements of a JSON array, parsed about ``slice_bytes`` of text at a time.

    The text is cut only at a seam between two objects (``},{``). The first seam past
    ``slice_bytes`` is a true cut exactly when the text before it, in brackets, parses: a seam
    inside a string leaves that string open, one inside a nested value leaves a bracket open.
    After a false seam the next one is tried; after MAX_FALSE_SEAMS false ones in a slice (or in
    an array of anything but objects, which has no seams) the rest is parsed in one piece. The
    events are those of ``loads(text)``; when the text is not a valid array the error is that of
    ``loads(text)``, raised when the slice that fails is reached.
    """
    first = len(text) - len(text.lstrip(_JSON_SPACE))
    last = len(text.rstrip(_JSON_SPACE)) - 1
    if text[first:first + 1] != b"[" or text[last:last + 1] != b"]" or last <= first:
        yield _array(text, what)
        return
    start = first + 1
    while last - start > slice_bytes:
        cut = _true_seam(text, start, last, slice_bytes)
        if cut is None:
            break
        events, start = cut
        yield events
    try:
        rest = orjson.loads(b"[" + text[start:last] + b"]")
    except orjson.JSONDecodeError:
        rest = lenient_loads(b"[" + text[start:last] + b"]")
        if type(rest) is not list:
            _array(text, what)  # raises: an array whose rest is not valid JSON is not valid as a whole
            raise DecodeError(f"{what} could not be read in slices") from None  # unreachable, kept safe
        rest = marked(rest)
    yield rest


def _true_seam(text: bytes, start: int, last: int, slice_bytes: int) -> tuple[list[Any], int] | None:
    """The elements from ``start`` to the first true seam past ``slice_bytes``, and where the next
    element starts; None when no true seam is found in MAX_FALSE_SEAMS + 1 tries."""
    position = start + slice_bytes
    for _ in range(MAX_FALSE_SEAMS + 1):
        seam = _OBJECT_SEAM.search(text, position, last)
        if seam is None:
            return None
        cut = seam.start() + 1
        try:
            return orjson.loads(b"[" + text[start:cut] + b"]"), seam.end() - 1
        except orjson.JSONDecodeError:
            position = cut
    return None


def require_objects(events: list[Any], what: str = "event") -> None:
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise DecodeError(f"{what} #{index} is a {type(event).__name__}, not a JSON object")
