"""LeadsCalendar's booking payments: a booking is confirmed when its 1 USD payment is.

A small Starlette app, the whole integration in one file:

* ``POST /bookings`` records a booking as ``awaiting_payment`` and creates its 1.00 USD order
  (the booking id is the payment reference, so a retried request never creates a second order);
  the answer carries the checkout URL to send the payer to.
* ``GET /bookings/{id}`` shows the booking.
* ``POST /bookings/{id}/cancel`` cancels it: a paid booking is refunded in full (the refund
  reference is derived from the booking id, so a retried cancel never refunds twice) and is
  ``cancelled`` once the refund is committed; an unpaid one has its order closed.
* ``/payments`` is the callback app from :func:`payments_core.asgi.create_callback_app`; the
  provider's callback URL is ``https://<host>/payments/callbacks/binance``.
* :class:`ConfirmPaidBookings` implements the ``payment_status_changed`` hook: the booking is
  confirmed there, once the verified callback is committed to the ledger, and nowhere else;
  and marked cancelled there once its refund is. A payment seen but not yet confirmed (or
  held for review) shows in the booking's ``payment`` and confirms nothing.

Run it with real credentials (``BINANCE_PAY_API_KEY``, ``BINANCE_PAY_API_SECRET``)::

    uvicorn --factory --app-dir docs/examples leadscalendar_app:app_from_environment

Behind a reverse proxy, add ``--proxy-headers`` so that the callback URL is built with the
public host name.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from payments_core import (
    Config,
    Money,
    OrderRequest,
    Payments,
    PaymentsError,
    PaymentStatus,
    RefundRequest,
    RefundStatus,
    StatusChange,
    hookimpl,
)
from payments_core.asgi import create_callback_app
from payments_core.ledger import DEFAULT_DATABASE_URL, open_ledger

#: What confirming a booking costs.
PRICE = Money("1.00", "USD")
PROVIDER = "binance"


@attrs.define
class Booking:
    """One LeadsCalendar booking.

    Attributes:
        booking_id: The booking's id, also its payment reference.
        title: What is booked.
        status: ``awaiting_payment`` until the payment is committed, then ``confirmed``;
            ``cancelling`` while its refund is on its way, ``cancelled`` once it is back (or if
            its payment could not be set up, failed, or it was cancelled before it was paid).
        payment: While it awaits payment, what the payer is told: ``pending`` (nothing seen),
            ``confirming`` ("we saw your payment; it is being confirmed") or ``needs_review``
            ("the amount you sent differs; we are looking at it").
    """

    booking_id: str
    title: str
    status: str = "awaiting_payment"
    payment: str = "pending"


class Bookings:
    """The bookings (in memory here; a table in LeadsCalendar's database in real life)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bookings: dict[str, Booking] = {}

    def add(self, title: str) -> Booking:
        """Record a new booking, awaiting its payment."""
        booking = Booking(f"booking-{secrets.token_hex(6)}", title)
        with self._lock:
            self._bookings[booking.booking_id] = booking
        return booking

    def get(self, booking_id: str) -> Booking | None:
        """The booking, or ``None``."""
        with self._lock:
            return self._bookings.get(booking_id)

    def cancel(self, booking_id: str) -> None:
        """Mark the booking cancelled (its payment could not be set up)."""
        with self._lock:
            booking = self._bookings.get(booking_id)
            if booking is not None and booking.status == "awaiting_payment":
                booking.status = "cancelled"

    def payment_seen(self, booking_id: str, status: PaymentStatus) -> None:
        """Note that the booking's payment was seen (``confirming``) or is under review."""
        with self._lock:
            booking = self._bookings.get(booking_id)
            if booking is not None and booking.status == "awaiting_payment":
                booking.payment = status.value

    def confirm(self, booking_id: str) -> None:
        """Mark the booking confirmed (it is paid), unless it was cancelled meanwhile."""
        with self._lock:
            booking = self._bookings.get(booking_id)
            if booking is not None and booking.status == "awaiting_payment":
                booking.status = "confirmed"

    def cancelling(self, booking_id: str) -> None:
        """Mark a confirmed booking as being cancelled (its refund is asked for)."""
        with self._lock:
            booking = self._bookings.get(booking_id)
            if booking is not None and booking.status == "confirmed":
                booking.status = "cancelling"

    def refunded(self, booking_id: str) -> None:
        """Mark the booking cancelled (its payment is back)."""
        with self._lock:
            booking = self._bookings.get(booking_id)
            if booking is not None:
                booking.status = "cancelled"


class ConfirmPaidBookings:
    """LeadsCalendar's application hook: confirm a booking when its order becomes paid.

    ``payments`` calls it once per real status change, after the verified callback is committed
    to the ledger: never for a forged, duplicate or late callback. A payment seen but not yet
    confirmed, or held for review, is shown to the payer and books nothing.
    """

    def __init__(self, bookings: Bookings) -> None:
        self.bookings = bookings

    @hookimpl
    def payment_status_changed(self, change: StatusChange) -> None:
        """Confirm the booking whose payment (reference = booking id) is now paid; cancel the
        one whose payment is now refunded, or failed; tell the payer of one seen."""
        if change.new_status is PaymentStatus.PAID:
            self.bookings.confirm(change.reference)
        elif change.new_status is PaymentStatus.REFUNDED:
            self.bookings.refunded(change.reference)
        elif change.new_status is PaymentStatus.FAILED:
            self.bookings.cancel(change.reference)
        elif not change.new_status.is_final:  # confirming or needs_review: not paid yet
            self.bookings.payment_seen(change.reference, change.new_status)


def create_app(payments: Payments, bookings: Bookings) -> Starlette:
    """The LeadsCalendar app over ``payments`` (which must have a ledger); it closes it on exit."""

    async def book(request: Request) -> JSONResponse:
        data = await request.json()
        booking = bookings.add(str(data.get("title") or "Meeting"))
        order_request = OrderRequest(
            reference=booking.booking_id,
            price=PRICE,
            callback_url=str(request.url_for("payments", path=f"/callbacks/{PROVIDER}")),
            description=f"LeadsCalendar booking: {booking.title}",
        )
        try:
            order = await payments.create_order_async(order_request, provider=PROVIDER)
            if order.checkout_url is None:
                # The order exists, but the answer carrying its payment link was lost (a
                # timeout) and Binance gives the link nowhere else: nobody can pay it. Close
                # it, so it cannot be paid later either, and let the payer book again.
                await payments.close_order_async(booking.booking_id, provider=PROVIDER)
                bookings.cancel(booking.booking_id)
                return JSONResponse(
                    {
                        "error": "the payment could not be set up; please book again",
                        "booking_id": booking.booking_id,
                    },
                    status_code=503,
                )
        except PaymentsError as error:
            reason = error.classification.user_message if error.classification else str(error)
            return JSONResponse({"error": reason}, status_code=502)
        answer = attrs.asdict(booking)
        answer |= {"checkout_url": order.checkout_url, "order_id": order.provider_order_id}
        return JSONResponse(answer, status_code=201)

    async def cancel(request: Request) -> JSONResponse:
        booking = bookings.get(request.path_params["booking_id"])
        if booking is None:
            return JSONResponse({"error": "no such booking"}, status_code=404)
        try:
            if booking.payment != "pending" and booking.status == "awaiting_payment":
                # Money is on its way: it can be neither stopped nor given back yet.
                reason = "its payment is being confirmed: cancel once it is"
                return JSONResponse({"error": reason}, status_code=409)
            if booking.status == "awaiting_payment":
                # Not paid: close the order so that it cannot be paid any more.
                await payments.close_order_async(booking.booking_id, provider=PROVIDER)
                bookings.cancel(booking.booking_id)
                return JSONResponse(attrs.asdict(booking))
            bookings.cancelling(booking.booking_id)
            refund = await payments.refund_order_async(
                RefundRequest(
                    reference=booking.booking_id,
                    # One cancellation, one refund: a retried request finds the same refund.
                    refund_reference=f"{booking.booking_id}-cancel",
                    amount=PRICE,
                    reason="LeadsCalendar booking cancelled",
                    callback_url=str(request.url_for("payments", path=f"/callbacks/{PROVIDER}")),
                ),
                provider=PROVIDER,
            )
        except PaymentsError as error:
            reason = error.classification.user_message if error.classification else str(error)
            return JSONResponse({"error": reason}, status_code=502)
        done = refund.status is RefundStatus.SUCCEEDED
        if done:
            # The refund's notification may have settled it first, on another request whose
            # hook has not run yet: the booking is cancelled either way.
            bookings.refunded(booking.booking_id)
        answer = attrs.asdict(booking) | {"refund": str(refund.status)}
        # Pending: the refund's notification (or asking again) finishes the cancellation.
        return JSONResponse(answer, status_code=200 if done else 202)

    async def show(request: Request) -> JSONResponse:
        booking = bookings.get(request.path_params["booking_id"])
        if booking is None:
            return JSONResponse({"error": "no such booking"}, status_code=404)
        return JSONResponse(attrs.asdict(booking))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        del app
        yield
        await payments.aclose()  # a mounted app gets no lifespan: the host closes the facade

    return Starlette(
        routes=[
            Route("/bookings", book, methods=["POST"]),
            Route("/bookings/{booking_id}", show),
            Route("/bookings/{booking_id}/cancel", cancel, methods=["POST"]),
            Mount("/payments", app=create_callback_app(payments), name="payments"),
        ],
        lifespan=lifespan,
    )


def app_from_environment() -> Starlette:
    """The app configured from the environment: credentials, ``PAYMENTS_DATABASE_URL``."""
    bookings = Bookings()
    config = Config.load()
    payments = Payments(
        config,
        ledger=open_ledger(config.database_url or DEFAULT_DATABASE_URL),
        plugins=(ConfirmPaidBookings(bookings),),
    )
    return create_app(payments, bookings)
