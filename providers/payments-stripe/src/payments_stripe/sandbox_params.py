"""The Stripe sandbox's reading of requests: form bodies, parameters, paging, and refusals.

Every check here answers as Stripe does when it fails: a :class:`StripeRefusal` carrying the
HTTP status, the error ``type``, ``code`` and ``param``, and Stripe's wording.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, Final
from urllib.parse import parse_qsl

from payments_core.testing.sandbox import Answer
from payments_stripe import sandbox_objects as objects
from payments_stripe import wire

__all__ = [
    "CREATED_FILTERS",
    "EXPAND_KEY",
    "INTENT_METADATA_KEY",
    "METADATA_KEY",
    "METHOD_TYPE_KEY",
    "REFUND_FIELD",
    "SESSION_FIELD",
    "Expansion",
    "StripeRefusal",
    "check_minimum",
    "check_refund_reason",
    "check_session_texts",
    "check_unit_amount",
    "created_filter",
    "expanded",
    "expansions",
    "expires_at",
    "form",
    "found",
    "integer",
    "method_types",
    "nested",
    "no_query",
    "page_of",
    "refuse_unknown",
    "required",
    "unlisted",
]

_INTEGER: Final = re.compile(r"(0|[1-9][0-9]{0,17})")
METADATA_KEY: Final = re.compile(r"metadata\[([^\[\]]{1,40})\]")
INTENT_METADATA_KEY: Final = re.compile(r"payment_intent_data\[metadata\]\[([^\[\]]{1,40})\]")
EXPAND_KEY: Final = re.compile(r"expand\[([0-9]+)\]")
METHOD_TYPE_KEY: Final = re.compile(r"payment_method_types\[([0-9]+)\]")
_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
#: The parameters of a Checkout Session's create the sandbox knows.
SESSION_FIELD: Final = re.compile(
    r"mode|client_reference_id|success_url|cancel_url|customer_email|expires_at|locale"
    r"|line_items\[0\]\[(quantity|price_data\]\[(currency|unit_amount|product_data\]\[name))\]"
    r"|(payment_intent_data\[metadata\]|metadata)\[[^\[\]]{1,40}\]"
    r"|expand\[[0-9]+\]|payment_method_types\[[0-9]+\]"
)
#: The parameters of a refund's create the sandbox knows.
REFUND_FIELD: Final = re.compile(
    r"payment_intent|charge|amount|reason|metadata\[[^\[\]]{1,40}\]|expand\[[0-9]+\]"
)
#: The ``created`` filters of a list, each with its test of an object's ``created``.
_CREATED_TESTS: Final = {
    "created": operator.eq,
    "created[gt]": operator.gt,
    "created[gte]": operator.ge,
    "created[lt]": operator.lt,
    "created[lte]": operator.le,
}
CREATED_FILTERS: Final = tuple(_CREATED_TESTS)
#: Payment method types the hosted page takes: cards only.
_METHOD_TYPES: Final = ("card",)
_JSON: Final = {"content-type": "application/json"}


class StripeRefusal(Exception):
    """An API error the sandbox answers with."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = wire.ERROR_INVALID_REQUEST,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.code = code
        self.param = param

    def answer(self) -> Answer:
        """The error as the API answers it, with a ``Request-Id`` of its own."""
        error: dict[str, str] = {"type": self.kind, "message": str(self)}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param is not None:
            error["param"] = self.param
        headers = {
            **_JSON,
            wire.HEADER_SHOULD_RETRY.lower(): "false",
            wire.HEADER_REQUEST_ID.lower(): objects.new_id("req"),
        }
        return Answer(self.status, objects.to_json({"error": error}), headers)


def form(body: bytes) -> dict[str, str]:
    """A form body or query string; repeated ``expand[]`` become ``expand[0]``, ``expand[1]``."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise StripeRefusal(400, "The request body could not be parsed as form data.") from None
    fields: dict[str, str] = {}
    repeated = 0
    for name, value in pairs:
        if name == "expand[]":
            name, repeated = f"expand[{repeated}]", repeated + 1
        if name in fields:
            raise StripeRefusal(400, f"Received the parameter {name} twice.", param=name)
        fields[name] = value
    return fields


def refuse_unknown(names: Iterable[str]) -> None:
    """Refuse the first parameter (in sorted order) the endpoint does not know, as Stripe does."""
    unknown = sorted(names)
    if unknown:
        raise StripeRefusal(
            400,
            f"Received unknown parameter: {unknown[0]}",
            code=wire.CODE_PARAMETER_UNKNOWN,
            param=unknown[0],
        )


def unlisted(params: Mapping[str, str], filters: set[str], *, paged: bool = True) -> list[str]:
    """The parameters that are neither ``filters``, nor ``expand[]``, nor (``paged``) paging."""
    paging = {"limit", "starting_after", "ending_before"} if paged else set()
    return [
        name
        for name in params
        if name not in filters and name not in paging and not EXPAND_KEY.fullmatch(name)
    ]


def no_query(query: Mapping[str, str]) -> None:
    refuse_unknown(query)


def expansions(params: Mapping[str, str]) -> list[str]:
    """The ``expand[]`` paths asked for, in order."""
    found = sorted(
        (int(match.group(1)), value)
        for name, value in params.items()
        if (match := EXPAND_KEY.fullmatch(name))
    )
    return [value for _, value in found]


def created_filter(params: Mapping[str, str]) -> Callable[[int], bool]:
    """A test of ``created`` from ``created``, ``created[gt]``, ``[gte]``, ``[lt]``, ``[lte]``."""
    bounds = [
        (test, integer(params, name)) for name, test in _CREATED_TESTS.items() if name in params
    ]
    return lambda created: all(test(created, bound) for test, bound in bounds)


def page_of(
    noun: str, newest_first: list[dict[str, Any]], params: Mapping[str, str]
) -> tuple[list[dict[str, Any]], bool]:
    """One page of a list: after ``starting_after``, or just before ``ending_before``."""
    limit = integer(params, "limit") if "limit" in params else 10
    if not 1 <= limit <= wire.LIST_LIMIT_MAX:
        raise StripeRefusal(400, "limit must be between 1 and 100.", param="limit")
    after, before = params.get("starting_after"), params.get("ending_before")
    if after is not None and before is not None:
        raise StripeRefusal(
            400, "You may only specify one of these parameters: ending_before, starting_after."
        )
    cursor, param = (after, "starting_after") if after is not None else (before, "ending_before")
    if cursor is None:
        return newest_first[:limit], len(newest_first) > limit
    ids = [item["id"] for item in newest_first]
    if cursor not in ids:
        raise StripeRefusal(
            400, f"No such {noun}: '{cursor}'", code=wire.CODE_RESOURCE_MISSING, param=param
        )
    if after is not None:
        rest = newest_first[ids.index(cursor) + 1 :]
        return rest[:limit], len(rest) > limit
    newer = newest_first[: ids.index(cursor)]
    return newer[-limit:], len(newer) > limit


def found(obj: dict[str, Any] | None, noun: str, object_id: str, param: str) -> dict[str, Any]:
    if obj is None:
        raise StripeRefusal(
            404,
            f"No such {noun}: '{object_id}'",
            code=wire.CODE_RESOURCE_MISSING,
            param=param,
        )
    return obj


def required(fields: Mapping[str, str], name: str) -> str:
    value = fields.get(name)
    if value is None:
        raise StripeRefusal(
            400, f"Missing required param: {name}.", code=wire.CODE_PARAMETER_MISSING, param=name
        )
    return value


def integer(fields: Mapping[str, str], name: str) -> int:
    value = required(fields, name)
    if not _INTEGER.fullmatch(value):
        raise StripeRefusal(
            400,
            f"Invalid integer: {value[:40]}",
            code=wire.CODE_PARAMETER_INVALID_INTEGER,
            param=name,
        )
    return int(value)


def check_unit_amount(code: str, count: int) -> None:
    param = "line_items[0][price_data][unit_amount]"
    if count < 1:
        raise StripeRefusal(400, "The amount must be positive.", param=param)
    if count > wire.UNIT_AMOUNT_MAX:
        raise StripeRefusal(
            400,
            "Amount must be no more than 99,999,999 in the currency's smallest unit.",
            code=wire.CODE_AMOUNT_TOO_LARGE,
            param=param,
        )
    if code in wire.THREE_DECIMAL and count % 10:
        raise StripeRefusal(400, f"{code} amounts must end in 0.", param=param)
    if code in wire.HUNDREDTHS_OF_WHOLE_UNITS and count % 100:
        raise StripeRefusal(
            400, f"{code} amounts must be whole units (a multiple of 100).", param=param
        )


def check_minimum(code: str, total: int) -> None:
    minimum = wire.MINIMUM_CHARGE.get(code)
    if minimum is not None and total < minimum:
        places = 0 if code in wire.ZERO_DECIMAL else 3 if code in wire.THREE_DECIMAL else 2
        shown = Decimal(minimum).scaleb(-places)
        raise StripeRefusal(
            400,
            "The Checkout Session's total amount due must add up to at least "
            f"{shown} {code.lower()}",
            code=wire.CODE_AMOUNT_TOO_SMALL,
        )


def check_refund_reason(reason: str | None) -> None:
    """Refuse a refund ``reason`` outside Stripe's three."""
    if reason is not None and reason not in wire.REFUND_REASONS:
        raise StripeRefusal(
            400,
            "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer",
            param="reason",
        )


def check_session_texts(fields: Mapping[str, str]) -> None:
    """The create's free-text parameters: reference, metadata, URLs, email, locale."""
    required(fields, "success_url")
    reference = fields.get("client_reference_id")
    if reference is not None and not 1 <= len(reference) <= wire.CLIENT_REFERENCE_MAX:
        raise StripeRefusal(400, "client_reference_id is too long.", param="client_reference_id")
    for name, value in fields.items():
        if name.startswith(("metadata[", "payment_intent_data[")) and (
            len(value) > wire.METADATA_VALUE_MAX
        ):
            raise StripeRefusal(400, "Metadata values can have up to 500 characters.", param=name)
    for url_field in ("success_url", "cancel_url"):
        url = fields.get(url_field)
        if url is not None and not (url.startswith(("http://", "https://")) and len(url) <= 5000):
            raise StripeRefusal(400, "Not a valid URL", param=url_field)
    email = fields.get("customer_email")
    if email is not None and not _EMAIL.fullmatch(email):
        raise StripeRefusal(400, f"Invalid email address: {email}", param="customer_email")
    locale = fields.get("locale")
    if locale is not None and locale not in wire.CHECKOUT_LOCALES:
        raise StripeRefusal(
            400,
            f"Invalid locale: must be one of {', '.join(sorted(wire.CHECKOUT_LOCALES))}",
            param="locale",
        )


def method_types(fields: Mapping[str, str]) -> list[str]:
    """``payment_method_types[]``, default cards; the hosted page here takes cards only."""
    found = sorted(
        (int(match.group(1)), name, value)
        for name, value in fields.items()
        if (match := METHOD_TYPE_KEY.fullmatch(name))
    )
    for _, name, value in found:
        if value not in _METHOD_TYPES:
            raise StripeRefusal(
                400, f"Invalid {name}: must be one of {', '.join(_METHOD_TYPES)}", param=name
            )
    return [value for _, _, value in found] or ["card"]


def expires_at(fields: Mapping[str, str], now: int) -> int:
    if "expires_at" not in fields:
        return now + wire.EXPIRES_MAX_SECONDS
    expires_at = integer(fields, "expires_at")
    # A little slack either side for the client's clock, as Stripe allows.
    if not now + wire.EXPIRES_MIN_SECONDS - 60 <= expires_at <= now + wire.EXPIRES_MAX_SECONDS + 60:
        raise StripeRefusal(
            400,
            "The `expires_at` timestamp must be between 30 minutes and 24 hours from "
            "Checkout Session creation.",
            param="expires_at",
        )
    return expires_at


def nested(fields: Mapping[str, str], pattern: re.Pattern[str]) -> dict[str, str]:
    return {
        match.group(1): value
        for name, value in fields.items()
        if (match := pattern.fullmatch(name))
    }


#: Gives the expanded value of one field of an object: ``(object, field, path asked)``.
Expansion = Callable[[Mapping[str, Any], str, str], Any]


def expanded(obj: Mapping[str, Any], paths: Iterable[str], expand: Expansion) -> dict[str, Any]:
    """``obj`` with each of the dotted ``paths`` expanded by ``expand``, as ``expand[]`` asks.

    A list's items are reached through ``data.``, as Stripe requires.
    """
    shown = dict(obj)
    for path in paths:
        if path.count(".") >= 4:
            raise StripeRefusal(
                400, f"You cannot expand more than 4 levels of a property ({path})."
            )
        shown = _expanded_one(shown, path, path, expand)
    return shown


def _expanded_one(obj: dict[str, Any], path: str, asked: str, expand: Expansion) -> dict[str, Any]:
    field, _, rest = path.partition(".")
    if obj.get("object") == "list":
        if field != "data" or not rest:
            raise StripeRefusal(
                400,
                f"This property cannot be expanded ({asked}). You may want to try expanding "
                f"'data.{asked}' instead.",
            )
        return {**obj, "data": [_expanded_one(dict(i), rest, asked, expand) for i in obj["data"]]}
    value = expand(obj, field, asked)
    if rest and value is not None:
        value = _expanded_one(dict(value), rest, asked, expand)
    return {**obj, field: value}
