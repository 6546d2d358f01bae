"""A JSON array in a file (or the ``records`` array of a diagnostic-settings export), streamed.

The fast path is ijson's C parser (yajl2_c), reading this stream's bytes FEED_BYTES at a time
through a file interface (:meth:`ArrayStream.read`; its coroutine interface measured 2-3 times
slower). It stops for good at the first token it refuses — NaN, ±Infinity, 1e400, an integer beyond
64 bits, a lone low surrogate escape, or real garbage — and it reads a lone high surrogate escape
(``"\\ud800"``) as ``"?"`` without a word. Nothing good is lost because of one bad element (issue
14), so:

* While ijson reads, the raw bytes since the last element boundary it passed are kept. A boundary
  is found once per read: up to four ``}`` followed by ``,{`` or ``]`` are handed to ijson on their
  own, and one ended an element exactly when ijson hands an element out before asking for more.
  That keeps about one read (at most one element, ``max_event`` bytes; past that nothing is kept).
* When ijson fails, the kept bytes are split into elements by a scanner that only follows strings
  and brackets, and each element is read as the HTTP path reads an array orjson refused (orjson,
  then ``jsontext.lenient_loads`` and ``problem``): one that holds what JSON cannot carry is a
  rejection naming its field, the others land. The elements ijson handed out already are passed
  over. Past the read where ijson failed, at the next element, ijson takes over again: a file is
  slower only around its bad elements.
* A read whose raw bytes hold a surrogate escape (``\\ud800``-``\\udfff``) that is not half of a
  pair is not handed to ijson at all: the scanner reads it. Finding one costs one regex search per
  read (its literal ``\\u`` prefix keeps it fast: 1-2 % of the parse time). Backslashes before a
  match are counted, so the text ``\\\\ud800`` (an escaped backslash, then ``ud800``) is not taken
  for an escape, except where the count runs into the start of the buffer: then the read goes to
  the scanner, which lands it as it is, slower but never wrong.
* Garbage (text not even the lenient reading accepts, a missing comma, a file cut short, text after
  the array) still ends the file there with ``element N: not valid JSON ...; the rest of the file
  cannot be read``, with ijson's own message when ijson found it.

Boundaries are only found between objects; in an array of arrays or of scalars (no events anyway)
nothing is kept past the first ``max_event`` bytes, and a bad element after that ends the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import ijson
import orjson

from .jsontext import LENIENT_FAILED, lenient_loads, problem

FEED_BYTES = 64 * 1024  # what ijson is fed at a time
_AHEAD = 11  # bytes looked at past a piece: a surrogate escape at its end is seen with what follows it
_BEHIND = 6  # bytes kept before the unread ones: a low surrogate escape is seen with the one before it
#: a high surrogate escape not followed by a low one, or a low one not after a high one (lookbehind last,
#: so the pattern starts with the literal ``\\u`` and the search is fast)
_LONE_SURROGATE = re.compile(
    rb"\\u[dD](?:[89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])"
    rb"|[c-fC-F](?<!\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F]))"
)
_BACKSLASH = ord("\\")
#: a ``}`` that may close an element: followed by the next object or by the array's end
_SEAM = re.compile(rb"\}[ \t\n\r]*(?:,[ \t\n\r]*\{|\])")
_SEAMS_TRIED = 4
_BRACES_LOOKED_AT = 32
_TOKEN = re.compile(rb'["\[\]{},]')
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_SPACE = re.compile(rb"[ \t\n\r]*")
_QUOTE, _COMMA, _CLOSE = ord('"'), ord(","), ord("]")
_OPENING = frozenset(b"[{")

# Where the scanner starts: right after the array's '[' (an element or ']'), after an element
# (',' or ']'), after a ',' (an element), or after the array's ']' (nothing more).
_OPEN, _AFTER, _COMMA_STATE, _CLOSED = "open", "after", "comma", "closed"


class _Broken(Exception):
    """The array cannot be read past element ``number``."""

    def __init__(self, number: int, reason: str):
        super().__init__(reason)
        self.number, self.reason = number, reason


class _LoneSurrogate(Exception):
    """Raised in :meth:`ArrayStream.read`: the piece up to byte ``until`` holds a lone surrogate escape."""

    def __init__(self, until: int):
        super().__init__(until)
        self.until = until


class ArrayStream:
    """The units ``(number, value, error, size)`` of one streamed array, numbered from 1."""

    def __init__(self, pieces: Iterable[bytes], *, prefix: str, opening: bytes, start: int | None, what: str,
                 should_parse: Callable[[int], bool], max_event: int, skipped: Any,
                 wrap: Callable[[Any], Any]):
        self.pieces = iter(pieces)
        self.prefix, self.opening, self.what = prefix, opening, what
        self.should_parse, self.max_event, self.skipped, self.wrap = should_parse, max_event, skipped, wrap
        self.buf, self.pos, self.base = b"", 0, 0  # buf[pos:] is unread; buf[0] is byte ``base`` of the file
        self.number = 0  # elements handed out
        self.mark = 0  # where ijson last handed out an element
        # the bytes since the last element boundary: from byte ``kept_at``, after ``kept_count`` elements
        self.kept: list[bytes] | None = None if start is None else []
        self.kept_at, self.kept_count, self.kept_state, self.kept_bytes = start or 0, 0, _OPEN, 0
        self.failure: tuple[int, str] | None = None  # (element, reason) when ijson failed
        self.lead = b""  # read before the file's bytes when ijson starts again after the scanner
        self.fed = 0  # buf[:fed] has been taken for ijson (and kept)
        self.cuts: list[int] = []  # where in buf[pos:fed] a '}' that may end an element is read on its own
        self.probe: tuple[int, int] | None = None  # (after, elements handed out) when that '}' was read

    def units(self) -> Iterator[tuple[int, Any, str | None, int]]:
        lead = b""
        try:
            while True:
                until = yield from self._ijson(lead)
                if until is None:
                    return
                state = yield from self._scan(until)
                lead = self.opening if state == _COMMA_STATE else self.opening + b"]"
                self._keep_from(self.pos, self.number, state)
                self.mark = self.base + self.pos
        except _Broken as broken:
            yield broken.number, None, f"{self.what} {broken.number}: {broken.reason}", 0

    # --- bytes ---------------------------------------------------------------------------

    def _fill(self, need: int) -> bool:
        """At least ``need`` unread bytes, reading pieces; False when the file ends with fewer."""
        have = len(self.buf) - self.pos
        if have >= need:
            return True
        drop = max(0, self.pos - _BEHIND)
        parts = [self.buf[drop:]]
        for piece in self.pieces:
            parts.append(piece)
            have += len(piece)
            if have >= need:
                break
        self.buf = b"".join(parts)
        self.base += drop
        self.pos -= drop
        self.fed = max(0, self.fed - drop)
        return have >= need

    def _broken(self, number: int, detail: str, at: int) -> _Broken:
        if self.failure is not None and self.failure[0] == number:
            return _Broken(number, self.failure[1])
        return _Broken(number, f"not valid JSON (near byte {at} of the decompressed file): {detail}; "
                               "the rest of the file cannot be read")

    def _too_long(self, number: int) -> _Broken:
        return _Broken(number, f"longer than {self.max_event} bytes; the rest of the file cannot be read")

    # --- ijson ---------------------------------------------------------------------------

    def _ijson(self, lead: bytes) -> Iterator[Any]:
        """Elements read by ijson until the end (returns None), or until it fails or a piece holds a
        lone surrogate escape (returns the byte up to which the scanner must read instead).

        ijson reads this object (:meth:`read`); its file interface is 2-3 times faster than feeding
        its coroutines. It asks for more bytes only once it has handed out every element it has
        finished, so ``number`` in :meth:`read` counts every element ended by the bytes read before."""
        self.lead, self.failure, self.probe, self.cuts = lead, None, None, []
        self.fed = self.pos
        try:
            for value in ijson.items(self, self.prefix, use_float=True, buf_size=FEED_BYTES):
                self.number += 1
                number = self.number
                self.mark = read = self.base + self.pos
                if not self.should_parse(number - 1):
                    yield number, self.skipped, None, read // number
                else:
                    yield number, self.wrap(value), None, read // number
        except _LoneSurrogate as lone:
            return lone.until
        except (ijson.JSONError, UnicodeDecodeError) as error:  # a lone low surrogate escape raises the latter
            message = (str(error).strip().splitlines() or [""])[0][:200]
            self.failure = (self.number + 1, f"not valid JSON (near byte {self.base + self.pos} of the decompressed "
                                             f"file): {message}; the rest of the file cannot be read")
            return self.base + self.fed
        return None

    def read(self, size: int = -1) -> bytes:
        """The next bytes for ijson: at most a piece of FEED_BYTES, in which each ``}`` that may end an
        element comes on its own; b"" at the end of the file."""
        if size == 0:
            return b""
        if self.lead:
            lead, self.lead = self.lead, b""
            return lead
        if self.probe is not None:
            self._probed()
        if self.pos == self.fed and not self._next_piece():
            return b""
        cut = self.cuts[-1] if self.cuts else self.fed
        if self.pos < cut:
            data = self.buf[self.pos:cut]
            self.pos = cut
            return data
        self.cuts.pop()
        self.pos += 1
        self.probe = (self.pos, self.number)
        return b"}"

    def _next_piece(self) -> bool:
        """Take the next FEED_BYTES (False at the end of the file): checked for lone surrogate escapes,
        kept, and with the ``}`` that may end an element found."""
        if self.base + self.pos - self.mark > self.max_event + 2 * FEED_BYTES:
            raise self._too_long(self.number + 1)
        more = self._fill(FEED_BYTES + _AHEAD)
        end = min(len(self.buf), self.pos + FEED_BYTES) if more else len(self.buf)
        if end == self.pos:
            return False
        if self._lone_surrogate(end):
            raise _LoneSurrogate(self.base + end)
        self.cuts = self._seams(self.pos, end)
        self._keep(self.pos, end)
        return True

    def _probed(self) -> None:
        """Did the ``}`` read last end an element? Then keep the bytes from there only."""
        after, count = self.probe  # type: ignore[misc]
        self.probe = None
        if self.number > count:
            fed = self.fed
            self._keep_from(after, self.number, _AFTER)
            self._keep(after, fed)

    def _lone_surrogate(self, end: int) -> bool:
        """Does buf[pos:end] hold a surrogate escape that is not half of a pair? (ijson reads a lone high
        one as "?" and a high one before another high one as a pair; it fails on a lone low one.)"""
        at = self.pos
        while True:
            match = _LONE_SURROGATE.search(self.buf, at, end + _AHEAD)
            if match is None or match.start() >= end:
                return False
            if self._escape_at(match.start()):
                return True
            at = match.start() + 1

    def _escape_at(self, index: int) -> bool:
        """Does the backslash at buf[index] start an escape (not the second half of an escaped one)?"""
        run = index
        while run > 0 and self.buf[run - 1] == _BACKSLASH:
            run -= 1
        return (index - run) % 2 == 0 or (run == 0 and self.base > 0)  # unsure: say yes, the scanner is exact

    def _seams(self, start: int, end: int) -> list[int]:
        """Up to _SEAMS_TRIED of the last ``}`` in buf[start:end] that may close an element, the last first."""
        found: list[int] = []
        cut = end
        for _ in range(_BRACES_LOOKED_AT):
            cut = self.buf.rfind(b"}", start, cut)
            if cut < 0:
                break
            if _SEAM.match(self.buf, cut):
                found.append(cut)
                if len(found) == _SEAMS_TRIED:
                    break
        return found

    def _keep_from(self, index: int, count: int, state: str) -> None:
        """buf[index] is an element boundary, after ``count`` elements: keep the bytes from there."""
        self.kept, self.kept_at, self.kept_count, self.kept_state, self.kept_bytes = (
            [], self.base + index, count, state, 0)

    def _keep(self, start: int, end: int) -> None:
        """buf[start:end] is read: keep it (from the boundary on) for the scanner."""
        self.fed = end
        if self.kept is None:
            return
        start = max(start, self.kept_at - self.base)
        if end > start:
            self.kept.append(self.buf[start:end])
            self.kept_bytes += end - start
            if self.kept_bytes > self.max_event + 2 * FEED_BYTES:
                self.kept = None  # one element longer than an event may be: no boundary to go back to

    # --- the scanner ---------------------------------------------------------------------

    def _scan(self, until: int) -> Iterator[Any]:
        """From the last boundary, each element split from the raw bytes and read on its own, until
        the first ',' at or past byte ``until`` (returns the comma state) or the array's end."""
        if self.kept is None:
            raise self._broken(self.number + 1, "no element boundary to read on from", self.base + self.pos)
        unread = max(self.fed, self.kept_at - self.base)  # the kept bytes end at fed (the boundary may be past it)
        self.buf = b"".join([*self.kept, memoryview(self.buf)[unread:]])
        self.base, self.pos = self.kept_at, 0
        number, state = self.kept_count, self.kept_state
        while True:
            if state == _CLOSED:
                raise self._broken(number + 1, "more after the array's end", self.base + self.pos)
            if state == _AFTER:
                state = self._separator(number)
                if state == _COMMA_STATE and self.base + self.pos >= until and number >= self.number:
                    return state
                if state == _CLOSED:
                    return state
                continue
            first = self._skip_space(number + 1)
            if first == _CLOSE and state == _OPEN:
                self.pos += 1
                return _CLOSED
            end = self._element_end(number + 1)
            number += 1
            if number > self.number:
                yield self._unit(number, end)
            self.pos, state = end, _AFTER

    def _skip_space(self, number: int) -> int:
        """The next byte that is not JSON whitespace (pos moves to it)."""
        while True:
            self.pos = _SPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill(1):
                raise self._broken(number, "the file ends inside the array", self.base + self.pos)

    def _separator(self, number: int) -> str:
        """After element ``number``: a ',' (another element follows) or the array's ']'."""
        byte = self._skip_space(number + 1)
        if byte not in (_COMMA, _CLOSE):
            raise self._broken(number + 1, f"expected ',' or ']' after {self.what} {number}", self.base + self.pos)
        self.pos += 1
        return _COMMA_STATE if byte == _COMMA else _CLOSED

    def _element_end(self, number: int) -> int:
        """Where the element at pos ends: its brackets closed, or (a scalar) the ',' or ']' after it."""
        depth, ahead = 0, 0  # ahead: how far past pos the scan is (pos moves when more is read)
        while True:
            at = self.pos + ahead
            token = _TOKEN.search(self.buf, at)
            if token is None:
                self._more(number)
                continue
            index = token.start()
            byte = self.buf[index]
            if byte == _QUOTE:
                rest = _STRING_REST.match(self.buf, index + 1)
                if rest is None:  # the string goes on in the next piece: read on from its quote
                    ahead = index - self.pos
                    self._more(number)
                    continue
                ahead = rest.end() - self.pos
            elif byte in _OPENING:
                depth, ahead = depth + 1, index + 1 - self.pos
            elif depth == 0:
                return index
            elif byte == _COMMA:
                ahead = index + 1 - self.pos
            else:
                depth, ahead = depth - 1, index + 1 - self.pos
                if depth == 0:
                    return index + 1

    def _more(self, number: int) -> None:
        """Another piece for the element at pos (element ``number``); pos may move, not the element."""
        have = len(self.buf) - self.pos
        if have > self.max_event:
            raise self._too_long(number)
        self._fill(2 * have + FEED_BYTES)  # twice as much: a long string is scanned again only log(n) times
        if len(self.buf) - self.pos == have:
            raise self._broken(number, "the file ends inside the array", self.base + len(self.buf))

    def _unit(self, number: int, end: int) -> tuple[int, Any, str | None, int]:
        """Element ``number``, buf[pos:end], read on its own: as orjson reads it, else leniently."""
        self.number = number
        text = self.buf[self.pos:end]
        if len(text) > self.max_event:
            raise self._too_long(number)
        if not self.should_parse(number - 1):
            return number, self.skipped, None, len(text)
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as error:
            value = lenient_loads(text)
            if value is LENIENT_FAILED:
                raise self._broken(number, error.msg, self.base + self.pos) from None
            reason = problem(value)
            if reason is not None:
                return number, None, f"{self.what} {number}: {reason}", len(text)
        return number, self.wrap(value), None, len(text)
