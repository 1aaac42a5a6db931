"""The error contracts: classification, the retries it drives, no secret in logs."""

from __future__ import annotations

from functools import partial

from payments_core.errors import ConnectError, PaymentsError, RequestTimeout
from payments_core.models import ErrorCategory
from payments_core.testing.contract.checks import (
    classification_problems,
    expect_error,
    retry_problems,
)
from payments_core.testing.contract.runner import RETRY_AFTER, ContractRun, contract_test, require
from payments_core.testing.harness import Fault
from payments_core.testing.logs import LogCapture, find_leaks


class ErrorContracts:
    """Errors: classification, the retries it drives, and secrets kept out of logs."""

    @contract_test(
        "classify-http-status",
        hooks={"create_order", "classify_error"},
        summary="HTTP 400, 401, 403, 404, 429 (Retry-After honoured), 500 and 503 are "
        "classified as the core's table says and retried only when retryable",
    )
    def test_http_errors_are_classified(self, run: ContractRun) -> None:
        """Every HTTP error status gets the right category and retry decision."""
        payments = run.payments()
        problems: list[str] = []
        cases: list[tuple[int, dict[str, str]]] = [
            (400, {}),
            (401, {}),
            (403, {}),
            (404, {}),
            (429, {}),
            (429, {"Retry-After": str(int(RETRY_AFTER))}),
            (500, {}),
            (503, {}),
        ]
        for status, headers in cases:
            label = f"HTTP {status}{' with Retry-After' if headers else ''}"
            run.faults.fail_every_request(
                Fault.answer(status, run.harness.error_body(status), headers)
            )
            sent, slept = len(run.faults.requests), len(run.sleeps)
            request = run.request(f"http-{status}", payments)
            try:
                error = expect_error(partial(payments.create_order, request), label)
            finally:
                run.faults.fail_every_request(None)
            problems.extend(
                classification_problems(label, error, status, bool(headers))
                + retry_problems(
                    label,
                    error,
                    attempts=len(run.faults.requests) - sent,
                    waits=run.sleeps[slept:],
                )
            )
        require(not problems, "; ".join(problems))

    @contract_test(
        "classify-timeout",
        hooks={"create_order", "query_order", "classify_error"},
        summary="a timeout is outcome_unknown and retryable; a refused connection is network "
        "and retryable",
    )
    def test_timeouts_are_classified(self, run: ContractRun) -> None:
        """Timeouts and refused connections are retryable, with the right category."""
        payments = run.payments(attempts=1)
        reference = payments.create_order(run.request("timeout", payments)).reference
        expected = [
            (Fault.timeout(), RequestTimeout, ErrorCategory.OUTCOME_UNKNOWN),
            (Fault.unreachable(), ConnectError, ErrorCategory.NETWORK),
        ]
        for fault, error_type, category in expected:
            run.faults.inject(fault)
            error = expect_error(
                lambda: payments.query_order(reference), f"a query hit by {fault.kind.value}"
            )
            require(
                isinstance(error, error_type),
                f"{fault.kind.value} raised {type(error).__name__}, not {error_type.__name__}",
            )
            got = error.classification
            require(got is not None, f"{fault.kind.value}: the error was not classified")
            assert got is not None
            require(
                (got.category, got.retryable) == (category, True),
                f"{fault.kind.value} classified {got.category}, retryable={got.retryable}; "
                f"expected {category}, retryable=True",
            )

    @contract_test(
        "no-secrets-in-logs",
        hooks={"create_order", "query_order", "handle_callback", "classify_error"},
        summary="through a full flow logged at DEBUG (orders, retries, errors, genuine, tampered "
        "and garbage callbacks), no credential, request signature or callback signature "
        "appears in a log line or an error message",
    )
    def test_no_secret_reaches_logs(self, run: ContractRun) -> None:
        """Secrets stay out of logs and error messages."""
        harness = run.harness
        errors: list[PaymentsError] = []
        with LogCapture() as logs:
            payments = run.payments()
            request = run.request("secrets", payments)
            order = payments.create_order(request)
            payments.create_order(request)
            payments.query_order(request.reference)
            genuine = harness.paid_callback(order)
            payments.handle_callback(harness.name, genuine.headers, genuine.body)
            forged = {k: v for k, v in genuine.headers.items()}
            forged[harness.callback_format.signature_header] = "0" * 64
            for headers, body in ((forged, genuine.body), (genuine.headers, b"{not json")):
                errors.append(
                    expect_error(
                        partial(payments.handle_callback, harness.name, headers, body),
                        "a forged callback",
                    )
                )
            for fault in (Fault.answer(401, harness.error_body(401)), Fault.timeout()):
                run.faults.fail_every_request(fault)
                r = run.request("secrets-fault", payments)
                try:
                    errors.append(expect_error(partial(payments.create_order, r), "failed create"))
                finally:
                    run.faults.fail_every_request(None)
        secrets = dict(harness.secrets())
        secrets["the callback signature"] = genuine.headers[
            harness.callback_format.signature_header
        ]
        for index, sent in enumerate(run.faults.requests):
            for name, value in sent.headers.items():
                if harness.is_sensitive_request_header(name) and len(value) >= 6:
                    secrets[f"request header {name} #{index}"] = value
        leaks = logs.leaks(secrets) + find_leaks(
            secrets,
            [(f"{type(e).__name__} message", f"{e} {e!r} {e.args!r}") for e in errors],
        )
        require(not leaks, f"{len(leaks)} leak(s): " + "; ".join(leaks[:5]))
