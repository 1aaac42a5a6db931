"""``BinancePayProvider``: the Binance Pay Merchant API as a ``payments`` provider plugin.

Each hook builds a sans-I/O operation from the modules that do the work: :mod:`.orders` (bodies
and answers), :mod:`.api` (signing and envelopes), :mod:`.webhooks` (callbacks),
:mod:`.classification` (error codes) and :mod:`.sandbox_bridge` (the local sandbox).
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Final

from payments_binance import (
    classification,
    orders,
    protocol,
    refunds,
    sandbox_bridge,
    webhooks,
    wire,
)
from payments_binance.api import ApiClient
from payments_binance.certificates import CertificateCache, fetch_certificates
from payments_binance.settings import SETTING_ENV, load_settings
from payments_binance.trade_no import merchant_trade_no, refund_request_id
from payments_core import (
    CAPABILITIES,
    CallbackRequest,
    CallbackResult,
    ErrorClassification,
    IdempotencyPattern,
    Operation,
    Order,
    OrderRequest,
    PaymentsError,
    ProviderContext,
    ProviderError,
    ProviderInfo,
    ProviderSandbox,
    Refund,
    RefundRequest,
    ValidationError,
    hookimpl,
)

if TYPE_CHECKING:
    import click

__all__ = ["BinancePayProvider"]

ORDER_NOT_FOUND: Final = "400202"
INVALID_OR_DUPLICATE_TRADE_NO: Final = "400201"
#: Binance's rule for ``merchantTradeNo``: letters and digits, at most 32.
_TRADE_NO: Final = re.compile(r"[0-9A-Za-z]{1,32}").fullmatch


class BinancePayProvider:
    """The Binance Pay provider. Built by the core from its entry point with a context.

    Construction reads no credentials, so the provider loads without them; each operation
    checks the configuration when it is built and raises ``ConfigurationError`` if it lacks
    something.

    :param context: The provider's name, settings and clock.
    """

    def __init__(self, context: ProviderContext) -> None:
        self.name = context.name
        self._context = context
        self._api: ApiClient | None = None
        self._certificates = CertificateCache()
        self._new_certificates = CertificateCache()
        self._refund_attempts = refunds.RefundAttempts()

    def __repr__(self) -> str:
        return f"BinancePayProvider(name={self.name!r})"

    def _client(self) -> ApiClient:
        # Built by the first operation. It holds no state: two threads that race here build
        # the same client, and either one kept serves both.
        if self._api is None:
            settings = load_settings(self._context.settings)
            self._api = ApiClient(self.name, settings, self._context.clock)
        return self._api

    @hookimpl
    def describe_provider(self) -> ProviderInfo:
        return ProviderInfo(
            name=self.name,
            display_name="Binance Pay",
            currencies=orders.SUPPORTED_CURRENCIES,
            capabilities=CAPABILITIES,
            settings=dict(SETTING_ENV),
            # merchantTradeNo is derived from the reference; Binance refuses it twice.
            idempotency=IdempotencyPattern.DERIVED_ID,
        )

    @hookimpl
    def create_order(self, request: OrderRequest) -> Operation[Order]:
        api = self._client()
        # Derived once: the body carries it and the order read back from the answer names it.
        trade_no = merchant_trade_no(request.reference)
        body = orders.create_body(
            request, api.settings, self._context.clock.now(), trade_no=trade_no
        )
        return self._create(api, request, body, trade_no)

    def _create(
        self, api: ApiClient, request: OrderRequest, body: object, trade_no: str
    ) -> Operation[Order]:
        try:
            return (
                yield from api.call(
                    protocol.PATH_CREATE_ORDER_V3,
                    body,
                    lambda data: orders.order_from_create(
                        self.name,
                        request,
                        wire.structure(data, wire.CreateOrderResult),
                        trade_no=trade_no,
                    ),
                    operation="create_order",
                )
            )
        except ProviderError as error:
            # 400201 is "invalid or duplicated": a query can recover only a valid trade number.
            if error.provider_code == INVALID_OR_DUPLICATE_TRADE_NO and not _TRADE_NO(trade_no):
                raise ValidationError(
                    "reference",
                    f"gives the merchantTradeNo {trade_no!r}, which Binance finds invalid",
                    provider=self.name,
                ) from error
            raise

    @hookimpl
    def query_order(self, reference: str) -> Operation[Order | None]:
        return self._query(self._client(), reference)

    def _query(self, api: ApiClient, reference: str) -> Operation[Order | None]:
        try:
            return (yield from orders.query_order(api, reference))
        except ProviderError as error:
            if error.provider_code == ORDER_NOT_FOUND:
                return None
            raise

    @hookimpl
    def close_order(self, reference: str) -> Operation[bool]:
        return self._client().call(
            protocol.PATH_CLOSE_ORDER,
            orders.lookup_body(reference),
            lambda data: data is not False,
            operation="close_order",
        )

    @hookimpl
    def refund_order(self, order: Order, request: RefundRequest) -> Operation[Refund]:
        return refunds.refund(self._client(), order, request, self._refund_attempts)

    @hookimpl
    def refund_id(self, request: RefundRequest) -> str:
        # Binance echoes the refundRequestId it was sent, derived from the two references.
        return refund_request_id(request.reference, request.refund_reference)

    @hookimpl
    def query_refund(self, order: Order, request: RefundRequest) -> Operation[Refund | None]:
        api = self._client()
        return refunds.query_refund(
            api,
            order,
            request,
            not_found=api.settings.refund_not_found_codes,
            attempts=self._refund_attempts,
        )

    @hookimpl
    def handle_callback(self, callback: CallbackRequest) -> Operation[CallbackResult]:
        api = self._client()
        return webhooks.handle_callback(
            callback,
            api=api,
            certificates=self._certificates,
            clock=self._context.clock,
            new_certificates=self._new_certificates if api.settings.new_certificates_path else None,
        )

    @hookimpl
    def classify_error(self, error: PaymentsError) -> ErrorClassification | None:
        return classification.classify(error)

    @hookimpl
    def check_connection(self) -> Operation[str]:
        return self._check(self._client())

    def _check(self, api: ApiClient) -> Operation[str]:
        found = yield from fetch_certificates(api)
        return f"{len(found)} webhook certificate(s) from {api.settings.base_url}"

    @hookimpl
    def open_sandbox(self) -> AbstractContextManager[ProviderSandbox]:
        return sandbox_bridge.open_sandbox()

    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        sandbox_bridge.register_commands(cli)
