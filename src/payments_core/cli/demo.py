"""``payments demo``: a LeadsCalendar booking paid end to end, on the provider's own sandbox.

The demo knows no provider: it asks the provider's ``open_sandbox`` hook for a local
imitation, points the provider at it with the settings the sandbox hands over, and then does
what an application does. It creates the order through :class:`~payments_core.Payments`
(recorded in an SQLite ledger), serves the callback app on loopback, has the sandbox's payer
pay (or waits for a person to, with ``--interactive``), and waits, on an event set by the
``payment_status_changed`` hook, for the verified callback to be committed to the ledger.

With ``--refund`` LeadsCalendar then cancels the booking: the order is refunded in full, the
provider's refund notification is received, and the ledger's rows (the order, its refund and
every event) are shown, each refund counted once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

import attrs
import click

from payments_core.cli._common import json_option

# Already loaded with the ``payments_core`` package, so free for ``payments --help``.
from payments_core.hookspecs import hookimpl
from payments_core.models import PaymentStatus, StatusChange

if TYPE_CHECKING:
    from payments_core.ledger import Ledger
    from payments_core.models import Refund
    from payments_core.telemetry.recording import Recorder

__all__ = ["commands"]

#: Seconds to wait for the callback when the sandbox's payer pays.
CALLBACK_TIMEOUT_S: Final = 30.0
#: How often the demo looks whether the refund notification has been recorded.
_POLL_S: Final = 0.05


@attrs.frozen
class Booking:
    """The sample LeadsCalendar booking the demo charges for.

    Attributes:
        booking_id: LeadsCalendar's id, also the payment reference.
        title: What is booked.
        price: The amount to charge, a decimal string.
        currency: The price's currency.
    """

    booking_id: str
    title: str
    price: str = "1.00"
    currency: str = "USD"


@attrs.define
class Timeline:
    """The demo's steps with their durations, reported on stderr as they run.

    Each step is a span (``demo: <title>``) around the spans of the work it does. With the
    OpenTelemetry SDK installed (the ``dev`` extra) the spans are recorded, and a step's time
    is its recorded span's: one source of truth for where the time went, which ``--trace``
    prints as a tree. Without it, the step is timed here.

    Attributes:
        steps: ``(title, milliseconds)`` for each finished step.
        recorder: The in-memory recording, when the SDK is installed.
    """

    steps: list[tuple[str, float]] = attrs.field(factory=list)
    recorder: Recorder | None = None

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        """Time the block as step ``title``, showing it while it runs."""
        from payments_core import telemetry

        click.echo(f"{title} ...", err=True, nl=False)
        started = time.perf_counter()
        try:
            with telemetry.active.span(f"demo: {title}"):
                yield
        except BaseException:
            click.echo(" failed", err=True)
            raise
        elapsed = self._recorded(f"demo: {title}") or (time.perf_counter() - started) * 1000
        click.echo(f" {elapsed:.0f} ms", err=True)
        self.steps.append((title, elapsed))

    def _recorded(self, name: str) -> float | None:
        """Milliseconds of the last recorded span ``name``, if spans are recorded."""
        spans = () if self.recorder is None else self.recorder.spans()
        for span in reversed(spans):
            if span.name == name and span.end_time is not None and span.start_time is not None:
                return (span.end_time - span.start_time) / 1e6
        return None

    @property
    def total_ms(self) -> float:
        """The sum of the steps' durations."""
        return sum(elapsed for _, elapsed in self.steps)


class PaidWatcher:
    """An application plugin: sets :attr:`paid` when the ledger commits "paid" for a reference.

    :param reference: The order's reference to watch.

    Attributes:
        paid: Set once the change is committed.
        change: The committed change, once there is one.
        refund_change: The committed change to ``refunded``, once there is one.
    """

    def __init__(self, reference: str) -> None:
        self.reference = reference
        self.paid = threading.Event()
        self.change: StatusChange | None = None
        self.refund_change: StatusChange | None = None

    @hookimpl
    def payment_status_changed(self, change: StatusChange) -> None:
        """Note the change if it is the watched order becoming paid (or refunded)."""
        if change.reference != self.reference:
            return
        if change.new_status is PaymentStatus.PAID:
            self.change = change
            self.paid.set()
        elif change.new_status is PaymentStatus.REFUNDED:
            self.refund_change = change


@click.command("demo")
@click.option("--provider", default="binance", show_default=True, help="Whose sandbox to use.")
@click.option(
    "--interactive", is_flag=True, help="Wait for you to pay on the checkout page in a browser."
)
@json_option
@click.option(
    "--database-url",
    metavar="URL",
    help="The ledger to record in: sqlite:///path or postgresql://... (default: a temporary "
    "SQLite file, removed afterwards).",
)
@click.option(
    "--database",
    type=click.Path(dir_okay=False),
    hidden=True,
    help="Deprecated: --database-url sqlite:///PATH says the same.",
)
@click.option(
    "--timeout",
    type=float,
    help=f"Seconds to wait for the paid callback (default {CALLBACK_TIMEOUT_S:.0f}; "
    "none with --interactive).",
)
@click.option(
    "--refund",
    is_flag=True,
    help="Then cancel the booking: refund it in full and show the ledger's rows.",
)
@click.option(
    "--trace",
    "show_trace",
    is_flag=True,
    help="Print the recorded span tree on stderr (needs opentelemetry-sdk).",
)
def demo_command(
    provider: str,
    interactive: bool,
    as_json: bool,
    database_url: str | None,
    database: str | None,
    timeout: float | None,
    refund: bool,
    show_trace: bool,
) -> None:
    """Pay a 1.00 USD LeadsCalendar booking end to end on the provider's local sandbox.

    Starts the sandbox and the callback server on 127.0.0.1, creates the order, shows its
    checkout URL and QR code, pays it as the sandbox's payer, and waits for the verified
    callback to be recorded in the ledger. With --refund, then cancels the booking with a full
    refund and shows order, refund and events as the ledger holds them. No credentials or
    network needed.
    """
    import json
    import secrets
    import tempfile
    from pathlib import Path

    booking = Booking(
        booking_id=f"lc-booking-{secrets.token_hex(4)}",
        title="LeadsCalendar: 30-minute intro call",
    )
    from payments_core.redaction import safe_url

    if database is not None:
        click.echo("--database PATH is deprecated: use --database-url sqlite:///PATH", err=True)
        database_url = database_url or f"sqlite:///{Path(database).resolve()}"
    if timeout is None and not interactive:
        timeout = CALLBACK_TIMEOUT_S
    recorder = _recording(required=show_trace)
    with tempfile.TemporaryDirectory(prefix="payments-demo-") as scratch:
        url = database_url or f"sqlite:///{Path(scratch) / 'ledger.sqlite3'}"
        result = _run(
            booking,
            provider,
            url,
            interactive=interactive,
            timeout=timeout,
            as_json=as_json,
            refund=refund,
            recorder=recorder,
        )
    if show_trace and recorder is not None:
        from payments_core.telemetry.recording import render_tree

        click.echo(render_tree(recorder.spans()), err=True)
    if database is not None:
        result["database"] = str(Path(database).resolve())
    else:
        result["database"] = safe_url(database_url) if database_url else None
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    _report(result)


def _run(
    booking: Booking,
    provider: str,
    database_url: str,
    *,
    interactive: bool,
    timeout: float | None,
    as_json: bool,
    refund: bool = False,
    recorder: Recorder | None = None,
) -> dict[str, Any]:
    """Run the flow; return what ``--json`` prints.

    :raises click.ClickException: if the provider has no sandbox or no callback arrives.
    :raises PaymentsError: if a step fails (the root group prints it in one line).
    """
    from contextlib import ExitStack

    from payments_core import Money, OrderRequest, Payments, RefundRequest
    from payments_core.asgi import create_callback_app
    from payments_core.ledger import open_ledger
    from payments_core.plugins import PluginHost
    from payments_core.serving import BackgroundServer

    host = PluginHost()
    host.load_entry_points()
    opened = host.provider(provider).open_sandbox()
    if opened is None:
        raise click.ClickException(f"provider {provider!r} has no sandbox to run the demo on")
    watcher = PaidWatcher(booking.booking_id)
    timeline = Timeline(recorder=recorder)
    with ExitStack() as stack:
        with timeline.step(f"start the {provider} sandbox"):
            sandbox = stack.enter_context(opened)
        with timeline.step("open the ledger"):
            ledger = stack.enter_context(open_ledger(database_url))
            payments = stack.enter_context(
                Payments(
                    ledger=ledger,
                    provider_settings={provider: sandbox.settings},
                    plugins=(watcher,),
                )
            )
        with timeline.step("start the callback server"):
            app = create_callback_app(payments, close_payments=True)
            server = stack.enter_context(BackgroundServer(app))
        callback_url = f"{server.url}/callbacks/{provider}"
        # Stripe-like sandboxes send every callback to one endpoint of the account.
        sandbox.forward_callbacks(callback_url)
        request = OrderRequest(
            reference=booking.booking_id,
            price=Money(booking.price, booking.currency),
            callback_url=callback_url,
            description=booking.title,
        )
        with timeline.step(f"create the {booking.price} {booking.currency} order"):
            order = payments.create_order(request, provider=provider)
        checkout_url = sandbox.checkout_url(order.provider_order_id)
        if interactive:
            _show_checkout(checkout_url, err=as_json)
            click.echo("Open the checkout URL and press Pay (Ctrl-C aborts).", err=True)
        else:
            if not as_json:
                _show_checkout(checkout_url, err=False)
            with timeline.step("pay as the sandbox's payer"):
                sandbox.pay(order.provider_order_id)
        with timeline.step("receive, verify and record the callback"):
            if not watcher.paid.wait(timeout):
                raise click.ClickException(
                    f"no verified callback for order {order.provider_order_id} within "
                    f"{timeout:.0f} s"
                )
        refunded = None
        if refund:
            cancel = RefundRequest(
                reference=booking.booking_id,
                refund_reference=f"{booking.booking_id}-cancel",
                amount=request.price,
                reason="LeadsCalendar booking cancelled",
                callback_url=request.callback_url,
            )
            before = len(ledger.events_for(provider, booking.booking_id))
            with timeline.step(f"cancel the booking: refund {booking.price} {booking.currency}"):
                refunded = payments.refund_order(cancel, provider=provider)
            with timeline.step("receive, verify and record the refund notification"):
                _wait_for_refund_notice(ledger, refunded, before, timeout)
            rows = _ledger_rows(ledger, provider, booking.booking_id)
        recorded = ledger.get_order(provider, booking.booking_id)
    expected = PaymentStatus.REFUNDED if refund else PaymentStatus.PAID
    if recorded is None or recorded.status is not expected or watcher.change is None:
        raise click.ClickException(f"the ledger does not hold {booking.booking_id} as {expected}")
    result: dict[str, Any] = {
        "booking": {
            "id": booking.booking_id,
            "title": booking.title,
            "price": {"amount": booking.price, "currency": booking.currency},
            "status": "confirmed",
        },
        "provider": provider,
        "reference": recorded.reference,
        "provider_order_id": recorded.provider_order_id,
        "provider_reference": recorded.provider_reference,
        "status": str(recorded.status),
        "event_id": watcher.change.event_id,
        "checkout_url": checkout_url,
        "timeline": [{"step": title, "ms": round(ms, 1)} for title, ms in timeline.steps],
        "total_ms": round(timeline.total_ms, 1),
    }
    if refunded is not None:
        result["booking"]["status"] = "cancelled"
        result["refund"] = {
            "refund_reference": refunded.refund_reference,
            "provider_refund_id": refunded.provider_refund_id,
            "amount": {"amount": refunded.amount.plain, "currency": refunded.amount.currency},
            "status": str(refunded.status),
            "event_id": None if watcher.refund_change is None else watcher.refund_change.event_id,
        }
        result["ledger"] = rows
    return result


def _recording(*, required: bool) -> Recorder | None:
    """Record the demo's spans in memory, if the OpenTelemetry SDK is installed.

    :raises click.ClickException: if ``required`` (``--trace``) and they cannot be recorded.
    """
    from payments_core.errors import ConfigurationError

    try:
        from payments_core.telemetry.recording import record

        return record()
    except (ImportError, ConfigurationError) as error:
        if required:
            raise click.ClickException(
                f"--trace needs the OpenTelemetry SDK: pip install opentelemetry-sdk ({error})"
            ) from None
        return None


def _wait_for_refund_notice(
    ledger: Ledger, refund: Refund, before: int, timeout: float | None
) -> None:
    """Block until the ledger holds more than ``before`` events for the refunded order, not
    counting the one its answer recorded.

    The refund's answer or its notification settled the refund, whichever came first; the
    other is recorded once without changing anything.

    :raises click.ClickException: if ``timeout`` seconds pass first.
    """
    from payments_core.ledger.records import answer_event_id

    provider, reference = refund.provider, refund.reference
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = threading.Event()
    answered = answer_event_id(refund)

    def notices() -> int:
        return sum(e.event_id != answered for e in ledger.events_for(provider, reference))

    while notices() <= before:
        if deadline is not None and time.monotonic() > deadline:
            raise click.ClickException(f"no refund notification for {reference} in {timeout} s")
        pause.wait(_POLL_S)


def _ledger_rows(ledger: Ledger, provider: str, reference: str) -> dict[str, Any]:
    """The order's ledger rows, as ``--json`` prints them."""
    from payments_core.serialization import converter

    order = ledger.get_order(provider, reference)
    return {
        "order": converter.unstructure(order),
        "refunds": converter.unstructure(ledger.refunds_for(provider, reference)),
        "events": [
            {
                "event_id": event.event_id,
                "status": str(event.status),
                "amount": None if event.amount is None else str(event.amount),
                "applied": event.applied,
                "flag": None if event.flag is None else str(event.flag),
            }
            for event in ledger.events_for(provider, reference)
        ],
    }


def _report(result: dict[str, Any]) -> None:
    """Print the paid booking (and its refund) with the total time."""
    booking = result["booking"]
    price = booking["price"]
    click.echo("")
    click.echo(
        f"Booking {booking['id']} ({booking['title']}) is {result['status'].upper()}: "
        f"{price['amount']} {price['currency']} through {result['provider']}."
    )
    click.echo(f"  provider order id   {result['provider_order_id']}")
    if result["provider_reference"] is not None:
        click.echo(f"  provider reference  {result['provider_reference']}")
    click.echo(f"  callback event id   {result['event_id']}")
    if result["database"]:
        click.echo(f"  ledger              {result['database']}")
    if "refund" in result:
        _report_refund(result)
    # The steps and their times went to stderr as they ran; --json has them too.
    click.echo(f"Done in {result['total_ms']:.0f} ms, {len(result['timeline'])} steps.")


def _report_refund(result: dict[str, Any]) -> None:
    """Print the cancellation's refund and the ledger's rows."""
    refund, rows = result["refund"], result["ledger"]
    amount = refund["amount"]
    order = rows["order"]
    click.echo(
        f"Booking {result['booking']['id']} is CANCELLED: {amount['amount']} {amount['currency']} "
        f"refunded ({refund['status']}), refund id {refund['provider_refund_id']}."
    )
    click.echo("Ledger rows")
    refunded = order["refunded"] or {"amount": "0", "currency": order["amount"]["currency"]}
    click.echo(
        f"  order   {order['reference']}  {order['status']}  {order['amount']['amount']} "
        f"{order['amount']['currency']}  refunded {refunded['amount']} {refunded['currency']}"
    )
    for row in rows["refunds"]:
        settlement = row["settlement"]
        moved = f" ({settlement['amount']} {settlement['currency']})" if settlement else ""
        click.echo(
            f"  refund  {row['refund_reference']}  {row['status']}  {row['amount']['amount']} "
            f"{row['amount']['currency']}{moved}  {row['provider_refund_id']}"
        )
    for row in rows["events"]:
        what = "applied" if row["applied"] else f"recorded, not applied: {row['flag']}"
        click.echo(f"  event   {row['event_id']}  {row['status']}  {row['amount']}  {what}")


def _show_checkout(url: str, *, err: bool) -> None:
    """Print the checkout URL and its QR code, for a phone to scan."""
    import io

    import segno

    drawing = io.StringIO()
    segno.make(url, error="l").terminal(out=drawing, compact=True)
    click.echo(f"Checkout URL: {url}", err=err)
    click.echo(drawing.getvalue(), nl=False, err=err)


commands = [demo_command]
