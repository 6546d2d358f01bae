"""Upload packed requests through ``azure-monitor-ingestion``, sorting failures by class.

The SDK's own retry policy is switched off (it retries only 500/503/504 or a
``Retry-After`` and fails 429/408/502/connection errors at once); this module
retries every transient class itself, honouring ``Retry-After`` within a total
deadline, refreshes the token once on 401, and never retries a permanent error.
"""

from __future__ import annotations

import io
import logging
import math
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import RequestsTransport
from azure.monitor.ingestion import LogsIngestionClient
from requests.adapters import HTTPAdapter

from .settings import Settings

if TYPE_CHECKING:
    import requests  # azure-core's transport library, named only for the type

log = logging.getLogger("relay.sink")

MAX_BACKOFF_SECONDS = 30.0
MAX_ATTEMPTS = 8
ROLE_HINT = (
    "the relay's identity lacks the 'Monitoring Metrics Publisher' role on DCR {dcr} "
    "(a new role assignment can take up to 30 minutes to take effect)"
)


@dataclass(frozen=True)
class UploadResult:
    """How one request ended. ``failure`` is None when it landed."""

    request_id: str
    attempts: int
    status: int | None = None
    failure: str | None = None  # bad_request, too_large, forbidden, not_found, unauthorized, throttled, ...
    # permanent: dead-letter at once. A 403 ("forbidden") is not permanent while RELAY_FORBIDDEN_GRACE_MINUTES > 0:
    # it is parked and replayed until the window from the batch's first failure has passed.
    permanent: bool = False
    message: str = ""
    retry_after: float | None = None

    @property
    def landed(self) -> bool:
        return self.failure is None


@dataclass(frozen=True)
class _Attempt:
    status: int | None
    failure: str | None
    permanent: bool
    message: str
    retry_after: float | None = None


def parse_retry_after(headers: object) -> float | None:
    """Seconds to wait from ``retry-after-ms``, ``x-ms-retry-after-ms`` or ``Retry-After``."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("x-ms-retry-after-ms", 1000.0), ("Retry-After", 1.0)):
        raw = get(name)
        if not raw:
            continue
        try:
            seconds = float(raw) / scale
        except ValueError:
            pass
        else:
            if math.isfinite(seconds):  # "nan" would reach time.sleep(nan) and raise
                return max(seconds, 0.0)
            continue
        try:
            return max(parsedate_to_datetime(raw).timestamp() - time.time(), 0.0)
        except (TypeError, ValueError, IndexError):
            continue
    return None


def _error_text(error: HttpResponseError) -> str:
    code = getattr(getattr(error, "error", None), "code", None)
    message = getattr(getattr(error, "error", None), "message", None)
    if code or message:
        text = f"{code}: {message}" if code and message else str(code or message)
    else:
        text = (error.message or str(error)).splitlines()[0] if (error.message or str(error)) else ""
    return text[:500]


def classify(error: Exception, dcr: str, forbidden_transient: bool = True) -> _Attempt:
    """Sort an SDK exception into a failure class; permanent ones are never retried.

    A 403 is transient by default (DESIGN 4: a new role assignment takes up to 30 minutes to
    propagate): it is parked and the replay decides, from the batch's first failure, when the
    grace window has passed and the rows go to dead-letter with the role hint.
    ``forbidden_transient=False`` (``RELAY_FORBIDDEN_GRACE_MINUTES=0``) makes it permanent.
    """
    if isinstance(error, HttpResponseError) and error.status_code is not None:
        status = error.status_code
        text = _error_text(error)
        retry_after = parse_retry_after(getattr(error.response, "headers", None))
        if status == 400:
            return _Attempt(status, "bad_request", True, text)
        if status == 413:
            return _Attempt(status, "too_large", True, text)
        if status == 403:
            return _Attempt(status, "forbidden", not forbidden_transient, f"{ROLE_HINT.format(dcr=dcr)}: {text}")
        if status == 404:
            return _Attempt(status, "not_found", True, f"unknown DCR or stream (check the route): {text}")
        if status == 401:
            return _Attempt(status, "unauthorized", False, f"token refused: {text}")
        if status == 429:
            return _Attempt(status, "throttled", False, text, retry_after)
        if status == 408 or status >= 500:
            return _Attempt(status, "server_error" if status != 408 else "timeout", False, text, retry_after)
        if retry_after is not None:
            return _Attempt(status, "throttled", False, text, retry_after)
        return _Attempt(status, "rejected", True, text)
    if isinstance(error, ClientAuthenticationError):
        return _Attempt(None, "credential", False, f"could not get a token: {type(error).__name__}")
    if isinstance(error, ServiceResponseError):
        kind = "timeout" if "timeout" in type(error).__name__.lower() or "timed out" in str(error) else "connection"
        return _Attempt(None, kind, False, f"{type(error).__name__}: no complete response")
    if isinstance(error, ServiceRequestError):
        return _Attempt(None, "connection", False, f"{type(error).__name__}: request not sent")
    raise error


def trust_context(extra_ca: str | None) -> ssl.SSLContext | None:
    """The system CAs plus the extra one (the local emulator's), as an SSL context held in memory:
    public endpoints keep working beside the emulator, and no CA file is written per process.
    None when there is no extra CA (the default context of requests applies)."""
    if not extra_ca:
        return None
    import certifi

    context = ssl.create_default_context(cafile=certifi.where())
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cadata=Path(extra_ca).read_text(encoding="ascii"))
    return context


def _adapter_class(base: type[HTTPAdapter], ssl_context: ssl.SSLContext | None) -> type[HTTPAdapter]:
    if ssl_context is None:
        return base

    class TrustingAdapter(base):  # type: ignore[valid-type, misc]
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["ssl_context"] = ssl_context
            super().init_poolmanager(*args, **kwargs)

    return TrustingAdapter


def trusting_session(ssl_context: ssl.SSLContext | None) -> requests.Session:
    """A requests session that verifies with ``ssl_context`` (the deep health check's)."""
    import requests as requests_module

    session = requests_module.Session()
    adapter = _adapter_class(HTTPAdapter, ssl_context)()
    session.mount("https://", adapter)
    return session


class PooledRequestsTransport(RequestsTransport):
    """azure-core's requests transport, keeping as many connections per host as uploads run at once.

    azure-core mounts requests' default adapter, which keeps 10 connections per host. With
    more calls in flight (``RELAY_UPLOAD_CONCURRENCY``, default 16) every extra connection is
    dropped when its call ends (urllib3: "Connection pool is full, discarding connection") and
    a later call pays a new TCP and TLS handshake, a few round trips to the service each time.
    """

    def __init__(self, pool_size: int, ssl_context: ssl.SSLContext | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pool_size = pool_size
        self._ssl_context = ssl_context

    def _init_session(self, session: requests.Session) -> None:
        super()._init_session(session)  # retries off, azure-core's bigger-block adapter
        for prefix in self._protocols:
            adapter = session.get_adapter(prefix)
            adapter_class = _adapter_class(type(adapter), self._ssl_context)
            session.mount(prefix, adapter_class(max_retries=adapter.max_retries, pool_maxsize=max(self._pool_size, 1)))


def upload_transport(settings: Settings, ssl_context: ssl.SSLContext | None) -> RequestsTransport:
    """The HTTP transport of one endpoint's client: timeouts, trust, a pool for every call in flight."""
    return PooledRequestsTransport(
        settings.upload_concurrency,
        ssl_context,
        connection_timeout=10,
        read_timeout=settings.upload_timeout_seconds,
        connection_verify=True,
    )


class LogsIngestionSink:
    """One reused client per endpoint; thread-safe so a batch's requests go out concurrently."""

    def __init__(
        self,
        settings: Settings,
        credential_factory: Callable[[], TokenCredential],
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._settings = settings
        self._credential_factory = credential_factory
        self._credential: TokenCredential | None = None
        self._clients: dict[str, LogsIngestionClient] = {}
        self._lock = threading.Lock()
        self._sleep = sleep
        self._ssl_context = trust_context(settings.ca_bundle)

    def _client(self, endpoint: str, fresh: bool = False) -> LogsIngestionClient:
        with self._lock:
            if fresh:
                stale = self._clients.pop(endpoint, None)
                if stale is not None:
                    stale.close()
            client = self._clients.get(endpoint)
            if client is None:
                if self._credential is None:
                    self._credential = self._credential_factory()
                client = LogsIngestionClient(
                    endpoint,
                    self._credential,
                    credential_scopes=[self._settings.token_scope],
                    retry_total=0,
                    transport=upload_transport(self._settings, self._ssl_context),
                    user_agent="ingestion-relay",
                )
                self._clients[endpoint] = client
            return client

    def upload(self, endpoint: str, dcr: str, stream: str, gzipped_body: bytes, request_id: str) -> UploadResult:
        """Send one gzip request, retrying transient failures until the deadline."""
        deadline = time.monotonic() + self._settings.upload_deadline_seconds
        attempts = 0
        refreshed = False
        while True:
            attempts += 1
            started = time.monotonic()
            try:
                self._client(endpoint).upload(
                    dcr, stream, io.BytesIO(gzipped_body), request_id=request_id
                )
                self._log(request_id, stream, 204, attempts, started, len(gzipped_body), "landed")
                return UploadResult(request_id, attempts, status=204)
            except (HttpResponseError, ServiceRequestError, ServiceResponseError) as error:
                outcome = classify(error, dcr, self._settings.forbidden_grace_minutes > 0)
            self._log(request_id, stream, outcome.status, attempts, started, len(gzipped_body), outcome.failure)
            if outcome.failure == "unauthorized" and not refreshed:
                refreshed = True
                self._client(endpoint, fresh=True)
                continue
            give_up = UploadResult(
                request_id, attempts, outcome.status, outcome.failure, outcome.permanent, outcome.message,
                outcome.retry_after,
            )
            # a 403 does not heal within seconds (role propagation takes minutes): park it at once
            if outcome.permanent or outcome.failure in ("unauthorized", "forbidden") or attempts >= MAX_ATTEMPTS:
                return give_up
            wait = outcome.retry_after
            if wait is None:
                wait = min(MAX_BACKOFF_SECONDS, 0.25 * 2 ** (attempts - 1)) * random.uniform(0.5, 1.0)
            if time.monotonic() + wait > deadline:
                return give_up
            self._sleep(wait)

    @staticmethod
    def _log(request_id: str, stream: str, status: int | None, attempt: int, started: float, size: int,
             outcome: str | None) -> None:
        log.info(
            "upload request_id=%s stream=%s attempt=%d status=%s outcome=%s gzip_bytes=%d ms=%.0f",
            request_id, stream, attempt, status, outcome, size, (time.monotonic() - started) * 1000,
        )

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
