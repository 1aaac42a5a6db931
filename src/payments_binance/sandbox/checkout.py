"""The payer's side: the hosted checkout page and the QR image of an order.

The page shows the amount and currency, an inline SVG QR code of ``qrContent`` (segno) and,
while the order is open, "Pay" and "Cancel" buttons: plain HTML forms that post to the order's
pay and cancel URLs. Every value is HTML-escaped.
"""

from __future__ import annotations

import html
import io
import string
from functools import cache
from importlib import resources

import segno

from payments_binance.sandbox import links
from payments_binance.sandbox.state import OPEN_STATES, Order


@cache
def _template() -> string.Template:
    text = resources.files(__package__).joinpath("templates/checkout.html").read_text("utf-8")
    return string.Template(text)


def qr_svg(content: str) -> str:
    """An SVG QR code of ``content`` without XML declaration, for inline use."""
    svg: str = segno.make(content, error="m").svg_inline(scale=4, title="Binance Pay QR code")
    return svg


def qr_svg_document(content: str) -> bytes:
    """A standalone SVG image of the QR code of ``content``."""
    buffer = io.BytesIO()
    segno.make(content, error="m").save(buffer, kind="svg", scale=4)
    return buffer.getvalue()


def render(order: Order, base_url: str) -> str:
    """The checkout page of ``order``."""
    request = order.request
    amount = format(request.amount, "f")
    fiat = ""
    if request.fiat_currency is not None and request.fiat_amount is not None:
        fiat = (
            f'<p class="fiat">({html.escape(format(request.fiat_amount, "f"))} '
            f"{html.escape(request.fiat_currency)})</p>"
        )
    actions = ""
    if order.status in OPEN_STATES:
        pay = html.escape(links.pay_url(base_url, order))
        cancel = html.escape(links.cancel_url(base_url, order))
        actions = (
            f'<form method="post" action="{pay}"><button type="submit" name="action" '
            f'value="pay" id="pay">Pay</button></form>\n'
            f'<form method="post" action="{cancel}"><button type="submit" name="action" '
            f'value="cancel" id="cancel">Cancel</button></form>'
        )
    return _template().substitute(
        prepay_id=html.escape(order.prepay_id),
        description=html.escape(request.description or request.product_name),
        amount=html.escape(amount),
        currency=html.escape(request.currency),
        fiat=fiat,
        qr_svg=qr_svg(links.checkout_url(base_url, order)),
        status=html.escape(order.status.value),
        actions=actions,
    )
