"""The URLs the sandbox hands out for an order, all under its own base URL (never Binance's)."""

from __future__ import annotations

import base64
import functools
from urllib.parse import quote

from payments_binance.sandbox.state import Order


def checkout_path(order: Order) -> str:
    """The path of the hosted checkout page, below the sandbox's base URL."""
    return f"/sandbox/checkout/{order.checkout_token}"


def checkout_url(base: str, order: Order) -> str:
    """The hosted checkout page; also the QR content, so "scanning" opens the page."""
    return f"{base}{checkout_path(order)}"


def qrcode_link(base: str, order: Order) -> str:
    """An SVG image of the order's QR code."""
    return f"{base}/sandbox/qr/{order.checkout_token}.svg"


def pay_url(base: str, order: Order) -> str:
    """Where the payer's "Pay" button posts."""
    return f"{base}/sandbox/orders/{order.prepay_id}/pay"


def cancel_url(base: str, order: Order) -> str:
    """Where the payer's "Cancel" button posts."""
    return f"{base}/sandbox/orders/{order.prepay_id}/cancel"


@functools.lru_cache(maxsize=64)
def _quoted_checkout_prefix(base: str) -> str:
    # Tokens are hex, so only the base URL and the fixed path need quoting: once per base URL.
    return quote(f"{base}/sandbox/checkout/", safe="")


def deeplink(base: str, order: Order) -> str:
    """An app deeplink shaped like Binance's; nothing ever opens it."""
    return (
        f"bnc://app.binance.com/payment/secpay?tempToken={order.checkout_token}"
        f"&returnLink={_quoted_checkout_prefix(base)}{order.checkout_token}"
    )


def universal_url(base: str, order: Order) -> str:
    """Shaped like Binance's universal link, served by the sandbox as a redirect to checkout."""
    encoded = base64.urlsafe_b64encode(deeplink(base, order).encode("ascii")).decode("ascii")
    return f"{base}/sandbox/secpay?linkToken={order.checkout_token}&_dp={encoded}"
