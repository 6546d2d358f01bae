"""Webhook signatures, compared in constant time.

Two route choices: ``secret:`` verifies GitHub's ``X-Hub-Signature-256`` (``sha256=`` + hex
HMAC-SHA256 of the body); ``signature:`` is the generic HMAC-SHA256 scheme most SaaS senders
use under another header, prefix or encoding, some with a signed timestamp against replay::

    signature:
      secret: ${SHOPIFY_SECRET}
      header: X-Shopify-Hmac-Sha256   # where the signature comes
      prefix: ""                      # text before it, e.g. "sha256=", "v0=", "v1="
      encoding: base64                # hex (default) or base64
      timestamp_header: ...           # optional: the signed timestamp (epoch seconds or RFC 3339)
      timestamp_prefix: "t="          # optional: the timestamp is the part of that header after it
      signed: "{timestamp}.{body}"    # what the HMAC covers (default "{body}")
      tolerance: 300                  # seconds a timestamp may be off (default 300)

The signature header may hold several comma- or space-separated parts (Stripe ``t=...,v1=...``,
PagerDuty ``v1=a,v1=b`` while secrets rotate): any part after ``prefix`` that matches is enough.
The samples under ``tests/events/webhook_*.json`` show which senders this covers (docs/signatures.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

ENCODINGS = ("hex", "base64")
DEFAULT_TOLERANCE_SECONDS = 300
_PARTS = re.compile(r"[,\s]+")


def github_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_github_signature(secret: str, body: bytes, presented: str) -> bool:
    """Check ``X-Hub-Signature-256`` over the body exactly as sent."""
    if not presented:
        return False
    return hmac.compare_digest(github_signature(secret, body).encode(), presented.strip().encode())


@dataclass(frozen=True)
class SignatureScheme:
    """A route's ``signature:``: how its sender signs (validated in ``config._RouteCheck.signature``)."""

    secret: str = field(repr=False)
    header: str
    prefix: str = ""
    encoding: str = "hex"
    timestamp_header: str | None = None
    timestamp_prefix: str = ""
    signed: str = "{body}"
    tolerance: int = DEFAULT_TOLERANCE_SECONDS

    def expected(self, body: bytes, timestamp: str = "") -> bytes:
        """The HMAC-SHA256 digest of what the sender signs."""
        before, _, after = self.signed.partition("{body}")
        message = before.replace("{timestamp}", timestamp).encode() + body + \
            after.replace("{timestamp}", timestamp).encode()
        return hmac.new(self.secret.encode(), message, hashlib.sha256).digest()

    def sign(self, body: bytes, timestamp: str = "") -> str:
        """The header value a sender would send (tests and ``relay`` samples)."""
        digest = self.expected(body, timestamp)
        text = digest.hex() if self.encoding == "hex" else base64.b64encode(digest).decode()
        return self.prefix + text


@dataclass(frozen=True)
class Verdict:
    ok: bool
    problem: str = ""  # for the 401: names headers, never the secret


def _decoded(text: str, encoding: str) -> bytes | None:
    try:
        return bytes.fromhex(text) if encoding == "hex" else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        return None


def _timestamp_seconds(text: str) -> float | None:
    """Epoch seconds (or milliseconds), or an RFC 3339 time (Zendesk)."""
    text = text.strip()
    if text.isascii() and text.isdigit():
        value = int(text)
        return value / 1000 if value > 10**11 else float(value)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def verify_signature(scheme: SignatureScheme, body: bytes, header: Callable[[str], str],
                     now: float | None = None) -> Verdict:
    """Check a request against the route's scheme; ``header(name)`` reads a request header ('' if absent)."""
    presented = header(scheme.header)
    if not presented.strip():
        return Verdict(False, f"missing {scheme.header} signature header")
    timestamp = ""
    if scheme.timestamp_header:
        raw = header(scheme.timestamp_header)
        if scheme.timestamp_prefix:
            raw = next((part[len(scheme.timestamp_prefix):] for part in _PARTS.split(raw)
                        if part.startswith(scheme.timestamp_prefix)), "")
        seconds = _timestamp_seconds(raw) if raw else None
        if seconds is None:
            return Verdict(False, f"missing or unreadable signed timestamp in {scheme.timestamp_header}")
        if abs((time.time() if now is None else now) - seconds) > scheme.tolerance:
            return Verdict(False, f"the signed timestamp in {scheme.timestamp_header} is outside the "
                                  f"{scheme.tolerance} s tolerance window (a replay, or a clock far off)")
        timestamp = raw.strip()
    expected = scheme.expected(body, timestamp)
    matched = False
    for part in _PARTS.split(presented.strip()):  # neither hex nor base64 holds a comma or a space
        if not part.startswith(scheme.prefix):
            continue
        candidate = _decoded(part[len(scheme.prefix):], scheme.encoding)
        # every candidate is compared (no early exit on a match): the time taken does not say which matched
        matched |= candidate is not None and hmac.compare_digest(candidate, expected)
    return Verdict(True) if matched else Verdict(False, f"missing or wrong {scheme.header} signature")


def header_reader(headers: Mapping[str, str]) -> Callable[[str], str]:
    """A case-insensitive header lookup over a mapping."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return lambda name: lowered.get(name.lower(), "")
