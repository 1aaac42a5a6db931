"""Talking to the Merchant API without doing I/O: signed requests out, envelopes in.

:class:`ApiClient` turns a body into an :class:`~payments_core.HttpRequest` the core sends, and
turns the answer's envelope (``{"status","code","data","errorMessage"}``) into ``data`` or a
:class:`~payments_core.ProviderError` carrying the HTTP status, Binance's code and any
``Retry-After``. Binance may put a business error on any HTTP status, so the body is read first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

from payments_binance import protocol, signing, wire
from payments_binance.settings import BinanceSettings
from payments_core import Clock, HttpRequest, HttpResponse, Operation, ProviderError
from payments_core.errors import parse_retry_after

__all__ = ["ApiClient"]

T = TypeVar("T")
_MESSAGE_MAX: Final = 200


class ApiClient:
    """Builds signed requests for one provider instance and reads the answers.

    :param provider: The provider's registered name, for errors.
    :param settings: Credentials and base URL.
    :param clock: Where the request timestamp comes from.
    """

    def __init__(self, provider: str, settings: BinanceSettings, clock: Clock) -> None:
        self.provider = provider
        self.settings = settings
        self.clock = clock

    def request(self, path: str, body: object, *, operation: str) -> HttpRequest:
        """A signed ``POST`` of ``body`` (wire data) to ``path``; the signed bytes are sent."""
        content = wire.dumps(body)
        headers = signing.signed_headers(
            api_key=self.settings.api_key,
            api_secret=self.settings.api_secret,
            timestamp=signing.timestamp_ms(self.clock.now()),
            nonce=signing.new_nonce(),
            body=content,
        )
        return HttpRequest(
            "POST", self.settings.base_url + path, headers, content, operation=operation
        )

    def call(
        self, path: str, body: object, read: Callable[[Any], T], *, operation: str
    ) -> Operation[T]:
        """Send ``body`` to ``path`` and return ``read(data)`` of the answer.

        :raises ProviderError: as :meth:`data`; also when ``read`` finds the data unreadable
            (raises :class:`wire.MalformedAnswer`), with no ``provider_code``.
        """
        response = yield self.request(path, body, operation=operation)
        data = self.data(response, operation=operation)
        try:
            return read(data)
        except wire.MalformedAnswer as exc:
            raise self.error(
                response, f"{operation}: unreadable answer: {exc}", operation
            ) from None

    def data(self, response: HttpResponse, *, operation: str) -> Any:
        """The ``data`` of a successful answer.

        :raises ProviderError: for an error envelope (with Binance's ``code``), for an error
            status without one, and for a success status whose body is not the documented
            envelope (``provider_code`` ``None``: the outcome is then unknown).
        """
        try:
            envelope = wire.loads(response.content)
        except wire.MalformedJSON:
            envelope = None
        if not isinstance(envelope, dict):
            what = "a body that is not a JSON object"
            raise self.error(response, f"{operation}: Binance answered with {what}", operation)
        code = envelope.get("code")
        code = str(code) if isinstance(code, str | int) and not isinstance(code, bool) else None
        if (
            envelope.get("status") == protocol.STATUS_SUCCESS
            and code == protocol.CODE_SUCCESS
            and 200 <= response.status_code < 300
        ):
            return envelope.get("data")
        known = protocol.ERROR_CODES.get(code) if code else None
        name = f" {known.name}" if known else ""
        detail = envelope.get("errorMessage") or envelope.get("errorData") or ""
        detail = str(detail)[:_MESSAGE_MAX]
        message = f"{operation}: Binance answered {code or 'without a code'}{name}: {detail}"
        raise self.error(response, message.rstrip(": "), operation, code=code)

    def error(
        self, response: HttpResponse, message: str, operation: str, *, code: str | None = None
    ) -> ProviderError:
        """A :class:`ProviderError` for ``response`` with its status and ``Retry-After``."""
        return ProviderError(
            message,
            provider=self.provider,
            status_code=response.status_code,
            provider_code=code,
            retry_after=parse_retry_after(response.headers),
            operation=operation,
        )
