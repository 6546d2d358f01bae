"""Fault injection: make chosen requests fail the way the real service sometimes does.

Retry, back-off and poison-store paths can only be tested if the service misbehaves
on demand: 429 with ``Retry-After``, 5xx, slow answers or a dropped connection, for
the next N requests or a seeded fraction of them.
"""

from __future__ import annotations

import itertools
import math
import random
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_CODES = {
    400: ("InvalidRequest", "The request is invalid (injected fault)."),
    401: ("InvalidToken", "The provided access token is not valid (injected fault)."),
    403: (
        "OperationFailed",
        "The authentication token provided does not have access to ingest data for the data collection rule "
        "(injected fault). The identity needs the Monitoring Metrics Publisher role on the DCR.",
    ),
    404: ("NotFound", "Not found (injected fault)."),
    408: ("RequestTimeout", "The request timed out (injected fault)."),
    413: ("ContentLengthLimitExceeded", "Maximum allowed content length: 1048576 bytes (injected fault)."),
    429: ("TooManyRequests", "Rate limit for the data collection rule exceeded (injected fault)."),
    500: ("InternalServerError", "An internal error occurred (injected fault)."),
    502: ("BadGateway", "Bad gateway (injected fault)."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable (injected fault)."),
    504: ("GatewayTimeout", "The gateway timed out (injected fault)."),
}
_FIELDS = (
    "stream",
    "dcr",
    "status",
    "retry_after",
    "code",
    "message",
    "delay",
    "close",
    "count",
    "fraction",
    "seed",
)
_ids = itertools.count(1)


class FaultError(ValueError):
    """A fault rule is malformed; the message says which field."""


@dataclass
class FaultRule:
    """What to do to matching requests. At least one of ``status``, ``delay`` or ``close``.

    ``count`` limits the rule to the next N matching requests; ``fraction`` fires on
    that share of matching requests (seeded for repeatable tests). With neither, the
    rule fires on every matching request until faults are cleared.
    """

    stream: str = "*"
    dcr: str | None = None
    status: int | None = None
    retry_after: float | None = None
    code: str | None = None
    message: str | None = None
    delay: float = 0.0
    close: bool = False
    count: int | None = None
    fraction: float | None = None
    seed: int | None = None
    id: str = field(default_factory=lambda: f"fault-{next(_ids)}")
    fired: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._validate()
        self._rng = random.Random(self.seed)

    def _validate(self) -> None:
        if not isinstance(self.stream, str) or not self.stream:
            raise FaultError("'stream' must be a stream name or '*'")
        if self.dcr is not None and not isinstance(self.dcr, str):
            raise FaultError("'dcr' must be an immutable id")
        if self.status is not None and (
            isinstance(self.status, bool) or not isinstance(self.status, int) or not 200 <= self.status <= 599
        ):
            raise FaultError("'status' must be an HTTP status code between 200 and 599")
        if self.retry_after is not None and not _non_negative(self.retry_after):
            raise FaultError("'retry_after' must be a non-negative number of seconds")
        if not _non_negative(self.delay):
            raise FaultError("'delay' must be a non-negative number of seconds")
        if not isinstance(self.close, bool):
            raise FaultError("'close' must be true or false")
        if self.status is None and not self.close and not self.delay:
            raise FaultError("a fault needs at least one of 'status', 'delay' or 'close'")
        if self.status is not None and self.close:
            raise FaultError("'status' and 'close' exclude each other")
        if self.count is not None and (
            isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1
        ):
            raise FaultError("'count' must be a positive integer")
        if self.fraction is not None and (
            not _non_negative(self.fraction) or not 0 <= float(self.fraction) <= 1
        ):
            raise FaultError("'fraction' must be between 0 and 1")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise FaultError("'seed' must be an integer")
        for name in ("code", "message"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise FaultError(f"'{name}' must be a string")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> FaultRule:
        """Build a rule from JSON (the control endpoint) or keyword arguments."""
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise FaultError(f"unknown fault field(s): {', '.join(unknown)} (known: {', '.join(_FIELDS)})")
        return cls(**{k: data[k] for k in _FIELDS if k in data and data[k] is not None})

    def matches(self, dcr: str, stream: str) -> bool:
        if self.stream not in ("*", stream):
            return False
        return self.dcr is None or self.dcr.lower() == dcr.lower()

    def error_body(self) -> dict[str, Any]:
        default_code, default_message = DEFAULT_CODES.get(
            self.status or 0, ("InjectedFault", "Injected fault.")
        )
        return {"error": {"code": self.code or default_code, "message": self.message or default_message}}

    def retry_after_header(self) -> str | None:
        if self.retry_after is None:
            return None
        value = float(self.retry_after)
        return str(int(value)) if value.is_integer() else repr(value)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_rng", None)
        return data


def _non_negative(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and value >= 0


class FaultInjector:
    """The active rules, consulted once per ingestion request, first matching rule wins."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def add(self, rule: FaultRule | Mapping[str, Any] | None = None, **fields: Any) -> FaultRule:
        if rule is None:
            rule = FaultRule.from_mapping(fields)
        elif not isinstance(rule, FaultRule):
            rule = FaultRule.from_mapping({**rule, **fields})
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.to_dict() for rule in self._rules]

    def pick(self, dcr: str, stream: str) -> FaultRule | None:
        """Return the rule that fires for this request, if any, and use up one of its ``count``."""
        with self._lock:
            for rule in list(self._rules):
                if not rule.matches(dcr, stream):
                    continue
                if rule.fraction is not None and rule._rng.random() >= rule.fraction:
                    continue
                rule.fired += 1
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count <= 0:
                        self._rules.remove(rule)
                return rule
        return None
