"""payments_core: a provider-neutral payment framework.

Providers are pluggy plugins, found through the ``payments.providers`` entry points; the
application talks to :class:`Payments`. Provider authors import :data:`hookimpl` from here.
"""

#: The release, read by the build (pyproject.toml) and shown by ``payments --version``.
__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

from payments_core.config import Config, ProviderSettings
from payments_core.errors import (
    CallbackDeferred,
    CallbackError,
    CallbackPayloadError,
    CallbackVerificationError,
    ConfigurationError,
    ConnectError,
    LedgerError,
    PaymentsError,
    PluginError,
    PluginLoadError,
    ProviderError,
    ProviderNotFound,
    RequestTimeout,
    ResponseLost,
    TransportError,
    ValidationError,
)
from payments_core.hookspecs import ProviderSandbox, hookimpl
from payments_core.http import HttpRequest, HttpResponse, Operation
from payments_core.models import (
    CAPABILITIES,
    CallbackReply,
    CallbackRequest,
    CallbackResult,
    ErrorCategory,
    ErrorClassification,
    IdempotencyPattern,
    Order,
    OrderRequest,
    PaymentEvent,
    PaymentStatus,
    ProviderInfo,
    Refund,
    RefundNotice,
    RefundRequest,
    RefundStatus,
    StatusChange,
    TransactionType,
)
from payments_core.money import Currency, Money, register_currency
from payments_core.plugins import Clock, ProviderContext, SystemClock
from payments_core.redaction import Secret, get_logger

if TYPE_CHECKING:
    from payments_core.claims import ClaimPolicy
    from payments_core.facade import Payments
    from payments_core.ledger import Ledger, open_ledger
    from payments_core.retry import RetryPolicy
    from payments_core.rules import EventFlag
    from payments_core.serialization import converter

# Loaded on first use: they pull in httpx, tenacity, cattrs and the ledger, which a plugin that
# only needs the models and hookimpl should not pay for at import time.
_LAZY = {
    "Payments": "payments_core.facade",
    "ClaimPolicy": "payments_core.claims",
    "RetryPolicy": "payments_core.retry",
    "converter": "payments_core.serialization",
    "EventFlag": "payments_core.rules",
    **dict.fromkeys(("Ledger", "open_ledger"), "payments_core.ledger"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'payments_core' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "CAPABILITIES",
    "CallbackDeferred",
    "CallbackError",
    "CallbackPayloadError",
    "CallbackReply",
    "CallbackRequest",
    "CallbackResult",
    "CallbackVerificationError",
    "ClaimPolicy",
    "Clock",
    "Config",
    "ConfigurationError",
    "ConnectError",
    "Currency",
    "ErrorCategory",
    "ErrorClassification",
    "EventFlag",
    "HttpRequest",
    "HttpResponse",
    "IdempotencyPattern",
    "Ledger",
    "LedgerError",
    "Money",
    "Operation",
    "Order",
    "OrderRequest",
    "PaymentEvent",
    "PaymentStatus",
    "Payments",
    "PaymentsError",
    "PluginError",
    "PluginLoadError",
    "ProviderContext",
    "ProviderError",
    "ProviderInfo",
    "ProviderNotFound",
    "ProviderSandbox",
    "ProviderSettings",
    "Refund",
    "RefundNotice",
    "RefundRequest",
    "RefundStatus",
    "RequestTimeout",
    "ResponseLost",
    "RetryPolicy",
    "Secret",
    "StatusChange",
    "SystemClock",
    "TransactionType",
    "TransportError",
    "ValidationError",
    "converter",
    "get_logger",
    "hookimpl",
    "open_ledger",
    "register_currency",
]
