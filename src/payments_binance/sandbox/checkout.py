"""The payer's side: the hosted checkout page and the QR image of an order.

The page is made for a phone as much as a desktop (a viewport meta tag, one narrow column) and
loads nothing from elsewhere: its style, its QR code (an inline SVG drawn by segno) and its
countdown script are all in the page. It shows the merchant's goods name (for LeadsCalendar,
the booking), the price, and then what the order's status allows:

* open: the QR code of the page itself, a countdown to ``orderExpireTime``, and "Pay" and
  "Cancel" buttons, plain HTML forms that post to the order's pay and cancel URLs;
* paid, closed, expired, refunding or refunded: a line saying so, and no buttons.

An unknown checkout token gets :func:`render_unknown`, a page of its own served with 404.
Every value is HTML-escaped.
"""

from __future__ import annotations

import html
import io
import string
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Final

import segno

from payments_binance.protocol import OrderStatus
from payments_binance.sandbox import links
from payments_binance.sandbox.state import OPEN_STATES, Order

#: What the page says of an order that can no longer be paid: (CSS class, sentence).
_FINAL_STATES: Final[dict[OrderStatus, tuple[str, str]]] = {
    OrderStatus.PAID: ("paid", "Paid. Thank you!"),
    OrderStatus.CANCELED: ("closed", "This order was closed; it can no longer be paid."),
    OrderStatus.EXPIRED: ("closed", "This order expired; it can no longer be paid."),
    OrderStatus.REFUNDING: ("paid", "Paid; a refund is on its way."),
    OrderStatus.REFUNDED: ("paid", "Paid and partly refunded."),
    OrderStatus.FULL_REFUNDED: ("closed", "Paid and refunded in full."),
    OrderStatus.ERROR: ("closed", "This order failed; it can no longer be paid."),
}

_UNKNOWN_PAGE: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Unknown checkout · Binance Pay sandbox</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0; padding: 1rem; background: #f5f5f5; }
main { max-width: 26rem; margin: 0 auto; background: #fff; border-radius: 0.75rem;
       padding: 1.25rem; text-align: center; }
</style>
</head>
<body>
<main>
<h1 id="unknown">Unknown checkout</h1>
<p>The sandbox has no order behind this link: it may be mistyped, or the sandbox was
restarted since the order was created (without <code>--state</code>, it keeps orders in
memory).</p>
</main>
</body>
</html>
"""


@cache
def _resource(name: str) -> str:
    return resources.files(__package__).joinpath(f"templates/{name}").read_text("utf-8")


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
    # A fiat-priced order is shown at its price; what is charged in crypto comes beneath.
    if request.fiat_currency is not None and request.fiat_amount is not None:
        amount, currency = format(request.fiat_amount, "f"), request.fiat_currency
        settlement = (
            f'<p class="settlement" id="settlement">charged as '
            f"{html.escape(format(request.amount, 'f'))} {html.escape(request.currency)}</p>"
        )
    else:
        amount, currency, settlement = format(request.amount, "f"), request.currency, ""
    description = ""
    if request.description and request.description != request.product_name:
        description = f'<p class="description">{html.escape(request.description)}</p>'
    # countdown.html counts down to data-expires (epoch milliseconds) once a second; at zero it
    # tells the payer to reload, and the sandbox then shows the order as expired.
    if order.status in OPEN_STATES:
        body, script = _open_body(order, base_url), _resource("countdown.html").rstrip("\n")
    else:
        css, sentence = _FINAL_STATES.get(
            order.status, ("closed", f"This order is {order.status.value.lower()}.")
        )
        body = f'<p class="state state-{css}" id="state">{html.escape(sentence)}</p>'
        script = ""
    return string.Template(_resource("checkout.html")).substitute(
        title=html.escape(f"{request.product_name} · Binance Pay sandbox checkout"),
        goods_name=html.escape(request.product_name),
        description=description,
        amount=html.escape(amount),
        currency=html.escape(currency),
        settlement=settlement,
        body=body,
        prepay_id=html.escape(order.prepay_id),
        status=html.escape(order.status.value),
        script=script,
    )


def render_unknown() -> str:
    """The page for a checkout token the sandbox does not know (served with 404)."""
    return _UNKNOWN_PAGE


def _open_body(order: Order, base_url: str) -> str:
    """The QR code, the countdown and the two buttons of an order that can still be paid."""
    pay = html.escape(links.pay_url(base_url, order))
    cancel = html.escape(links.cancel_url(base_url, order))
    expires = datetime.fromtimestamp(order.expire_time / 1000, UTC)
    return (
        f'<p class="state state-open" id="state">Scan the code with the Binance app, '
        f"or press Pay.</p>\n"
        f'<div class="qr" id="qr">{qr_svg(links.checkout_url(base_url, order))}</div>\n'
        f'<p class="countdown" id="countdown" data-expires="{order.expire_time}">'
        f"Expires at {expires:%Y-%m-%d %H:%M:%S} UTC</p>\n"
        f'<div class="actions">'
        f'<form method="post" action="{pay}"><button type="submit" name="action" '
        f'value="pay" id="pay">Pay</button></form>\n'
        f'<form method="post" action="{cancel}"><button type="submit" name="action" '
        f'value="cancel" id="cancel">Cancel</button></form></div>'
    )
