"""The ``payments`` pytest plugin: fixtures for testing payment providers.

**It is auto-loaded.** Installing ``payments-core`` registers this module under the ``pytest11``
entry point, so pytest loads it in every run in that environment (``-p no:payments`` turns it
off). Loading it is cheap and changes nothing on its own. When loaded it:

* registers the ``payments_contract`` marker, which every contract test carries
  (``-m payments_contract`` runs only contract tests, ``-m "not payments_contract"`` skips them);
* offers the fixtures :func:`payments_factory`, :func:`register_provider` and
  :func:`secret_scanner`;
* if ``PAYMENTS_HYPOTHESIS_PROFILE`` is set (``ci`` or ``dev``) and no other profile has been
  loaded, loads that hypothesis profile for the whole run (see
  :mod:`payments_core.testing.profiles`).

It does **not** collect or run any test: the contract suite runs only in a test module that
subclasses :class:`~payments_core.testing.ProviderContract`. Loading it costs what
``import payments_core`` costs; it does not import hypothesis (unless the profile variable is
set) and leaves logging configuration and hypothesis settings alone unless asked.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from payments_core.facade import Payments
    from payments_core.plugins import ProviderFactory
    from payments_core.testing.logs import LogCapture

__all__ = ["PaymentsFactory", "SecretScanner"]


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker; load the hypothesis profile named by the environment, if any."""
    config.addinivalue_line(
        "markers", "payments_contract: a test of the payments provider contract suite"
    )
    from payments_core.testing.profiles import PROFILE_ENV

    if os.environ.get(PROFILE_ENV):
        from hypothesis import settings

        from payments_core.testing.profiles import register_profiles, selected_profile

        register_profiles()
        # A profile the project's own conftest (or --hypothesis-profile) chose wins.
        if settings.get_current_profile_name() == "default":
            settings.load_profile(selected_profile())


PaymentsFactory = Callable[..., "Payments"]
"""``payments_factory(providers, **kwargs) -> Payments``; see :func:`payments_factory`."""


@pytest.fixture
def payments_factory() -> Iterator[PaymentsFactory]:
    """Build :class:`~payments_core.Payments` facades for a test; all are closed afterwards.

    ``payments_factory({"mine": MyProvider}, provider_settings={"mine": {...}},
    transport=httpx.MockTransport(handler))`` takes the facade's keyword arguments, with test
    defaults: installed entry points are *not* loaded, and the retry policy never sleeps.
    """
    from payments_core.facade import Payments
    from payments_core.retry import RetryPolicy

    opened = contextlib.ExitStack()

    def build(providers: Mapping[str, ProviderFactory] | None = None, **kwargs: Any) -> Payments:
        kwargs.setdefault("load_entry_points", False)
        kwargs.setdefault("retry", RetryPolicy(sleep=lambda _: None, initial_delay=0.0))
        return opened.enter_context(Payments(providers=providers, **kwargs))

    with opened:
        yield build


@pytest.fixture
def register_provider() -> Iterator[Callable[..., object]]:
    """Register a provider on an existing facade for one test; it is removed afterwards.

    ``register_provider(payments, "mine", MyProvider, base_url=...)`` returns the plugin
    object; the keyword arguments are the provider's settings.
    """
    registered = contextlib.ExitStack()

    def register(
        payments: Payments, name: str, factory: ProviderFactory, **settings: Any
    ) -> object:
        plugin = payments.host.register_provider(name, factory, **settings)
        registered.callback(payments.host.unregister, name)
        return plugin

    with registered:
        yield register


class SecretScanner:
    """Watches secret values and fails the test if any reaches a log line.

    Attributes:
        logs: The capture of every log line (``DEBUG`` and up) written during the test.
    """

    def __init__(self, logs: LogCapture) -> None:
        self.logs = logs
        self._secrets: dict[str, str] = {}

    def watch(self, label: str, value: str) -> None:
        """Fail the test if ``value`` appears in a log line; ``label`` names it in the failure."""
        self._secrets[label] = value

    def check(self) -> None:
        """Fail now if a watched value has been logged so far."""
        leaks = self.logs.leaks(self._secrets)
        if leaks:
            pytest.fail(f"{len(leaks)} secret leak(s) in logs: " + "; ".join(leaks[:5]))


@pytest.fixture
def secret_scanner() -> Iterator[SecretScanner]:
    """Capture DEBUG logs for the test and fail it if a watched secret was logged.

    ``secret_scanner.watch("api_secret", SECRET)``; the check runs when the test ends, or
    earlier with ``secret_scanner.check()``. The failure names the secret, never shows it.
    """
    from payments_core.testing.logs import LogCapture

    with LogCapture() as logs:
        scanner = SecretScanner(logs)
        yield scanner
    scanner.check()
