"""Deterministic benchmark events: realistic application logs for the ``applogs`` route.

Mixed value types the normalizer must coerce (numbers as strings, epoch times in s/ms,
RFC 1123 dates, 0/1 booleans), nested objects and arrays that go to the ``extra``
column, and a small share of events with a value that must be rejected. The same seed
always gives the same bytes, so the relay and its baselines see identical input.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import orjson

SEED = 20240501
ROUTE = "applogs"
LEVELS = ("info", "info", "info", "info", "debug", "warning", "error", "trace")
SERVICES = ("orders-api", "payments", "catalog", "checkout", "auth", "search", "inventory")
METHODS = ("GET", "GET", "GET", "POST", "PUT", "DELETE")
PATHS = ("/orders", "/orders/{id}", "/cart", "/login", "/search", "/items/{id}", "/health")
AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "okhttp/4.12.0",
)
REGIONS = ("eastus", "westeurope", "southeastasia", "uksouth")
WORDS = ("request", "served", "cache", "miss", "hit", "slow", "query", "retry", "upstream", "timeout",
         "user", "payment", "declined", "accepted", "order", "created", "token", "refreshed", "db", "pool")
BASE_TIME = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)


def _time(rng: random.Random, moment: datetime) -> object:
    pick = rng.random()
    if pick < 0.80:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if pick < 0.88:
        return int(moment.timestamp())
    if pick < 0.94:
        return int(moment.timestamp() * 1000)
    if pick < 0.97:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return format_datetime(moment, usegmt=True)


def event(rng: random.Random, number: int) -> dict:
    """One application log event of about 400 bytes as NDJSON."""
    moment = BASE_TIME + timedelta(milliseconds=number * 7 + rng.randrange(5))
    method, path = rng.choice(METHODS), rng.choice(PATHS).replace("{id}", str(rng.randrange(1, 99999)))
    status = rng.choice((200, 200, 200, 200, 201, 204, 304, 400, 404, 500, 503))
    duration = round(rng.expovariate(1 / 40), 3)
    size = rng.randrange(0, 200_000)
    ok = status < 400
    event: dict = {
        "timestamp": _time(rng, moment),
        "level": rng.choice(LEVELS),
        "message": f"{method} {path} {status} " + " ".join(rng.choice(WORDS) for _ in range(rng.randrange(2, 9))),
        "service": rng.choice(SERVICES),
        "host": f"web-{rng.randrange(1, 40)}",
        "duration_ms": duration,
        "status": status,
        "bytes": size,
        "ok": ok,
        "trace_id": f"{rng.getrandbits(128):032x}",
        "span_id": f"{rng.getrandbits(64):016x}",
        "http": {"method": method, "path": path, "user_agent": rng.choice(AGENTS)},
        "region": rng.choice(REGIONS),
    }
    pick = rng.random()  # values the normalizer must coerce, as real senders produce them
    if pick < 0.05:
        event["duration_ms"] = str(duration)
    elif pick < 0.10:
        event["status"] = str(status)
    elif pick < 0.13:
        event["ok"] = int(ok)
    elif pick < 0.15:
        event["ok"] = "true" if ok else "false"
    elif pick < 0.17:
        event["bytes"] = 70_000_000_000 + size
    elif pick < 0.18:
        event["duration_ms"] = int(duration)
    if rng.random() < 0.3:
        event["user"] = {"id": f"u-{rng.randrange(1, 10_000)}", "tier": rng.choice(("free", "gold", "pro"))}
    if rng.random() < 0.2:
        event["tags"] = [rng.choice(WORDS) for _ in range(rng.randrange(1, 5))]
    if rng.random() < 0.1:
        event["query"] = {"table": rng.choice(("orders", "items", "users")), "rows": rng.randrange(0, 50_000),
                          "cached": rng.random() < 0.5}
    if rng.random() < 0.1:
        del event["host"]  # missing columns stay empty
    pick = rng.random()  # a few bad events: each must be rejected with a reason, the rest still land
    if pick < 0.002:
        event["status"] = "n/a"
    elif pick < 0.004:
        event["timestamp"] = "yesterday"
    elif pick < 0.005:
        event["bytes"] = 1.5
    return event


def events(count: int, seed: int = SEED) -> list[dict]:
    rng = random.Random(seed)
    return [event(rng, number) for number in range(count)]


def ndjson(count: int, seed: int = SEED) -> bytes:
    """``count`` events as NDJSON bytes (one event per line)."""
    return b"\n".join(orjson.dumps(e) for e in events(count, seed)) + b"\n"
