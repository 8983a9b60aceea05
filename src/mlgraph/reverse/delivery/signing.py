"""The signature of a webhook body: ``X-Mlgraph-Signature: sha256=<hex HMAC-SHA256>``.

The body carries the delivery id and the time it was sent, so the signature
covers them too: a receiver checks it over the raw bytes it received, with
the secret it was given when the webhook was created.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Mlgraph-Signature"
DELIVERY_HEADER = "X-Mlgraph-Delivery"
EVENT_HEADER = "X-Mlgraph-Event"
PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    """The header value for ``body`` signed with ``secret``."""
    return PREFIX + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` (compared in constant time)."""
    return header is not None and hmac.compare_digest(sign(secret, body), header.strip())
