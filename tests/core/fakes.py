"""Small in-memory providers for testing the core without any real provider, and a clock the
retry policy sleeps on without waiting."""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

from payments_core import (
    HttpRequest,
    HttpResponse,
    Money,
    Order,
    OrderRequest,
    PaymentsError,
    PaymentStatus,
    ProviderContext,
    ProviderError,
    ProviderInfo,
    hookimpl,
)
from payments_core.errors import parse_retry_after
from payments_core.models import ErrorCategory, ErrorClassification

#: How a fake provider classifies its refusal of a second create for one reference.
DUPLICATE_ORDER = ErrorClassification(
    category=ErrorCategory.DUPLICATE_ORDER,
    retryable=False,
    action="query the order",
    user_message="",
)


#: Where :class:`Clock` starts: time.monotonic() is seconds since boot, never 0 in production.
MONOTONIC_START = 10_000.0


class Clock:
    """A monotonic clock starting where a real one would, moving only when the policy sleeps
    (or a test moves ``now``). ``sleeps``: every wait asked for, in order."""

    def __init__(self, start: float = MONOTONIC_START) -> None:
        self.start = self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


class EchoProvider:
    """A provider that speaks a trivial JSON API at ``{base_url}/orders``.

    ``POST /orders`` creates (the server answers 409 for a known id), ``POST /orders/query``
    finds. The order id is the reference itself, so it is deterministic.
    """

    def __init__(self, context: ProviderContext) -> None:
        self.name = context.name
        self.base_url = context.settings.get("base_url", default="http://provider.test")
        self.calls: list[str] = []

    @hookimpl
    def describe_provider(self) -> ProviderInfo:
        return ProviderInfo(name=self.name, display_name=f"Echo {self.name}")

    def _post(self, path: str, payload: dict[str, Any], op: str) -> HttpRequest:
        self.calls.append(op)
        return HttpRequest(
            "POST", f"{self.base_url}{path}", {"content-type": "application/json"},
            json.dumps(payload).encode(), op,
        )  # fmt: skip

    def _order(self, data: dict[str, Any]) -> Order:
        return Order(
            provider=self.name,
            reference=data["reference"],
            provider_order_id=str(data["id"]),
            provider_reference=data["reference"],
            status=PaymentStatus(data.get("status", "pending")),
            amount=Money(data["amount"], data["currency"]),
        )

    def _check(self, response: HttpResponse, op: str) -> dict[str, Any]:
        if response.status_code >= 400:
            raise ProviderError(
                f"{op} failed with HTTP {response.status_code}",
                provider=self.name,
                status_code=response.status_code,
                provider_code="duplicate" if response.status_code == 409 else None,
                retry_after=parse_retry_after(response.headers),
                operation=op,
            )
        data: dict[str, Any] = json.loads(response.content)
        return data

    @hookimpl
    def create_order(self, request: OrderRequest) -> Generator[HttpRequest, HttpResponse, Order]:
        payload = {
            "reference": request.reference,
            "amount": request.price.plain,
            "currency": request.price.currency,
        }
        response = yield self._post("/orders", payload, "create_order")
        return self._order(self._check(response, "create_order"))

    @hookimpl
    def query_order(self, reference: str) -> Generator[HttpRequest, HttpResponse, Order | None]:
        response = yield self._post("/orders/query", {"reference": reference}, "query_order")
        if response.status_code == 404:
            return None
        return self._order(self._check(response, "query_order"))

    @hookimpl
    def classify_error(self, error: PaymentsError) -> ErrorClassification | None:
        if isinstance(error, ProviderError) and error.provider_code == "duplicate":
            return DUPLICATE_ORDER
        return None
