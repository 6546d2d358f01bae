"""SQLite storage for the emulator: one table per output table, plus request and drop logs.

A file database (not memory) lets ``python -m emulator rows`` inspect what a running
emulator, or a finished test, wrote. WAL mode lets those readers work while the
server writes.
"""

from __future__ import annotations

import operator
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from emulator.schema import decode_stored

DB_NAME = "emulator.sqlite3"
_SQL_TYPES = {
    "string": "TEXT",
    "int": "INTEGER",
    "long": "INTEGER",
    "real": "REAL",
    "boolean": "INTEGER",
    "datetime": "TEXT",
    "dynamic": "TEXT",
    "timespan": "TEXT",
}
# Hidden bookkeeping columns in every output table; output columns may not start with "__".
_SEQ = "__seq"
_INGESTED_AT = "__ingested_at"
_REQUEST_ID = "__request_id"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS _columns (
    table_name TEXT NOT NULL, column_name TEXT NOT NULL, type TEXT NOT NULL, position INTEGER NOT NULL,
    PRIMARY KEY (table_name, column_name));
CREATE TABLE IF NOT EXISTS _ingestion_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, dcr TEXT, stream TEXT, status INTEGER,
    error_code TEXT, client_request_id TEXT, request_id TEXT, content_encoding TEXT, bytes INTEGER,
    bytes_decoded INTEGER, rows INTEGER, rows_written INTEGER, dropped INTEGER, fault TEXT);
CREATE TABLE IF NOT EXISTS _drops (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, dcr TEXT, stream TEXT, "table" TEXT,
    row INTEGER, "column" TEXT, reason TEXT, value TEXT, request_id TEXT, client_request_id TEXT);
"""


class StoreError(RuntimeError):
    """The database is missing, or a table the caller asked for does not exist."""


@dataclass
class Drop:
    """One value or column the service would have dropped silently."""

    row: int
    column: str
    reason: str
    value: str | None
    table: str | None = None


@dataclass
class RequestRecord:
    time: str
    dcr: str | None
    stream: str | None
    status: int | None
    error_code: str | None = None
    client_request_id: str | None = None
    request_id: str | None = None
    content_encoding: str | None = None
    bytes: int = 0
    bytes_decoded: int | None = None
    rows: int | None = None
    rows_written: int = 0
    dropped: int = 0
    fault: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# SQL text below only ever embeds table/column names that emulator.dcr validated, quoted by _q;
# values always go through parameters (hence the S608 suppressions).
def _q(name: str) -> str:
    """Quote an identifier; names were validated by the DCR loader, quotes are doubled anyway."""
    return '"' + name.replace('"', '""') + '"'


class Store:
    """Thread-safe access to the emulator database (one connection guarded by a lock)."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if readonly:
            if not self.path.exists():
                raise StoreError(f"no emulator database at {self.path} (start the emulator first)")
            uri = self.path.resolve().as_uri() + "?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._lock = threading.RLock()
        if not readonly:
            with self._lock:
                self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # schema -------------------------------------------------------------------------

    def ensure_table(self, table: str, columns: Sequence[tuple[str, str]]) -> None:
        """Create ``table`` or add new columns; a changed type is recorded for decoding."""
        with self._lock, self._transaction():
            known = {name.lower(): name for name, _ in self._columns(table)}
            if not known:
                self._conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {_q(table)} ({_q(_SEQ)} INTEGER PRIMARY KEY AUTOINCREMENT, "
                    f"{_q(_INGESTED_AT)} TEXT, {_q(_REQUEST_ID)} TEXT)"
                )
            position = len(known)
            for name, typ in columns:
                existing = known.get(name.lower())
                if existing is not None and existing != name:
                    raise StoreError(
                        f"table {table}: column {name!r} clashes with {existing!r} (SQLite ignores case)"
                    )
                if existing is None:
                    self._conn.execute(
                        f"ALTER TABLE {_q(table)} ADD COLUMN {_q(name)} {_SQL_TYPES.get(typ, '')}"
                    )
                    self._conn.execute(
                        "INSERT INTO _columns (table_name, column_name, type, position) VALUES (?, ?, ?, ?)",
                        (table, name, typ, position),
                    )
                    known[name.lower()] = name
                    position += 1
                else:
                    self._conn.execute(
                        "UPDATE _columns SET type = ? WHERE table_name = ? AND column_name = ?",
                        (typ, table, name),
                    )

    def _columns(self, table: str) -> list[tuple[str, str]]:
        cur = self._conn.execute(
            "SELECT column_name, type FROM _columns WHERE table_name = ? ORDER BY position", (table,)
        )
        return [(row[0], row[1]) for row in cur]

    def columns(self, table: str) -> list[tuple[str, str]]:
        """The (name, type) pairs of an output table, in creation order."""
        with self._lock:
            return self._columns(table)

    def tables(self) -> list[str]:
        """Output tables (internal tables excluded), sorted by name."""
        with self._lock:
            cur = self._conn.execute("SELECT DISTINCT table_name FROM _columns ORDER BY table_name")
            return [row[0] for row in cur]

    # writes -------------------------------------------------------------------------

    def write_request(
        self,
        record: RequestRecord,
        drops: Iterable[Drop] = (),
        rows_by_table: dict[str, list[dict]] | None = None,
    ) -> None:
        """Store one request's rows, drops and log entry in a single transaction."""
        drops = list(drops)
        with self._lock, self._transaction():
            for table, rows in (rows_by_table or {}).items():
                self._insert_rows(table, rows, record)
            values = asdict(record)
            values.pop("extra")
            names = list(values)
            marks = ", ".join("?" for _ in names)
            sql = f"INSERT INTO _ingestion_requests ({', '.join(names)}) VALUES ({marks})"  # noqa: S608
            self._conn.execute(sql, [values[n] for n in names])
            self._conn.executemany(
                'INSERT INTO _drops (time, dcr, stream, "table", row, "column", reason, value, request_id, '
                "client_request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        record.time,
                        record.dcr,
                        record.stream,
                        d.table,
                        d.row,
                        d.column,
                        d.reason,
                        d.value,
                        record.request_id,
                        record.client_request_id,
                    )
                    for d in drops
                ],
            )

    def _insert_rows(self, table: str, rows: list[dict], record: RequestRecord) -> None:
        head = (record.time, record.request_id)
        groups: dict[tuple[str, ...], list[dict]] = {}
        if rows:  # the rows of one data flow all have its output columns: one group, found in C
            names = tuple(rows[0])
            if len(names) > 1 and all(map(len(names).__eq__, map(len, rows))):
                try:  # the same count and every name present: the same keys
                    params = [head + values for values in map(operator.itemgetter(*names), rows)]
                except KeyError:
                    pass
                else:
                    self._executemany_rows(table, names, params)
                    return
        for row in rows:
            groups.setdefault(tuple(row), []).append(row)
        for names, group in groups.items():
            self._executemany_rows(table, names, [head + tuple(row.values()) for row in group])

    def _executemany_rows(self, table: str, names: tuple[str, ...], params: list[tuple]) -> None:
        cols = ", ".join(_q(n) for n in (_INGESTED_AT, _REQUEST_ID, *names))
        marks = ", ".join("?" for _ in range(len(names) + 2))
        self._conn.executemany(f"INSERT INTO {_q(table)} ({cols}) VALUES ({marks})", params)  # noqa: S608

    def reset(self) -> None:
        """Delete all rows, requests and drops; keep the table definitions."""
        with self._lock, self._transaction():
            for table in self.tables():
                self._conn.execute(f"DELETE FROM {_q(table)}")  # noqa: S608
            self._conn.execute("DELETE FROM _ingestion_requests")
            self._conn.execute("DELETE FROM _drops")

    # reads --------------------------------------------------------------------------

    def rows(self, table: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Rows of ``table`` in arrival order (the last ``limit`` ones if given), dynamic decoded."""
        with self._lock:
            columns = self._columns(table)
            if not columns:
                known = ", ".join(self.tables()) or "none"
                raise StoreError(f"no table {table!r} (tables: {known})")
            select = ", ".join(_q(name) for name, _ in columns)
            sql = f"SELECT {select} FROM {_q(table)} ORDER BY {_q(_SEQ)}"  # noqa: S608
            params: tuple[Any, ...] = ()
            if limit is not None:
                seq = _q(_SEQ)
                inner = f"SELECT {seq}, {select} FROM {_q(table)} ORDER BY {seq} DESC LIMIT ?"  # noqa: S608
                sql = f"SELECT * FROM ({inner}) ORDER BY {seq}"  # noqa: S608
                params = (limit,)
            cur = self._conn.execute(sql, params)
            offset = 1 if limit is not None else 0
            return [
                {name: decode_stored(typ, raw[i + offset]) for i, (name, typ) in enumerate(columns)}
                for raw in cur
            ]

    def count(self, table: str) -> int:
        with self._lock:
            if not self._columns(table):
                raise StoreError(f"no table {table!r}")
            return int(self._conn.execute(f"SELECT COUNT(*) FROM {_q(table)}").fetchone()[0])  # noqa: S608

    def drops(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The drop report, oldest first."""
        return self._log("_drops", limit)

    def requests(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The ingestion request log, oldest first."""
        return self._log("_ingestion_requests", limit)

    def _log(self, name: str, limit: int | None) -> list[dict[str, Any]]:
        with self._lock:
            sql = f"SELECT * FROM {name} ORDER BY id"  # noqa: S608
            params: tuple[Any, ...] = ()
            if limit is not None:
                inner = f"SELECT * FROM {name} ORDER BY id DESC LIMIT ?"  # noqa: S608
                sql = f"SELECT * FROM ({inner}) ORDER BY id"  # noqa: S608
                params = (limit,)
            cur = self._conn.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur]

    # helpers ------------------------------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)


class _Transaction:
    """BEGIN IMMEDIATE / COMMIT or ROLLBACK, so a request's rows land all or nothing."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
