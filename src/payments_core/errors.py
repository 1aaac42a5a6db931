"""Every exception ``payments`` raises, in one tree.

::

    PaymentsError                      root: catch this to catch everything below
    ├── ValidationError                bad input; names the field and the reason (a ValueError)
    ├── ConfigurationError             missing or invalid configuration (credentials, URLs)
    ├── PluginError                    a provider plugin could not be loaded or used
    │   ├── PluginLoadError            a plugin was refused at load time (e.g. a misspelled hook)
    │   └── ProviderNotFound           no provider of that name is loaded (also a LookupError)
    ├── ProviderError                  the provider answered with an error (status, provider code)
    ├── TransportError                 no usable answer came back
    │   ├── ConnectError               the request never reached the provider: safe to send again
    │   ├── RequestTimeout             no answer in time: the request may have been applied
    │   └── ResponseLost               the connection broke after sending: outcome unknown
    ├── CallbackError                  an incoming callback was refused; carries the reply to send
    │   ├── CallbackVerificationError  signature, signing key, timestamp or headers are wrong
    │   └── CallbackPayloadError       the body is malformed, too large, or of an unknown kind
    ├── CallbackDeferred               cannot be verified yet; ask again later: answer 503
    └── LedgerError                    the ledger could not record or read something

Every error keeps its context (``provider``, ``status_code``, ``provider_code``, ``request_id``) and
never holds a secret: messages are built from field names and public values only. After the core
has classified a failure, the error's ``classification`` says what to do about it.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from payments_core.models import CallbackReply, ErrorClassification

__all__ = [
    "CallbackDeferred",
    "CallbackError",
    "CallbackPayloadError",
    "CallbackVerificationError",
    "ConfigurationError",
    "ConnectError",
    "LedgerError",
    "PaymentsError",
    "PluginError",
    "PluginLoadError",
    "ProviderError",
    "ProviderNotFound",
    "RequestTimeout",
    "ResponseLost",
    "TransportError",
    "ValidationError",
]


class PaymentsError(Exception):
    """Root of every error raised by ``payments``.

    Attributes:
        provider: The provider the error concerns, when there is one.
        classification: Set by the core once ``classify_error`` has judged the failure:
            its category, whether it is retryable, and the recommended action.
    """

    provider: str | None
    classification: ErrorClassification | None

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.classification = None

    def __str__(self) -> str:
        return self.message


class ValidationError(PaymentsError, ValueError):
    """Input was rejected; nothing was changed or sent.

    Attributes:
        field: The name of the offending field, dotted for nested fields (``price.amount``).
        reason: Why it was rejected, in words that can be shown to a developer.
    """

    def __init__(self, field: str, reason: str, *, provider: str | None = None) -> None:
        super().__init__(f"{field}: {reason}", provider=provider)
        self.field = field
        self.reason = reason


class ConfigurationError(PaymentsError):
    """The configuration is missing something or holds an invalid value."""


class PluginError(PaymentsError):
    """A provider plugin could not be loaded or used."""


class PluginLoadError(PluginError):
    """A plugin was refused when it was loaded.

    Attributes:
        plugin: The name the plugin was being registered under.
        hook: The offending hook name, when one hook is at fault (misspelt, bad arguments).
    """

    def __init__(self, message: str, *, plugin: str, hook: str | None = None) -> None:
        super().__init__(message, provider=plugin)
        self.plugin = plugin
        self.hook = hook


class ProviderNotFound(PluginError, LookupError):
    """No provider of that name is loaded."""


class ProviderError(PaymentsError):
    """The provider answered, and the answer was an error.

    Attributes:
        status_code: The HTTP status of the answer.
        provider_code: The provider's own error code (Binance: ``"400201"``), if it sent one.
        request_id: The provider's request or trace id, if it sent one.
        retry_after: Seconds the provider asked us to wait (``Retry-After``), if it did.
        operation: The operation that failed (``create_order``, ``query_order``, ...).
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = None,
        provider_code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider)
        self.status_code = status_code
        self.provider_code = provider_code
        self.request_id = request_id
        self.retry_after = retry_after
        self.operation = operation

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, provider={self.provider!r}, "
            f"status_code={self.status_code!r}, provider_code={self.provider_code!r})"
        )


class TransportError(PaymentsError):
    """No usable answer came back from the provider.

    Attributes:
        request_sent: Whether the request may have reached the provider. When it may have, the
            outcome is unknown and a create must be recovered by a query, never by a new order.
        operation: The operation that was under way.
    """

    request_sent: bool = True

    def __init__(
        self, message: str, *, provider: str | None = None, operation: str | None = None
    ) -> None:
        super().__init__(message, provider=provider)
        self.operation = operation


class ConnectError(TransportError):
    """The connection could not be made; the request never left."""

    request_sent = False


class RequestTimeout(TransportError):
    """No answer arrived in time; the provider may have applied the request."""


class ResponseLost(TransportError):
    """The connection broke after the request was sent; the outcome is unknown.

    A provider raises it too for a success answer it cannot read (:meth:`unreadable`): what
    was asked may have happened all the same.
    """

    @classmethod
    def unreadable(
        cls, who: str, operation: str, *, provider: str, error: BaseException | None = None
    ) -> ResponseLost:
        """The error for ``who``'s success answer to ``operation`` that cannot be read.

        :param who: Whose answer it was, for the message (``"ExamplePay"``).
        :param error: What reading it raised; only its type is named, never its text, which
            may quote the answer.
        """
        why = "" if error is None else f" ({type(error).__name__})"
        return cls(
            f"{who}'s answer to {operation} is unreadable{why}",
            provider=provider,
            operation=operation,
        )


class CallbackError(PaymentsError):
    """An incoming callback was refused.

    Attributes:
        reply: The HTTP answer to send back to the provider (a 4xx with the provider's FAIL body).
    """

    def __init__(self, message: str, *, provider: str | None = None, reply: CallbackReply) -> None:
        super().__init__(message, provider=provider)
        self.reply = reply


class CallbackVerificationError(CallbackError):
    """The callback's signature, the key it names, its timestamp or headers did not check out."""


class CallbackPayloadError(CallbackError):
    """The callback's body is malformed, too large, or of a kind this provider does not know."""


class CallbackDeferred(PaymentsError):
    """An incoming callback cannot be verified yet, through no fault of its own: ask again later.

    What verifying it needs is not at hand right now: say, the provider's public keys are
    being fetched (by another callback), or the last fetch failed. However a provider gets its
    keys (by a certificate serial, a key id, a published key set), the meaning is the same.
    The callback is neither refused nor recorded: answer with a 5xx (the callback endpoint
    answers 503 with ``Retry-After``) so that the provider delivers it again.

    Attributes:
        retry_after: Seconds after which a redelivery can be checked, when known.
    """

    def __init__(
        self, message: str, *, provider: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, provider=provider)
        self.retry_after = retry_after


class LedgerError(PaymentsError):
    """The ledger could not record or read something."""


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Read ``Retry-After`` (seconds or an HTTP date) from response headers; ``None`` if absent.

    Headers are looked up case-insensitively. A value in the past gives ``0.0``; a malformed
    value is ignored, since a bad hint must not stop the normal backoff.
    """
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    return max(seconds, 0.0) if math.isfinite(seconds) else None
