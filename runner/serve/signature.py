"""GitHub's webhook signature: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`
keyed with the webhook secret, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha256="


def sign(secret: bytes, body: bytes) -> str:
    """The X-Hub-Signature-256 value GitHub sends for `body` (raw bytes) under `secret`."""
    return PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether `header` (the X-Hub-Signature-256 value, or None when missing) signs `body` with
    `secret`. A missing or malformed header is simply not valid; the comparison takes the same
    time wherever the first difference is (`hmac.compare_digest`)."""
    if not secret or not header or not header.startswith(PREFIX):
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode("ascii", "replace"))
