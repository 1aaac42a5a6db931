"""ExamplePay for the ``payments`` framework: a provider written against the public API only.

The entry point ``payments.providers: example`` names :class:`ExampleProvider`, the factory
the core calls with a :class:`~payments_core.ProviderContext`.
"""

from payments_example.provider import ExampleProvider

__all__ = ["ExampleProvider"]
