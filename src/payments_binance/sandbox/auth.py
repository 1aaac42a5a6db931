"""Request authentication as Binance makes it (reference section 2), written independently.

The check runs over the exact received body bytes and never over a re-serialisation:
``HMAC-SHA512(secret, ts LF nonce LF body LF)`` as uppercase hex. In order, it answers:
a missing or empty header, a non-numeric timestamp or a nonce that is not 32 characters of
``[A-Za-z0-9]`` → 400100; an unknown API key → 400004; a timestamp outside the window (past or
future) → 400003; a signature that does not match (including lowercase hex, unless allowed) →
400002; a nonce already used by the same key inside the window → 400001.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from typing import Protocol

import attrs

from payments_binance import protocol
from payments_binance.sandbox.envelope import ApiError

_NONCE = re.compile(rf"[A-Za-z0-9]{{{protocol.NONCE_LENGTH}}}")
_TIMESTAMP = re.compile(r"[0-9]{1,16}")
_REQUIRED = (
    protocol.HEADER_TIMESTAMP,
    protocol.HEADER_NONCE,
    protocol.HEADER_CERTIFICATE_SN,
    protocol.HEADER_SIGNATURE,
)


def expected_signature(secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The uppercase-hex HMAC-SHA512 Binance expects for these exact bytes."""
    payload = timestamp.encode("ascii") + b"\n" + nonce.encode("ascii") + b"\n" + body + b"\n"
    return hmac.new(secret.encode("utf-8"), payload, hashlib.sha512).hexdigest().upper()


class NonceRegistry(Protocol):
    """Where used nonces are remembered: in memory, or in a database shared by workers."""

    def first_use(self, api_key: str, nonce: str, timestamp: int, now: int) -> bool:
        """Record ``nonce``; False if the key used it already within the window."""


@attrs.define
class MemoryNonces:
    """Nonces used within the last ``window_ms``, in this process."""

    window_ms: int
    _seen: set[tuple[str, str]] = attrs.field(init=False, factory=set)
    _seen_order: collections.deque[tuple[int, str, str]] = attrs.field(
        init=False, factory=collections.deque
    )

    def first_use(self, api_key: str, nonce: str, timestamp: int, now: int) -> bool:
        """Record ``nonce``; False if the key used it already within the window."""
        # A remembered nonce can be forgotten once its timestamp could no longer pass the window.
        while self._seen_order and self._seen_order[0][0] < now - self.window_ms:
            _, old_key, old_nonce = self._seen_order.popleft()
            self._seen.discard((old_key, old_nonce))
        if (api_key, nonce) in self._seen:
            return False
        self._seen.add((api_key, nonce))
        self._seen_order.append((timestamp, api_key, nonce))
        return True


@attrs.define
class Authenticator:
    """Checks the four signing headers of a merchant request against the accepted keys."""

    credentials: Mapping[str, str] = attrs.field(repr=False)
    window_ms: int
    clock: Callable[[], int]
    accept_lowercase_signature: bool = False
    reject_reused_nonce: bool = True
    nonces: NonceRegistry | None = None

    def __attrs_post_init__(self) -> None:
        if self.nonces is None:
            self.nonces = MemoryNonces(self.window_ms)

    def authenticate(self, headers: Mapping[str, str], body: bytes) -> str:
        """Return the API key of a correctly signed request; raise :class:`ApiError` otherwise."""
        values: dict[str, str] = {}
        for name in _REQUIRED:
            value = headers.get(name.lower(), "")
            if not value:
                raise ApiError("400100", f"header {name} is missing or empty")
            values[name] = value
        timestamp = values[protocol.HEADER_TIMESTAMP]
        nonce = values[protocol.HEADER_NONCE]
        api_key = values[protocol.HEADER_CERTIFICATE_SN]
        signature = values[protocol.HEADER_SIGNATURE]
        if not _TIMESTAMP.fullmatch(timestamp):
            raise ApiError("400100", f"{protocol.HEADER_TIMESTAMP} must be epoch milliseconds")
        if not _NONCE.fullmatch(nonce):
            raise ApiError(
                "400100",
                f"{protocol.HEADER_NONCE} must be {protocol.NONCE_LENGTH} letters or digits",
            )
        secret = self.credentials.get(api_key)
        if secret is None:
            raise ApiError("400004", "API key unknown or IP not allowed")
        now = self.clock()
        if abs(now - int(timestamp)) > self.window_ms:
            raise ApiError("400003", "Timestamp for this request is outside of the recvWindow.")
        if self.accept_lowercase_signature:
            signature = signature.upper()
        expected = expected_signature(secret, timestamp, nonce, body)
        if not hmac.compare_digest(expected.encode("ascii"), signature.encode("latin-1")):
            raise ApiError("400002", "Signature for this request is not valid.")
        if (
            self.reject_reused_nonce
            and self.nonces is not None
            and not self.nonces.first_use(api_key, nonce, int(timestamp), now)
        ):
            raise ApiError("400001", "nonce already used")
        return api_key
