"""The cache of Binance's webhook public keys, keyed by ``certSerial``, with a refresh cool-down.

Keys come from ``POST /certificates`` (reference section 7), or for the new platform
certificate from its own endpoint (section 16.3, one more cache), and replace the cache wholesale,
since Binance's list is authoritative (a retired key disappears). A callback naming a serial the
cache lacks may trigger a fetch, but at most one fetch starts per cool-down period whatever the
serials: a flood of forged serials costs one request per period and no memory.

The cache knows whether its list is *settled*: fetched successfully, with no fetch in flight.
Only then does a missing serial prove a callback wrong. While a fetch is in flight (a rotation
brings a burst of callbacks under the new serial) or after one failed, a missing serial only
means "not known yet", and the callback is deferred: answered 503 so that Binance delivers it
again, neither refused nor recorded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from payments_binance import protocol, wire
from payments_binance.api import ApiClient
from payments_core import Operation, get_logger

__all__ = ["CertificateCache", "fetch_certificates"]

log = get_logger("payments_binance.certificates")


class CertificateCache:
    """Public keys by serial, shared by every callback of one provider instance (thread-safe)."""

    def __init__(self) -> None:
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._last_fetch: float | None = None
        self._fetching = False
        self._settled = False
        self._lock = threading.Lock()

    def get(self, serial: str) -> rsa.RSAPublicKey | None:
        """The key published under ``serial``, if the cache holds it."""
        return self._keys.get(serial)

    def claim_fetch(self, now: float, cooldown: float) -> bool:
        """Whether a fetch may start at monotonic time ``now``; if so, the period starts now.

        The claim holds even if the fetch then fails, so a failing Binance is not hammered.
        """
        with self._lock:
            if self._fetching or (
                self._last_fetch is not None and now - self._last_fetch < cooldown
            ):
                return False
            self._last_fetch = now
            self._fetching = True
            return True

    def lookup(self, serial: str) -> tuple[rsa.RSAPublicKey | None, bool]:
        """The key for ``serial`` and whether the list is *settled*, read together.

        Settled: the last fetch succeeded and none is in flight; only then does a missing
        serial mean the serial is unknown. Read in one snapshot, so that a fetch landing
        between the two reads cannot make a listed serial look unknown.
        """
        with self._lock:
            return self._keys.get(serial), self._settled and not self._fetching

    def fetch_failed(self) -> None:
        """End the claimed fetch without keys; the cool-down still holds."""
        with self._lock:
            self._fetching = False
            self._settled = False

    def replace(self, certificates: Iterable[wire.Certificate]) -> None:
        """Make ``certificates`` the cached keys; entries that are not RSA PEM keys are skipped."""
        keys: dict[str, rsa.RSAPublicKey] = {}
        for certificate in certificates:
            try:
                key = load_pem_public_key(certificate.cert_public.encode("ascii"))
            except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm):
                key = None
            if not isinstance(key, rsa.RSAPublicKey):
                log.warning(
                    "skipped certificate %s: not an RSA public key", certificate.cert_serial
                )
                continue
            keys[certificate.cert_serial] = key
        with self._lock:
            self._keys = keys
            self._fetching = False
            self._settled = True
        log.info("cached %d Binance certificate(s): %s", len(keys), ", ".join(sorted(keys)))

    def __repr__(self) -> str:
        return f"CertificateCache(serials={sorted(self._keys)!r})"


def fetch_certificates(
    api: ApiClient, path: str = protocol.PATH_CERTIFICATES
) -> Operation[list[wire.Certificate]]:
    """Ask Binance for its webhook certificates (HMAC-signed, with a ``{}`` body).

    ``path`` is ``/certificates`` or the new certificate's endpoint (the same answer: a list of
    ``{certSerial, certPublic}``, empty until Binance enables the new certificate).

    :raises ProviderError: for an error answer or one that is not a list of certificates.
    """
    return api.call(
        path,
        {},
        lambda data: wire.structure(data, list[wire.Certificate]),
        operation="certificates",
    )
