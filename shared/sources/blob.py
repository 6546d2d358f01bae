"""Files dropped in storage: NDJSON, JSON arrays, ``{"records": [...]}``, CSV — plain or gzip — streamed.

Nothing here holds a whole file: bytes arrive in pieces (ranged blob reads), gzip is
inflated a bounded piece at a time, NDJSON and CSV are split into lines as they
come, and JSON arrays / ``records`` documents are walked by ijson's C parser, with a
scanner that reads on past an element ijson refuses (``jsonstream.py``). Memory is
bounded by the piece size and the largest single event (``max_event_bytes``), never
by the file size.

Decoders yield *units*: the steps a run can resume at without parsing what came
before (an NDJSON line, an array element, a ``records`` element, a CSV record).
A unit normally carries one event; an NDJSON line or array element that is itself
a diagnostic-settings envelope ``{"records": [...]}`` carries several
(:class:`Expanded`). A bad unit carries a reason naming its line (or element), and
the units after it still come.

For a route that decodes events from their bytes itself (the typed path, ``shared/typed.py``),
an NDJSON file is read into blocks instead (:func:`ndjson_blocks`): the lines that each hold
one JSON object orjson reads, and no key ``records``, stay bytes (:class:`Lines`); every other
line becomes the unit :func:`ndjson_units` makes of it, in its place.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, NamedTuple

import msgspec
import orjson
from isal import isal_zlib

from .errors import DecodeError
from .jsonstream import ArrayStream
from .jsontext import (
    LENIENT_FAILED,
    Unreadable,
    is_utf8,
    lenient_loads,
    maybe_out_of_range,
    orjson_reads,
    problem,
    read_line,
)
from .registry import Source, globs, register

GZIP_MAGIC = b"\x1f\x8b"
PIECE_BYTES = 1 << 20  # decompressed bytes produced per step
SNIFF_BYTES = 64 * 1024
DEFAULT_MAX_EVENT_BYTES = 8 << 20
FORMATS = ("ndjson", "json", "records", "csv")
NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".jsonlines", ".ldjson")
CSV_SUFFIXES = (".csv", ".tsv")
_RECORDS_FIRST = re.compile(rb'\A\s*\{\s*"records"\s*:\s*\[')
_UTF8_BOM = b"\xef\xbb\xbf"

#: Marks a unit the caller asked not to parse (already handled in an earlier run).
SKIPPED: Any = object()

#: One unit of a file: (where, payload, error, size). ``where`` is the 1-based line
#: (NDJSON, CSV) or element number (arrays, records); ``payload`` an event, an
#: :class:`Expanded`, :data:`SKIPPED` or None; ``error`` a reason when the unit is bad.
Unit = tuple[int, Any, "str | None", int]


class Expanded(list):
    """Several events from one unit (a ``{"records": [...]}`` envelope)."""


def unwrap_records(value: Any) -> Any:
    """A diagnostic-settings envelope ``{"records": [...]}`` becomes its records."""
    if type(value) is dict and len(value) == 1:
        records = value.get("records")
        if type(records) is list:
            return Expanded(records)
    return value


# --- bytes -----------------------------------------------------------------------------


def peek(pieces: Iterable[bytes], size: int = SNIFF_BYTES) -> tuple[bytes, Iterator[bytes]]:
    """The first ``size`` bytes (or fewer at the end) and an iterator that still yields all."""
    iterator = iter(pieces)
    head: list[bytes] = []
    have = 0
    for piece in iterator:
        if piece:
            head.append(piece)
            have += len(piece)
        if have >= size:
            break

    def chained() -> Iterator[bytes]:
        yield from head
        yield from iterator

    return b"".join(head)[:size], chained()


def gunzip_pieces(pieces: Iterable[bytes], piece_bytes: int = PIECE_BYTES) -> Iterator[bytes]:
    """Inflate a gzip stream (concatenated members too) holding at most one input piece and
    ``piece_bytes`` of output at a time. Raises DecodeError when corrupt or truncated."""
    inflater: Any = None
    members = 0
    fed = 0
    pending = b""
    for chunk in pieces:
        fed += len(chunk)
        data = pending + chunk if pending else chunk
        pending = b""
        while data:
            if inflater is None:
                if len(data) < 2:
                    pending = data  # a member header split between pieces
                    break
                if not data.startswith(GZIP_MAGIC):
                    if members == 0:
                        raise DecodeError("data is not gzip (no gzip header)")
                    return  # trailing bytes after the last member are ignored, as gzip(1) does
                inflater = isal_zlib.decompressobj(wbits=31)
                members += 1
            try:
                out = inflater.decompress(data, piece_bytes)
            except isal_zlib.error as error:
                raise DecodeError(f"gzip data is corrupt near compressed byte {fed}: {error}") from None
            if out:
                yield out
            if inflater.eof:
                data = inflater.unused_data
                inflater = None
            else:
                data = inflater.unconsumed_tail
    while inflater is not None and not inflater.eof:  # output still held after the last input
        try:
            out = inflater.decompress(b"", piece_bytes)
        except isal_zlib.error as error:
            raise DecodeError(f"gzip data is corrupt at its end: {error}") from None
        if not out:
            break
        yield out
    if (inflater is not None and not inflater.eof) or pending:
        raise DecodeError(f"gzip data is truncated: it ends inside a member after {fed} compressed bytes")


def read_whole(pieces: Iterable[bytes], limit: int) -> bytes:
    """All the pieces as one, failing once they pass ``limit`` bytes."""
    parts: list[bytes] = []
    have = 0
    for piece in pieces:
        have += len(piece)
        if have > limit:
            raise DecodeError(f"a single JSON document over {limit} bytes cannot be read whole; "
                              "write NDJSON, a JSON array or {\"records\": [...]} instead")
        parts.append(piece)
    return b"".join(parts)


def line_lists(pieces: Iterable[bytes], max_line: int) -> Iterator[list[bytes | None]]:
    """The lines of each piece (without their newlines), a list per piece, in order; None for a line
    over ``max_line`` bytes, which is skipped without being held."""
    carry = b""
    oversized = False
    for piece in pieces:
        lines: list[Any] = piece.split(b"\n")
        if carry:  # the line the last piece ended in goes on here (joined alone: the piece is not copied)
            lines[0] = carry + lines[0]
        carry = lines.pop()
        if lines:
            if max(map(len, lines)) > max_line:
                lines = [None if len(line) > max_line else line for line in lines]
            if oversized:  # the end of a line whose start was dropped
                oversized, lines[0] = False, None
            yield lines
        if len(carry) > max_line:
            oversized, carry = True, b""
    if carry or oversized:
        yield [None if oversized else carry]


def iter_lines(pieces: Iterable[bytes], max_line: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, line without its newline) for each line; None for a line over ``max_line``
    bytes, which is skipped without being held."""
    number = 0
    for lines in line_lists(pieces, max_line):
        yield from zip(range(number + 1, number + 1 + len(lines)), lines, strict=True)
        number += len(lines)


# --- formats ----------------------------------------------------------------------------


def strip_gz(name: str) -> str:
    return name[:-3] if name.lower().endswith(".gz") else name


def detect_format(name: str, head: bytes, content_type: str = "") -> str:
    """Pick the format of a decompressed file from its name, content type and first bytes."""
    lowered = strip_gz(name).lower()
    content_type = (content_type or "").split(";", 1)[0].strip().lower()
    if lowered.endswith(CSV_SUFFIXES) or content_type in ("text/csv", "text/tab-separated-values"):
        return "csv"
    if lowered.endswith(NDJSON_SUFFIXES) or content_type in ("application/x-ndjson", "application/jsonl"):
        return "ndjson"
    text = head[3:] if head.startswith(_UTF8_BOM) else head
    first = text.lstrip()[:1]
    if first == b"[":
        return "json"
    if first == b"{":
        if _RECORDS_FIRST.match(text):
            return "records"
        line = text.lstrip().split(b"\n", 1)[0]
        try:
            orjson.loads(line)
            return "ndjson"  # one complete JSON value on the first line
        except orjson.JSONDecodeError:
            return "json"  # a pretty-printed object
    if not first:
        return "ndjson"  # empty file: nothing to do in any format
    raise DecodeError(
        f"cannot tell the format of {name!r}: it does not start with '[' or '{{' and its name does not end in "
        f"{', '.join(NDJSON_SUFFIXES + CSV_SUFFIXES)} (set the route's format)"
    )


def ndjson_units(lines: Iterable[tuple[int, bytes | None]], should_parse: Callable[[int], bool],
                 max_line: int) -> Iterator[Unit]:
    """One unit per non-blank line; a bad line is a bad unit and the next lines still come."""
    index = 0
    loads = orjson.loads
    for number, line in lines:
        if line is None:  # rejected, unless an earlier run did (resume): then skipped like any handled unit
            if should_parse(index):
                yield number, None, f"line {number}: longer than {max_line} bytes", 0
            else:
                yield number, SKIPPED, None, 0
            index += 1
            continue
        if number == 1 and line.startswith(_UTF8_BOM):
            line = line[3:]
        if not line or line.isspace():
            continue
        if not should_parse(index):
            index += 1
            yield number, SKIPPED, None, len(line)
            continue
        index += 1
        try:
            value = loads(line)
        except orjson.JSONDecodeError:  # the slow reading names the field (NaN, 1e400, a lone surrogate)
            value = read_line(line, number)
            if type(value) is Unreadable:
                yield number, None, value.reason, len(line)
                continue
        yield number, unwrap_records(value), None, len(line)


class Lines(NamedTuple):
    """Consecutive units of an NDJSON file that are each one JSON object, not an envelope, still encoded:
    their line numbers and lines (what :func:`ndjson_blocks` gives instead of a unit per line)."""

    numbers: Sequence[int]
    lines: list[bytes]


#: what an NDJSON line is first decoded into: a check in C that it holds exactly one JSON object, and whether
#: that object has a key ``records`` (escaped or not: msgspec matches keys decoded), so it may be an envelope
_NO_RECORDS = msgspec.Raw(b"")
_probe = msgspec.json.Decoder(msgspec.defstruct("Probe", [("records", msgspec.Raw, _NO_RECORDS)])).decode
_records_of = attrgetter("records")
_PROBE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)  # RecursionError: nested too deep for it


def _plain(lines: list[Any]) -> bool:
    """No line of the list is over the size limit, blank or all white space."""
    return None not in lines and b"" not in lines and not any(map(bytes.isspace, lines))


def _objects(lines: list[bytes]) -> bool:
    """Every line holds exactly one JSON object, none with a key ``records``, and all of it is JSON orjson
    reads too: UTF-8 (msgspec does not check the values it skips) with no number beyond double range.
    Checked in C, ``CHECK_LINES`` at a time (a line that fails is then checked, and decoded, on its own)."""
    return all(map(_objects_in, (lines[start:start + CHECK_LINES] for start in range(0, len(lines), CHECK_LINES))))


#: Lines :func:`_objects` checks at a time: each check reads them again, and ~70 KB of lines stay in the core's
#: caches from one check to the next, where a 1 MB piece's ~3,900 lines did not (callgrind, blob app logs: -3.4% of
#: the blob core's estimated cycles; 1,024 lines: -1.6%)
CHECK_LINES = 256


def _objects_in(lines: list[bytes]) -> bool:
    try:
        probes = list(map(_probe, lines))
    except _PROBE_ERRORS:
        return False
    if not all(map(_NO_RECORDS.__eq__, map(_records_of, probes))):
        return False
    text = b"\n".join(lines) if len(lines) > 1 else lines[0]
    return is_utf8(text) and (not maybe_out_of_range(text) or all(map(orjson_reads, lines)))


def ndjson_blocks(lists: Iterable[list[bytes | None]], should_parse: Callable[[int], bool] | None,
                  max_line: int) -> Iterator[Lines | Unit]:
    """:func:`ndjson_units`, except that lines which each hold one JSON object with no key ``records`` come
    as :class:`Lines` blocks, still encoded, for a route that decodes them itself; a line that may be a
    ``{"records": [...]}`` envelope, a bad one (orjson refuses it: ``_objects``), a blank, long or skipped
    line is what ``ndjson_units`` makes of it. The same units in the same order at the same positions, a
    list of lines checked in a few calls (``should_parse`` None: every unit is parsed)."""
    number = index = 0
    for lines in lists:
        first, number = number + 1, number + len(lines)
        if first == 1 and lines[0] is not None and lines[0].startswith(_UTF8_BOM):
            lines = [lines[0][3:], *lines[1:]]
        if _plain(lines) and (should_parse is None or all(map(should_parse, range(index, index + len(lines))))) \
                and _objects(lines):  # type: ignore[arg-type]
            index += len(lines)
            yield Lines(range(first, number + 1), lines)  # type: ignore[arg-type]
            continue
        blocks = _line_blocks(range(first, number + 1), lines, index, should_parse, max_line)
        index = blocks.pop()
        yield from blocks


def _line_blocks(numbers: range, lines: list[bytes | None], index: int, should_parse: Callable[[int], bool] | None,
                 max_line: int) -> list[Any]:
    """The blocks of one list of lines taken line by line (one is blank, too long, bad, skipped or may be an
    envelope), as ``ndjson_units`` takes them; the index of the next unit last."""
    units: list[Unit] = []  # as ndjson_units gives them, a line to parse as (number, line, None, 0)
    for number, line in zip(numbers, lines, strict=True):
        if line is not None and (not line or line.isspace()):
            continue
        if should_parse is not None and not should_parse(index):  # a long line too: an earlier run rejected it
            units.append((number, SKIPPED, None, 0 if line is None else len(line)))
        elif line is None:
            units.append((number, None, f"line {number}: longer than {max_line} bytes", 0))
        else:
            units.append((number, line, None, 0))
        index += 1
    parsed = [unit[1] for unit in units if unit[2] is None and unit[1] is not SKIPPED]
    every = bool(parsed) and _objects(parsed)  # type: ignore[arg-type]
    out: list[Any] = []
    run = Lines([], [])
    for unit in units:
        number, line, error, _ = unit
        if error is None and line is not SKIPPED and (every or _objects([line])):
            run.numbers.append(number)  # type: ignore[attr-defined]
            run.lines.append(line)
            continue
        if run.lines:
            out.append(run)
            run = Lines([], [])
        out.append(unit if error is not None or line is SKIPPED else _decoded(number, line))
    if run.lines:
        out.append(run)
    out.append(index)
    return out


def _decoded(number: int, line: bytes) -> Unit:
    """One line decoded as :func:`ndjson_units` decodes it (a bad one names its line and field)."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        value = read_line(line, number)
        if type(value) is Unreadable:
            return number, None, value.reason, len(line)
    return number, unwrap_records(value), None, len(line)


def _array_units(pieces: Iterable[bytes], head: bytes, records: bool, should_parse: Callable[[int], bool],
                 max_event: int) -> Iterator[Unit]:
    """Elements of the file's array (``records``' array when ``records``), streamed by ijson; a bad element
    is a bad unit and the elements after it still come (:mod:`.jsonstream`). ``size`` is the average bytes
    per element so far while ijson reads (it reads ahead, so one element's own size is not known)."""
    if records:
        found = _RECORDS_FIRST.match(head)
        start = found.end() if found else None
    else:
        text = head.lstrip(b" \t\n\r")
        start = len(head) - len(text) + 1 if text[:1] == b"[" else None
    stream = ArrayStream(pieces, prefix="records.item" if records else "item",
                         opening=b'{"records":[' if records else b"[", start=start,
                         what="record" if records else "element", should_parse=should_parse, max_event=max_event,
                         skipped=SKIPPED, wrap=unwrap_records)
    return stream.units()


def json_units(pieces: Iterable[bytes], head: bytes, should_parse: Callable[[int], bool],
               max_event: int) -> Iterator[Unit]:
    """A JSON array is streamed element by element; one JSON object is one unit (read whole, bounded)."""
    text = head[3:] if head.startswith(_UTF8_BOM) else head
    if text.lstrip()[:1] == b"[":
        yield from _array_units(pieces, head, False, should_parse, max_event)
        return
    try:
        document = read_whole(pieces, max_event)
    except DecodeError as error:
        yield 1, None, f"document: {error}", 0
        return
    if document.startswith(_UTF8_BOM):
        document = document[3:]
    if not document.strip():
        return
    if not should_parse(0):
        yield 1, SKIPPED, None, len(document)
        return
    try:
        value = orjson.loads(document)
    except orjson.JSONDecodeError as error:
        value = lenient_loads(document)
        reason = f"not valid JSON: {error}" if value is LENIENT_FAILED else problem(value)
        if reason is not None:  # the ref names where: element 1
            yield 1, None, reason, len(document)
            return
    yield 1, unwrap_records(value), None, len(document)


def records_units(pieces: Iterable[bytes], head: bytes, should_parse: Callable[[int], bool],
                  max_event: int) -> Iterator[Unit]:
    """``{"records": [...]}`` (diagnostic settings, Activity Log exports): each record, streamed."""
    return _array_units(pieces, head, True, should_parse, max_event)


def _decoded_lines(lines: Iterable[tuple[int, bytes | None]], state: dict[str, Any]) -> Iterator[str]:
    """Text lines for the csv module; remembers the current line number and bad lines."""
    for number, line in lines:
        state["line"] = number
        if line is None:
            state["bad"].append((number, "longer than the event size limit"))
            yield "\n"
            continue
        if number == 1 and line.startswith(_UTF8_BOM):
            line = line[3:]
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as error:
            state["bad"].append((number, f"not valid UTF-8 at byte {error.start + 1}"))
            text = line.decode("utf-8", "replace")
        yield text + "\n"


def csv_units(lines: Iterable[tuple[int, bytes | None]], should_parse: Callable[[int], bool],
              delimiter: str = ",") -> Iterator[Unit]:
    """A header row, then one unit per record; values stay text (the route's schema types them),
    empty values are left out. A record with the wrong number of fields is a bad unit."""
    state: dict[str, Any] = {"line": 0, "bad": []}
    reader = csv.reader(_decoded_lines(lines, state), delimiter=delimiter, strict=False)
    header: list[str] | None = None
    index = 0
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            line = state["line"]
            if header is None:
                raise DecodeError(f"CSV header (line {line}) cannot be read: {error}") from None
            index += 1
            state["bad"].clear()
            yield line, None, f"line {line}: {error}", 0
            start = line + 1
            continue
        end = state["line"]
        bad, state["bad"] = state["bad"], []
        if not row or (len(row) == 1 and not row[0].strip()):
            start = end + 1
            if not bad:
                continue
            # a line over the size limit reads as an empty one: it is a record rejected, never dropped
            if header is None:
                raise DecodeError(f"CSV header (line {bad[0][0]}) cannot be read: {bad[0][1]}")
            number, reason = bad[0]
            yield (number, None, f"line {number}: {reason}", 0) if should_parse(index) else (number, SKIPPED, None, 0)
            index += 1
            continue
        if header is None:
            header = [name.strip() for name in row]
            empty = [str(i + 1) for i, name in enumerate(header) if not name]
            repeated = sorted({name for name in header if name and header.count(name) > 1})
            if empty or repeated:
                problem = f"empty name in column(s) {', '.join(empty)}" if empty else f"repeated {repeated}"
                raise DecodeError(f"CSV header (line {end}) is not usable: {problem}")
            start = end + 1
            continue
        where, start = start, end + 1
        if not should_parse(index):
            index += 1
            yield where, SKIPPED, None, 0
            continue
        index += 1
        if bad:
            yield where, None, f"line {bad[0][0]}: {bad[0][1]}", 0
            continue
        if len(row) != len(header):
            yield where, None, f"line {where}: {len(row)} fields, the header has {len(header)}", 0
            continue
        size = sum(map(len, row)) + len(row)
        yield where, {name: value for name, value in zip(header, row, strict=True) if value != ""}, None, size


@dataclass
class OpenedFile:
    """A file ready to decode: its format, whether it was gzip, and its units."""

    format: str
    compressed: bool
    units: Iterator[Unit]
    where: str  # "line" or "element"/"record": how ``where`` numbers read
    #: NDJSON asked for ``encoded``: among the units, :class:`Lines` blocks of lines still encoded
    encoded: bool = False


def open_file(
    pieces: Iterable[bytes],
    name: str,
    fmt: str = "auto",
    content_type: str = "",
    should_parse: Callable[[int], bool] | None = None,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    encoded: bool = False,
) -> OpenedFile:
    """Sniff gzip and the format (unless ``fmt`` says it), and return the file's units lazily.
    Raises DecodeError when the format cannot be told or a CSV header is unusable. ``encoded``: an NDJSON
    file's good lines come as :class:`Lines` blocks, still encoded (:func:`ndjson_blocks`), for a route that
    decodes them itself; ``should_parse`` None: every unit is parsed."""
    blocks_should_parse = should_parse
    should_parse = should_parse or (lambda index: True)
    head, pieces = peek(pieces, 2)
    compressed = head.startswith(GZIP_MAGIC)
    if compressed:
        pieces = gunzip_pieces(pieces)
    head, pieces = peek(pieces, SNIFF_BYTES)
    if head.startswith(_UTF8_BOM):  # PowerShell 5 and .NET writers start UTF-8 files with one
        head, pieces = head[3:], _without_bom(pieces)
    if fmt == "auto":
        fmt = detect_format(name, head, content_type)
    if fmt not in FORMATS:
        raise DecodeError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    if fmt == "ndjson" and encoded:
        blocks = ndjson_blocks(line_lists(pieces, max_event_bytes), blocks_should_parse, max_event_bytes)
        return OpenedFile(fmt, compressed, blocks, "line", encoded=True)  # type: ignore[arg-type]
    if fmt == "ndjson":
        units = ndjson_units(iter_lines(pieces, max_event_bytes), should_parse, max_event_bytes)
        return OpenedFile(fmt, compressed, units, "line")
    if fmt == "csv":
        delimiter = "\t" if strip_gz(name).lower().endswith(".tsv") else ","
        units = csv_units(iter_lines(pieces, max_event_bytes), should_parse, delimiter)
        first = next(units, None)  # reads the header now, so a broken one fails here
        return OpenedFile(fmt, compressed, _prepend(first, units), "line")
    if fmt == "records":
        return OpenedFile(fmt, compressed, records_units(pieces, head, should_parse, max_event_bytes), "record")
    return OpenedFile(fmt, compressed, json_units(pieces, head, should_parse, max_event_bytes), "element")


def _without_bom(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """The pieces without the byte order mark the first three bytes hold."""
    iterator = iter(pieces)
    start = b""
    for piece in iterator:
        start += piece
        if len(start) >= 3:
            break
    yield start[3:] if start.startswith(_UTF8_BOM) else start
    yield from iterator


def _prepend(first: Unit | None, rest: Iterator[Unit]) -> Iterator[Unit]:
    if first is not None:
        yield first
    yield from rest


SOURCE = register(Source("blob", "a glob on 'container/blob/path'", globs, formats=True))
