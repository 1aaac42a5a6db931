"""The contract on telemetry: nothing private in what a provider's operations record.

The core traces every provider request and callback itself (a provider's hooks do no I/O), and
never records a header, a body or an error's message. A provider may add attributes of its
own to the spans its hooks run in (``trace.get_current_span().set_attribute(...)``); this
contract records a flow with the OpenTelemetry SDK and searches every span name, attribute,
event, link and status, and every metric label, for the provider's secrets, the signatures and
nonces it sent and received, and the callback's raw body.
"""

from __future__ import annotations

from functools import partial

import pytest

from payments_core.testing.contract.runner import (
    ContractRun,
    contract_test,
    expect_error,
    require,
)
from payments_core.testing.logs import find_leaks

__all__ = ["TelemetryContracts"]


class TelemetryContracts:
    """Telemetry: what the provider's spans carry."""

    @contract_test(
        "no-secrets-in-telemetry",
        hooks={"create_order", "query_order", "handle_callback"},
        summary="through a flow recorded with the OpenTelemetry SDK (orders, a genuine and a "
        "forged callback), no credential, signature, nonce or callback body appears in a span, "
        "event, link, status or metric label, the provider's own attributes included",
    )
    def test_no_secret_reaches_telemetry(self, run: ContractRun) -> None:
        """Secrets and payer data stay out of spans and metrics."""
        try:
            from payments_core.telemetry.recording import exported_texts, record
        except ImportError:
            pytest.skip("needs the OpenTelemetry SDK: pip install opentelemetry-sdk")
        from payments_core import telemetry

        if not telemetry.active.enabled:
            pytest.skip("telemetry is switched off (PAYMENTS_TELEMETRY=off)")
        recorder = record()
        already = len(recorder.spans())
        harness = run.harness
        payments = run.payments()
        request = run.request("telemetry", payments)
        order = payments.create_order(request)
        payments.query_order(request.reference)
        genuine = harness.paid_callback(order)
        payments.handle_callback(harness.name, genuine.headers, genuine.body)
        forged = {**genuine.headers, harness.callback_format.signature_header: "0" * 64}
        expect_error(
            partial(payments.handle_callback, harness.name, forged, genuine.body),
            "a forged callback",
        )
        spans = recorder.spans()[already:]
        require(spans, "no span was recorded: is another tracer provider set?")
        secrets = dict(harness.secrets())
        for name, value in genuine.headers.items():
            if harness.is_sensitive_request_header(name) or "nonce" in name.lower():
                secrets[f"callback header {name}"] = value
        secrets["the callback body"] = genuine.body.decode("utf-8", "replace")
        for index, sent in enumerate(run.faults.requests):
            for name, value in sent.headers.items():
                sensitive = harness.is_sensitive_request_header(name) or "nonce" in name.lower()
                if sensitive and len(value) >= 6:
                    secrets[f"request header {name} #{index}"] = value
            if len(sent.content) >= 6:
                secrets[f"request body #{index}"] = sent.content.decode("utf-8", "replace")
        leaks = find_leaks(secrets, exported_texts(spans, recorder.points()))
        require(not leaks, f"{len(leaks)} leak(s): " + "; ".join(leaks[:5]))
