"""What a provider author hands the contract suite, and how the suite injects failures.

:class:`ProviderHarness` is the author's side: which factory, which settings, how requests
reach the provider's sandbox, how to obtain a genuine signed callback, and which secrets must
never be logged. :class:`FaultInjector` is the suite's side: an ``httpx`` transport wrapped
around the author's that can answer the next request with any HTTP status, or lose it to a
timeout or a refused connection, without the provider or its sandbox knowing.
"""

from __future__ import annotations

import abc
import enum
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs
import httpx

from payments_core.models import CallbackRequest, Order, Refund
from payments_core.plugins import ProviderFactory
from payments_core.testing.strategies import CallbackFormat

__all__ = ["Fault", "FaultInjector", "FaultMode", "InProcessHarness", "ProviderHarness"]

_SENSITIVE_WORDS: Final = ("signature", "authorization", "secret", "token", "key")


class ProviderHarness(abc.ABC):
    """A provider under test, with its sandbox: what the contract suite needs from the author.

    Subclass it and implement the abstract members; return an instance from a
    ``provider_harness`` fixture (see :class:`~payments_core.testing.ProviderContract`). The
    suite may share one harness between tests, so it never assumes an empty sandbox: it uses
    fresh references in every test.
    """

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The name the provider is registered under (``ProviderInfo.name`` must match)."""

    @abc.abstractmethod
    def factory(self) -> ProviderFactory:
        """The provider factory, as the ``payments.providers`` entry point names it."""

    @abc.abstractmethod
    def settings(self) -> Mapping[str, Any]:
        """Provider settings that point the provider at the sandbox (base URL, credentials)."""

    def transport(self) -> httpx.BaseTransport | None:
        """How blocking requests reach the sandbox; ``None`` for the real network (loopback)."""
        return None

    def async_transport(self) -> httpx.AsyncBaseTransport | None:
        """How asynchronous requests reach the sandbox; ``None`` for the real network."""
        return None

    @property
    @abc.abstractmethod
    def callback_format(self) -> CallbackFormat:
        """Where the provider's callbacks carry their signature (and timestamp, key name)."""

    @abc.abstractmethod
    def paid_callback(self, order: Order) -> CallbackRequest:
        """A genuine callback, signed as the provider signs it, saying ``order`` was paid.

        The usual way: pay the order in the sandbox and capture the callback it sends.
        """

    def unfinished_callbacks(self, order: Order) -> Sequence[CallbackRequest]:
        """Genuine callbacks saying ``order``'s payment started but has not ended (default: none).

        For a provider that reports statuses that are not final (a payment seen but not yet
        confirmed, one held for the merchant's review): move the order through them in the
        sandbox and return the callbacks it sent, oldest first. :meth:`paid_callback` must
        still pay the order afterwards. Without them, the ``not-final-never-finalises``
        contract skips.
        """
        del order
        return ()

    def refund_callback(self, order: Order, refund: Refund) -> CallbackRequest | None:
        """The genuine notification the provider sent once ``refund`` of ``order`` ended.

        The usual way: capture it as the sandbox sends it (settling the refund first if the
        sandbox leaves refunds pending). ``None`` (the default): the harness cannot give it,
        and the contracts that need it are skipped.
        """
        del order, refund
        return None

    def picked_asset_callback(self, order: Order) -> CallbackRequest | None:
        """A genuine callback saying ``order`` was paid in an asset the payer picked.

        For a provider whose payer picks what to pay in when paying (a coin other than the
        price's currency), so the settlement is learnt only from the payment: pay the order
        in the sandbox in such an asset. ``None`` (the default): payers cannot pick, and the
        ``settlement-learnt`` contract is skipped.
        """
        del order
        return None

    @abc.abstractmethod
    def order_count(self) -> int:
        """How many orders the sandbox holds in all (the suite compares before and after)."""

    def refund_count(self) -> int | None:
        """How many refunds the sandbox holds in all; ``None`` if it cannot tell (default).

        The refund contracts compare before and after, to see that a refund asked twice was
        made once; without a count they check the refunds' ids alone.
        """
        return None

    @abc.abstractmethod
    def secrets(self) -> Mapping[str, str]:
        """Values that must never reach a log line or an error message, by label.

        At least the credentials in :meth:`settings`; add key material the sandbox uses.
        """

    def error_body(self, status_code: int) -> bytes:
        """The body the provider sends with an error ``status_code`` (default: empty).

        The suite injects error answers with this body; a provider must classify them by
        HTTP status even when the body tells it nothing more.
        """
        del status_code
        return b""

    def is_sensitive_request_header(self, name: str) -> bool:
        """Whether the value of an outgoing request header must never be logged.

        Default: names containing ``signature``, ``authorization``, ``secret``, ``token`` or
        ``key``. The suite searches the logs for every such value the provider sent.
        """
        lowered = name.lower()
        return any(word in lowered for word in _SENSITIVE_WORDS)

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release what the harness holds (a sandbox server, say)."""


class InProcessHarness(ProviderHarness):
    """A provider under test whose sandbox runs in this process, reached without sockets.

    The common case of a sandbox written as a plain object behind an ``httpx.MockTransport``:
    pass the provider factory, the name to register it under and that transport (it serves
    blocking and asynchronous requests alike), then implement the remaining abstract members.

    :param factory: The provider factory (tests pass deliberately broken variants).
    :param name: The name to register it under.
    :param transport: The transport that hands each request to the sandbox.
    """

    def __init__(
        self, factory: ProviderFactory, *, name: str, transport: httpx.MockTransport
    ) -> None:
        self._factory = factory
        self._name = name
        self._transport = transport

    @property
    def name(self) -> str:
        return self._name

    def factory(self) -> ProviderFactory:
        return self._factory

    def transport(self) -> httpx.BaseTransport:
        return self._transport

    def async_transport(self) -> httpx.AsyncBaseTransport:
        return self._transport


class FaultMode(enum.Enum):
    """How an injected fault answers a request."""

    FORWARD = "forward"  # no fault: the request goes through (to fault a later one)
    ANSWER = "answer"  # the provider never sees the request; the given answer comes back
    TIMEOUT = "timeout"  # the provider handles the request; its answer never arrives
    UNREACHABLE = "unreachable"  # the connection is refused; the request never leaves


@attrs.frozen
class Fault:
    """One injected failure for :class:`FaultInjector`.

    Attributes:
        kind: How the request is answered.
        status_code: The HTTP status of an ``ANSWER``.
        headers: Its headers.
        body: Its body.
    """

    kind: FaultMode
    status_code: int = 0
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes = b""

    @classmethod
    def answer(
        cls, status_code: int, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> Fault:
        """Answer with ``status_code`` instead of forwarding the request."""
        return cls(FaultMode.ANSWER, status_code, dict(headers or {}), body)

    @classmethod
    def forward(cls) -> Fault:
        """Let the request through untouched: a place-holder before a later request's fault."""
        return cls(FaultMode.FORWARD)

    @classmethod
    def timeout(cls) -> Fault:
        """Forward the request, then lose the answer to a read timeout (outcome unknown)."""
        return cls(FaultMode.TIMEOUT)

    @classmethod
    def unreachable(cls) -> Fault:
        """Refuse the connection: the request never reaches the provider."""
        return cls(FaultMode.UNREACHABLE)


class FaultInjector(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An ``httpx`` transport that forwards to the sandbox's, except when told to fail.

    Attributes:
        requests: Every request that came through, in order, faulted or not.
    """

    def __init__(
        self,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._given = transport
        self._given_async = async_transport
        self._own: httpx.HTTPTransport | None = None
        self._own_async: httpx.AsyncHTTPTransport | None = None
        self._planned: deque[Fault] = deque()
        self._always: Fault | None = None
        self.requests: list[httpx.Request] = []

    def inject(self, fault: Fault, *, times: int = 1) -> None:
        """Fail the next ``times`` requests with ``fault``."""
        self._planned.extend([fault] * times)

    def fail_every_request(self, fault: Fault | None) -> None:
        """Fail every request with ``fault`` until called with ``None``."""
        self._always = fault

    def _next_fault(self, request: httpx.Request) -> Fault | None:
        self.requests.append(request)
        if self._planned:
            fault = self._planned.popleft()
            return None if fault.kind is FaultMode.FORWARD else fault
        return self._always

    def _inner(self) -> httpx.BaseTransport:
        if self._given is not None:
            return self._given
        if self._own is None:
            self._own = httpx.HTTPTransport()
        return self._own

    def _inner_async(self) -> httpx.AsyncBaseTransport:
        if self._given_async is not None:
            return self._given_async
        if self._own_async is None:
            self._own_async = httpx.AsyncHTTPTransport()
        return self._own_async

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        fault = self._next_fault(request)
        if fault is None:
            return self._inner().handle_request(request)
        if fault.kind is FaultMode.ANSWER:
            return _answer(fault, request)
        if fault.kind is FaultMode.UNREACHABLE:
            raise httpx.ConnectError("injected: connection refused", request=request)
        response = self._inner().handle_request(request)
        response.read()
        response.close()
        raise httpx.ReadTimeout("injected: the answer was lost", request=request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        fault = self._next_fault(request)
        if fault is None:
            return await self._inner_async().handle_async_request(request)
        if fault.kind is FaultMode.ANSWER:
            return _answer(fault, request)
        if fault.kind is FaultMode.UNREACHABLE:
            raise httpx.ConnectError("injected: connection refused", request=request)
        response = await self._inner_async().handle_async_request(request)
        await response.aread()
        await response.aclose()
        raise httpx.ReadTimeout("injected: the answer was lost", request=request)

    def close(self) -> None:
        """Close the transport this injector made itself (never the harness's)."""
        if self._own is not None:
            self._own.close()
            self._own = None

    async def aclose(self) -> None:
        """Close the asynchronous transport this injector made itself."""
        if self._own_async is not None:
            await self._own_async.aclose()
            self._own_async = None


def _answer(fault: Fault, request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        fault.status_code, headers=dict(fault.headers), content=fault.body, request=request
    )
