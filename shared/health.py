"""Health answers: the anonymous configuration check and the keyed deep check.

``GET /api/health`` is anonymous and says only whether the configuration loaded (counts,
no endpoints, ids or secrets). The deep check reaches out — storage, token, ingestion
endpoint — so it must not be open to anyone: it is its own function behind the function
key (``GET /api/health/deep``). ``GET /api/health?deep=1`` answers ``307`` to it with the
query kept, so ``curl -L 'https://<app>/api/health?deep=1&code=<key>'`` runs the deep check
and the host, not this code, checks the key.

Each deep check runs in its own thread against one deadline (a hung TCP or TLS handshake
cannot hold the answer), names what failed and never echoes a secret: failures are
reported as the exception class and a first line with known secret values and bearer
tokens masked.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .config import ConfigError
from .http_ingest import HttpAnswer, handle_health
from .settings import SettingsError

DEEP_TIMEOUT_SECONDS = 5.0
MAX_DETAIL = 300
_BEARER = re.compile(r"(?i)(bearer\s+|accountkey=|sig=|sharedaccesskey=|x-identity-header:?\s*)[^\s;&,'\"]+")


@dataclass
class Check:
    """One deep check's outcome: ``ok`` is True, False, or None when it does not apply here."""

    name: str
    ok: bool | None
    detail: str
    ms: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "ms": self.ms}


def redact(text: str, secrets: list[str]) -> str:
    """First line of ``text``, cut short, with the given secret values and token-like fields masked."""
    line = (text.splitlines() or [""])[0][:MAX_DETAIL]
    for secret in secrets:
        if secret and len(secret) >= 4:
            line = line.replace(secret, "<redacted>")
    return _BEARER.sub(lambda m: m.group(1) + "<redacted>", line)


def wants_deep(params: Mapping[str, str]) -> bool:
    return str(params.get("deep", "")).lower() in ("1", "true", "yes")


def anonymous_health(url: str, params: Mapping[str, str], relay_factory: Callable[[], Any]) -> HttpAnswer:
    """The anonymous health: configuration only; ``?deep=1`` is sent on to the keyed deep check."""
    if wants_deep(params):
        parts = urlsplit(url)
        location = urlunsplit(("", "", parts.path.rstrip("/") + "/deep", parts.query, ""))
        return HttpAnswer(307, {"error": "the deep check needs the function key: GET "
                                         f"{parts.path.rstrip('/')}/deep with x-functions-key or ?code="},
                          {"Location": location})
    return handle_health(relay_factory)


def _run(name: str, work: Callable[[], str], secrets: list[str], deadline: float) -> Check:
    """Run ``work`` in a daemon thread until ``deadline``; its return value is the detail."""
    box: dict[str, Any] = {}
    started = time.monotonic()

    def target() -> None:
        try:
            box["detail"] = work()
        except Exception as error:  # reported by class and masked first line: the point is to name what failed
            box["error"] = error

    thread = threading.Thread(target=target, name=f"health-{name}", daemon=True)
    thread.start()
    thread.join(max(deadline - time.monotonic(), 0.0))
    ms = int((time.monotonic() - started) * 1000)
    if thread.is_alive():
        return Check(name, False, f"timed out after {ms / 1000:.1f}s", ms)
    if "error" in box:
        error = box["error"]
        return Check(name, False, f"{type(error).__name__}: {redact(str(error), secrets)}", ms)
    return Check(name, True, redact(str(box.get("detail", "ok")), secrets), ms)


def _secrets(relay: Any, env: Mapping[str, str]) -> list[str]:
    """Values that must never appear in an answer."""
    values = [relay.settings.static_token or "", env.get("RelayStorage", ""), env.get("IDENTITY_HEADER", ""),
              env.get("GITHUB_WEBHOOK_SECRET", "")]
    for route in relay.config.routes:
        values.append(getattr(route, "secret", "") or "")
    connection = env.get("RelayStorage", "")
    values += [part.split("=", 1)[1] for part in connection.split(";") if part.lower().startswith("accountkey=")]
    return [v for v in values if v]


def storage_check(relay: Any, timeout: float) -> str:
    """The poison queue and both containers answer (one try each, short timeouts)."""
    store = relay.poison
    options = {"retry_total": 0, "connection_timeout": timeout, "read_timeout": timeout}
    store.queue.get_queue_properties(**options)
    store.poison.get_container_properties(**options)
    store.deadletters.get_container_properties(**options)
    return f"queue {store.queue_name} and containers {store.container_name}, {store.deadletter_name} answer"


def token_check(relay: Any) -> str:
    """A token for the cloud's Logs Ingestion scope (the credential the uploads use; never shown)."""
    from .credentials import build_credential

    credential = build_credential(relay.settings)
    try:
        token = credential.get_token(relay.settings.token_scope)
    finally:
        close = getattr(credential, "close", None)
        if close is not None:
            close()
    if not token.token:
        raise RuntimeError("the credential returned an empty token")
    left = int(token.expires_on - time.time())
    return f"{relay.settings.credential} credential: token for {relay.settings.token_scope} (expires in {left}s)"


def endpoint_check(relay: Any, endpoint: str, timeout: float) -> str:
    """The ingestion endpoint answers over HTTPS with a certificate we trust (any HTTP status will do)."""
    from .sink import trust_context, trusting_session

    with trusting_session(trust_context(relay.settings.ca_bundle)) as session:
        response = session.get(endpoint.rstrip("/") + "/", timeout=(timeout, timeout), allow_redirects=False,
                               headers={"User-Agent": "ingestion-relay-health"})
        response.close()
    return f"{urlsplit(endpoint).netloc} answered HTTP {response.status_code} over TLS"


def deep_health(relay_factory: Callable[[], Any], env: Mapping[str, str] | None = None,
                timeout: float = DEEP_TIMEOUT_SECONDS) -> HttpAnswer:
    """Storage reachability, token acquisition and each ingestion endpoint, all within ``timeout``.

    200 when every check that applies passed; 503 naming the failed checks otherwise.
    """
    import os

    env = os.environ if env is None else env
    try:
        relay = relay_factory()
    except (ConfigError, SettingsError) as error:
        problems = getattr(error, "problems", [str(error)])
        return HttpAnswer(503, {"status": "error", "failed": ["configuration"], "problems": problems})
    secrets = _secrets(relay, env)
    deadline = time.monotonic() + timeout
    results: list[Check] = []
    lock = threading.Lock()
    jobs: list[tuple[str, Callable[[], str]]] = [("token", lambda: token_check(relay))]
    if relay.poison is None:
        results.append(Check("storage", None, "RelayStorage is not set: nothing can be parked (HTTP-only use)"))
    else:
        jobs.append(("storage", lambda: storage_check(relay, timeout)))
    endpoints = sorted({route.endpoint for route in relay.config.routes})
    for endpoint in endpoints:
        name = "ingestion" if len(endpoints) == 1 else f"ingestion {urlsplit(endpoint).netloc}"
        jobs.append((name, lambda endpoint=endpoint: endpoint_check(relay, endpoint, timeout)))

    def one(name: str, work: Callable[[], str]) -> None:
        check = _run(name, work, secrets, deadline)
        with lock:
            results.append(check)

    runners = [threading.Thread(target=one, args=job, daemon=True) for job in jobs]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()  # each returns by the deadline: _run stops waiting on its worker then
    order = {name: n for n, (name, _) in enumerate(jobs)}
    results.sort(key=lambda c: order.get(c.name, -1))
    failed = [c.name for c in results if c.ok is False]
    body = {"status": "failed" if failed else "ok", "failed": failed, "routes": len(relay.config.routes),
            "checks": [c.as_dict() for c in results]}
    return HttpAnswer(503 if failed else 200, body)
