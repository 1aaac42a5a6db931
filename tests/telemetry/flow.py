"""A full recorded flow on the Binance sandbox, shared by the trace test and the privacy scan.

Create (its first answer lost to an injected timeout, recovered by a query), a paid callback,
the same callback again, a forged one, a refund, and reconcile of a second order paid while its
callback was lost: every operation the telemetry instruments, over real HTTP on loopback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import httpx

from payments_core import Money, OrderRequest, RefundRequest, RetryPolicy
from payments_core.asgi import create_callback_app
from payments_core.serving import BackgroundServer
from payments_core.telemetry.logs import TRACE_FILTER, JsonFormatter
from payments_core.testing.logs import LogCapture
from tests.binance.loopback import API_KEY, API_SECRET, binance_payments, sandbox_on_loopback

if TYPE_CHECKING:
    from payments_core.telemetry.recording import Recorder

PAYER = "payer-open-user-id-3c9e51aa"
PAYER_EMAIL = "payer.telemetry@example.net"


class TimeoutOnce(httpx.HTTPTransport):
    """Sends every request, but loses the first create's answer: an outcome unknown.

    Attributes:
        sent: Every request's headers and body, as sent (signatures and nonces among them).
    """

    def __init__(self) -> None:
        super().__init__()
        self.lost = False
        self.sent: list[tuple[dict[str, str], bytes]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((dict(request.headers), request.content))
        response = super().handle_request(request)
        if not self.lost and request.url.path.endswith("/order"):
            self.lost = True
            response.read()
            raise httpx.ReadTimeout("injected: the answer is lost", request=request)
        return response


@attrs.frozen
class RecordedFlow:
    """What the flow did and what it knows must never leave.

    Attributes:
        recorder: The spans and metrics recorded.
        log_lines: Every log line, in the JSON format.
        private: Secrets and payer data used in the flow: keys, signatures, nonces, bodies.
        before: Metric values before the flow, to compare with.
        outcomes: The callbacks' HTTP statuses, in order.
        waits: The retry policy's waits before each retry, in seconds, in order.
    """

    recorder: Any
    log_lines: list[str]
    private: dict[str, str]
    before: dict[Any, Any]
    outcomes: list[int]
    waits: list[float]


def booking(reference: str, callback_url: str) -> OrderRequest:
    return OrderRequest(
        reference=reference,
        price=Money("12.50", "USDT"),
        callback_url=callback_url,
        description="LeadsCalendar booking",
    )


def captured_logs() -> LogCapture:
    """Every log line, at DEBUG, in the JSON format with the trace and span ids."""
    capture = LogCapture()
    capture.addFilter(TRACE_FILTER)
    capture.setFormatter(JsonFormatter())
    return capture


def run_flow(recorder: Recorder, tmp_path: Path) -> RecordedFlow:
    """Run the full flow once, recording; see the module's docstring."""
    before = recorder.points()
    transport = TimeoutOnce()
    statuses: list[int] = []
    waits: list[float] = []
    with (
        captured_logs() as logs,
        sandbox_on_loopback(deliver_webhooks=False) as (sandbox, base_url),
        binance_payments(
            base_url,
            f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
            retry=RetryPolicy(initial_delay=0.01, sleep=waits.append),
            transport=transport,
        ) as payments,
        BackgroundServer(create_callback_app(payments)) as app,
    ):
        callback_url = f"{app.url}/callbacks/binance"
        order = payments.create_order(booking("booking-traced", callback_url))
        sandbox.pay(order.provider_order_id, open_user_id=PAYER)
        notification = [a for a in sandbox.webhook_log if a.skipped][-1]
        paid = notification.delivery
        forged_body = paid.body.replace(PAYER.encode(), PAYER_EMAIL.encode())
        assert forged_body != paid.body
        signed = notification.headers
        with httpx.Client(base_url=app.url, trust_env=False) as client:
            for headers, body in ((signed, paid.body),) * 2 + ((signed, forged_body),):
                answer = client.post("/callbacks/binance", headers=dict(headers), content=body)
                statuses.append(answer.status_code)
        refund = RefundRequest(
            reference=order.reference,
            refund_reference="booking-traced-cancel",
            amount=Money("12.50", "USDT"),
            reason="booking cancelled",
        )
        payments.refund_order(refund)
        lost = payments.create_order(booking("booking-lost-callback", callback_url))
        sandbox.pay(lost.provider_order_id, open_user_id=PAYER)
        from datetime import timedelta

        payments.reconcile(timedelta(0))
    private = {"api key": API_KEY, "api secret": API_SECRET, "payer": PAYER, "email": PAYER_EMAIL}
    for number, (headers, body) in enumerate(transport.sent):
        for name, value in headers.items():
            if name.lower() in {"binancepay-signature", "binancepay-nonce"}:
                private[f"request {number} {name}"] = value
        if body:
            private[f"request {number} body"] = body.decode()
    for name, value in signed.items():
        if name.lower() in {"binancepay-signature", "binancepay-nonce"}:
            private[f"callback {name}"] = value
    private["callback body"] = paid.body.decode()
    private["forged body"] = forged_body.decode()
    assert json.loads(paid.body)  # a real notification, not an empty stand-in
    return RecordedFlow(
        recorder=recorder,
        log_lines=[line for _, line in logs.lines],
        private=private,
        before=before,
        outcomes=statuses,
        waits=waits,
    )
