"""payments_binance: the Binance Pay Merchant API as a ``payments`` provider plugin.

Registered by the entry point ``binance = "payments_binance:BinancePayProvider"`` in the
``payments.providers`` group. See ``docs/binance.md`` for configuration and behaviour.
"""

from payments_binance.provider import BinancePayProvider

__all__ = ["BinancePayProvider"]
