"""The HTTP trigger's work, independent of the Functions host: request in, answer out.

Answers (DESIGN 3.1): 200 all landed (bad rows listed as rejected: a bad NDJSON line or
array element is a rejection too, the rest lands), 202 some parked for replay (or
dead-lettered with the reason when the service refused them for good), 400 only for a body
of which nothing can be decoded (empty, not JSON, no event objects, bad gzip), 401 bad
signature, 404 unknown route, 413 over the size limit, 503 + Retry-After when data could be neither uploaded nor parked (or the
relay's configuration is broken), so the sender retries and nothing is lost.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from .config import ConfigError
from .records import Result
from .runtime import Relay
from .settings import SettingsError
from .signatures import verify_github_signature, verify_signature
from .sources.errors import DecodeError, TooLargeError
from .sources.http import check_declared_length, decode_http_body, header, options_handshake

log = logging.getLogger("relay.http")
RETRY_AFTER_SECONDS = "30"


class HttpInput(Protocol):
    """The parts of ``azure.functions.HttpRequest`` the handler uses."""

    method: str
    headers: Mapping[str, str]
    route_params: Mapping[str, str]

    def get_body(self) -> bytes: ...


@dataclass
class HttpAnswer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def json(self) -> bytes:
        return orjson.dumps(self.body)


#: Headers never copied into rows: credentials, keys and signatures.
SENSITIVE_HEADERS = frozenset({
    "authorization", "cookie", "proxy-authorization", "x-functions-key", "x-hub-signature",
    "x-hub-signature-256", "x-ms-client-principal", "x-ms-token-aad-access-token", "aeg-sas-key", "aeg-sas-token",
})


def safe_headers(headers: Mapping[str, str], also: str | None = None) -> dict[str, str]:
    """Request headers for ``_http.headers.<name>`` paths, lower-cased, without secrets (nor the
    route's own signature header, ``also``)."""
    hidden = SENSITIVE_HEADERS if also is None else SENSITIVE_HEADERS | {also.lower()}
    return {k.lower(): v for k, v in headers.items() if k.lower() not in hidden}


def _error(status: int, message: str, request_id: str, **headers: str) -> HttpAnswer:
    return HttpAnswer(status, {"error": message, "request_id": request_id}, dict(headers))


def handle_ingest(request: HttpInput, relay_factory: Callable[[], Relay]) -> HttpAnswer:
    request_id = header(request.headers, "x-ms-client-request-id") or str(uuid.uuid4())
    try:
        relay = relay_factory()
    except (ConfigError, SettingsError) as error:
        log.error("relay configuration is invalid: %s", error)
        return _error(503, f"relay configuration is invalid: {error}", request_id,
                      **{"Retry-After": RETRY_AFTER_SECONDS})
    segment = request.route_params.get("route", "")
    route = relay.config.http_route(segment)
    if route is None:
        return _error(404, f"no http route answers {segment!r}", request_id)
    if request.method.upper() == "OPTIONS":
        allowed = options_handshake(request.headers)
        if allowed is None:
            return _error(400, "OPTIONS needs a WebHook-Request-Origin header (CloudEvents webhook handshake)",
                          request_id)
        return HttpAnswer(200, {"route": route.name}, allowed)
    limit = relay.settings.max_body_bytes
    try:
        check_declared_length(request.headers, limit)
        body = request.get_body() or b""
        if len(body) > limit:
            raise TooLargeError(f"body of {len(body)} bytes is over the limit of {limit} bytes")
    except TooLargeError as error:
        return _error(413, str(error), request_id)
    if route.secret and not verify_github_signature(
        route.secret, body, header(request.headers, "X-Hub-Signature-256")
    ):
        return _error(401, "missing or wrong X-Hub-Signature-256 signature", request_id)
    if route.signature is not None:  # the 401 names the header expected, never the secret
        verdict = verify_signature(route.signature, body, lambda name: header(request.headers, name))
        if not verdict.ok:
            return _error(401, verdict.problem, request_id)
    router = relay.config.router("http", segment) or route
    try:
        decoded = decode_http_body(request.headers, body, limit, encoded=relay.engine.takes_encoded(router))
    except TooLargeError as error:
        return _error(413, str(error), request_id)
    except DecodeError as error:
        return _error(400, str(error), request_id)
    if decoded.handshake is not None:
        return HttpAnswer(200, decoded.handshake)
    context = {"_http": {"method": request.method.upper(), "route": segment, "headers": safe_headers(
        request.headers, route.signature.header if route.signature is not None else None)}}
    if decoded.slices is None:  # bad elements and lines are rejections beside the good ones
        result = relay.engine.run(router, decoded.records(context), batch_id=request_id)
    else:  # NDJSON or a long array, normalized slice by slice as it decodes: what can still fail as a whole
        try:  # (a truncated array, NDJSON without one good line) is a 400 with nothing sent
            result = relay.engine.run(router, decoded.records(context), batch_id=request_id, hold=True)
        except DecodeError as error:
            return _error(400, str(error), request_id)
    return answer(result, decoded.kind)


def answer(result: Result, body_format: str) -> HttpAnswer:
    """200 all landed or rejected; 202 some kept in the poison store; 503 + Retry-After if not safe."""
    summary = result.summary()
    summary["format"] = body_format
    if not result.safe:
        return HttpAnswer(503, summary, {"Retry-After": RETRY_AFTER_SECONDS})
    return HttpAnswer(202 if result.parked or result.deadlettered else 200, summary)


def handle_health(relay_factory: Callable[[], Relay]) -> HttpAnswer:
    """Is the configuration loaded? Counts only: no endpoints, ids or secrets."""
    try:
        relay = relay_factory()
    except (ConfigError, SettingsError) as error:
        problems = getattr(error, "problems", [str(error)])
        return HttpAnswer(503, {"status": "error", "problems": problems})
    by_source: dict[str, int] = {}
    for route in relay.config.routes:
        by_source[route.source] = by_source.get(route.source, 0) + 1
    return HttpAnswer(200, {"status": "ok", "routes": len(relay.config.routes), "routes_by_source": by_source})
