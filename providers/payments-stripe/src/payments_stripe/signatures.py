"""The ``Stripe-Signature`` scheme: sign a webhook body, and verify one.

``Stripe-Signature: t=1700000000,v1=5257a8...,v1=9f8e...`` holds the Unix time of signing and
one ``v1`` HMAC-SHA256 (hex) of ``f"{t}." + body`` per signing secret in use: two while an
endpoint's secret is being rolled. A webhook verifies when any ``v1`` matches the secret we
hold and ``t`` lies within the tolerance of now, in either direction (stripe-python refuses
only old ones; a timestamp from the future is as suspect, and refused too).

Verification runs over the body bytes as received; nothing is decoded before the HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from typing import Final

from payments_stripe import wire

__all__ = ["SignatureRefused", "sign", "signature_header", "verify"]

_TIMESTAMP: Final = re.compile(r"[0-9]{1,12}")
_HEX_SHA256: Final = re.compile(r"[0-9a-f]{64}")
#: A header longer than this is not one Stripe sent (a few signatures fit in far less).
_HEADER_MAX: Final = 2048


class SignatureRefused(Exception):
    """The signature header is missing, malformed, stale, or matches no secret; says which."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``v1`` signature of ``body`` at ``timestamp`` under ``secret`` (hex)."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secrets: Iterable[str], timestamp: int, body: bytes) -> str:
    """A ``Stripe-Signature`` value signing ``body`` with every one of ``secrets``."""
    return ",".join([f"t={timestamp}", *(f"v1={sign(s, timestamp, body)}" for s in secrets)])


def verify(header: str, body: bytes, secret: str, *, now: float) -> int:
    """Check ``header`` against ``body`` and ``secret``; return the signed timestamp.

    :raises SignatureRefused: saying why, without repeating any signature.
    """
    if not header:
        raise SignatureRefused(f"{wire.HEADER_SIGNATURE} header missing")
    if len(header) > _HEADER_MAX:
        raise SignatureRefused(f"{wire.HEADER_SIGNATURE} header too long")
    timestamps: list[str] = []
    candidates: list[str] = []
    for item in header.split(","):
        scheme, _, value = item.strip().partition("=")
        if scheme == "t":
            timestamps.append(value)
        elif scheme == "v1":
            candidates.append(value)
    if len(timestamps) != 1 or not _TIMESTAMP.fullmatch(timestamps[0]):
        raise SignatureRefused("the signature's timestamp is missing or malformed")
    if not candidates:
        raise SignatureRefused("no v1 signature in the header")
    timestamp = int(timestamps[0])
    if abs(now - timestamp) > wire.TOLERANCE_SECONDS:
        raise SignatureRefused(
            f"the signature's timestamp is more than {wire.TOLERANCE_SECONDS} s from now"
        )
    expected = sign(secret, timestamp, body).encode()
    # Every candidate is compared, in constant time, whether or not an earlier one matched.
    matches = [
        hmac.compare_digest(expected, c.encode()) for c in candidates if _HEX_SHA256.fullmatch(c)
    ]
    if not any(matches):
        raise SignatureRefused("no v1 signature matches the webhook secret")
    return timestamp
