"""Verifying and reading Binance's payment callbacks (reference section 8).

A callback is accepted only if, in this order: the body is within the size cap; the timestamp
and nonce headers are present and the timestamp lies within the tolerance of the clock, in the
past or the future; and a signature it carries is a valid RSA PKCS#1 v1.5 SHA-256 signature over
the raw bytes ``timestamp\\nnonce\\nbody\\n`` by a key Binance published. Two certificates may
sign (reference section 16.3): ``BinancePay-Signature`` by the key whose serial is
``BinancePay-Certificate-SN`` (from ``/certificates``), and ``BinancePay-Signature-New`` by the
key whose serial is ``BinancePay-Certificate-SN-New`` (from the "Query Certificate New"
endpoint, setting ``new_certificates_path``). One genuine signature authenticates the body; a
forged second one beside it changes nothing a forger could not change without it. While the
old pair is present, a failure of the new endpoint (unreachable, empty, a wrong path) is logged
and the old pair alone decides. An unknown serial makes the operation fetch that certificate's
list once (within its cache's cool-down). Then the body must be a ``PAY`` notification with status
``PAY_SUCCESS`` or ``PAY_CLOSED``, or a ``PAY_REFUND`` notification with status
``REFUND_SUCCESS`` or ``REFUND_REJECTED`` (whose event carries a
:class:`~payments_core.RefundNotice` naming the ``refundRequestId``); other documented
``bizType`` values are acknowledged without an event, and anything else is refused.

Refusals raise :class:`~payments_core.CallbackVerificationError` (HTTP 401) or
:class:`~payments_core.CallbackPayloadError` (HTTP 400; 413 for an oversized body), whose
``reply`` carries Binance's ``{"returnCode":"FAIL",...}`` body.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from payments_binance import protocol, wire
from payments_binance.api import ApiClient
from payments_binance.certificates import CertificateCache, fetch_certificates
from payments_binance.orders import fee_from, from_epoch_ms, paid_from
from payments_core import (
    CallbackDeferred,
    CallbackPayloadError,
    CallbackReply,
    CallbackRequest,
    CallbackResult,
    CallbackVerificationError,
    Clock,
    Money,
    Operation,
    PaymentEvent,
    PaymentsError,
    PaymentStatus,
    RefundNotice,
    RefundStatus,
    ValidationError,
    get_logger,
)

__all__ = ["ACK", "REFUND_STATUS_BY_BIZ_STATUS", "STATUS_BY_BIZ_STATUS", "handle_callback"]

log = get_logger("payments_binance.webhooks")

ACK: Final = CallbackReply(200, protocol.WEBHOOK_ACK_SUCCESS)
STATUS_BY_BIZ_STATUS: Final[Mapping[str, PaymentStatus]] = {
    protocol.BizStatus.PAY_SUCCESS: PaymentStatus.PAID,
    # Binance notifies an expired order as closed too; the order's query status tells them apart.
    protocol.BizStatus.PAY_CLOSED: PaymentStatus.CLOSED,
}
#: A ``PAY_REFUND`` notification's ``bizStatus``: only final states are notified.
REFUND_STATUS_BY_BIZ_STATUS: Final[Mapping[str, RefundStatus]] = {
    protocol.BizStatus.REFUND_SUCCESS: RefundStatus.SUCCEEDED,
    protocol.BizStatus.REFUND_REJECTED: RefundStatus.FAILED,
    protocol.BizStatus.REFUND_REJECT: RefundStatus.FAILED,
}
#: Every webhook carries these; the certificate pairs below are checked one by one.
REQUIRED_HEADERS: Final = (protocol.HEADER_TIMESTAMP, protocol.HEADER_NONCE)
_OLD: Final = (protocol.HEADER_CERTIFICATE_SN, protocol.HEADER_SIGNATURE)
_NEW: Final = (protocol.HEADER_CERTIFICATE_SN_NEW, protocol.HEADER_SIGNATURE_NEW)
_TIMESTAMP: Final = re.compile(r"[0-9]{1,16}").fullmatch
#: The headers as :class:`CallbackRequest` keeps them: in lower case.
_TIMESTAMP_KEY: Final = protocol.HEADER_TIMESTAMP.lower()
_NONCE_KEY: Final = protocol.HEADER_NONCE.lower()
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND: Final = timedelta(milliseconds=1)
_ID: Final = re.compile(r"[0-9]{1,40}")
_MS_MAX: Final = 253_402_300_800_000  # 10000-01-01: beyond it datetime cannot go
#: Seconds after which a deferred callback is worth delivering again (a fetch takes less).
_DEFER_SECONDS: Final = 5.0
_PKCS1V15: Final = padding.PKCS1v15()
_SHA256: Final = hashes.SHA256()


def _fail(reason: str) -> bytes:
    return wire.dumps({"returnCode": protocol.STATUS_FAIL, "returnMessage": reason})


def _refuse(reason: str, provider: str) -> CallbackVerificationError:
    reply = CallbackReply(401, _fail(reason))
    return CallbackVerificationError(f"callback refused: {reason}", provider=provider, reply=reply)


def _reject(reason: str, provider: str, *, status: int = 400) -> CallbackPayloadError:
    reply = CallbackReply(status, _fail(reason))
    return CallbackPayloadError(f"callback refused: {reason}", provider=provider, reply=reply)


def handle_callback(
    callback: CallbackRequest,
    *,
    api: ApiClient,
    certificates: CertificateCache,
    clock: Clock,
    new_certificates: CertificateCache | None = None,
) -> Operation[CallbackResult]:
    """Verify ``callback`` and say what it means; may fetch the certificates once.

    ``new_certificates`` caches the keys of the new platform certificate; ``None`` ignores the
    ``-New`` headers.

    The signature is checked over the raw bytes before anything is built from the body; the
    body is then parsed once and read by its ``bizType``'s entry in :data:`_READERS`.

    :raises CallbackVerificationError: a header is missing or malformed, the timestamp is
        outside the tolerance, the serial is unknown, or the signature does not verify.
    :raises CallbackPayloadError: the body is too large, not JSON, or not a known notification.
    :raises CallbackDeferred: the serial is not cached while another callback is fetching the
        certificates, or after a fetch failed (within the cool-down): it cannot be judged yet.
    :raises ProviderError: if the certificates fetch gets an error answer.
    """
    provider = api.provider
    settings = api.settings
    body = callback.body
    if len(body) > settings.max_callback_bytes:
        raise _reject(f"body exceeds {settings.max_callback_bytes} bytes", provider, status=413)
    timestamp, nonce = _required_headers(callback.headers, provider)
    if not _TIMESTAMP(timestamp):
        raise _refuse(f"malformed header {protocol.HEADER_TIMESTAMP}", provider)
    skew = (int(timestamp) - (clock.now() - _EPOCH) // _MILLISECOND) / 1000
    if abs(skew) > settings.timestamp_tolerance:
        when = "in the future" if skew > 0 else "stale"
        raise _refuse(
            f"timestamp is {when} by {abs(skew):.0f} s (tolerance "
            f"{settings.timestamp_tolerance:.0f} s)",
            provider,
        )
    old = _signature(callback.headers, _OLD, provider)
    new = _signature(callback.headers, _NEW, provider) if new_certificates is not None else None
    if old is None and new is None:
        raise _refuse(f"missing header {protocol.HEADER_CERTIFICATE_SN}", provider)
    payload = b"%s\n%s\n%s\n" % (timestamp.encode("ascii"), nonce.encode("utf-8"), body)
    failure: PaymentsError | None = None
    if old is not None:
        try:
            key = yield from _key(old[0], api, certificates, clock, protocol.PATH_CERTIFICATES)
            if _verifies(key, old[1], payload):
                return _interpret(body, provider)
            failure = _refuse("signature does not verify", provider)
        except PaymentsError as error:
            if new is None:
                raise
            failure = error
    if new is not None and new_certificates is not None:
        try:
            key = yield from _key(
                new[0], api, new_certificates, clock, settings.new_certificates_path
            )
            if _verifies(key, new[1], payload):
                return _interpret(body, provider)
        except PaymentsError as error:
            if old is None:
                raise
            # The new endpoint is a guess that may be wrong: the old certificate decides.
            log.warning("new certificate %.64r could not be checked: %s", new[0], error)
    raise failure if failure is not None else _refuse("signature does not verify", provider)


def _required_headers(headers: Mapping[str, str], provider: str) -> tuple[str, str]:
    """Timestamp and nonce, each present and non-empty."""
    for name in REQUIRED_HEADERS:
        if not headers.get(name.lower()):
            raise _refuse(f"missing header {name}", provider)
    return headers[_TIMESTAMP_KEY], headers[_NONCE_KEY]


def _signature(
    headers: Mapping[str, str], names: tuple[str, str], provider: str
) -> tuple[str, bytes] | None:
    """One certificate's (serial, signature bytes), or ``None`` if the webhook carries neither.

    One of the pair without the other is refused, as is a signature that is not base64 in
    its canonical form: a header the decoder would clean (a stray character, a space, extra
    padding, bits set after the last byte) is not what Binance sent, and is refused, never
    cleaned into the signature it resembles.
    """
    serial_name, signature_name = names
    serial = headers.get(serial_name.lower(), "")
    encoded = headers.get(signature_name.lower(), "")
    if not serial and not encoded:
        return None
    if not serial or not encoded:
        raise _refuse(f"missing header {serial_name if not serial else signature_name}", provider)
    try:
        signature = base64.b64decode(encoded)
    except (binascii.Error, ValueError):  # bad padding, or not ASCII
        signature = None
    # Encoding back is the whole check: only the canonical text gives itself again.
    if signature is None or base64.b64encode(signature).decode("ascii") != encoded:
        raise _refuse(f"malformed header {signature_name}", provider)
    return serial, signature


def _verifies(key: rsa.RSAPublicKey, signature: bytes, payload: bytes) -> bool:
    try:
        key.verify(signature, payload, _PKCS1V15, _SHA256)
    except InvalidSignature:
        return False
    return True


def _key(
    serial: str, api: ApiClient, certificates: CertificateCache, clock: Clock, path: str
) -> Operation[rsa.RSAPublicKey]:
    """The key published under ``serial``: cached, or fetched from ``path`` once per cool-down."""
    key = certificates.get(serial)
    if key is None:
        key = yield from _key_after_fetch(serial, api, certificates, clock, path)
    return key


def _key_after_fetch(
    serial: str, api: ApiClient, certificates: CertificateCache, clock: Clock, path: str
) -> Operation[rsa.RSAPublicKey]:
    """The key for a serial the cache lacks: fetched once per cool-down, or deferred."""
    settings = api.settings
    if certificates.claim_fetch(clock.monotonic(), settings.cert_refresh_cooldown):
        log.info("certificate serial %.64r is not cached: fetching %s", serial, path)
        try:
            certificates.replace((yield from fetch_certificates(api, path)))
        except BaseException:  # an error answer, a transport failure, or an abandoned operation
            certificates.fetch_failed()
            raise
        key = certificates.get(serial)
    else:
        # Another callback's fetch may have landed since the first look: read again, together
        # with whether the list is settled.
        key, settled = certificates.lookup(serial)
        if key is None and not settled:
            raise CallbackDeferred(
                "callback deferred: the certificates are being fetched or could not be fetched",
                provider=api.provider,
                retry_after=_DEFER_SECONDS,
            )
    if key is None:
        raise _refuse("unknown certificate serial", api.provider)
    return key


def _object(raw: bytes | str, what: str, provider: str) -> dict[str, Any]:
    try:
        value = wire.loads_text(raw) if isinstance(raw, str) else wire.loads(raw)
    except wire.MalformedJSON:
        raise _reject(f"{what} is not valid JSON", provider) from None
    if not isinstance(value, dict):
        raise _reject(f"{what} is not a JSON object", provider)
    return value


def _text(data: Mapping[str, Any], field: str, provider: str, *, required: bool) -> str | None:
    value = data.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise _reject(f"{field} must be a non-empty string", provider)
    if "\x00" in value:  # PostgreSQL text cannot hold NUL
        raise _reject(f"{field} is not valid text", provider)
    if not value.isascii():
        try:  # a lone surrogate (a "\ud800" escape) is no text a ledger can store
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _reject(f"{field} is not valid text", provider) from None
    return value


def _biz_id(body: Mapping[str, Any], provider: str) -> str:
    """The order's prepay id from ``bizId`` and ``bizIdStr``, as text.

    ``bizId`` is a JSON number in payment notifications (above 2**53: json keeps it an exact
    int) and typed as text in refund notifications; either is accepted, or ``bizIdStr`` alone.
    """
    as_text = body.get("bizIdStr")
    as_number = body.get("bizId")
    if isinstance(as_number, str):
        if not _ID.fullmatch(as_number):
            raise _reject("bizId must be digits", provider)
        as_number = int(as_number)
    if isinstance(as_number, bool) or not isinstance(as_number, int | None):
        raise _reject("bizId must be an integer or a string of digits", provider)
    if as_text is not None and (not isinstance(as_text, str) or not _ID.fullmatch(as_text)):
        raise _reject("bizIdStr must be a string of digits", provider)
    if as_text is not None and as_number is not None and int(as_text) != as_number:
        raise _reject("bizId and bizIdStr disagree", provider)
    if as_text is not None:
        return as_text
    if as_number is None or as_number < 0:
        raise _reject("bizId is missing", provider)
    return str(as_number)


def _amount(data: Mapping[str, Any], provider: str, status: PaymentStatus) -> Money | None:
    """The notification's ``totalFee`` in ``currency``.

    A payment is marked paid only against an amount the ledger can check: a ``PAY_SUCCESS``
    whose amount is missing or cannot be represented (an unknown currency, too many places,
    a negative) is refused, and reconciliation settles the order from a query instead. For a
    closed order the amount is informative only.
    """
    fee, currency = data.get("totalFee"), data.get("currency")
    try:
        if fee is None or currency is None:
            raise ValidationError("totalFee", "missing, or its currency is")
        return Money(fee, currency)
    except ValidationError as exc:
        if status is PaymentStatus.PAID:
            raise _reject(f"amount cannot be checked: {exc}", provider) from None
        return None


def _occurred_at(value: object) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _MS_MAX:
        return None
    return from_epoch_ms(value)


def _interpret(body: bytes, provider: str) -> CallbackResult:
    """What a verified body says: one parse, then its ``bizType``'s reader."""
    notification = _object(body, "body", provider)
    biz_type = _text(notification, "bizType", provider, required=True)
    read = _READERS.get(biz_type or "")
    if read is None:
        raise _reject(f"unknown bizType {biz_type!r}", provider)
    return read(notification, provider)


def _acknowledged(notification: Mapping[str, Any], provider: str) -> CallbackResult:
    """A documented kind this project does not track: acknowledged, no event."""
    log.info(
        "%s callback of kind %s acknowledged without an event", provider, notification["bizType"]
    )
    return CallbackResult(None, ACK)


def _pay(notification: Mapping[str, Any], provider: str) -> CallbackResult:
    """A ``PAY`` notification: the order was paid or closed."""
    biz_status = _text(notification, "bizStatus", provider, required=True)
    status = STATUS_BY_BIZ_STATUS.get(biz_status or "")
    if status is None:
        raise _reject(f"unknown bizStatus {biz_status!r}", provider)
    provider_order_id = _biz_id(notification, provider)
    data = _nested(notification, "data", provider)
    event = PaymentEvent(
        provider=provider,
        event_id=f"{provider}:{provider_order_id}:{biz_status}",
        status=status,
        provider_order_id=provider_order_id,
        provider_reference=_text(data, "merchantTradeNo", provider, required=True),
        amount=_amount(data, provider, status),
        occurred_at=_occurred_at(data.get("transactTime")),
        transaction_id=_text(data, "transactionId", provider, required=False),
        paid=paid_from(data.get("paymentInfo")),
        fee=fee_from(data.get("commission"), data.get("currency")),
    )
    return CallbackResult(event, ACK)


def _nested(document: Mapping[str, Any], field: str, provider: str) -> dict[str, Any]:
    """A JSON object inside ``document``: sent as a JSON string (as documented) or an object."""
    inner = document.get(field)
    if isinstance(inner, str):
        return _object(inner, field, provider)
    if isinstance(inner, dict):
        return inner
    raise _reject(f"{field} must be a JSON string", provider)


def _refund_notice(notification: Mapping[str, Any], provider: str) -> CallbackResult:
    """A ``PAY_REFUND`` notification as an event carrying a :class:`RefundNotice`.

    ``bizId`` is the order's prepay id, ``refundInfo`` names the refund by its
    ``refundRequestId``; amounts are in the order's currency. The event's ``status`` is what
    Binance's totals say the order became; the ledger decides from its own.
    """
    biz_status = _text(notification, "bizStatus", provider, required=True) or ""
    refund_status = REFUND_STATUS_BY_BIZ_STATUS.get(biz_status)
    if refund_status is None:
        raise _reject(f"unknown bizStatus {biz_status!r}", provider)
    provider_order_id = _biz_id(notification, provider)
    data = _nested(notification, "data", provider)
    trade_no = _text(data, "merchantTradeNo", provider, required=True)
    if data.get("refundInfo") is None:
        # The docs mark refundInfo optional; without it the refund cannot be told. Asking for
        # the refund again (payments refund) settles it from a query instead.
        log.warning("%s refund notice for order %s names no refund", provider, provider_order_id)
        return CallbackResult(None, ACK)
    info = _nested(data, "refundInfo", provider)
    request_id = _text(info, "refundRequestId", provider, required=True) or ""
    prepay_id = info.get("prepayId")
    if prepay_id is not None and str(prepay_id) != provider_order_id:
        raise _reject("refundInfo.prepayId and bizId disagree", provider)
    currency = data.get("currency")
    refunded, ordered = info.get("refundedAmount"), info.get("orderAmount")
    try:
        if not isinstance(currency, str):
            raise ValidationError("currency", "missing")
        amount = Money(info.get("refundAmount"), currency)
        # Binance's own totals say whether this refund gave back the whole order.
        whole = (
            refunded is not None
            and ordered is not None
            and Money(refunded, currency).amount >= Money(ordered, currency).amount
        )
    except ValidationError as exc:
        raise _reject(f"refund amount cannot be checked: {exc}", provider) from None
    if refund_status is RefundStatus.FAILED:
        status = PaymentStatus.PAID
    else:
        status = PaymentStatus.REFUNDED if whole else PaymentStatus.PARTIALLY_REFUNDED
    event = PaymentEvent(
        provider=provider,
        event_id=f"{provider}:{provider_order_id}:{protocol.BizType.PAY_REFUND}:{request_id}:"
        f"{biz_status}",
        status=status,
        provider_order_id=provider_order_id,
        provider_reference=trade_no,
        amount=amount,
        refund=RefundNotice(provider_refund_id=request_id, status=refund_status, amount=amount),
    )
    return CallbackResult(event, ACK)


#: How each ``bizType`` is read once verified: adding a kind is adding its reader here. A kind
#: not listed is refused (400), so that a typo in Binance's or a forger's body is not acked.
_READERS: Final[Mapping[str, Callable[[Mapping[str, Any], str], CallbackResult]]] = {
    protocol.BizType.PAY: _pay,
    protocol.BizType.PAY_REFUND: _refund_notice,
    **dict.fromkeys(protocol.OTHER_BIZ_TYPES, _acknowledged),
}
