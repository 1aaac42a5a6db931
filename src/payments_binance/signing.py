"""Request signing (reference section 2): nonce, timestamp, HMAC-SHA512 and the four headers.

The body is serialised once by the caller and these exact bytes are both signed and sent:
Binance hashes what arrives, so any re-serialisation after signing breaks the signature.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from datetime import UTC, datetime, timedelta
from typing import Final

from payments_binance import protocol
from payments_core import Secret

__all__ = ["CONTENT_TYPE", "new_nonce", "sign", "signed_headers", "timestamp_ms"]

CONTENT_TYPE: Final = "application/json"
_NONCE_ALPHABET: Final = string.ascii_letters + string.digits
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND: Final = timedelta(milliseconds=1)


#: Random bytes below this map onto the 62 letters and digits without bias (4 x 62 = 248).
_UNBIASED_BELOW: Final = len(_NONCE_ALPHABET) * (256 // len(_NONCE_ALPHABET))
#: For ``bytes.translate``: byte ``b`` below 248 becomes ``_NONCE_ALPHABET[b % 62]``; the
#: others are deleted (``_BIASED``), never mapped.
_NONCE_TABLE: Final = bytes(
    ord(_NONCE_ALPHABET[byte % len(_NONCE_ALPHABET)]) if byte < _UNBIASED_BELOW else 0
    for byte in range(256)
)
_BIASED: Final = bytes(range(_UNBIASED_BELOW, 256))


def new_nonce() -> str:
    """A fresh 32-character nonce of letters and digits, from a cryptographic source.

    One ``secrets.token_bytes`` call per nonce, almost always; rejection sampling keeps every
    character uniform, and ``bytes.translate`` does the mapping and the rejecting in C.
    Drawing each character with ``secrets.choice`` cost ~30 us per request.
    """
    chars = b""
    while len(chars) < protocol.NONCE_LENGTH:
        chars += secrets.token_bytes(2 * protocol.NONCE_LENGTH).translate(_NONCE_TABLE, _BIASED)
    return chars[: protocol.NONCE_LENGTH].decode("ascii")


def timestamp_ms(now: datetime) -> str:
    """``now`` as Unix milliseconds in decimal, the form ``BinancePay-Timestamp`` carries."""
    return str((now - _EPOCH) // _MILLISECOND)


def sign(secret: Secret, timestamp: str, nonce: str, body: bytes) -> str:
    """The uppercase hex HMAC-SHA512 of ``timestamp\\nnonce\\nbody\\n`` keyed with ``secret``.

    ``body`` must be the exact bytes that will be sent (an empty body signs as empty).
    """
    payload = b"%s\n%s\n%s\n" % (timestamp.encode("utf-8"), nonce.encode("utf-8"), body)
    digest = hmac.new(secret.reveal().encode("utf-8"), payload, hashlib.sha512)
    return digest.hexdigest().upper()


def signed_headers(
    *, api_key: Secret, api_secret: Secret, timestamp: str, nonce: str, body: bytes
) -> dict[str, str]:
    """The content type and the four ``BinancePay-*`` headers for sending ``body``."""
    return {
        "content-type": CONTENT_TYPE,
        protocol.HEADER_TIMESTAMP: timestamp,
        protocol.HEADER_NONCE: nonce,
        protocol.HEADER_CERTIFICATE_SN: api_key.reveal(),
        protocol.HEADER_SIGNATURE: sign(api_secret, timestamp, nonce, body),
    }
