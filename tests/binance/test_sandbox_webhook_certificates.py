"""The sandbox's webhooks, signed by the old certificate, both, or the new one alone, applied
through the callback app ``payments serve`` runs, with a ledger: payments and refunds whose
notification carries ``bizId`` as text (as the docs type it) settle by notice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from payments_binance.sandbox import Sandbox
from payments_core import Money, OrderRequest, Payments, PaymentStatus, RefundRequest, RefundStatus
from payments_core.asgi import create_callback_app
from payments_core.serving import BackgroundServer

from .loopback import binance_payments, ledger_order, sandbox_on_loopback


@contextmanager
def served(
    tmp_path: Path, settings: dict[str, str] | None = None, **config: Any
) -> Iterator[tuple[Sandbox, Payments, str]]:
    """A sandbox on loopback, a facade with a SQLite ledger, and its callback app served."""
    with (
        sandbox_on_loopback(**config) as (sandbox, base_url),
        binance_payments(
            base_url, f"sqlite:///{tmp_path / 'ledger.sqlite3'}", settings=settings
        ) as payments,
        BackgroundServer(create_callback_app(payments), lifespan="on") as callbacks,
    ):
        yield sandbox, payments, f"{callbacks.url}/callbacks/binance"


def _delivered_all(sandbox: Sandbox) -> None:
    sandbox.wait_for_webhooks_sync(timeout=30)
    last: dict[str, Any] = {}
    for attempt in sandbox.webhook_log:
        last[attempt.delivery.event_id] = attempt
    assert all(attempt.ok for attempt in last.values()), [a.error for a in last.values()]


@pytest.mark.parametrize("new_certificate", ["off", "both", "new_only"])
def test_payment_and_text_biz_id_refund_settle_by_notice_whatever_certificate_signs(
    new_certificate: str, tmp_path: Path
) -> None:
    with served(tmp_path, new_certificate=new_certificate) as (sandbox, payments, url):
        order = payments.create_order(
            OrderRequest(reference="cert-1", price=Money("1.00", "USD"), callback_url=url)
        )
        sandbox.pay(order.provider_order_id)
        _delivered_all(sandbox)
        assert ledger_order(payments, order.reference).status is PaymentStatus.PAID

        refund = payments.refund_order(
            RefundRequest(
                reference="cert-1",
                refund_reference="r1",
                amount=Money("0.40", "USD"),
                callback_url=url,
            )
        )
        assert refund.amount == Money("0.40", "USD")
        _delivered_all(sandbox)
        hooks = [a for a in sandbox.webhook_log if a.delivery.type == "REFUND_SUCCESS"]
        assert hooks
        assert f'"bizId":"{order.provider_order_id}"'.encode() in hooks[-1].delivery.body
        headers = {name.lower() for name in hooks[-1].headers}
        assert ("binancepay-signature" in headers) is (new_certificate != "new_only")
        assert ("binancepay-signature-new" in headers) is (new_certificate != "off")
        (settled,) = payments.refunds("cert-1")
        assert settled.status is RefundStatus.SUCCEEDED
        assert ledger_order(payments, order.reference).status is PaymentStatus.PARTIALLY_REFUNDED


def test_a_rotated_new_certificate_is_found_by_one_refresh(tmp_path: Path) -> None:
    # No cool-down: the rotation is found at once, by the one fetch its new serial causes.
    no_cooldown = {"cert_refresh_cooldown": "0"}
    with served(tmp_path, no_cooldown, new_certificate="new_only") as (sandbox, payments, url):
        for i in range(3):
            order = payments.create_order(
                OrderRequest(reference=f"rot-{i}", price=Money("1.00", "USD"), callback_url=url)
            )
            if i == 1:
                sandbox.rotate_new_key()  # the next webhooks name a serial not yet cached
            sandbox.pay(order.provider_order_id)
            _delivered_all(sandbox)
        for i in range(3):
            assert ledger_order(payments, f"rot-{i}").status is PaymentStatus.PAID
    fetches = sandbox.stats()["requests_by_path"]["/binancepay/openapi/certificates/new"]
    assert fetches == 2  # the first webhook, then the first after the rotation
