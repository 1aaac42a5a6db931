"""The console as a Starlette app: its pages, its actions, and their guards.

Pages (``GET``): ``/`` the overview, ``/orders`` the filtered list, ``/order?provider=&reference=``
one order and its timeline, ``/flagged`` the events that changed nothing and why.

Actions (``POST /actions/{action}``: ``reconcile``, ``announce``, ``refund``, ``close``) each
take two posts: the first shows what will happen and asks to confirm; the second, carrying
``confirm=yes``, does it through the :class:`~payments_core.Payments` facade and logs who did it.
Both need an operator who ``may_act`` and the form's CSRF token: an HMAC, under the app's secret,
of a random cookie the console set and of the operator's name (a signed double submit), so a
page of another site can neither read nor forge it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

import attrs
import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from payments_core.console.access import Authorize, Operator, refuse_everyone, set_console_cookie
from payments_core.console.chart import daily_charts
from payments_core.console.queries import FLAG_REASONS, LedgerReader
from payments_core.console.rows import OrderFilter, OrderRow
from payments_core.errors import ConfigurationError, PaymentsError, ValidationError
from payments_core.facade import RECONCILE_AFTER, Payments
from payments_core.ledger.sql import SqlLedger
from payments_core.models import PaymentStatus, RefundRequest
from payments_core.money import Money
from payments_core.redaction import get_logger, safe_url

__all__ = ["create_console_app"]

log = get_logger("payments_core.console")

CSRF_COOKIE: Final = "payments_console_csrf"
CHART_DAYS: Final = 30
ACTIONS: Final = ("reconcile", "announce", "refund", "close")
#: An action's form holds a few short fields; anything larger is refused unread.
MAX_FORM_BYTES: Final = 16 * 1024

#: What a page shows: its template's name and the template's context.
Page = tuple[str, dict[str, Any]]


def create_console_app(
    payments: Payments,
    *,
    authorize: Authorize = refuse_everyone,
    secret: bytes | None = None,
    stuck_after: timedelta = RECONCILE_AFTER,
    page_size: int = 50,
    clock: Callable[[], datetime] | None = None,
) -> Starlette:
    """Build the operator's console over ``payments`` and its ledger.

    :param payments: A facade with a SQLite or PostgreSQL ledger; the console reads the ledger
        and acts through the facade.
    :param authorize: Decides who is behind each request (see
        :mod:`payments_core.console.access`). The default refuses everyone.
    :param secret: Signs the forms' CSRF tokens. Random by default, which is right for one
        process; give several processes serving one console the same secret.
    :param stuck_after: How long an order may stay pending before the overview lists it.
    :param page_size: Orders per page of the list.
    :param clock: Where the console reads the time; the system clock if unset.
    :raises ConfigurationError: if ``payments`` has no SQL ledger.
    """
    ledger = payments.ledger
    if not isinstance(ledger, SqlLedger):
        raise ConfigurationError(
            "the console needs a facade with a SQL ledger: Payments(ledger=open_ledger(url))"
        )
    console = _Console(
        payments=payments,
        reader=LedgerReader(ledger),
        authorize=authorize,
        secret=secret if secret is not None else secrets.token_bytes(32),
        stuck_after=stuck_after,
        page_size=page_size,
        clock=clock or (lambda: datetime.now(UTC)),
        ledger_name=safe_url(ledger.url),
    )

    @asynccontextmanager
    async def closing(app: Starlette) -> AsyncIterator[None]:
        del app
        yield
        console.reader.close()

    return Starlette(
        lifespan=closing,
        routes=[
            Route("/", partial(console.render, console.overview), name="overview"),
            Route("/orders", partial(console.render, console.orders), name="orders"),
            Route("/order", partial(console.render, console.order), name="order"),
            Route("/flagged", partial(console.render, console.flagged), name="flagged"),
            Route("/actions/{action}", console.act, methods=["POST"]),
        ],
    )


def _templates() -> jinja2.Environment:
    templates = jinja2.Environment(
        loader=jinja2.PackageLoader("payments_core.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    templates.filters["when"] = _when
    templates.filters["plain"] = _plain
    templates.globals["query"] = _query
    return templates


@attrs.define(kw_only=True, eq=False)
class _Console:
    payments: Payments
    reader: LedgerReader
    authorize: Authorize
    secret: bytes = attrs.field(repr=False)
    stuck_after: timedelta
    page_size: int
    clock: Callable[[], datetime]
    ledger_name: str
    templates: jinja2.Environment = attrs.field(init=False, factory=_templates)

    # -- pages ------------------------------------------------------------------------------

    def overview(self, request: Request, operator: Operator) -> Page:
        now = self.clock()
        seen = self.reader.overview(now=now, stuck_after=self.stuck_after, days=CHART_DAYS)
        first_day = (now.astimezone(UTC) - timedelta(days=CHART_DAYS - 1)).date()
        providers = sorted({p for counts in seen.by_status.values() for p in counts})
        return "overview.html", {
            "seen": seen,
            "providers": providers,
            "statuses": [s.value for s in PaymentStatus if s.value in seen.by_status],
            "charts": daily_charts(seen.daily_totals, first_day, CHART_DAYS),
            "first_day": first_day,
            "stuck_minutes": int(self.stuck_after.total_seconds() // 60),
        }

    def orders(self, request: Request, operator: Operator) -> Page:
        params = request.query_params
        where = _order_filter(params)
        found = self.reader.orders(where, cursor=params.get("after") or None, size=self.page_size)
        chosen = {k: v for k, v in params.items() if k != "after" and v}
        return "orders.html", {
            "page": found,
            "where": where,
            "chosen": chosen,
            "statuses": [s.value for s in PaymentStatus],
            "providers": self.reader.providers(),
        }

    def order(self, request: Request, operator: Operator) -> Page:
        provider = request.query_params.get("provider", "")
        reference = request.query_params.get("reference", "")
        found = self._order(provider, reference)
        return "order.html", {
            "order": found,
            "closable": found.status.can_become(PaymentStatus.CLOSED),
            "timeline": self.reader.timeline(found),
            "refunds": self.reader.refunds(provider, reference),
            # Fixed now, so that submitting this form twice refunds once.
            "refund_reference": f"console-{secrets.token_hex(8)}",
        }

    def flagged(self, request: Request, operator: Operator) -> Page:
        before = request.query_params.get("before", "")
        if before and not before.isdigit():
            raise HTTPException(400, "The page cursor `before` must be an event number.")
        events = self.reader.flagged(before=int(before) if before else None)
        return "flagged.html", {"events": events, "reasons": FLAG_REASONS}

    # -- actions ----------------------------------------------------------------------------

    async def act(self, request: Request) -> Response:
        # Forms are urlencoded and small: parsed here, without a multipart parser.
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return HTMLResponse("form too large", status_code=413)
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return await run_in_threadpool(self.render, partial(self._act, form=form), request)

    def _act(self, request: Request, operator: Operator, *, form: Mapping[str, str]) -> Page:
        action = request.path_params["action"]
        if action not in ACTIONS:
            raise HTTPException(404, f"There is no action {action!r}.")
        if not operator.may_act:
            raise HTTPException(403, f"{operator.name} may look but not act: nothing was changed.")
        if not self._csrf_valid(request, operator, form.get("csrf", "")):
            raise HTTPException(
                403,
                "This form's token is missing or wrong: nothing was changed. Reload "
                "the page and try again.",
            )
        fields = {k: v for k, v in form.items() if k not in {"csrf", "confirm"}}
        order = self._target(action, fields)
        if form.get("confirm") != "yes":
            return "confirm.html", {
                "action": action,
                "fields": fields,
                "order": order,
                "what": _describe(action, fields, order),
            }
        outcome, ok = self._perform(action, fields, order, operator)
        return "result.html", {"action": action, "order": order, "outcome": outcome, "ok": ok}

    def _order(self, provider: str, reference: str) -> OrderRow:
        found = self.reader.order(provider, reference)
        if found is None:
            raise HTTPException(404, f"No order is recorded for {reference!r} at {provider!r}.")
        return found

    def _target(self, action: str, fields: Mapping[str, str]) -> OrderRow | None:
        if action == "announce":
            return None
        order = self._order(fields.get("provider", ""), fields.get("reference", ""))
        if action == "close" and not order.status.can_become(PaymentStatus.CLOSED):
            raise HTTPException(
                409, f"Only a pending order can be closed; this one is {order.status}."
            )
        if action == "refund":
            _refund_request(fields, order)  # refused before the confirmation if it cannot be
        return order

    def _perform(
        self, action: str, fields: Mapping[str, str], order: OrderRow | None, operator: Operator
    ) -> tuple[str, bool]:
        payments = self.payments
        try:
            if action == "announce":
                count = payments.announce_pending_changes()
                outcome = f"{count} change(s) announced to the application"
                if count == 0 and self.reader.outbox()[0] > 0:
                    outcome += (
                        "; the changes left wait for a process with the application's plugin "
                        "(payment_status_changed)"
                    )
            else:
                assert order is not None
                outcome = self._on_order(action, fields, order)
        except PaymentsError as error:
            log.warning(
                "console: %s tried to %s %s: %s: %s",
                operator.name, action, _target_name(order), type(error).__name__, error,
            )  # fmt: skip
            return f"{type(error).__name__}: {error}", False
        log.warning(
            "console: %s did %s %s: %s", operator.name, action, _target_name(order), outcome
        )
        return outcome, True

    def _on_order(self, action: str, fields: Mapping[str, str], order: OrderRow) -> str:
        payments, provider, reference = self.payments, order.provider, order.reference
        if action == "refund":
            request = _refund_request(fields, order)
            refund = payments.refund_order(request, provider=provider)
            return (
                f"refund {refund.refund_reference} of {refund.amount} is {refund.status}"
                f" (reason: {refund.reason})"
            )
        if action == "close":
            closed = payments.close_order(reference, provider=provider)
            if not closed:
                return f"{provider} did not close the order"
        reconciled = payments.reconcile_order(reference, provider=provider)
        answer, result = reconciled.answer, reconciled.result
        if answer is None:
            return f"{provider} has no order for {reference}"
        if result is not None and result.change is not None:
            change = result.change
            return f"{provider} says {answer.status}: {change.old_status} → {change.new_status}"
        return f"{provider} says {answer.status}: nothing to change"

    # -- plumbing ---------------------------------------------------------------------------

    def render(self, page: Callable[[Request, Operator], Page], request: Request) -> Response:
        """Authorize, render ``page``'s template, and keep the CSRF cookie set."""
        cookie = request.cookies.get(CSRF_COOKIE, "")
        fresh = len(cookie) != 64
        if fresh:
            cookie = secrets.token_hex(32)
        operator = self.authorize(request)
        status_code = 200
        try:
            if operator is None:
                raise HTTPException(403, _REFUSED)
            name, context = page(request, operator)
        except HTTPException as refused:  # a request the console will not serve, and why
            name, context = "refused.html", {"message": refused.detail}
            status_code = refused.status_code
        except ValidationError as error:
            name, context, status_code = "refused.html", {"message": str(error)}, 400
        root = request.scope.get("root_path", "")
        context.update(
            base=root,
            operator=operator,
            csrf=self._csrf_token(cookie, operator),
            ledger=self.ledger_name,
            now=self.clock(),
        )
        body = self.templates.get_template(name).render(context)
        response = HTMLResponse(body, status_code=status_code)
        response.headers["cache-control"] = "no-store"
        response.headers["content-security-policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
            "frame-ancestors 'none'"
        )
        response.headers["x-content-type-options"] = "nosniff"
        if fresh:
            set_console_cookie(response, request, CSRF_COOKIE, cookie)
        return response

    def _csrf_token(self, cookie: str, operator: Operator | None) -> str:
        if operator is None:
            return ""
        message = f"{cookie}\x00{operator.name}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def _csrf_valid(self, request: Request, operator: Operator, offered: str) -> bool:
        cookie = request.cookies.get(CSRF_COOKIE, "")
        if len(cookie) != 64 or not offered:
            return False
        return hmac.compare_digest(offered, self._csrf_token(cookie, operator))


_REFUSED: Final = (
    "You are not allowed to see this console. The application decides who may "
    "(create_console_app's authorize); `payments console` prints a login link at start."
)


def _order_filter(params: Mapping[str, str]) -> OrderFilter:
    status = params.get("status") or None
    if status is not None and status not in {s.value for s in PaymentStatus}:
        raise ValidationError("status", f"is not a status: {status!r}")
    return OrderFilter(
        status=None if status is None else PaymentStatus(status),
        provider=params.get("provider") or None,
        since=_day(params, "since"),
        until=_day(params, "until"),
        reference=params.get("reference", "").strip() or None,
    )


def _day(params: Mapping[str, str], name: str) -> date | None:
    value = params.get(name) or None
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(name, f"must be a date, YYYY-MM-DD, not {value!r}") from None


def _refund_request(fields: Mapping[str, str], order: OrderRow) -> RefundRequest:
    text = fields.get("amount", "").strip()
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValidationError("amount", f"must be a number, not {text!r}") from None
    reason = fields.get("reason", "").strip()
    if not reason:
        raise ValidationError("reason", "say why the order is refunded")
    return RefundRequest(
        reference=order.reference,
        refund_reference=fields.get("refund_reference", ""),
        amount=Money(amount, order.currency),
        reason=reason,
    )


def _describe(action: str, fields: Mapping[str, str], order: OrderRow | None) -> str:
    if action == "announce":
        return "Call the application's payment_status_changed for every change still unannounced."
    assert order is not None
    name = f"{order.reference} at {order.provider}"
    if action == "reconcile":
        return f"Ask {order.provider} where {order.reference} stands now, and apply its answer."
    if action == "close":
        return f"Ask {order.provider} to close the unpaid order {name}; it can then not be paid."
    amount, reason = fields.get("amount", "").strip(), fields.get("reason", "").strip()
    refund = fields.get("refund_reference", "")
    return f"Give back {amount} {order.currency} of {name} (refund {refund}), because: {reason}"


def _target_name(order: OrderRow | None) -> str:
    return "the outbox" if order is None else f"{order.provider}/{order.reference}"


def _when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _plain(amount: Decimal | None) -> str:
    return "" if amount is None else format(amount, "f")


def _query(**params: object) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})
