"""Orders: the create, query and close bodies, and their answers as :class:`~payments_core.Order`.

Create uses v3 (``/v3/order``: ``description`` and ``goodsDetails`` required); query uses v2
(``/v2/order/query``); close has one version. Query and close name the order by the
``merchantTradeNo`` derived from the caller's reference, so they need nothing stored.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

import attrs

from payments_binance import protocol, wire
from payments_binance.api import ApiClient
from payments_binance.settings import BinanceSettings, asset_list
from payments_binance.trade_no import merchant_trade_no
from payments_core import Money, Operation, Order, OrderRequest, PaymentStatus, ValidationError

__all__ = [
    "STATUS_BY_ORDER_STATUS",
    "CreateOptions",
    "create_body",
    "from_epoch_ms",
    "lookup_body",
    "order_from_create",
    "order_from_query",
    "query_order",
]

URL_MAX: Final = 256
#: ``goodsType`` "02": what LeadsCalendar sells (a booking) is virtual.
GOODS_TYPE_VIRTUAL: Final = "02"
#: USD (what LeadsCalendar prices in) and the crypto assets Binance Pay settles in. Binance
#: converts other fiat codes too but publishes no list, so only the one this project prices in
#: is named.
SUPPORTED_CURRENCIES: Final = frozenset({"USD", "USDT", "USDC", "FDUSD", "BNB", "BTC", "ETH"})
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND: Final = timedelta(milliseconds=1)

#: Query-order ``status`` in provider-neutral words. A refund in progress leaves the order paid;
#: Binance's ``REFUNDED`` is a partial refund, ``FULL_REFUNDED`` a whole one.
STATUS_BY_ORDER_STATUS: Final[dict[str, PaymentStatus]] = {
    protocol.OrderStatus.INITIAL: PaymentStatus.PENDING,
    protocol.OrderStatus.PENDING: PaymentStatus.PENDING,
    protocol.OrderStatus.PAID: PaymentStatus.PAID,
    protocol.OrderStatus.CANCELED: PaymentStatus.CLOSED,
    protocol.OrderStatus.ERROR: PaymentStatus.FAILED,
    protocol.OrderStatus.REFUNDING: PaymentStatus.PAID,
    protocol.OrderStatus.REFUNDED: PaymentStatus.PARTIALLY_REFUNDED,
    protocol.OrderStatus.FULL_REFUNDED: PaymentStatus.REFUNDED,
    protocol.OrderStatus.EXPIRED: PaymentStatus.EXPIRED,
}


def _is_emoji_or_quote(ch: str) -> bool:
    # goodsName may not hold a backslash, a double quote or an emoji (reference 3.2).
    code = ord(ch)
    return (
        ch in '\\"'
        or code >= 0x1F000
        or 0x2600 <= code <= 0x27BF
        or 0xFE00 <= code <= 0xFE0F
        or code == 0x200D
        or (code > 0xFF and unicodedata.category(ch) in {"So", "Sk", "Cs", "Co", "Cn"})
    )


def goods_name(description: str) -> str:
    """``description`` with what ``goodsName`` may not hold removed (backslash, quote, emoji)."""
    if description.isascii():
        # Of the ASCII characters, _is_emoji_or_quote holds for these two alone.
        kept = description.replace("\\", "").replace('"', "")
    else:
        kept = "".join(ch for ch in description if not _is_emoji_or_quote(ch))
    return " ".join(kept.split())


def checked_url(value: str | None, field: str) -> str | None:
    """``value``, refused (naming ``field``) if it is longer than Binance takes."""
    if value is not None and len(value) > URL_MAX:
        raise ValidationError(field, f"must be at most {URL_MAX} characters for Binance Pay")
    return value


def _amount(price: Money) -> Decimal:
    # Money is already quantised to its currency's places: count them, no arithmetic (which
    # would run in the caller's decimal context).
    exponent = price.amount.as_tuple().exponent
    assert isinstance(exponent, int)  # Money is finite
    if -exponent > protocol.AMOUNT_MAX_DECIMALS:
        raise ValidationError(
            "price.amount",
            f"Binance Pay accepts at most {protocol.AMOUNT_MAX_DECIMALS} decimal places",
        )
    return price.amount


@attrs.frozen(kw_only=True)
class CreateOptions:
    """What a merchant may set on one Binance order beyond the neutral :class:`OrderRequest`.

    Attributes:
        support_pay_currency: The assets the payer may pay with, comma-separated
            (``"USDT,BNB"``); ``None`` takes the ``support_pay_currency`` setting.
        order_client_ip: The payer's IP address (``env.orderClientIp``).
    """

    support_pay_currency: str | None = None
    order_client_ip: str | None = None


def _options(
    options: CreateOptions | None, settings: BinanceSettings
) -> tuple[str | None, str | None]:
    """``supportPayCurrency`` and ``env.orderClientIp``, checked."""
    if options is None:
        return settings.support_pay_currency, None
    assets = settings.support_pay_currency
    if options.support_pay_currency is not None:
        try:
            assets = asset_list(options.support_pay_currency, "support_pay_currency")
        except ValueError as exc:
            raise ValidationError("support_pay_currency", str(exc)) from None
    ip = options.order_client_ip
    if ip is not None:
        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            raise ValidationError("order_client_ip", "must be an IPv4 or IPv6 address") from None
    return assets, ip


def create_body(
    request: OrderRequest,
    settings: BinanceSettings,
    now: datetime,
    *,
    trade_no: str | None = None,
    options: CreateOptions | None = None,
) -> object:
    """The create-order v3 body for ``request``, as wire data ready to serialise.

    A fiat price becomes ``fiatCurrency``/``fiatAmount`` (Binance converts it to USDT), a
    crypto price ``currency``/``orderAmount``. ``trade_no`` is
    ``merchant_trade_no(request.reference)`` when the caller has it already (it is derived
    here otherwise). ``options`` adds what only Binance takes.

    :raises ValidationError: naming the request's field: a currency Binance does not take, a
        URL over 256 characters, more than 8 decimal places, or an ``expires_at`` that is not
        in the future or lies beyond ``settings.max_order_expiry``; or naming the option
        (``support_pay_currency``, ``order_client_ip``) that is malformed.
    """
    support_pay_currency, client_ip = _options(options, settings)
    if request.price.currency not in SUPPORTED_CURRENCIES:
        raise ValidationError(
            "price.currency",
            f"Binance Pay does not take {request.price.currency}; it takes "
            f"{', '.join(sorted(SUPPORTED_CURRENCIES))}",
        )
    amount = _amount(request.price)
    crypto = request.price.currency_info.crypto
    description = request.description.strip() or f"Payment {request.reference}"
    expire_time = None
    if request.expires_at is not None:
        if request.expires_at <= now:
            raise ValidationError("expires_at", "must be in the future")
        if request.expires_at - now > timedelta(seconds=settings.max_order_expiry):
            raise ValidationError(
                "expires_at",
                f"must be at most {settings.max_order_expiry:.0f} s from now "
                "(Binance's limit, setting max_order_expiry)",
            )
        expire_time = (request.expires_at - _EPOCH) // _MILLISECOND
    if trade_no is None:
        trade_no = merchant_trade_no(request.reference)
    body = wire.CreateOrderBody(
        env=wire.Env(terminal_type=settings.terminal_type, order_client_ip=client_ip),
        merchant_trade_no=trade_no,
        description=description,
        goods_details=(
            wire.GoodsDetail(
                goods_type=GOODS_TYPE_VIRTUAL,
                goods_category=settings.goods_category,
                reference_goods_id=request.reference,
                goods_name=goods_name(description) or f"Payment {request.reference}",
            ),
        ),
        order_amount=amount if crypto else None,
        currency=request.price.currency if crypto else None,
        fiat_amount=None if crypto else amount,
        fiat_currency=None if crypto else request.price.currency,
        return_url=checked_url(request.return_url, "return_url"),
        cancel_url=checked_url(request.cancel_url, "cancel_url"),
        order_expire_time=expire_time,
        webhook_url=checked_url(request.callback_url, "callback_url"),
        pass_through_info=price_note(request.price),
        support_pay_currency=support_pay_currency,
    )
    return wire.unstructure(body)


#: How the requested price travels in ``passThroughInfo``: ``payments:price=1.00 USD``.
_PRICE_NOTE: Final = "payments:price="


def price_note(price: Money) -> str:
    """The ``passThroughInfo`` that records ``price`` with the order.

    Binance returns ``passThroughInfo`` unchanged in query answers, which otherwise state only
    the order currency (USDT for a USD price): the note is how a recovered order is known to
    be for the requested price, and not for another price under the same reference.
    """
    return f"{_PRICE_NOTE}{price}"


def price_from_note(note: str | None) -> Money | None:
    """The price a :func:`price_note` records, or ``None`` if ``note`` is not one."""
    if note is None or not note.startswith(_PRICE_NOTE):
        return None
    amount, _, currency = note[len(_PRICE_NOTE) :].partition(" ")
    try:
        return Money(amount, currency)
    except ValidationError:
        return None


def lookup_body(reference: str) -> object:
    """The query-order / close-order body naming the order for ``reference``."""
    return wire.unstructure(wire.OrderLookup(merchant_trade_no=merchant_trade_no(reference)))


def query_order(api: ApiClient, reference: str) -> Operation[Order]:
    """Ask Binance for the order of ``reference`` (a ``400202`` error if it holds none)."""
    return api.call(
        protocol.PATH_QUERY_ORDER,
        lookup_body(reference),
        lambda data: order_from_query(
            api.provider, reference, wire.structure(data, wire.QueryOrderResult)
        ),
        operation="query_order",
    )


def from_epoch_ms(value: int | None) -> datetime | None:
    """A Binance epoch-millisecond time as an aware UTC datetime; ``None`` stays ``None``."""
    # A multiple of one millisecond: the same exact integer arithmetic (and the same
    # OverflowError out of range) as timedelta(milliseconds=value), without its keyword parsing.
    return None if value is None else _EPOCH + _MILLISECOND * value


def order_from_create(
    provider: str,
    request: OrderRequest,
    result: wire.CreateOrderResult,
    *,
    trade_no: str | None = None,
) -> Order:
    """The :class:`Order` a create-order answer describes (pending, priced as requested).

    ``trade_no`` is ``merchant_trade_no(request.reference)`` when the caller has it already.

    :raises wire.MalformedAnswer: if the settlement amount (v3 ``currency``/``totalFee``) is
        not an amount :class:`Money` can hold, or ``expireTime`` is not a representable time.
    """
    if trade_no is None:
        trade_no = merchant_trade_no(request.reference)
    try:
        expires_at = from_epoch_ms(result.expire_time)
    except OverflowError:
        raise wire.MalformedAnswer(f"expireTime {result.expire_time} is out of range") from None
    settlement = None
    if result.currency is not None and result.total_fee is not None:
        settlement = _answered_money(result.total_fee, result.currency, "settlement amount")
    return Order(
        provider=provider,
        reference=request.reference,
        provider_order_id=result.prepay_id,
        provider_reference=trade_no,
        status=PaymentStatus.PENDING,
        amount=request.price,
        settlement=settlement,
        checkout_url=result.checkout_url,
        links={
            name: link
            for name, link in (
                ("qr_image", result.qrcode_link),
                ("qr_data", result.qr_content),
                ("app", result.deeplink),
                ("web", result.universal_url),
            )
            if link is not None
        },
        expires_at=expires_at,
    )


def _answered_money(amount: object, currency: str, what: str) -> Money:
    """An amount Binance answered with, as :class:`Money`.

    :raises wire.MalformedAnswer: naming ``what``, if :class:`Money` cannot hold it.
    """
    try:
        return Money(amount, currency)
    except ValidationError as exc:
        raise wire.MalformedAnswer(f"{what}: {exc}") from None


def order_from_query(provider: str, reference: str, result: wire.QueryOrderResult) -> Order:
    """The :class:`Order` a query-order answer describes.

    The query answer carries no checkout links and states the amount only in the order
    currency (USDT for a fiat-priced order): that is the ``settlement``. The ``amount`` is the
    price recorded in ``passThroughInfo`` by :func:`price_note` at creation, or, for an order
    created without one, the settlement too.

    :raises wire.MalformedAnswer: for an unknown ``status``, or an amount or currency that
        :class:`Money` cannot hold.
    """
    status = STATUS_BY_ORDER_STATUS.get(result.status)
    if status is None:
        raise wire.MalformedAnswer(f"unknown order status {result.status!r}")
    if result.currency is None or result.order_amount is None:
        raise wire.MalformedAnswer("the order has no currency or orderAmount")
    settlement = _answered_money(result.order_amount, result.currency, "order amount")
    return Order(
        provider=provider,
        reference=reference,
        provider_order_id=result.prepay_id,
        provider_reference=result.merchant_trade_no,
        status=status,
        amount=price_from_note(result.pass_through_info) or settlement,
        settlement=settlement,
        transaction_id=result.transaction_id,
        paid=paid_from(result.payment_info),
        fee=fee_from(result.commission, result.currency),
    )


def paid_from(payment_info: object) -> Money | None:
    """What the payer actually paid, from a ``paymentInfo`` (reference section 16.4).

    The sum of its ``paymentInstructions`` when they are all in one currency; ``None`` when
    there is no ``paymentInfo``, it pays in several currencies at once (no single amount says
    it), or it does not hold amounts :class:`Money` can: what was paid is recorded for the
    merchant, never checked, so a payment is not refused over it.
    """
    if not isinstance(payment_info, dict):
        return None
    instructions = payment_info.get("paymentInstructions")
    if not isinstance(instructions, list) or not instructions:
        return None
    try:
        parts = [Money(part["amount"], part["currency"]) for part in instructions]
    except (TypeError, KeyError, ValidationError):
        return None
    if len({part.currency for part in parts}) != 1:
        return None
    return Money(sum(part.amount for part in parts), parts[0].currency)


def fee_from(commission: object, currency: object) -> Money | None:
    """Binance's fee from a ``commission`` in the order's ``currency``, if both are sound."""
    if commission is None or not isinstance(currency, str):
        return None
    try:
        return Money(commission, currency)
    except ValidationError:
        return None
