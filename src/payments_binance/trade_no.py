"""``merchantTradeNo`` from the caller's reference: deterministic, valid, collision-free.

The mapping must never change: it is how a retried or recovered create finds the order Binance
already holds. It is::

    prefix = the first 10 letters and digits of the reference, in order (may be shorter)
    digest = SHA-256 of the reference's UTF-8 bytes, as a big-endian integer
    suffix = digest mod 62**22, written in 22 base-62 digits (0-9, A-Z, a-z), zero-padded
    merchantTradeNo = prefix + suffix

The result is 22 to 32 characters of ``[A-Za-z0-9]``. The prefix lets an operator recognise the
order in Binance's merchant portal; the 131-bit suffix makes two references share a trade
number only if SHA-256 collides on them (about 2**-65 after 2**33 references).
"""

from __future__ import annotations

import hashlib
import re
import string
from typing import Final

__all__ = ["merchant_trade_no", "refund_request_id"]

_ALPHABET: Final = string.digits + string.ascii_uppercase + string.ascii_lowercase
_PREFIX_LENGTH: Final = 10
_SUFFIX_LENGTH: Final = 22
_MODULUS: Final = len(_ALPHABET) ** _SUFFIX_LENGTH
# Two base-62 digits at a time: 11 divisions of the suffix instead of 22.
_PAIRS: Final = tuple(high + low for high in _ALPHABET for low in _ALPHABET)
# Exactly what ``ch.isascii() and ch.isalnum()`` keeps: the ASCII letters and digits.
_NOT_ASCII_ALNUM: Final = re.compile(r"[^0-9A-Za-z]+")


def merchant_trade_no(reference: str) -> str:
    """The ``merchantTradeNo`` for ``reference`` (see the module docstring for the rule)."""
    return _named(reference, reference.encode("utf-8"))


def refund_request_id(reference: str, refund_reference: str) -> str:
    """The ``refundRequestId`` for a refund: the same rule over both references.

    The prefix comes from ``refund_reference``, the digest from ``reference``, a NUL byte (no
    reference holds one) and ``refund_reference``: 22 to 32 characters of ``[A-Za-z0-9]``,
    well within Binance's 64. Like ``merchantTradeNo`` it must never change: it is how a
    retried refund is known to Binance as the same refund.
    """
    hashed = b"%s\x00%s" % (reference.encode("utf-8"), refund_reference.encode("utf-8"))
    return _named(refund_reference, hashed)


def _named(label: str, hashed: bytes) -> str:
    prefix = _NOT_ASCII_ALNUM.sub("", label)[:_PREFIX_LENGTH]
    digest = hashlib.sha256(hashed).digest()
    number = int.from_bytes(digest, "big") % _MODULUS
    pairs = []
    for _ in range(_SUFFIX_LENGTH // 2):
        number, remainder = divmod(number, len(_PAIRS))
        pairs.append(_PAIRS[remainder])
    pairs.reverse()
    return prefix + "".join(pairs)
