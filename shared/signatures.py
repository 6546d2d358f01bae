"""Webhook signatures, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac


def github_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_github_signature(secret: str, body: bytes, presented: str) -> bool:
    """Check ``X-Hub-Signature-256`` over the body exactly as sent."""
    if not presented:
        return False
    return hmac.compare_digest(github_signature(secret, body).encode(), presented.strip().encode())
