"""Serve the app's HTTP functions on loopback, routed the way the Functions host routes them.

Core Tools cannot be installed everywhere; this small host calls the decorated
functions with real ``func.HttpRequest`` objects so curl and the samples reach the
same code the Functions host would run.
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import azure.functions as func

ROUTE_PREFIX = "/api/"
MAX_BODY_BYTES = 100 * 1024 * 1024


def http_functions(app: func.FunctionApp) -> list[tuple[re.Pattern[str], set[str], Any]]:
    """(path pattern, methods, user function) for each HTTP-triggered function of ``app``."""
    app.functions_bindings = None  # get_functions() may be called once per app otherwise
    found = []
    for function in app.get_functions():
        trigger = function.get_trigger()
        if getattr(trigger, "type", "") != "httpTrigger":
            continue
        pattern = re.sub(r"\{(\w+)(:[^}]*)?\}", r"(?P<\1>[^/]+)", trigger.route)
        methods = {str(getattr(m, "value", m)).upper() for m in (trigger.methods or ["GET", "POST"])}
        found.append((re.compile(ROUTE_PREFIX + pattern + "$"), methods, function.get_user_function()))
    return found


class FunctionHost:
    """A threaded loopback server in front of ``app``'s HTTP functions."""

    def __init__(self, app: func.FunctionApp, port: int = 0):
        routes = http_functions(app)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _dispatch(self) -> None:
                url = urlsplit(self.path)
                found = next(
                    ((m, fn) for p, methods, fn in routes if (m := p.match(url.path)) and self.command in methods),
                    None,
                )
                if found is None:
                    self._reply(404, b'{"error": "no function answers this path and method"}', {})
                    return
                match, user_function = found
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    self._reply(413, b'{"error": "body too large for the local host"}', {})
                    return
                body = self.rfile.read(length) if length else b""
                request = func.HttpRequest(
                    method=self.command,
                    url=f"http://{self.headers.get('Host', 'localhost')}{self.path}",
                    headers=dict(self.headers.items()),
                    params={k: v[0] for k, v in parse_qs(url.query).items()},
                    route_params=match.groupdict(),
                    body=body,
                )
                response: func.HttpResponse = user_function(request)
                self._reply(response.status_code, response.get_body(), dict(response.headers))

            def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                headers.setdefault("Content-Type", "application/json")
                for name, value in headers.items():
                    if name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_OPTIONS = do_PUT = do_DELETE = _dispatch

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the relay logs itself
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="function-host")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FunctionHost:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FunctionHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
