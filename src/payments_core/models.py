"""The framework's value objects: what goes into a provider and what comes back.

All are frozen attrs classes. :data:`payments_core.converter` turns each into plain data and
back (``converter.unstructure(order)`` / ``converter.structure(data, Order)``).
"""

from __future__ import annotations

import enum
import re
import string
import warnings
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Final
from urllib.parse import urlsplit

import attrs

from payments_core.errors import ValidationError
from payments_core.money import Money

__all__ = [
    "CAPABILITIES",
    "FORWARD",
    "LINK_KEYS",
    "NOT_FINAL",
    "CallbackReply",
    "CallbackRequest",
    "CallbackResult",
    "ErrorCategory",
    "ErrorClassification",
    "IdempotencyPattern",
    "Order",
    "OrderRequest",
    "PaymentEvent",
    "PaymentStatus",
    "ProviderInfo",
    "Refund",
    "RefundNotice",
    "RefundRequest",
    "RefundStatus",
    "StatusChange",
    "TransactionType",
]

REFERENCE_MAX: Final = 128
URL_MAX: Final = 2048
DESCRIPTION_MAX: Final = 256
REASON_MAX: Final = 256
_REFERENCE_CHARS: Final = frozenset(string.ascii_letters + string.digits + "-_.:/#@+=")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


class TransactionType(enum.StrEnum):
    """What an order asks the payer to do: ``PAY``, the one transaction type the project makes."""

    PAY = "PAY"


class PaymentStatus(enum.StrEnum):
    """Where a payment stands, in provider-neutral words.

    Three statuses are not final:

    - ``PENDING``: the order exists and the provider has seen no payment for it yet.
    - ``CONFIRMING``: the provider has seen the payment but not yet confirmed it (a crypto
      transfer waiting for its confirmations; a bank debit on its way). The money may still
      fail to arrive, so nothing may be delivered yet, but the payer can be told "we saw
      your payment".
    - ``NEEDS_REVIEW``: money arrived but not as asked (under- or over-paid, or paid after
      the order expired) and the provider waits for the merchant to accept or refuse it.

    The others are final. Of them ``PAID`` wins: a late ``CLOSED``, ``EXPIRED`` or
    ``FAILED`` never undoes it; only refunds may follow it: ``PARTIALLY_REFUNDED`` while
    some of the payment is given back, ``REFUNDED`` once all of it is. Nothing follows
    ``REFUNDED``, and a late ``PAID`` never undoes a refund.

    :meth:`can_become` is the one rule for which move is a step forward: the ledger, the
    reconciliation and the console all ask it (docs/ledger.md draws it).
    """

    PENDING = "pending"
    CONFIRMING = "confirming"
    NEEDS_REVIEW = "needs_review"
    PAID = "paid"
    CLOSED = "closed"
    EXPIRED = "expired"
    FAILED = "failed"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"

    def can_become(self, new: PaymentStatus) -> bool:
        """Whether moving from this status to ``new`` is a step forward."""
        return new in FORWARD[self]

    @property
    def is_final(self) -> bool:
        """Whether the provider has said how the payment ended (it may still be refunded)."""
        return self not in NOT_FINAL

    @property
    def is_refundable(self) -> bool:
        """Whether money was paid and not all of it given back yet."""
        return self in {PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED}


#: The statuses a payment may still leave for how it ended: the orders reconciliation asks
#: about, the console lists as waiting, and no final status ever returns to.
NOT_FINAL: Final[frozenset[PaymentStatus]] = frozenset(
    {PaymentStatus.PENDING, PaymentStatus.CONFIRMING, PaymentStatus.NEEDS_REVIEW}
)

_REFUNDS: Final = frozenset({PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED})

#: Every step forward, from each status to the statuses it may become: the one rule that
#: :meth:`PaymentStatus.can_become` answers from, and that docs/diagrams/payment-status.dot
#: draws (a test keeps the two equal). A status not yet final may skip the steps between
#: (a "paid" notice may be the first the ledger hears); refunds are reachable from every
#: status not final because the provider's answer to a query may be the first news of a
#: payment that was made, then refunded.
FORWARD: Final[Mapping[PaymentStatus, frozenset[PaymentStatus]]] = {
    PaymentStatus.PENDING: frozenset(PaymentStatus) - {PaymentStatus.PENDING},
    # Seen money cannot expire or be closed by the merchant: it ends paid, failed (never
    # confirmed), or needing a review once its confirmed amount differs from the price.
    PaymentStatus.CONFIRMING: _REFUNDS
    | {PaymentStatus.NEEDS_REVIEW, PaymentStatus.PAID, PaymentStatus.FAILED},
    # The merchant accepts (paid) or refuses (failed); it never goes back to confirming.
    PaymentStatus.NEEDS_REVIEW: _REFUNDS | {PaymentStatus.PAID, PaymentStatus.FAILED},
    PaymentStatus.PAID: _REFUNDS,
    PaymentStatus.PARTIALLY_REFUNDED: frozenset({PaymentStatus.REFUNDED}),
    PaymentStatus.CLOSED: frozenset({PaymentStatus.PAID}),
    PaymentStatus.EXPIRED: frozenset({PaymentStatus.PAID}),
    PaymentStatus.FAILED: frozenset({PaymentStatus.PAID}),
    PaymentStatus.REFUNDED: frozenset(),
}


def _check_reference(value: object, field: str = "reference") -> str:
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, not {type(value).__name__}")
    if not 1 <= len(value) <= REFERENCE_MAX:
        raise ValidationError(field, f"must be 1 to {REFERENCE_MAX} characters, got {len(value)}")
    bad = sorted(set(value) - _REFERENCE_CHARS)
    if bad:
        raise ValidationError(
            field, f"holds characters outside letters, digits and -_.:/#@+=: {''.join(bad)!r}"
        )
    return value


def check_url(value: object, field: str) -> str:
    """Validate an absolute ``http``/``https`` URL; raise ``ValidationError`` on ``field``."""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, not {type(value).__name__}")
    if len(value) > URL_MAX:
        raise ValidationError(field, f"must be at most {URL_MAX} characters")
    if _CONTROL.search(value) or " " in value:
        raise ValidationError(field, "must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValidationError(field, f"is not a valid URL ({exc})") from None
    if parts.scheme not in {"http", "https"}:
        raise ValidationError(field, "must be an absolute http or https URL")
    if not parts.hostname:
        raise ValidationError(field, "must name a host")
    del port
    return value


def _check_text(value: object, field: str, maximum: int) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, not {type(value).__name__}")
    if len(value) > maximum:
        raise ValidationError(field, f"must be at most {maximum} characters, got {len(value)}")
    if _CONTROL.search(value):
        raise ValidationError(field, "must not contain control characters")
    return value


def _check_aware(value: object, field: str) -> None:
    if value is None:
        return
    if not isinstance(value, datetime):
        raise ValidationError(field, f"must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(field, "must be timezone-aware")


@attrs.frozen(kw_only=True)
class OrderRequest:
    """What the application asks a provider to create: a ``PAY`` order.

    Attributes:
        reference: The caller's own id for what is being paid (LeadsCalendar's booking id).
            One reference is one order: asking twice for it (after a crash, a timeout, a
            retry, from a second instance) never makes a second one, by the provider's
            :class:`IdempotencyPattern`.
        price: What the payer is charged, in a fiat currency (``Money("1.00", "USD")``) or a
            crypto asset. Must be more than zero.
        callback_url: Where the provider posts the payment confirmation.
        transaction_type: Always ``PAY`` for now.
        description: Shown to the payer on the checkout page.
        return_url: Where the payer's browser goes after paying.
        cancel_url: Where the payer's browser goes after giving up.
        expires_at: When the order stops accepting payment (timezone-aware).
    """

    reference: str = attrs.field()
    price: Money = attrs.field()
    callback_url: str = attrs.field()
    transaction_type: TransactionType = attrs.field(default=TransactionType.PAY)
    description: str = attrs.field(default="")
    return_url: str | None = attrs.field(default=None)
    cancel_url: str | None = attrs.field(default=None)
    expires_at: datetime | None = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        _check_reference(self.reference)
        if not isinstance(self.price, Money):
            raise ValidationError("price", f"must be Money, not {type(self.price).__name__}")
        if self.price.is_zero:
            raise ValidationError("price.amount", "must be more than zero for a charge")
        check_url(self.callback_url, "callback_url")
        try:
            TransactionType(self.transaction_type)
        except ValueError:
            raise ValidationError(
                "transaction_type", f"must be one of {[t.value for t in TransactionType]}"
            ) from None
        _check_text(self.description, "description", DESCRIPTION_MAX)
        for field in ("return_url", "cancel_url"):
            value = getattr(self, field)
            if value is not None:
                check_url(value, field)
        _check_aware(self.expires_at, "expires_at")

    @property
    def fiat(self) -> str:
        """The pricing currency code (the ``fiat`` of a ``PAY`` order)."""
        return self.price.currency


#: The well-known keys of :attr:`Order.links`; a provider may add keys of its own.
LINK_KEYS: Final[Mapping[str, str]] = {
    "qr_image": "an image of a QR code the payer scans",
    "qr_data": "the text a QR code encodes, for the application to draw its own",
    "app": "a link that opens the provider's app on the payment",
    "web": "a link that opens the app where installed, else the payment in a browser",
}


class _ReadOnlyLinks(Mapping[str, str]):
    """An order's links: a mapping that cannot be changed (and, unlike a mapping proxy, can be
    pickled, so an order crosses to another process)."""

    __slots__ = ("_links",)

    def __init__(self, links: Mapping[str, str]) -> None:
        self._links = dict(links)

    def __getitem__(self, name: str) -> str:
        return self._links[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._links)

    def __len__(self) -> int:
        return len(self._links)

    def __hash__(self) -> int:
        return hash(frozenset(self._links.items()))

    def __repr__(self) -> str:
        return repr(self._links)


def _read_only_links(value: Mapping[str, str]) -> Mapping[str, str]:
    """``value`` checked (names and links are text) and made read-only."""
    if not isinstance(value, Mapping):
        raise ValidationError("links", f"must be a mapping, not {type(value).__name__}")
    for name, link in value.items():
        if not isinstance(name, str) or not name:
            raise ValidationError("links", f"names must be non-empty strings, not {name!r}")
        if not isinstance(link, str):
            raise ValidationError(f"links.{name}", f"must be a string, not {type(link).__name__}")
    return value if isinstance(value, _ReadOnlyLinks) else _ReadOnlyLinks(value)


def _renamed(old: str, new: str) -> None:
    warnings.warn(
        f"{old} is deprecated and will be removed in the next release; use {new}",
        DeprecationWarning,
        stacklevel=3,
    )


def _link_alias(old: str, key: str) -> property:
    """A deprecated read-only attribute ``old`` of an :class:`Order`: its ``links[key]``."""

    def read(order: Order) -> str | None:
        _renamed(f"Order.{old}", f'Order.links.get("{key}")')
        return order.links.get(key)

    return property(read, doc=f'Deprecated: ``links.get("{key}")``.')


@attrs.frozen(kw_only=True)
class Order:
    """An order as the provider holds it.

    Attributes:
        provider: The provider's registered name (``binance``).
        reference: The caller's reference the order was created for.
        provider_order_id: The provider's id for the order (Binance ``prepayId``). Always a
            string: such ids exceed 2**53 and must not pass through a float.
        provider_reference: The reference under which the provider knows this order when it
            differs from ``reference`` (Binance ``merchantTradeNo``, derived from the
            reference); ``None`` when the provider knows the order by ``reference`` itself or
            only by ``provider_order_id``.
        status: Where the payment stands.
        amount: The price as ordered (``1.00 USD``).
        settlement: What the payer is asked to pay in the provider's own currency, when the
            provider converts the price and says so at creation (Binance: ``1.00 USDT`` for
            ``1.00 USD``). A callback's amount is checked against it. ``None`` when the
            provider does not say, or the payer picks the currency when paying.
        checkout_url: A page where the payer can pay.
        links: Other ways to pay, by name: the well-known names are ``qr_image``, ``qr_data``,
            ``app`` and ``web`` (see :data:`LINK_KEYS`); a provider may add its own. Read-only.
        expires_at: When the order stops accepting payment.
        transaction_id: The provider's payment transaction id, once paid.
        refunded: How much of ``amount`` has been given back (in its currency), when known:
            the ledger's total of succeeded refunds. ``None`` when nothing is known of refunds.
        paid: What the payer actually paid, in whichever currency, once the provider has said
            (:attr:`PaymentEvent.paid`); ``None`` until then or when it never says.
        fee: What the provider kept as its fee, once it has said; ``None`` otherwise.
    """

    provider: str
    reference: str
    provider_order_id: str
    status: PaymentStatus
    amount: Money
    provider_reference: str | None = None
    settlement: Money | None = None
    checkout_url: str | None = None
    links: Mapping[str, str] = attrs.field(factory=dict, converter=_read_only_links)
    expires_at: datetime | None = None
    transaction_id: str | None = None
    refunded: Money | None = None
    paid: Money | None = None
    fee: Money | None = None

    # Deprecated aliases of the names before provider-neutral fields: removed next release.

    @property
    def merchant_order_id(self) -> str:
        """Deprecated: :attr:`provider_reference` (or :attr:`reference` when that is unset)."""
        _renamed("Order.merchant_order_id", "Order.provider_reference")
        return self.reference if self.provider_reference is None else self.provider_reference

    qr_code_url = _link_alias("qr_code_url", "qr_image")
    qr_content = _link_alias("qr_content", "qr_data")
    deep_link = _link_alias("deep_link", "app")
    universal_url = _link_alias("universal_url", "web")


@attrs.frozen(kw_only=True)
class PaymentEvent:
    """What one verified callback (or a reconciliation query) says happened to an order.

    Attributes:
        provider: The provider's registered name.
        event_id: Stable id of this event: a redelivery of the same callback has the same id, so
            the ledger can apply it once.
        status: The status the order moved to.
        provider_order_id: The provider's order id: the ledger finds the order by it.
        provider_reference: The order's :attr:`Order.provider_reference`, when the provider
            names it: the ledger finds the order by it only when no order has
            ``provider_order_id``, and flags the event when it names another order.
        amount: The amount the provider says was paid or closed, in the price's or the
            settlement's currency, when it says. The ledger checks it against the order.
        occurred_at: When the provider says it happened.
        transaction_id: The provider's payment transaction id.
        paid: What the payer actually paid, in whichever currency (a coin picked when paying),
            when the provider says: recorded on the order, never checked against the price.
        fee: What the provider kept as its fee, when it says: recorded on the order.
        refund: For a refund notification, which refund it is about and how it ended; then
            ``status`` is what the provider believes the order became, and the ledger decides
            the status from its own refund totals instead.
    """

    provider: str
    event_id: str
    status: PaymentStatus
    provider_order_id: str
    provider_reference: str | None = None
    amount: Money | None = None
    occurred_at: datetime | None = None
    transaction_id: str | None = None
    paid: Money | None = None
    fee: Money | None = None
    refund: RefundNotice | None = None

    @property
    def merchant_order_id(self) -> str | None:
        """Deprecated: :attr:`provider_reference`."""
        _renamed("PaymentEvent.merchant_order_id", "PaymentEvent.provider_reference")
        return self.provider_reference


class RefundStatus(enum.StrEnum):
    """Where one refund stands.

    ``PENDING``: the provider accepted it and has not said it is done. ``SUCCEEDED`` and
    ``FAILED`` are final; only a succeeded refund counts towards the order's refunded total.
    """

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@attrs.frozen(kw_only=True)
class RefundRequest:
    """What the application asks a provider to give back of a paid order.

    Attributes:
        reference: The reference the order was created for (the booking id).
        refund_reference: The caller's own id for this refund. It makes the refund idempotent:
            asking again with the same one (after a crash, a timeout, a retry) returns the same
            refund and never makes a second. A second, different refund of the same order
            needs another one.
        amount: How much to give back, in the order's price currency: the whole price for a
            full refund, less for a partial one. Must be more than zero.
        reason: Why, in words the provider may show the payer (at most 256 characters).
        callback_url: Where the provider posts the refund's notification, when it takes one
            per refund; otherwise the provider's configured URL receives it.
    """

    reference: str = attrs.field()
    refund_reference: str = attrs.field()
    amount: Money = attrs.field()
    reason: str = attrs.field(default="")
    callback_url: str | None = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        _check_reference(self.reference)
        _check_reference(self.refund_reference, "refund_reference")
        if not isinstance(self.amount, Money):
            raise ValidationError("amount", f"must be Money, not {type(self.amount).__name__}")
        if self.amount.is_zero:
            raise ValidationError("amount.amount", "must be more than zero for a refund")
        _check_text(self.reason, "reason", REASON_MAX)
        if self.callback_url is not None:
            check_url(self.callback_url, "callback_url")


@attrs.frozen(kw_only=True)
class Refund:
    """A refund as the provider (and the ledger) holds it.

    Attributes:
        provider: The provider's registered name.
        reference: The reference of the refunded order.
        refund_reference: The caller's id for the refund.
        provider_refund_id: The provider's id for the refund (Binance ``refundRequestId``);
            ``None`` only in a ledger's reservation while the provider has not answered, and
            its id could not be known before (the ``refund_id`` hook).
        provider_order_id: The provider's id of the refunded order.
        amount: What is given back, in the order's price currency.
        status: Where the refund stands.
        settlement: What the provider moves back in its own currency, when that is not the
            price's (Binance: USDT for a USD price).
        reason: The reason given.
    """

    provider: str
    reference: str
    refund_reference: str
    provider_refund_id: str | None
    provider_order_id: str
    amount: Money
    status: RefundStatus
    settlement: Money | None = None
    reason: str = ""


@attrs.frozen(kw_only=True)
class RefundNotice:
    """What a refund callback says about one refund.

    The ledger finds the refund by ``refund_reference`` when the notice carries it, else by
    ``provider_refund_id``: a notice that arrives before the refund's own answer still finds
    its refund when either the provider echoes the caller's refund reference, or its refund
    id was known before the refund was sent (see the ``refund_id`` hook).

    Attributes:
        provider_refund_id: The provider's id of the refund (as :attr:`Refund.provider_refund_id`).
        status: ``SUCCEEDED`` or ``FAILED`` (a notice of a pending refund is not sent).
        amount: The amount the provider says it gave back, in whichever currency it states.
        refund_reference: The caller's refund reference (:attr:`RefundRequest.refund_reference`)
            when the provider echoes it in the notice (Stripe keeps it in the refund's
            metadata); ``None`` when the notice does not carry it.
    """

    provider_refund_id: str
    status: RefundStatus
    amount: Money | None = None
    refund_reference: str | None = None


def _lower_headers(headers: Mapping[str, str]) -> Mapping[str, str]:
    return {str(k).lower(): str(v) for k, v in dict(headers).items()}


@attrs.frozen
class CallbackRequest:
    """An incoming callback exactly as it arrived.

    Attributes:
        headers: Header names in lower case mapped to their values.
        body: The raw body bytes: verification runs over these, never over a re-serialisation.
    """

    headers: Mapping[str, str] = attrs.field(converter=_lower_headers)
    body: bytes = attrs.field(validator=attrs.validators.instance_of(bytes))


@attrs.frozen
class CallbackReply:
    """The HTTP answer to send back to the provider for a callback."""

    status_code: int
    body: bytes
    content_type: str = "application/json"


@attrs.frozen
class CallbackResult:
    """A verified callback: what it means, and how to acknowledge it.

    Attributes:
        event: The payment event, or ``None`` for a verified callback that changes no order
            (a kind the application does not track).
        reply: The acknowledgement to send once the event is safely recorded.
    """

    event: PaymentEvent | None
    reply: CallbackReply


class ErrorCategory(enum.StrEnum):
    """What kind of failure happened, which decides what to do next."""

    INVALID_REQUEST = "invalid_request"  # 400: fix the request, then send it again
    AUTHENTICATION = "authentication"  # 401: check the credentials
    PERMISSION = "permission"  # 403: the account may not do this
    NOT_FOUND = "not_found"  # 404: check ids and endpoint
    RATE_LIMITED = "rate_limited"  # 429: back off exponentially
    PROVIDER_UNAVAILABLE = "provider_unavailable"  # 5xx: retry after a delay
    NETWORK = "network"  # never reached the provider: safe to send again
    OUTCOME_UNKNOWN = "outcome_unknown"  # may have been applied: query before any new create
    DUPLICATE_ORDER = "duplicate_order"  # the order exists already: query it
    SIGNATURE = "signature"  # the provider rejected our signature
    CLOCK_SKEW = "clock_skew"  # our timestamp fell outside the provider's window
    INVALID_STATE = "invalid_state"  # the order's state does not allow this
    UNKNOWN = "unknown"


@attrs.frozen(kw_only=True)
class ErrorClassification:
    """A judgement of one failure, made by ``classify_error``.

    Attributes:
        category: The kind of failure.
        retryable: Whether sending the same operation again may succeed.
        retry_after: Seconds to wait at least before trying again, when known.
        action: What an operator or developer should do (the error table's recommendation).
        user_message: A sentence safe to show the payer: no ids, no internals.
        status_code: The HTTP status involved, if any.
        provider_code: The provider's own error code, if any.
    """

    category: ErrorCategory
    retryable: bool
    action: str
    user_message: str
    retry_after: float | None = None
    status_code: int | None = None
    provider_code: str | None = None


class IdempotencyPattern(enum.StrEnum):
    """How a provider keeps one caller's reference from becoming two orders.

    A create may be sent twice: a retry after a lost answer, a second application instance
    handling the same checkout. Each pattern is a different promise about what the provider
    does then, and the core plays its part for each (see docs/hooks.md):

    * ``DERIVED_ID``: the provider's order id (or the merchant id it is created under) is
      derived from the reference, the same every time; the provider refuses a second create
      with that id (classified ``duplicate_order``) and ``query_order`` finds the first one.
      Binance Pay and ExamplePay.
    * ``IDEMPOTENCY_KEY``: every create carries a key derived from the reference (an
      ``Idempotency-Key`` header), and the provider answers a repeated key with the order it
      made the first time. Stripe.
    * ``FIND_OR_CREATE``: the provider assigns its ids and knows no key; the reference is
      stored with the order (metadata) and ``query_order`` searches for it. The core searches
      before every create and, with a ledger, lets only one instance at a time create a given
      reference (a claim in the ledger). Coinbase Commerce, BTCPay, NOWPayments.
    """

    DERIVED_ID = "derived_id"
    IDEMPOTENCY_KEY = "idempotency_key"
    FIND_OR_CREATE = "find_or_create"


#: Every capability a provider can declare in :attr:`ProviderInfo.capabilities`: what one
#: that does it all declares.
CAPABILITIES: Final = frozenset(
    {
        "create_order",
        "query_order",
        "close_order",
        "refund_order",
        "query_refund",
        "callbacks",
        "sandbox",
    }
)


@attrs.frozen(kw_only=True)
class ProviderInfo:
    """A provider's description of itself.

    Attributes:
        name: The name it is registered under (``binance``).
        display_name: A human name (``Binance Pay``).
        currencies: Pricing currencies it accepts.
        capabilities: Operations it supports, some of :data:`CAPABILITIES` (``create_order``,
            ``query_order``, ``close_order``, ``callbacks``, ``sandbox``...).
        settings: The configuration keys it reads, with the environment variable for each.
        idempotency: How it keeps a reference from becoming two orders (default
            ``DERIVED_ID``, what every provider before this field did).
    """

    name: str
    display_name: str
    currencies: frozenset[str] = frozenset()
    capabilities: frozenset[str] = frozenset()
    settings: Mapping[str, str] = attrs.field(factory=dict)
    idempotency: IdempotencyPattern = IdempotencyPattern.DERIVED_ID


@attrs.frozen(kw_only=True)
class StatusChange:
    """A committed change of an order's status, as the application hook receives it.

    Attributes:
        provider: The provider's name.
        reference: The caller's reference.
        old_status: The status before.
        new_status: The status now.
        event_id: The event that caused it (a callback or a reconciliation query).
        changed_at: When the ledger recorded it.
    """

    provider: str
    reference: str
    old_status: PaymentStatus
    new_status: PaymentStatus
    event_id: str
    changed_at: datetime
