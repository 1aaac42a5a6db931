"""Hypothesis strategies for payment requests, money and callbacks.

Provider authors use them to fuzz their own code; the contract suite
(:mod:`payments_core.testing.contract`) uses them against every provider.

Valid values:

* :func:`currencies` — registered currency codes.
* :func:`money` — :class:`~payments_core.Money` within bounds, at the currency's precision.
* :func:`prices` — money that may be charged (more than zero).
* :func:`references` — caller references as :class:`~payments_core.OrderRequest` accepts them.
* :func:`urls` — absolute ``http``/``https`` URLs, with ports, paths and queries.
* :func:`order_requests` — complete, valid :class:`~payments_core.OrderRequest` objects.

Invalid values, each paired with the field the error must name:

* :func:`invalid_order_request_kwargs` — keyword arguments for ``OrderRequest`` with exactly
  one bad field.
* :func:`invalid_money_kwargs` — keyword arguments for ``Money`` with exactly one bad field.

Callbacks:

* :func:`callback_mutations` — functions that tamper with a genuine signed callback so that a
  provider must refuse it: flip a body byte, drop or blank a header, re-serialise the JSON
  body, shift the timestamp, change the key named in the key header, corrupt the signature.
* :func:`callback_requests` — arbitrary headers and bodies, shaped like a provider's callbacks.

Example::

    from hypothesis import given
    from payments_core import OrderRequest
    from payments_core.testing.strategies import order_requests

    @given(order_requests(currencies=["USD"]))
    def test_builds_a_body(request: OrderRequest) -> None:
        assert request.price.currency == "USD"
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Final

import attrs
from hypothesis import strategies as st

from payments_core.models import (
    _REFERENCE_CHARS,
    DESCRIPTION_MAX,
    REFERENCE_MAX,
    URL_MAX,
    CallbackRequest,
    OrderRequest,
    RefundRequest,
)
from payments_core.money import CURRENCIES, Money

__all__ = [
    "CallbackFormat",
    "CallbackMutation",
    "InvalidInput",
    "callback_mutations",
    "callback_requests",
    "currencies",
    "invalid_money_kwargs",
    "invalid_order_request_kwargs",
    "money",
    "order_requests",
    "prices",
    "references",
    "refund_requests",
    "urls",
]

_REFERENCE_ALPHABET: Final = "".join(sorted(_REFERENCE_CHARS))
_DEFAULT_MAX_AMOUNT: Final = Decimal(1_000_000)


# -- valid values ---------------------------------------------------------------------------


def currencies(
    codes: Collection[str] | None = None, *, crypto: bool | None = None
) -> st.SearchStrategy[str]:
    """Registered currency codes.

    :param codes: Draw from these only (each must be registered); default: every registered one.
    :param crypto: ``True`` for crypto assets only, ``False`` for fiat only, ``None`` for both.
    """
    pool = sorted(
        code
        for code, entry in CURRENCIES.items()
        if (codes is None or code in codes) and (crypto is None or entry.crypto is crypto)
    )
    if not pool:
        raise ValueError(f"no registered currency matches codes={codes!r}, crypto={crypto!r}")
    return st.sampled_from(pool)


@st.composite
def money(
    draw: st.DrawFn,
    currency: str | st.SearchStrategy[str] | None = None,
    *,
    min_value: Decimal | int | str = 0,
    max_value: Decimal | int | str = _DEFAULT_MAX_AMOUNT,
) -> Money:
    """:class:`~payments_core.Money` between ``min_value`` and ``max_value``, inclusive.

    Amounts are whole multiples of the currency's smallest unit (``0.01`` for USD, ``1`` for
    JPY), so every drawn value is valid as it stands. Amounts are built from ``Decimal``, never
    from ``float``.

    :param currency: A code, a strategy of codes, or ``None`` for any registered currency.
    :param min_value: Smallest amount (rounded up to the currency's precision).
    :param max_value: Largest amount (rounded down to the currency's precision).
    """
    code = draw(_currency_strategy(currency))
    low = max(Decimal(min_value), Decimal(0))
    return Money(draw(st.decimals(low, max_value, places=CURRENCIES[code].minor_units)), code)


def prices(
    currency: str | st.SearchStrategy[str] | None = None,
    *,
    max_value: Decimal | int | str = _DEFAULT_MAX_AMOUNT,
) -> st.SearchStrategy[Money]:
    """Money that can be charged: at least the currency's smallest unit, at most ``max_value``."""
    return _currency_strategy(currency).flatmap(
        lambda code: money(code, min_value=CURRENCIES[code].quantum, max_value=max_value)
    )


def references(*, max_size: int = REFERENCE_MAX) -> st.SearchStrategy[str]:
    """Caller references: 1 to ``max_size`` letters, digits and ``-_.:/#@+=``."""
    return st.text(alphabet=_REFERENCE_ALPHABET, min_size=1, max_size=min(max_size, REFERENCE_MAX))


_LABEL: Final = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
_PATH_SEGMENT: Final = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%!$&'()*+,;=:@",
    max_size=12,
)


@st.composite
def urls(draw: st.DrawFn, *, schemes: Collection[str] = ("http", "https")) -> str:
    """Absolute URLs as a callback, return or cancel URL may be: host, port, path, query."""
    scheme = draw(st.sampled_from(sorted(schemes)))
    host = draw(
        st.one_of(
            st.lists(_LABEL, min_size=1, max_size=4).map(lambda labels: ".".join([*labels, "com"])),
            st.sampled_from(["localhost", "127.0.0.1", "[::1]"]),
            st.ip_addresses(v=4).map(str),
        )
    )
    port = draw(st.just("") | st.integers(min_value=1, max_value=65535).map(":{}".format))
    path = "/".join(draw(st.lists(_PATH_SEGMENT, max_size=5)))
    query = draw(
        st.just("")
        | st.dictionaries(_LABEL, _LABEL, min_size=1, max_size=3).map(
            lambda pairs: "?" + "&".join(f"{k}={v}" for k, v in sorted(pairs.items()))
        )
    )
    return f"{scheme}://{host}{port}/{path}{query}"[:URL_MAX]


_TEXT: Final = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=DESCRIPTION_MAX
)
_OFFSETS: Final = st.integers(min_value=-23 * 60, max_value=23 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
# Relative to the moment of drawing, so an expiry is always ahead of the provider's clock.
_FUTURE_DATETIMES: Final = st.builds(
    lambda seconds, tz: (datetime.now(UTC) + timedelta(seconds=seconds)).astimezone(tz),
    st.integers(min_value=600, max_value=30 * 24 * 3600),
    _OFFSETS,
)


# order_requests' keyword arguments shadow these two strategy functions.
_all_currencies = currencies
_all_references = references


def order_requests(
    *,
    currencies: Collection[str] | None = None,
    references: st.SearchStrategy[str] | None = None,
    max_amount: Decimal | int | str = _DEFAULT_MAX_AMOUNT,
) -> st.SearchStrategy[OrderRequest]:
    """Valid :class:`~payments_core.OrderRequest` objects.

    :param currencies: Price in these currencies only (e.g. what a provider's
        :class:`~payments_core.ProviderInfo` lists); default: any registered one.
    :param references: A strategy for the reference; default :func:`references`.
    :param max_amount: The largest price.
    """
    codes = _all_currencies(currencies)
    return st.builds(
        OrderRequest,
        reference=references if references is not None else _all_references(),
        price=prices(codes, max_value=max_amount),
        callback_url=urls(),
        description=_TEXT,
        return_url=st.none() | urls(),
        cancel_url=st.none() | urls(),
        expires_at=st.none() | _FUTURE_DATETIMES,
    )


def refund_requests(
    price: Money, *, reference: str | None = None
) -> st.SearchStrategy[RefundRequest]:
    """Valid :class:`~payments_core.RefundRequest` objects for an order priced ``price``.

    Amounts run from the currency's smallest unit to the whole price, in its currency.

    :param price: The refunded order's price.
    :param reference: The order's reference; default: any drawn by :func:`references`.
    """
    return st.builds(
        RefundRequest,
        reference=st.just(reference) if reference is not None else _all_references(),
        refund_reference=_all_references(),
        amount=money(price.currency, min_value=price.currency_info.quantum, max_value=price.amount),
        reason=_TEXT,
        callback_url=st.none() | urls(),
    )


def _currency_strategy(currency: str | st.SearchStrategy[str] | None) -> st.SearchStrategy[str]:
    if currency is None:
        return currencies()
    if isinstance(currency, str):
        return st.just(currency)
    return currency


# -- invalid values ---------------------------------------------------------------------------


@attrs.frozen
class InvalidInput:
    """Keyword arguments that must be refused, and the field the refusal must name.

    Attributes:
        kwargs: The arguments, with exactly one bad value.
        field: The field a :class:`~payments_core.ValidationError` must name: equal to it, or
            nested under it (``price`` admits ``price.amount``).
    """

    kwargs: Mapping[str, Any]
    field: str

    def names_field(self, field: str) -> bool:
        """Whether an error naming ``field`` names the expected field (or one nested in it)."""
        return field == self.field or field.startswith(f"{self.field}.")


_NOT_TEXT: Final = st.one_of(
    st.integers(), st.none(), st.binary(max_size=8), st.lists(st.integers(), max_size=2)
)
_CONTROL_CHAR: Final = st.characters(min_codepoint=0, max_codepoint=31) | st.just("\x7f")


def _with_inserted(base: st.SearchStrategy[str], insert: st.SearchStrategy[str]) -> Any:
    return st.tuples(base, insert, st.integers(min_value=0)).map(
        lambda t: t[0][: t[2] % (len(t[0]) + 1)] + t[1] + t[0][t[2] % (len(t[0]) + 1) :]
    )


_BAD_REFERENCES: Final = st.one_of(
    st.just(""),
    st.text(alphabet=_REFERENCE_ALPHABET, min_size=REFERENCE_MAX + 1, max_size=REFERENCE_MAX + 40),
    _with_inserted(
        references(max_size=20),
        st.characters().filter(lambda c: c not in _REFERENCE_CHARS),
    ),
    _NOT_TEXT,
)
_BAD_URLS: Final = st.one_of(
    st.sampled_from(
        [
            "",
            "/relative/path",
            "example.com/cb",
            "ftp://example.com/cb",
            "javascript:alert(1)",
            "http://",
            "https:///no-host",
            "http://example.com:99999/cb",
            "http://[::1/cb",
            "http://exa mple.com/cb",
        ]
    ),
    _with_inserted(urls(), _CONTROL_CHAR | st.just(" ")),
    urls().map(lambda u: u + "/" + "a" * (URL_MAX + 1 - len(u))),
    _NOT_TEXT,
)
_BAD_PRICES: Final = st.one_of(
    st.floats(allow_nan=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
    st.none(),
    currencies().map(lambda code: Money(0, code)),
)
_BAD_DESCRIPTIONS: Final = st.one_of(
    st.text(min_size=DESCRIPTION_MAX + 1, max_size=DESCRIPTION_MAX + 20),
    _with_inserted(st.text(max_size=20), _CONTROL_CHAR),
    _NOT_TEXT.filter(lambda v: v is not None),
)
_BAD_EXPIRIES: Final = st.one_of(
    st.datetimes(),  # naive
    st.text(max_size=10),
    st.integers(),
    st.dates(),
)
_BAD_TRANSACTION_TYPES: Final = st.one_of(
    st.text(max_size=10).filter(lambda s: s != "PAY"), st.integers(), st.none()
)

_BAD_ORDER_FIELDS: Final[Mapping[str, st.SearchStrategy[Any]]] = {
    "reference": _BAD_REFERENCES,
    "price": _BAD_PRICES,
    "callback_url": _BAD_URLS,
    "transaction_type": _BAD_TRANSACTION_TYPES,
    "description": _BAD_DESCRIPTIONS,
    "return_url": _BAD_URLS.filter(lambda v: v is not None),
    "cancel_url": _BAD_URLS.filter(lambda v: v is not None),
    "expires_at": _BAD_EXPIRIES,
}


@st.composite
def invalid_order_request_kwargs(
    draw: st.DrawFn, fields: Collection[str] | None = None
) -> InvalidInput:
    """Arguments for ``OrderRequest(**kwargs)`` that are valid except for one field.

    ``OrderRequest(**result.kwargs)`` must raise :class:`~payments_core.ValidationError` with
    ``result.names_field(error.field)``; anything else (a valid object, another exception) is
    a bug.

    :param fields: Break only these fields; default: any of them.
    """
    names = sorted(fields if fields is not None else _BAD_ORDER_FIELDS)
    field = draw(st.sampled_from(names))
    kwargs: dict[str, Any] = {
        "reference": draw(_all_references()),
        "price": draw(prices()),
        "callback_url": draw(urls()),
    }
    kwargs[field] = draw(_BAD_ORDER_FIELDS[field])
    return InvalidInput(kwargs, field)


_BAD_AMOUNTS: Final = st.one_of(
    st.floats(),
    st.booleans(),
    st.sampled_from(["NaN", "-inf", "Infinity", "1e3", "1_000", " 1.00", "1,00", "", "0x10"]),
    st.decimals(allow_nan=True, allow_infinity=True).filter(lambda d: not d.is_finite()),
    st.integers(max_value=-1),
    st.integers(min_value=10**15),
    st.decimals(min_value=Decimal("0.001"), max_value=Decimal("1000"), places=3).filter(
        lambda d: d != d.quantize(Decimal("0.01"))
    ),
    st.none(),
)
_BAD_CURRENCIES: Final = st.one_of(
    st.sampled_from(["usd", "US", "XXX", "", "DOLLAR", " USD"]),
    st.text(max_size=5).filter(lambda s: s not in CURRENCIES),
    _NOT_TEXT,
)


@st.composite
def invalid_money_kwargs(draw: st.DrawFn) -> InvalidInput:
    """Arguments for ``Money(**kwargs)`` with a bad ``amount`` or a bad ``currency``.

    Bad amounts: floats, booleans, NaN, infinities, exponents, negatives, absurd sizes, more
    decimal places than USD allows. Bad currencies: unknown, lower-case, not a string.
    """
    if draw(st.booleans()):
        return InvalidInput({"amount": draw(_BAD_AMOUNTS), "currency": "USD"}, "amount")
    return InvalidInput({"amount": "1.00", "currency": draw(_BAD_CURRENCIES)}, "currency")


# -- callbacks --------------------------------------------------------------------------------


def _lower(name: str) -> str:
    return name.lower()


def _lower_optional(name: str | None) -> str | None:
    return None if name is None else name.lower()


def _lower_all(names: Collection[str]) -> frozenset[str]:
    return frozenset(name.lower() for name in names)


@attrs.frozen
class CallbackFormat:
    """Where a provider's callbacks keep their proofs, so they can be tampered with.

    It assumes nothing about how the signature is made. An HMAC over the raw body with no
    other header (Coinbase Commerce) is ``CallbackFormat(signature_header=...,
    required_headers={...})``; a signed timestamp adds ``timestamp_header``; a header that
    names which key signed (a certificate serial, a key id, a key version) adds
    ``key_header``. The tampering strategies tamper with what is described, and only that.

    Attributes:
        signature_header: The header holding the signature.
        required_headers: Every header the provider must refuse a callback without (the
            signature header included). Lower case.
        timestamp_header: The signed timestamp header, if the provider sends one.
        key_header: The header naming the key that signed (a certificate serial, a key id),
            if the provider sends one.
        serial_header: Deprecated name of ``key_header``, kept for one release: passing it
            sets ``key_header`` and warns.
    """

    signature_header: str = attrs.field(converter=_lower)
    required_headers: frozenset[str] = attrs.field(converter=_lower_all)
    timestamp_header: str | None = attrs.field(default=None, converter=_lower_optional)
    # Before key_header, whose default it is (keyword-only, so the positional order is kept).
    serial_header: str | None = attrs.field(
        default=None, converter=_lower_optional, kw_only=True, eq=False, repr=False
    )
    key_header: str | None = attrs.field(
        default=attrs.Factory(lambda self: self.serial_header, takes_self=True),
        converter=_lower_optional,
    )

    def __attrs_post_init__(self) -> None:
        if self.serial_header is not None:
            warnings.warn(
                "CallbackFormat(serial_header=...) is deprecated: pass key_header=... instead",
                DeprecationWarning,
                stacklevel=3,
            )


@attrs.frozen
class CallbackMutation:
    """One way of tampering with a callback; call it on a genuine one to get the forgery.

    Attributes:
        description: What it does, as hypothesis prints it in a falsifying example.
        apply: The function from genuine headers and body to tampered ones.
    """

    description: str
    apply: Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]] = attrs.field(repr=False)

    def __call__(self, callback: CallbackRequest) -> CallbackRequest:
        """Return the tampered copy of ``callback`` (the original is left as it was)."""
        headers, body = self.apply(dict(callback.headers), callback.body)
        return CallbackRequest(headers, body)

    def __repr__(self) -> str:
        return f"CallbackMutation({self.description!r})"


def _flip_body_byte(position: int, mask: int) -> CallbackMutation:
    def apply(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        if not body:
            return headers, b"\x00"
        index = position % len(body)
        return headers, body[:index] + bytes([body[index] ^ mask]) + body[index + 1 :]

    return CallbackMutation(f"flip bits {mask:#04x} of body byte {position} (mod length)", apply)


def _truncate_body(keep: int) -> CallbackMutation:
    def apply(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        return headers, body[: keep % max(len(body), 1)]

    return CallbackMutation(f"truncate the body to {keep} bytes (mod length)", apply)


def _append_to_body(extra: bytes) -> CallbackMutation:
    return CallbackMutation(
        f"append {extra!r} to the body", lambda headers, body: (headers, body + extra)
    )


_RESERIALISE_STYLES: Final[Mapping[str, Mapping[str, Any]]] = {
    "indented": {"indent": 2},
    "spaced": {"separators": (", ", ": ")},
    "compact": {"separators": (",", ":")},
    "sorted keys": {"sort_keys": True, "separators": (",", ":")},
    "ASCII-escaped": {"ensure_ascii": True},
}


def _reserialise_body(style: str) -> CallbackMutation:
    def apply(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        try:
            document = json.loads(body)
        except ValueError:
            return headers, body + b" "
        again = json.dumps(document, **_RESERIALISE_STYLES[style]).encode()
        # The same value in different bytes: a trailing newline if the style changed nothing.
        return headers, again if again != body else again + b"\n"

    return CallbackMutation(f"re-serialise the JSON body ({style})", apply)


def _drop_header(name: str) -> CallbackMutation:
    def apply(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        return {k: v for k, v in headers.items() if k != name}, body

    return CallbackMutation(f"drop header {name}", apply)


def _replace_header(name: str, value: str, why: str) -> CallbackMutation:
    def apply(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        return {**headers, name: value}, body

    return CallbackMutation(f"{why}: {name}: {value!r}", apply)


def _corrupt_signature(name: str, position: int, digit: int) -> CallbackMutation:
    # A different digit changes the decoded value in hex and base64 alike; the last three
    # characters are spared because base64 padding bits there may decode to the same bytes.
    def apply(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        value = headers.get(name, "")
        if len(value) < 4:
            return {**headers, name: value + "0"}, body
        index = position % (len(value) - 3)
        replacement = str(digit) if str(digit) != value[index] else str((digit + 1) % 10)
        return {**headers, name: value[:index] + replacement + value[index + 1 :]}, body

    return CallbackMutation(f"change signature character {position} (mod length) to a digit", apply)


def _shift_timestamp(name: str, delta: int) -> CallbackMutation:
    def apply(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        value = headers.get(name, "")
        try:
            shifted = str(int(value) + delta)
        except ValueError:
            shifted = "0"
        return {**headers, name: shifted}, body

    return CallbackMutation(f"shift timestamp {name} by {delta:+d} units", apply)


def _change_key(name: str, suffix: str) -> CallbackMutation:
    def apply(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        return {**headers, name: headers.get(name, "") + suffix}, body

    return CallbackMutation(f"append {suffix!r} to the key named in {name}", apply)


def callback_mutations(callback_format: CallbackFormat) -> st.SearchStrategy[CallbackMutation]:
    """Ways to tamper with a genuine callback, every one of which the provider must refuse.

    Each drawn :class:`CallbackMutation` is called on a genuine signed
    :class:`~payments_core.CallbackRequest` and returns a forged copy: a flipped body byte, a
    truncated or extended body, the JSON body re-serialised (same data, other bytes), a
    required header dropped or blanked, the signature corrupted, the timestamp shifted or
    garbled, the key named in the key header changed. Mutations of a timestamp or key header
    are drawn only when the format names one.

    :param callback_format: Where the provider keeps signature, timestamp and key name.
    """
    fmt = callback_format
    required = sorted(fmt.required_headers | {fmt.signature_header})
    options: list[st.SearchStrategy[CallbackMutation]] = [
        st.builds(_flip_body_byte, st.integers(0, 2**16), st.integers(1, 255)),
        st.builds(_truncate_body, st.integers(0, 2**16)),
        st.builds(_append_to_body, st.binary(min_size=1, max_size=16)),
        st.builds(_reserialise_body, st.sampled_from(sorted(_RESERIALISE_STYLES))),
        st.builds(_drop_header, st.sampled_from(required)),
        st.builds(_replace_header, st.sampled_from(required), st.just(""), st.just("blank header")),
        st.builds(
            _corrupt_signature,
            st.just(fmt.signature_header),
            st.integers(0, 2**16),
            st.integers(0, 9),
        ),
    ]
    if fmt.timestamp_header is not None:
        deltas = st.integers(-(10**12), 10**12).filter(lambda d: d != 0)
        options.append(st.builds(_shift_timestamp, st.just(fmt.timestamp_header), deltas))
        options.append(
            st.builds(
                _replace_header,
                st.just(fmt.timestamp_header),
                st.sampled_from(["yesterday", "1e3", "-1", " ", "NaN", "0x10"]),
                st.just("garble timestamp"),
            )
        )
    if fmt.key_header is not None:
        suffixes = st.text(alphabet="0123456789abcdefXYZ", min_size=1, max_size=8)
        options.append(st.builds(_change_key, st.just(fmt.key_header), suffixes))
    return st.one_of(options)


_HEADER_VALUES: Final = st.text(alphabet=st.characters(codec="latin-1"), max_size=80)
_JSON_LEAVES: Final = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
_JSON_VALUES: Final = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)


def callback_requests(callback_format: CallbackFormat) -> st.SearchStrategy[CallbackRequest]:
    """Arbitrary callbacks shaped like the provider's: its header names with random values,
    other headers, and bodies that are random bytes, random JSON, or JSON with plausible keys.

    None of them carries a valid signature, so a provider must refuse every one with a
    :class:`~payments_core.CallbackError`; any other exception is a bug.
    """
    fmt = callback_format
    known = sorted(
        fmt.required_headers
        | {fmt.signature_header}
        | {h for h in (fmt.timestamp_header, fmt.key_header) if h is not None}
    )
    names = st.sampled_from(known) | st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)
    headers = st.dictionaries(names, _HEADER_VALUES, max_size=len(known) + 2)
    bodies = st.one_of(
        st.binary(max_size=256),
        _JSON_VALUES.map(lambda v: json.dumps(v).encode()),
        st.dictionaries(
            st.sampled_from(["id", "event_id", "type", "status", "order", "data", "amount"]),
            _JSON_VALUES,
        ).map(lambda v: json.dumps(v).encode()),
    )
    return st.builds(CallbackRequest, headers, bodies)
