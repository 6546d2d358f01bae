"""HTTPS server speaking the Logs Ingestion REST contract, plus ``/_emulator/`` control endpoints.

The ingestion route answers like the service (status codes, error bodies, 1 MB limit,
gzip, type drops), so a client that works here behaves the same against Azure; the
control endpoints let tests and people read rows, drops and the request log, and
inject faults into a running emulator.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import ipaddress
import json
import logging
import re
import socket
import ssl
import threading
import uuid
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from emulator.ca import CertPaths, ensure_certs
from emulator.dcr import Dcr, load_dcrs
from emulator.faults import FaultError, FaultInjector, FaultRule
from emulator.ingest import IngestError, ingest_body
from emulator.store import DB_NAME, RequestRecord, Store, StoreError

log = logging.getLogger("emulator")

API_VERSIONS = ("2023-01-01", "2021-11-01-preview")
MAX_BODY = 1_048_576  # 1 MB per call, compressed or not (413 ContentLengthLimitExceeded)
# Bodies over the limit are read and thrown away (never buffered) up to this size so the
# client, still sending, gets to read the 413; beyond it the connection is closed.
DRAIN_LIMIT = 64 * 1024 * 1024
CONTROL_BODY_LIMIT = 64 * 1024
HANDSHAKE_TIMEOUT = 10.0
IDLE_TIMEOUT = 30.0
_INGEST_PATH = re.compile(r"^/dataCollectionRules/([^/]+)/streams/([^/]+)/?$")
_TOO_LARGE = f"Maximum allowed content length: {MAX_BODY} bytes"


class _HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.close = status, code, message, close


@dataclass
class _Body:
    data: bytes | None  # None when over the limit (not kept)
    wire_bytes: int


@dataclass
class _State:
    """What handler threads share; every member is thread-safe."""

    dcrs: dict[str, Dcr]  # keyed by lower-case immutable id
    store: Store
    faults: FaultInjector
    token: str | None
    stopping: threading.Event


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _error(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LogsIngestionEmulator/1.0"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    server: _TLSServer

    # ------------------------------------------------------------------ plumbing

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.client_address[0], format % args)

    def _begin(self) -> None:
        self._request_id = str(uuid.uuid4())
        raw = self.headers.get("x-ms-client-request-id") or ""
        # echoed back as a header: keep it on one line
        self._client_request_id = raw.replace("\r", "").replace("\n", "")[:200] or None

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("x-ms-request-id", self._request_id)
        if self._client_request_id:
            self.send_header("x-ms-client-request-id", self._client_request_id)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if status != 204:
            if body:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body and status != 204:
            self.wfile.write(body)

    def _send_json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value, ensure_ascii=False, default=str).encode("utf-8"))

    def _send_error(self, err: _HttpError, headers: dict[str, str] | None = None) -> None:
        if err.close:
            self.close_connection = True
        self._send(err.status, _error(err.code, err.message), headers)

    def _read_body(self, limit: int) -> _Body:
        """Read the body, keeping at most ``limit`` bytes; larger bodies are drained and dropped."""
        encoding = (self.headers.get("Transfer-Encoding") or "").strip().lower()
        if encoding and encoding != "identity":
            if encoding != "chunked":
                raise _HttpError(400, "InvalidRequest", "Unsupported Transfer-Encoding.", close=True)
            return self._read_chunked(limit)
        raw = self.headers.get("Content-Length")
        if raw is None:
            return _Body(b"", 0)
        raw = raw.strip()
        if not (raw.isascii() and raw.isdigit()):
            raise _HttpError(400, "InvalidRequest", "Invalid Content-Length header.", close=True)
        length = int(raw)
        if length > limit:
            self._discard(length)
            return _Body(None, length)
        data = self.rfile.read(length)
        if len(data) != length:
            raise ConnectionError("client closed the connection mid-body")
        return _Body(data, length)

    def _discard(self, length: int) -> None:
        if length > DRAIN_LIMIT:
            self.close_connection = True
            return
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, 65536))
            if not chunk:
                raise ConnectionError("client closed the connection mid-body")
            left -= len(chunk)

    def _read_chunked(self, limit: int) -> _Body:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1026)
            if not line.endswith(b"\n"):
                raise _HttpError(400, "InvalidRequest", "Malformed chunked body.", close=True)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _HttpError(400, "InvalidRequest", "Malformed chunk size.", close=True) from None
            if size == 0:
                while self.rfile.readline(1026) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            if total + size > DRAIN_LIMIT:
                raise _HttpError(413, "ContentLengthLimitExceeded", _TOO_LARGE, close=True)
            data = self.rfile.read(size)
            if len(data) != size:
                raise ConnectionError("client closed the connection mid-body")
            total += size
            if total <= limit:
                parts.append(data)
            else:
                parts.clear()
            self.rfile.readline(3)  # CRLF after the chunk
        return _Body(b"".join(parts) if total <= limit else None, total)

    # ------------------------------------------------------------------ verbs

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        self._begin()
        url = urlsplit(self.path)
        try:
            if url.path.startswith("/_emulator/"):
                self._control(method, url.path, parse_qs(url.query))
            elif _INGEST_PATH.match(url.path):
                if method != "POST":
                    self._read_body(0)
                    raise _HttpError(405, "MethodNotAllowed", "Only POST is supported on this path.")
                self._ingest(url.path, parse_qs(url.query))
            else:
                self._read_body(0)
                raise _HttpError(404, "NotFound", f"No route for {method} {url.path}.")
        except _HttpError as err:
            self._send_error(err)
        except (ConnectionError, TimeoutError, ssl.SSLError, OSError) as exc:
            log.debug("connection problem: %r", exc)
            self.close_connection = True
        except Exception:
            log.exception("emulator error handling %s %s", method, url.path)
            self.close_connection = True
            self._send(500, _error("InternalServerError", "The emulator failed; see its log."))

    # ------------------------------------------------------------------ ingestion

    def _ingest(self, path: str, query: dict[str, list[str]]) -> None:
        match = _INGEST_PATH.match(path)
        assert match is not None
        dcr_id, stream = unquote(match.group(1)), unquote(match.group(2))
        state = self.server.state
        record = RequestRecord(
            time=_now(),
            dcr=dcr_id,
            stream=stream,
            status=None,
            client_request_id=self._client_request_id,
            request_id=self._request_id,
            content_encoding=self.headers.get("Content-Encoding"),
        )
        rule = state.faults.pick(dcr_id, stream)
        try:
            body = self._read_body(MAX_BODY)
        except _HttpError as err:
            record.status, record.error_code = err.status, err.code
            state.store.write_request(record)
            raise
        record.bytes = body.wire_bytes
        if rule is not None:
            record.fault = rule.id
            if rule.delay and state.stopping.wait(rule.delay):
                self.close_connection = True
                return
            if rule.close:
                record.error_code = "ConnectionClosed"
                state.store.write_request(record)
                self.close_connection = True
                return
            if rule.status is not None:
                record.status = rule.status
                headers = {}
                if (retry_after := rule.retry_after_header()) is not None:
                    headers["Retry-After"] = retry_after
                if rule.status < 300:
                    state.store.write_request(record)
                    self._send(rule.status, b"", headers)
                    return
                error = rule.error_body()["error"]
                record.error_code = error["code"]
                state.store.write_request(record)
                self._send(rule.status, _error(error["code"], error["message"]), headers)
                return
        try:
            dcr = self._check_request(dcr_id, stream, query)
            if body.data is None:
                raise _HttpError(413, "ContentLengthLimitExceeded", _TOO_LARGE)
            data = self._decode(body.data)
            record.bytes_decoded = len(data)
            result = ingest_body(dcr, stream, data)
        except (_HttpError, IngestError) as err:
            record.status, record.error_code = err.status, err.code
            state.store.write_request(record)
            raise _HttpError(err.status, err.code, err.message) from None
        record.status = 204
        record.rows, record.rows_written, record.dropped = result.rows, result.rows_written, len(result.drops)
        state.store.write_request(record, result.drops, result.rows_by_table)
        self._send(204)

    def _check_request(self, dcr_id: str, stream: str, query: dict[str, list[str]]) -> Dcr:
        state = self.server.state
        auth = self.headers.get("Authorization") or ""
        scheme, _, token = auth.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _HttpError(401, "InvalidToken", "An 'Authorization: Bearer <token>' header is required.")
        if state.token is not None and not hmac.compare_digest(token.encode(), state.token.encode()):
            raise _HttpError(401, "InvalidToken", "The provided access token is not valid.")
        versions = query.get("api-version")
        if not versions:
            raise _HttpError(
                400, "MissingApiVersionParameter", "The api-version query parameter is required."
            )
        if versions[0] not in API_VERSIONS:
            raise _HttpError(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{versions[0]}' is not supported. Supported: {', '.join(API_VERSIONS)}.",
            )
        dcr = state.dcrs.get(dcr_id.lower())
        if dcr is None:
            raise _HttpError(
                404,
                "InvalidDataCollectionRule",
                f"Data collection rule with immutable Id '{dcr_id}' not found.",
            )
        if stream not in dcr.streams:
            raise _HttpError(
                404,
                "InvalidStream",
                f"Stream '{stream}' is not declared in data collection rule '{dcr.immutable_id}'. "
                f"Declared streams: {', '.join(dcr.streams)}.",
            )
        content_type = (self.headers.get("Content-Type") or "").split(";")
        media = content_type[0].strip().lower()
        params = {
            p.split("=", 1)[0].strip().lower(): p.partition("=")[2].strip().strip('"').lower()
            for p in content_type[1:]
        }
        if media != "application/json" or params.get("charset", "utf-8") != "utf-8":
            raise _HttpError(
                400,
                "InvalidContentType",
                f"Content-Type must be application/json, got '{self.headers.get('Content-Type') or ''}'.",
            )
        return dcr

    def _decode(self, data: bytes) -> bytes:
        encoding = (self.headers.get("Content-Encoding") or "").strip().lower()
        if encoding in ("", "identity"):
            return data
        if encoding != "gzip":
            raise _HttpError(
                400, "InvalidContentEncoding", f"Content-Encoding '{encoding}' is not supported."
            )
        return gunzip_bounded(data, MAX_BODY)

    # ------------------------------------------------------------------ control

    def _control(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        state = self.server.state
        body = self._read_body(CONTROL_BODY_LIMIT)
        if not ipaddress.ip_address(self.client_address[0].split("%")[0]).is_loopback:
            raise _HttpError(403, "Forbidden", "Control endpoints answer loopback clients only.")
        route = (method, path.rstrip("/"))
        if route == ("GET", "/_emulator/health"):
            self._send_json(
                200,
                {
                    "status": "ok",
                    "dcrs": {d.name: d.immutable_id for d in state.dcrs.values()},
                    "streams": {d.immutable_id: list(d.streams) for d in state.dcrs.values()},
                    "tables": state.store.tables(),
                },
            )
        elif route == ("GET", "/_emulator/rows"):
            table = (query.get("table") or [""])[0]
            limit = _int_param(query, "limit")
            try:
                self._send_json(200, state.store.rows(table, limit))
            except StoreError as exc:
                raise _HttpError(404, "TableNotFound", str(exc)) from None
        elif route == ("GET", "/_emulator/tables"):
            self._send_json(200, state.store.tables())
        elif route == ("GET", "/_emulator/drops"):
            self._send_json(200, state.store.drops(_int_param(query, "limit")))
        elif route == ("GET", "/_emulator/requests"):
            self._send_json(200, state.store.requests(_int_param(query, "limit")))
        elif route == ("GET", "/_emulator/faults"):
            self._send_json(200, state.faults.rules())
        elif route == ("POST", "/_emulator/faults"):
            if body.data is None:
                raise _HttpError(413, "ContentLengthLimitExceeded", "Fault rule too large.")
            try:
                spec = json.loads(body.data or b"null")
                if not isinstance(spec, dict):
                    raise FaultError("the body must be a JSON object describing one fault rule")
                rule = state.faults.add(FaultRule.from_mapping(spec))
            except (ValueError, TypeError) as exc:
                raise _HttpError(400, "InvalidFaultRule", str(exc)) from None
            self._send_json(201, rule.to_dict())
        elif route == ("DELETE", "/_emulator/faults"):
            state.faults.clear()
            self._send(204)
        elif route == ("POST", "/_emulator/reset"):
            state.store.reset()
            state.faults.clear()
            self._send(204)
        else:
            raise _HttpError(404, "NotFound", f"No control endpoint {method} {path}.")


def _int_param(query: dict[str, list[str]], name: str) -> int | None:
    values = query.get(name)
    if not values:
        return None
    if not (values[0].isascii() and values[0].isdigit()):
        raise _HttpError(400, "InvalidRequest", f"'{name}' must be a non-negative integer.")
    return int(values[0])


def gunzip_bounded(data: bytes, limit: int) -> bytes:
    """Gunzip (possibly multi-member) without ever holding more than ``limit`` + 1 bytes.

    Raises 413 when the decompressed body is over ``limit`` and 400 when it is not gzip.
    """
    out = bytearray()
    rest = data
    try:
        while True:
            inflater = zlib.decompressobj(wbits=31)
            chunk = inflater.decompress(rest, limit + 1 - len(out))
            if len(out) + len(chunk) > limit or inflater.unconsumed_tail:
                raise _HttpError(413, "ContentLengthLimitExceeded", _TOO_LARGE)
            if not inflater.eof:
                raise _HttpError(400, "InvalidContentEncoding", "The gzip body is truncated.")
            rest = inflater.unused_data
            if not rest and not out:
                return chunk  # one member, the usual body: no copy
            out += chunk
            if not rest:
                return bytes(out)
    except zlib.error as exc:
        raise _HttpError(400, "InvalidContentEncoding", f"The body is not valid gzip: {exc}.") from None


class _TLSServer(ThreadingHTTPServer):
    """A threading HTTP server doing the TLS handshake per connection, in the worker thread.

    Handshaking in the worker (not in ``accept``) keeps one stalled client from blocking
    every other; live sockets are tracked so ``stop()`` can end idle keep-alive connections.
    """

    daemon_threads = True
    block_on_close = True

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext, state: _State) -> None:
        self.context = context
        self.state = state
        self._live: set[socket.socket] = set()
        self._live_lock = threading.Lock()
        self.connections_opened = 0  # TLS handshakes completed: how well clients reuse connections
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._live_lock:
            self._live.add(request)
        super().process_request(request, client_address)

    def finish_request(self, request: Any, client_address: Any) -> None:
        raw: socket.socket = request
        try:
            raw.settimeout(HANDSHAKE_TIMEOUT)
            tls = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake with %s failed: %r", client_address, exc)
            with self._live_lock:
                self._live.discard(raw)
            return
        with self._live_lock:
            self._live.discard(raw)
            self._live.add(tls)
            self.connections_opened += 1
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            with self._live_lock:
                self._live.discard(tls)
            with contextlib.suppress(OSError):
                tls.shutdown(socket.SHUT_WR)
            tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection error from %s", client_address, exc_info=True)

    def close_live_connections(self) -> None:
        with self._live_lock:
            live = list(self._live)
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class Emulator:
    """The Logs Ingestion API emulator, in-process.

    ``Emulator(["infra/dcr/relay.json"], tmp_path).start()`` serves HTTPS on a free
    loopback port; ``endpoint`` and ``ca_path`` are what a client needs
    (``LogsIngestionClient(endpoint, cred, connection_verify=ca_path)``). DCR files load
    (and their KQL compiles) in the constructor, so a bad file fails before serving.
    """

    def __init__(
        self,
        dcr_files: list[str | Path],
        state_dir: str | Path = ".emulator",
        port: int = 0,
        token: str | None = None,
        *,
        host: str = "127.0.0.1",
    ) -> None:
        loaded = load_dcrs(list(dcr_files))
        self._dcrs = {key.lower(): dcr for key, dcr in loaded.items()}
        self.state_dir = Path(state_dir)
        self.port = port
        self.host = host
        self.token = token
        self.faults = FaultInjector()
        self._certs: CertPaths | None = None
        self._store: Store | None = None
        self._server: _TLSServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # lifecycle -------------------------------------------------------------------

    def start(self) -> Emulator:
        """Create certificates and tables if needed and serve in a background thread."""
        if self._server is not None:
            return self
        self._certs = ensure_certs(self.state_dir)
        store = Store(self.state_dir / DB_NAME)
        try:
            for dcr in self._dcrs.values():
                for flow in dcr.data_flows:
                    for transform in flow.transforms.values():
                        store.ensure_table(flow.table, transform.output_columns)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(self._certs.server_cert, self._certs.server_key)
            self._stopping.clear()
            state = _State(self._dcrs, store, self.faults, self.token, self._stopping)
            server = _TLSServer((self.host, self.port), context, state)
        except BaseException:
            store.close()
            raise
        self._store, self._server = store, server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="logs-ingestion-emulator",
            daemon=True,
        )
        self._thread.start()
        log.info("Logs Ingestion emulator listening on %s", self.endpoint)
        return self

    def stop(self) -> None:
        """Stop serving, end open connections and close the database. Safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_live_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join()
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # what clients need -----------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """``https://127.0.0.1:PORT``: the data collection endpoint URL to give the client."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"https://{host}:{self.port}"

    @property
    def ca_path(self) -> Path:
        """The CA certificate a client must trust (``connection_verify=``)."""
        if self._certs is None:
            self._certs = ensure_certs(self.state_dir)
        return self._certs.ca

    @property
    def dcr_ids(self) -> dict[str, str]:
        """DCR file stem -> immutable id, e.g. ``{"relay": "dcr-…"}``."""
        return {dcr.name: dcr.immutable_id for dcr in self._dcrs.values()}

    @property
    def dcrs(self) -> dict[str, Dcr]:
        return dict(self._dcrs)

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return self._store

    # inspection and control --------------------------------------------------------

    def rows(self, table: str) -> list[dict[str, Any]]:
        return self.store.rows(table)

    def tables(self) -> list[str]:
        return self.store.tables()

    def drops(self) -> list[dict[str, Any]]:
        return self.store.drops()

    def requests(self) -> list[dict[str, Any]]:
        return self.store.requests()

    @property
    def connections_opened(self) -> int:
        """TLS connections clients opened since start or ``reset()`` (a client that reuses its pool opens few)."""
        return self._server.connections_opened if self._server is not None else 0

    def add_fault(self, **rule: Any) -> dict[str, Any]:
        """Add a fault rule (see :class:`~emulator.faults.FaultRule`); returns it with its id."""
        return self.faults.add(FaultRule.from_mapping(rule)).to_dict()

    def clear_faults(self) -> None:
        self.faults.clear()

    def reset(self) -> None:
        """Forget rows, drops, requests, faults and the connection count (tables stay defined)."""
        self.store.reset()
        self.faults.clear()
        if self._server is not None:
            self._server.connections_opened = 0
