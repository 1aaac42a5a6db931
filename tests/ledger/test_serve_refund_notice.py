"""A refund notification whose ``bizId`` is text, as Binance's docs type it for refunds, signed by
the sandbox and delivered over HTTP to a real ``payments serve``: the pending refund settles by
that notice, once, and a second delivery of it changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from payments_core import Money, OrderRequest, PaymentStatus, RefundRequest, RefundStatus
from tests.binance.loopback import NOWHERE, binance_payments, ledger_order, sandbox_on_loopback

from .serve_process import ServeProcess, serve_env

CALLBACK = "/callbacks/binance"


def _post(url: str, attempt: object) -> httpx.Response:
    return httpx.post(
        url + CALLBACK,
        content=attempt.body,  # type: ignore[attr-defined]
        headers=dict(attempt.headers),  # type: ignore[attr-defined]
        timeout=30,
    )


def test_a_text_biz_id_refund_notice_settles_the_refund_through_payments_serve(
    ledger_url: str, tmp_path: Path
) -> None:
    with (
        sandbox_on_loopback(
            deliver_webhooks=False,  # the test delivers them, to payments serve
            refund_settle_delay_s=None,  # the refund stays pending until settled by hand
            seed=20,
        ) as (sandbox, base_url),
        binance_payments(base_url, ledger_url) as payments,
    ):
        order = payments.create_order(
            OrderRequest(reference="text-biz", price=Money("1.00", "USD"), callback_url=NOWHERE)
        )
        sandbox.pay(order.provider_order_id)
        with ServeProcess([], serve_env(ledger_url, base_url, tmp_path)) as serve:
            (paid,) = [a for a in sandbox.webhook_log if a.skipped]
            assert _post(serve.url, paid).json()["returnCode"] == "SUCCESS"

            refund = payments.refund_order(
                RefundRequest(
                    reference="text-biz",
                    refund_reference="r1",
                    amount=Money("0.40", "USD"),
                    callback_url=NOWHERE,
                )
            )
            assert refund.status is RefundStatus.PENDING
            sandbox.settle_refunds(order.provider_order_id)
            notices = [
                a
                for a in sandbox.webhook_log
                if a.skipped and a.delivery.type != paid.delivery.type
            ]
            assert len(notices) == 1
            (notice,) = notices
            assert isinstance(json.loads(notice.body)["bizId"], str)  # text, not a number

            for _ in range(2):  # the second delivery is a duplicate, acknowledged
                answer = _post(serve.url, notice)
                assert answer.status_code == 200, answer.text
                assert answer.json()["returnCode"] == "SUCCESS"

        assert serve.returncode == 0, "\n".join(serve.lines[-20:])
        (settled,) = payments.refunds("text-biz")
        assert settled.status is RefundStatus.SUCCEEDED
        assert settled.amount == Money("0.40", "USD")
        recorded = ledger_order(payments, "text-biz")
        assert recorded.status is PaymentStatus.PARTIALLY_REFUNDED
        assert recorded.refunded == Money("0.40", "USD")
