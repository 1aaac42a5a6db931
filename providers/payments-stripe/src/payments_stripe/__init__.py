"""Stripe Checkout for the ``payments`` framework, written against its public API only.

The entry point ``payments.providers: stripe`` names :class:`StripeProvider`, the factory the
core calls with a :class:`~payments_core.ProviderContext`. The provider speaks Stripe's HTTP
API through the core's transport; :mod:`payments_stripe.sandbox` imitates that API on loopback.
"""

from payments_stripe.provider import StripeProvider

__all__ = ["StripeProvider"]
