"""NDJSON blob lines that stay encoded for a route with a typed path: the same units, records, rejections,
tallies and chunks as the dict path gives for the same file.

``ndjson_blocks`` hands on runs of lines that each hold one JSON object (no key ``records``) as ``Lines``
blocks and decodes everything else as ``ndjson_units`` does; ``EncodedFileRecords`` cuts them into
``Encoded`` chunks where the engine would cut the records of ``file_records``. These tests run the same
bytes through both and compare everything a caller sees. (tests/blob/test_blob_typed.py does the same
through the blob trigger against Azurite.)
"""

from __future__ import annotations

import gzip
from typing import Any
from unittest.mock import patch

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import engine as engine_module
from shared.blob_ingest import EncodedFileRecords, FileTally, file_records
from shared.config import parse_config
from shared.dispatch import Dispatcher
from shared.engine import Chunking, Engine
from shared.records import Encoded, Record, Rejection
from shared.sources import blob as blob_source
from shared.sources.blob import (
    SKIPPED,
    Lines,
    _decoded,
    iter_lines,
    line_lists,
    ndjson_blocks,
    ndjson_units,
    open_file,
)
from tests.unit.test_encoded import LandingUploader
from tests.unit.test_plan_equivalence import ROOT

MAX_LINE = 300
CONTEXT = {"_blob": {"name": "day.ndjson", "container": "ingest"}}

#: every kind of line the dict path treats in its own way, and good ones
LINES = {
    "good": b'{"ts": "2024-05-01T10:00:%02dZ", "level": "info", "n": %d, "d": 1.5, "ok": true, "more": {"k": [1]}}',
    "good-crlf": b'  {"level": "warn", "n": %d, "seq": %d}  \r',
    "coerced": b'{"level": 7, "n": "%d", "ok": 1, "x": %d}',
    "bad-type": b'{"level": "x", "n": "many", "x": %d%d}',
    "envelope": b'{"records": [{"level": "a", "n": %d}, {"level": "b", "n": "x"}, {"n": %d}]}',
    "escaped-envelope": b'{"r\\u0065cords": [{"n": %d}, {"n": %d}]}',
    "records-key": b'{"records": %d, "n": %d}',
    "nan": b'{"level": "x", "n": NaN, "x": %d%d}',
    "beyond-double": b'{"level": "x", "big": 1e400, "x": %d%d}',
    "lone-surrogate": b'{"level": "x", "s": "\\ud800", "x": %d%d}',
    "not-utf8": b'{"level": "x", "s": "\xff", "x": %d%d}',
    "two-values": b'{"n": %d} {"n": %d}',
    "truncated": b'{"n": %d, "m": %d',
    "array": b'[%d, %d]',
    "scalar": b'%d%d',
    "blank": b"",
    "spaces": b" \t\r",
    "vertical-tab": b'\x0b{"n": %d, "m": %d}',
    "long": b'{"level": "' + b"y" * MAX_LINE + b'", "n": %d, "m": %d}',
}


def make_line(kind: str, n: int) -> bytes:
    line = LINES[kind]
    if line.count(b"%") == 2:
        first = n % 60 if kind == "good" else n
        return line % (first, n)
    return line


def route() -> Any:
    raw = {"name": "files", "source": "blob", "match": "ingest/*", "endpoint": "https://127.0.0.1:1",
           "dcr": "dcr-" + "0" * 32, "stream": "Custom-Files",
           "columns": [{"name": name, "type": kind} for name, kind in {
               "TimeGenerated": "datetime", "Level": "string", "N": "long", "D": "real", "Ok": "boolean",
               "File": "string", "Properties": "dynamic"}.items()],
           "map": {"Level": "level", "N": "n", "D": "d", "Ok": "ok", "File": "_blob.name"}, "time_field": "ts",
           "extra": "Properties"}
    return parse_config(yaml.safe_dump({"routes": [raw]}), {}, ROOT).routes[0]


def pieces_of(data: bytes, size: int) -> list[bytes]:
    return [data[start:start + size] for start in range(0, len(data), size)] or [b""]


def flat_units(blocks: list[Any]) -> list[Any]:
    """Blocks as the units ndjson_units gives (a block's lines decoded as it decodes them)."""
    out = []
    for block in blocks:
        if type(block) is Lines:
            out += [_decoded(number, line) for number, line in zip(block.numbers, block.lines, strict=True)]
        else:
            out.append(block)
    return out


file_lines = st.lists(st.tuples(st.sampled_from(sorted(LINES)), st.integers(0, 10**6)), max_size=60)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=file_lines, piece=st.integers(1, 700), bom=st.booleans(), newline=st.booleans(),
       handled=st.one_of(st.none(), st.sets(st.integers(0, 70))))
def test_blocks_are_the_units_of_the_dict_path_with_good_lines_left_encoded(lines, piece, bom, newline, handled):
    # GIVEN an NDJSON file of any mix of lines, read in pieces of any size, maybe resumed with some units handled
    data = (b"\xef\xbb\xbf" if bom else b"") + b"\n".join(make_line(kind, n) for kind, n in lines) + (
        b"\n" if newline else b"")
    should_parse = None if handled is None else (lambda index: index not in handled)
    # WHEN it is read into units (dict path) and into blocks (encoded)
    # (the lines of a piece checked all at once, and a few at a time: a bad line in any check's lines is found)
    units = list(ndjson_units(iter_lines(pieces_of(data, piece), MAX_LINE), should_parse or (lambda i: True),
                              MAX_LINE))
    blocks = list(ndjson_blocks(line_lists(pieces_of(data, piece), MAX_LINE), should_parse, MAX_LINE))
    with patch.object(blob_source, "CHECK_LINES", 3):
        blocks_of_few = list(ndjson_blocks(line_lists(pieces_of(data, piece), MAX_LINE), should_parse, MAX_LINE))
    # THEN the blocks are the same units (a block's lines decode as the dict path decodes them), and only
    # lines holding one JSON object without a "records" key stay encoded
    assert flat_units(blocks) == units and blocks_of_few == blocks
    encoded = [line for block in blocks if type(block) is Lines for line in block.lines]
    assert all(line.strip()[:1] == b"{" and b"records" not in line and b"\\u0065" not in line for line in encoded)
    skipped = [unit for unit in units if unit[1] is SKIPPED]
    assert len(skipped) == len([unit for unit in flat_units(blocks) if unit[1] is SKIPPED])


def test_iter_lines_still_numbers_every_line_and_drops_long_ones():
    # GIVEN lines split across pieces, one longer than the limit spanning several pieces
    data = b'{"a": 1}\n' + b"x" * 50 + b"\n\n" + b'{"b": 2}'
    # WHEN split in pieces of 7 bytes with a limit of 20
    lines = list(iter_lines(pieces_of(data, 7), 20))
    # THEN each line has its number, the long one is None, the last line without a newline is kept
    assert lines == [(1, b'{"a": 1}'), (2, None), (3, b""), (4, b'{"b": 2}')]


class Run:
    """One engine run of a file on the typed route, through the dict path or the encoded one."""

    def __init__(self, data: bytes, name: str, encoded: bool, chunking: Chunking, stop_after: int | None = None,
                 handled: set[int] | None = None, piece: int = 97):
        self.uploader = LandingUploader()
        engine = Engine(Dispatcher(self.uploader, concurrency=2), 1_000_000)
        assert engine.takes_encoded(route())
        self.reports: list[Any] = []
        should_parse = None if handled is None else (lambda index: index not in handled)
        opened = open_file(iter(pieces_of(data, piece)), name, should_parse=should_parse, max_event_bytes=MAX_LINE,
                           encoded=encoded)
        assert opened.encoded is encoded
        self.tally = FileTally()
        stop = (lambda units=1: len(self.reports) >= stop_after) if stop_after is not None else None
        records = (EncodedFileRecords(opened.units, opened.where, chunking, CONTEXT, self.tally, stop) if encoded
                   else file_records(opened.units, opened.where, CONTEXT, self.tally, stop))
        self.items = []

        def seen() -> Any:
            for item in records:
                self.items.append(item)
                yield item

        self.result = engine.run(route(), seen(), batch_id="b", chunking=chunking, on_chunk=self.reports.append,
                                 in_flight=1)
        engine.close()

    def outcome(self) -> dict[str, Any]:
        summary = {key: value for key, value in self.result.summary().items() if key != "request_id"}
        reports = [(r.number, r.first, r.last, r.records, r.landed, r.rejected, r.requests)
                   for r in sorted(self.reports, key=lambda report: report.number)]
        rows = [{**row, "TimeGenerated": row["TimeGenerated"] if row["TimeGenerated"].startswith("2024") else "now"}
                for row in self.uploader.rows]
        return {"summary": summary, "tally": self.tally, "chunks": reports, "rows": rows}


def a_file(kinds: list[str], count: int) -> bytes:
    return b"\xef\xbb\xbf" + b"\n".join(make_line(kinds[n % len(kinds)], n) for n in range(count)) + b"\n"


ALL_KINDS = sorted(LINES)


@pytest.mark.parametrize("chunking", [(5000, 500_000), (7, 600), (1, 1), (3, 100), (50, 2_000)],
                         ids=lambda c: f"rows{c[0]}-bytes{c[1]}")
@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_a_file_gives_the_same_rows_rejections_tallies_and_chunks_on_either_path(chunking, gzipped):
    # GIVEN a file holding every kind of line many times, plain or gzip, and a chunking policy
    data = a_file(ALL_KINDS, 400)
    data, name = (gzip.compress(data), "day.ndjson.gz") if gzipped else (data, "day.ndjson")
    # WHEN it is run through the engine on a route with a typed path, its lines decoded into records and kept encoded
    dicts = Run(data, name, False, Chunking(*chunking))
    typed = Run(data, name, True, Chunking(*chunking))
    # THEN every outcome is the same: summary (rejection refs, reasons, order), tallies, chunk reports, rows
    assert typed.outcome() == dicts.outcome()
    # AND the good lines did stay encoded, the rest took their places among them
    assert all(type(item) is Encoded for item in typed.items)
    assert sum(1 for item in typed.items for raw in item.raws if type(raw) is bytes) >= 400 * 3 // len(ALL_KINDS)
    assert any(type(raw) in (Record, Rejection) for item in typed.items for raw in item.raws)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=file_lines, piece=st.integers(1, 900), rows=st.integers(1, 30), size=st.integers(1, 4_000),
       stop_after=st.one_of(st.none(), st.integers(1, 5)), handled=st.one_of(st.none(), st.sets(st.integers(0, 70))))
def test_any_file_gives_the_same_outcome_on_either_path(lines, piece, rows, size, stop_after, handled):
    # GIVEN any NDJSON file, piece size, chunking, a run that may stop after some chunks or resume an earlier one
    data = b"\n".join(make_line(kind, n) for kind, n in lines)
    # WHEN it is run on either path THEN everything a caller sees is the same
    dicts = Run(data, "day.ndjson", False, Chunking(rows, size), stop_after, handled, piece)
    typed = Run(data, "day.ndjson", True, Chunking(rows, size), stop_after, handled, piece)
    assert typed.outcome() == dicts.outcome()


def test_encoded_chunks_given_to_a_run_that_does_not_take_them_are_made_records_as_before(monkeypatch):
    # GIVEN encoded chunks of a mixed file, and an engine whose run on the route does not take encoded events
    data = a_file(ALL_KINDS, 400)
    dicts = Run(data, "day.ndjson", False, Chunking(30, 4_000))
    monkeypatch.setattr(engine_module._Run, "typed_lane", lambda self: None)
    # WHEN the engine gets them THEN it makes them the records the dict path gives, with the same outcome
    typed = Run(data, "day.ndjson", True, Chunking(30, 4_000))
    assert all(type(item) is Encoded for item in typed.items)
    assert typed.outcome() == dicts.outcome()


def test_good_lines_only_give_encoded_chunks_that_are_not_mixed():
    # GIVEN a file of good lines only
    data = a_file(["good", "good-crlf", "coerced"], 3000)
    # WHEN run on the encoded path in chunks of at most 1000 rows or 100 kB
    typed = Run(data, "day.ndjson", True, Chunking(1000, 100_000), piece=1 << 20)
    # THEN nothing was decoded by the source, and the outcome is the dict path's
    assert typed.items and not any(item.mixed for item in typed.items)
    assert typed.outcome() == Run(data, "day.ndjson", False, Chunking(1000, 100_000), piece=1 << 20).outcome()
    assert typed.result.landed == 3000


@pytest.mark.parametrize("stop_after", [1, 3, 8])
def test_a_run_told_to_stop_after_some_chunks_stops_at_the_same_unit(stop_after):
    # GIVEN a run that must stop once some chunks were reported (as a failed chunk or a lost checkpoint stops it)
    data = a_file(ALL_KINDS, 300)
    # WHEN the file is run on either path
    dicts = Run(data, "day.ndjson", False, Chunking(20, 3_000), stop_after=stop_after)
    typed = Run(data, "day.ndjson", True, Chunking(20, 3_000), stop_after=stop_after)
    # THEN both stopped at the same unit, with the same outcome so far
    assert typed.outcome() == dicts.outcome()
    assert dicts.tally.units < 300


def test_a_resumed_run_skips_the_handled_units_on_either_path():
    # GIVEN a resumed run: units 0-99 and 150-179 were handled by an earlier run
    data = a_file(ALL_KINDS, 300)
    handled = set(range(100)) | set(range(150, 180))
    # WHEN the file is run on either path
    dicts = Run(data, "day.ndjson", False, Chunking(40, 5_000), handled=handled)
    typed = Run(data, "day.ndjson", True, Chunking(40, 5_000), handled=handled)
    # THEN the same units were skipped and the rest gave the same outcome; every handled unit was skipped, a line
    # over the size limit too (the earlier run rejected it: it is not rejected, nor counted, again)
    assert typed.outcome() == dicts.outcome()
    assert typed.tally.skipped_units == dicts.tally.skipped_units == len(handled)


def test_a_corrupt_gzip_file_ends_with_the_same_rejection_on_either_path():
    # GIVEN a gzip file cut short in its middle
    data = gzip.compress(a_file(["good", "good", "nan", "envelope"], 2000))
    data = data[: len(data) // 2]
    # WHEN it is run on either path
    dicts = Run(data, "day.ndjson.gz", False, Chunking(100, 10_000), piece=4096)
    typed = Run(data, "day.ndjson.gz", True, Chunking(100, 10_000), piece=4096)
    # THEN what came before landed or was rejected, and the file ends with a rejection naming it, on both
    assert typed.outcome() == dicts.outcome()
    assert dicts.items[-1].reason.startswith("file: gzip data is truncated")
    assert typed.items[-1].raws[-1] == dicts.items[-1]


def test_a_line_that_is_no_utf8_is_rejected_on_its_own_and_never_sent():
    # GIVEN good lines around one holding bytes that are not UTF-8 in a field the route keeps raw (extra)
    data = b'{"n": 1}\n{"n": 2, "note": "caf\xe9"}\n{"n": 3}\n'
    # WHEN it is run on the encoded path
    typed = Run(data, "day.ndjson", True, Chunking(100, 10_000))
    # THEN the line is rejected naming it, the others land (the service would refuse a request holding it)
    assert typed.result.rejections == [
        {"line": 2, "reason": "line 2: not valid JSON at column 1: str is not valid UTF-8: surrogates not allowed"}]
    assert [row["N"] for row in typed.uploader.rows] == [1, 3]
    assert typed.tally.events == 2


def test_csv_units_reject_a_line_over_the_limit_and_skip_it_when_an_earlier_run_did():
    from shared.sources.blob import SKIPPED, csv_units
    from shared.sources.errors import DecodeError

    # GIVEN CSV lines as the line reader gives them: None for a line over the size limit
    lines = [(1, b"a,b"), (2, b"1,2"), (3, None), (4, b"3,4")]
    # WHEN they are read fresh, and on a resume that already handled units 0 and 1
    fresh = list(csv_units(iter(lines), lambda index: True))
    resumed = list(csv_units(iter(lines), lambda index: index >= 2))
    # THEN the long line is a rejected unit in its place (the next record's index moves past it) ...
    assert fresh == [(2, {"a": "1", "b": "2"}, None, 4), (3, None, "line 3: longer than the event size limit", 0),
                     (4, {"a": "3", "b": "4"}, None, 4)]
    # ... skipped, not rejected again, when an earlier run rejected it
    assert [unit[1] for unit in resumed] == [SKIPPED, SKIPPED, {"a": "3", "b": "4"}]
    # AND a header over the limit fails the file, naming the line
    try:
        list(csv_units(iter([(1, None), (2, b"1,2")]), lambda index: True))
    except DecodeError as error:
        assert str(error) == "CSV header (line 1) cannot be read: longer than the event size limit"
    else:
        raise AssertionError("a header over the limit was read")


def test_a_file_rejection_an_earlier_run_made_safe_is_not_made_again_on_resume():
    from shared.sources.errors import DecodeError

    def units() -> Any:  # two good lines, then the gzip stream breaks (a corrupt tail)
        yield 1, {"n": 1}, None, 8
        yield 2, {"n": 2}, None, 8
        raise DecodeError("gzip stream is corrupt")

    def rejections(items: list[Any]) -> list[str]:
        inner = [raw for item in items for raw in (item.raws if isinstance(item, Encoded) else [item])]
        return [item.reason for item in inner if isinstance(item, Rejection)]

    for pending, expected in ((lambda index: True, ["file: gzip stream is corrupt"]),  # a first run
                              (lambda index: index > 2, [])):  # a resume past a run that made it safe
        # WHEN the file's records are read, dict path and typed path alike
        by_dicts = list(file_records(units(), "line", pending=pending))
        by_bytes = list(EncodedFileRecords(units(), "line", Chunking(), pending=pending))
        # THEN the file's rejection is made once: by the run that first reaches it, not again by a resume
        assert rejections(by_dicts) == expected
        assert rejections(by_bytes) == expected
