"""The :class:`Sandbox` facade: one simulated Binance Pay merchant service, in process.

It ties the order book, the authenticator, the fault decisions, the key ring and the webhook
dispatcher together, exposes the ASGI app (``sandbox.app``) and the payer's actions (``pay``,
``cancel``), refund settlement (``settle_refund``) and read-only views (``orders``,
``refunds``) to tests, and reports figures (``stats()``). Payer actions on an unknown order raise
:class:`~payments_binance.sandbox.state.OrderNotFound`; on a paid, closed or expired order,
:class:`~payments_binance.sandbox.state.OrderNotPayable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Mapping, Sequence

import attrs

from payments_binance import protocol
from payments_binance.protocol import BizStatus
from payments_binance.sandbox.app import SandboxApp, build_app
from payments_binance.sandbox.auth import Authenticator, NonceRegistry
from payments_binance.sandbox.certificates import KeyRing
from payments_binance.sandbox.config import SandboxConfig
from payments_binance.sandbox.merchant import Counters, MerchantApi
from payments_binance.sandbox.shared import SharedOrderBook
from payments_binance.sandbox.state import Book, Order, OrderBook, Refund
from payments_binance.sandbox.webhooks import WebhookDispatcher
from payments_core.testing.sandbox import DeliveryAttempt, FaultRecord, Faults


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Sandbox:
    """A local Binance Pay Merchant API; serve ``sandbox.app`` with any ASGI server.

    Use it as ``async with sandbox:`` (or let the ASGI lifespan do it) so that webhook deliveries
    and the expiry sweep have an event loop and are cleaned up afterwards.
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config if config is not None else SandboxConfig()
        self.clock = self.config.clock or _wall_clock_ms
        #: Public base URL for the links handed out; set by :class:`SandboxServer` when unset.
        self.base_url: str | None = self.config.base_url
        self.keys = KeyRing.build(
            self.config.signing_key_pem,
            self.config.extra_signing_keys,
            self.config.active_signing_key,
        )
        #: The new platform certificate's keys; ``None`` while Binance has not enabled it.
        self.new_keys: KeyRing | None = None
        if self.config.new_certificate != "off":
            self.new_keys = KeyRing.build(self.config.new_signing_key_pem, (), 0)
        window_ms = self.config.effective_timestamp_window_ms
        self.book: Book
        nonces: NonceRegistry | None = None
        if self.config.state is None:
            self.book = OrderBook(self.config.seed)
        else:
            self.book = nonces = SharedOrderBook(
                self.config.state, seed=self.config.seed, window_ms=window_ms
            )
        # Each worker draws its own faults: the same seed would repeat one worker's in another.
        fault_seed = self.config.seed + 7919 * self.config.worker
        # The certificates endpoint is spared: a client cannot verify anything without it.
        spared = {protocol.PATH_CERTIFICATES, self.config.new_certificates_path}
        self.faults = Faults(self.config.faults, fault_seed, spared) if self.config.faults else None
        credentials = self.config.accepted_credentials
        self.authenticator = Authenticator(
            credentials,
            window_ms,
            self.clock,
            accept_lowercase_signature=self.config.accept_lowercase_signature,
            reject_reused_nonce=self.config.reject_reused_nonce,
            nonces=nonces,
        )
        self.webhooks = WebhookDispatcher(
            self.config, self.keys, self.clock, self.faults, self.new_keys
        )
        self.counters = Counters()
        self.merchant = MerchantApi(
            config=self.config,
            book=self.book,
            keys=self.keys,
            new_keys=self.new_keys,
            clock=self.clock,
            merchant_ids={key: self.config.merchant_id + i for i, key in enumerate(credentials)},
            expire_due=self.expire_due,
            notify=self.webhooks.notify,
            refunded=self._refunded,
            counters=self.counters,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.app: SandboxApp = build_app(self)

    # -- read access for tests -------------------------------------------------------------

    @property
    def orders(self) -> Mapping[str, Order]:
        """Every stored order by prepay id (read-only view)."""
        return self.book.orders

    @property
    def refunds(self) -> Sequence[Refund]:
        """Every refund made (never a duplicate request), in the order they were made."""
        return self.book.refunds

    @property
    def webhook_log(self) -> Sequence[DeliveryAttempt]:
        """Every delivery attempt and skipped delivery, in the order they happened."""
        return self.webhooks.poster.log

    @property
    def fault_log(self) -> Sequence[FaultRecord]:
        """Every injected fault, in the order it was decided."""
        return self.faults.log if self.faults else ()

    @property
    def certificate_serial(self) -> str:
        """Serial of the key that signs new webhooks."""
        return self.keys.signing_key.serial

    @property
    def certificate_serials(self) -> tuple[str, ...]:
        """Serials of every published key."""
        return tuple(key.serial for key in self.keys.keys)

    def stats(self) -> dict[str, object]:
        """Figures served at ``/sandbox/stats``."""
        return {
            **attrs.asdict(self.counters),  # copies of its dicts
            "faults_injected": dict(self.faults.counts()) if self.faults else {},
            "webhook_events": self.webhooks.events,
            "webhooks_delivered": self.webhooks.poster.delivered,
            "webhook_attempts": self.webhooks.poster.attempts,
            "webhooks_failed": self.webhooks.poster.failed,
            "webhooks_skipped": self.webhooks.poster.skipped,
            "orders_by_status": self.book.count_by_status(),
            "worker": self.config.worker,
            "worker_pid": os.getpid(),
        }

    # -- payer side and time ---------------------------------------------------------------

    def pay(self, prepay_id: str, *, open_user_id: str | None = None) -> Order:
        """The payer pays the open order ``prepay_id``: it becomes PAID and PAY_SUCCESS is sent."""
        self.expire_due()
        order = self.book.get(prepay_id)
        payer = open_user_id or f"sandbox-payer-{order.checkout_token[:16]}"
        self.book.pay(order, now=self.clock(), open_user_id=payer)
        self.webhooks.notify(order, BizStatus.PAY_SUCCESS)
        return order

    def cancel(self, prepay_id: str) -> Order:
        """The payer cancels the open order: it becomes CANCELED and PAY_CLOSED is sent."""
        self.expire_due()
        order = self.book.get(prepay_id)
        self.book.cancel(order, now=self.clock())
        self.webhooks.notify(order, BizStatus.PAY_CLOSED)
        return order

    def settle_refund(
        self, refund_request_id: str, *, succeeded: bool = True, merchant_key: str | None = None
    ) -> Refund:
        """Settle a pending refund (``REFUND_SUCCESS`` or ``REFUND_FAIL``); PAY_REFUND follows.

        ``merchant_key`` defaults to the primary API key. Settling a settled refund changes
        nothing and sends nothing. Raises :class:`RefundNotFound` for an unknown id.
        """
        order, refund, settled = self.book.settle_refund(
            merchant_key or self.config.api_key,
            refund_request_id,
            succeeded=succeeded,
            now=self.clock(),
        )
        if settled:
            self.webhooks.notify_refund(order, refund)
        return refund

    def settle_refunds(self, prepay_id: str) -> list[Refund]:
        """Settle every refund of the order ``prepay_id`` as succeeded (``payments trigger
        settle-refund``); those already settled change nothing."""
        return [
            self.settle_refund(refund.refund_request_id, merchant_key=refund.merchant_key)
            for refund in self.refunds
            if refund.prepay_id == prepay_id
        ]

    def _refunded(self, order: Order, refund: Refund) -> None:
        # Runs on the request's loop: settle now, later, or leave it to settle_refund().
        delay = self.config.refund_settle_delay_s
        if delay == 0:
            self.settle_refund(refund.refund_request_id, merchant_key=refund.merchant_key)
        elif delay is not None:
            asyncio.get_running_loop().call_later(
                delay, self._settle_later, refund.refund_request_id, refund.merchant_key
            )

    def _settle_later(self, refund_request_id: str, merchant_key: str) -> None:
        if self._loop is not None:  # the sandbox was closed meanwhile: leave it pending
            self.settle_refund(refund_request_id, merchant_key=merchant_key)

    def expire_due(self) -> list[Order]:
        """Expire every open order past its ``orderExpireTime``; PAY_CLOSED for each (if on)."""
        expired = self.book.expire_due(self.clock())
        if self.config.webhook_on_expiry:
            for order in expired:
                self.webhooks.notify(order, BizStatus.PAY_CLOSED)
        return expired

    def rotate_key(self) -> str:
        """Sign future webhooks with the next published key (generated if needed); its serial."""
        return self.keys.rotate()

    def rotate_new_key(self) -> str:
        """Sign future webhooks with the next key of the new certificate; its serial.

        Raises ``ValueError`` when the new certificate is off (``new_certificate="off"``).
        """
        if self.new_keys is None:
            raise ValueError("the new certificate is off: set new_certificate to both or new_only")
        return self.new_keys.rotate()

    # -- lifecycle -------------------------------------------------------------------------

    async def startup(self) -> None:
        """Bind webhook delivery and the expiry sweep to the running event loop."""
        self._loop = asyncio.get_running_loop()
        self.webhooks.poster.bind(self._loop)
        if self.config.expiry_sweep_interval_s > 0:
            self._sweeper = self._loop.create_task(self._sweep())

    async def aclose(self) -> None:
        """Stop the sweep, cancel pending deliveries, close the HTTP client."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await self.webhooks.poster.aclose()
        if isinstance(self.book, SharedOrderBook):
            self.book.disconnect()  # reopened if the sandbox is read afterwards
        self._loop = None

    async def wait_for_webhooks(self, timeout: float = 10.0) -> None:
        """Wait until every pending delivery (with its retries) has finished; no polling.

        Raises ``TimeoutError`` if deliveries are still running after ``timeout`` seconds.
        """
        await asyncio.to_thread(self.wait_for_webhooks_sync, timeout)

    def wait_for_webhooks_sync(self, timeout: float = 10.0) -> None:
        """Blocking form of :meth:`wait_for_webhooks`, for threads other than the sandbox loop."""
        if not self.webhooks.poster.wait_idle(timeout):
            raise TimeoutError(f"webhook deliveries still pending after {timeout} s")

    async def __aenter__(self) -> Sandbox:
        await self.startup()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.config.expiry_sweep_interval_s)
            self.expire_due()
