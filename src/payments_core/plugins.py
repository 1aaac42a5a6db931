"""Loading provider plugins and calling one provider's hooks.

A provider is published under the entry-point group ``payments.providers``::

    [project.entry-points."payments.providers"]
    binance = "payments_binance:BinancePayProvider"

The entry point names a *factory*: a callable taking a :class:`ProviderContext` and returning
the plugin object whose methods carry ``@hookimpl``. A class is the usual factory. The core
builds one instance per :class:`PluginHost`, so each facade has its own provider state (caches)
and settings.

Which providers load is decided by an allow-list (``PAYMENTS_PROVIDERS=binance,other`` or
``[payments] providers``); unset loads all. Applications and tests may also register providers
in code. A plugin that implements a hook no spec declares is refused at load time
(:class:`~payments_core.errors.PluginLoadError` naming the hook), not ignored.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Final, Protocol, cast

import attrs
import pluggy

from payments_core import hookspecs
from payments_core.classify import FallbackClassifier, fallback_classification
from payments_core.config import Config, ProviderSettings
from payments_core.errors import PluginLoadError, ProviderNotFound
from payments_core.hookspecs import ProviderSandbox

if TYPE_CHECKING:
    from payments_core.errors import PaymentsError
    from payments_core.http import Operation
    from payments_core.models import (
        CallbackRequest,
        CallbackResult,
        ErrorClassification,
        Order,
        OrderRequest,
        ProviderInfo,
        Refund,
        RefundRequest,
        StatusChange,
    )

__all__ = [
    "ENTRY_POINT_GROUP",
    "KNOWN_DISTRIBUTIONS",
    "Clock",
    "PluginHost",
    "ProviderContext",
    "ProviderFactory",
    "ProviderHooks",
    "SystemClock",
]

ENTRY_POINT_GROUP: Final = "payments.providers"
#: The distributions that provide the providers this project knows of, named in the error
#: when one of them is asked for but not installed.
KNOWN_DISTRIBUTIONS: Final = {
    "binance": "payments-core",
    "stripe": "payments-stripe",
    "example": "payments-exampleprovider",
}


class Clock(Protocol):
    """Where a provider reads the time (injectable for tests)."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


@attrs.frozen
class ProviderContext:
    """What a provider factory receives.

    Attributes:
        name: The name the provider is registered under.
        settings: Its configuration (TOML section, environment, values given in code).
        clock: The clock to read time from.
    """

    name: str
    settings: ProviderSettings
    clock: Clock = attrs.field(factory=SystemClock)


ProviderFactory = Callable[[ProviderContext], object]


class ProviderHooks:
    """The hooks of one provider, typed, each call routed to that provider alone.

    One method per hook of :class:`~payments_core.hookspecs.PaymentProvider`, each a call of
    pluggy's hook caller with every other provider removed (``subset_hook_caller``): wrappers
    and observers that are not providers still see the call.
    """

    def __init__(self, pm: pluggy.PluginManager, name: str, others: Collection[object]) -> None:
        self.name = name
        self._pm = pm
        self._others = others
        self._routed: dict[str, pluggy.HookCaller] = {}

    def _route(self, hook: str) -> pluggy.HookCaller:
        if hook not in self._routed:
            self._routed[hook] = self._pm.subset_hook_caller(hook, remove_plugins=self._others)
        return self._routed[hook]

    def describe_provider(self) -> ProviderInfo | None:
        return cast("ProviderInfo | None", self._route("describe_provider")())

    def create_order(self, request: OrderRequest) -> Operation[Order] | None:
        return cast("Operation[Order] | None", self._route("create_order")(request=request))

    def query_order(self, reference: str) -> Operation[Order | None] | None:
        return cast(
            "Operation[Order | None] | None", self._route("query_order")(reference=reference)
        )

    def close_order(self, reference: str) -> Operation[bool] | None:
        return cast("Operation[bool] | None", self._route("close_order")(reference=reference))

    def refund_order(self, order: Order, request: RefundRequest) -> Operation[Refund] | None:
        return cast(
            "Operation[Refund] | None", self._route("refund_order")(order=order, request=request)
        )

    def query_refund(self, order: Order, request: RefundRequest) -> Operation[Refund | None] | None:
        return cast(
            "Operation[Refund | None] | None",
            self._route("query_refund")(order=order, request=request),
        )

    def refund_id(self, request: RefundRequest) -> str | None:
        return cast("str | None", self._route("refund_id")(request=request))

    def handle_callback(self, callback: CallbackRequest) -> Operation[CallbackResult] | None:
        return cast(
            "Operation[CallbackResult] | None", self._route("handle_callback")(callback=callback)
        )

    def classify_error(self, error: PaymentsError) -> ErrorClassification:
        # The core's fallback classifier answers when the provider does not.
        return cast(
            "ErrorClassification",
            self._route("classify_error")(error=error) or fallback_classification(error),
        )

    def check_connection(self) -> Operation[str] | None:
        return cast("Operation[str] | None", self._route("check_connection")())

    def open_sandbox(self) -> AbstractContextManager[ProviderSandbox] | None:
        return cast("AbstractContextManager[ProviderSandbox] | None", self._route("open_sandbox")())


class PluginHost:
    """The pluggy plugin manager with providers loaded and routed by name.

    Attributes:
        pm: The underlying ``pluggy.PluginManager`` (project name ``payments``).
        skipped: Why each provider found but not loaded was left out (name → reason).
    """

    def __init__(self, config: Config | None = None, *, clock: Clock | None = None) -> None:
        self.config = config if config is not None else Config.load()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs.PaymentProvider)
        self.pm.add_hookspecs(hookspecs.ApplicationHooks)
        self.pm.register(FallbackClassifier(), name="payments_core.fallback_classifier")
        self._providers: dict[str, object] = {}
        self._routes: dict[str, ProviderHooks] = {}
        self.skipped: dict[str, str] = {}

    # -- loading ---------------------------------------------------------------------------

    def load_entry_points(
        self,
        allow: Collection[str] | None = None,
        *,
        settings: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> list[str]:
        """Load providers from the ``payments.providers`` entry points.

        :param allow: Names to load; defaults to the configuration's allow-list, and ``None``
            there means all. Names found but not allowed are recorded in :attr:`skipped`.
        :param settings: Per-provider values that override the configuration.
        :returns: The names loaded.
        :raises PluginLoadError: if an allowed plugin cannot be imported or is refused.
        """
        allowed = self.config.providers if allow is None else tuple(allow)
        loaded = []
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if allowed is not None and ep.name not in allowed:
                self.skipped[ep.name] = "not in the allow-list (PAYMENTS_PROVIDERS)"
                continue
            if ep.name in self._providers:
                continue
            self.register_provider(ep.name, _load(ep), **(settings or {}).get(ep.name, {}))
            loaded.append(ep.name)
        for name in allowed or ():
            if name not in self._providers:
                self.skipped[name] = "allowed, but no installed package provides it"
        return loaded

    def register_provider(self, name: str, factory: ProviderFactory, **settings: Any) -> object:
        """Register a provider under ``name`` from its factory; return the plugin object.

        :param settings: Values that override the provider's configuration.
        :raises PluginLoadError: if the name is taken, the factory fails, or the plugin
            implements a hook that no spec declares or with wrong arguments.
        """
        if name in self._providers:
            raise PluginLoadError(f"a provider named {name!r} is already loaded", plugin=name)
        context = ProviderContext(name, self.config.for_provider(name, **settings), self.clock)
        try:
            plugin = factory(context)
        except PluginLoadError:
            raise
        except Exception as exc:
            raise PluginLoadError(
                f"provider {name!r} failed to start: {type(exc).__name__}: {exc}", plugin=name
            ) from exc
        self._register(name, plugin)
        self._providers[name] = plugin
        self._routes.clear()
        return plugin

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a plugin that is not a provider: an observer, wrapper or application hook.

        :raises PluginLoadError: as :meth:`register_provider`.
        """
        self._register(name or f"plugin-{id(plugin)}", plugin)
        self._routes.clear()

    def unregister(self, name: str) -> None:
        """Remove a provider or plugin registered under ``name``."""
        self.pm.unregister(name=name)
        self._providers.pop(name, None)
        self._routes.clear()

    def _register(self, name: str, plugin: object) -> None:
        try:
            self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginLoadError(
                f"plugin {name!r} was refused: {exc}", plugin=name, hook=_hook_named_in(exc)
            ) from None
        except ValueError as exc:
            raise PluginLoadError(f"plugin {name!r} was refused: {exc}", plugin=name) from None
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            # Every plugin before this one passed the same check: the unknown hook is its.
            self.pm.unregister(plugin)
            hook = _hook_named_in(exc)
            raise PluginLoadError(
                f"plugin {name!r} implements {hook!r}, which is not a payments hook "
                f"(known hooks: {', '.join(sorted(self._spec_names()))})",
                plugin=name,
                hook=hook,
            ) from None

    def _spec_names(self) -> set[str]:
        return {
            name
            for name in dir(self.pm.hook)
            if not name.startswith("_") and getattr(self.pm.hook, name).has_spec()
        }

    # -- using -----------------------------------------------------------------------------

    @property
    def provider_names(self) -> list[str]:
        """Names of the loaded providers, sorted."""
        return sorted(self._providers)

    def provider(self, name: str) -> ProviderHooks:
        """The hooks of provider ``name``, routed to it alone.

        :raises ProviderNotFound: if no provider of that name is loaded.
        """
        route = self._routes.get(name)
        if route is None:
            if name not in self._providers:
                loaded = ", ".join(self.provider_names) or "none"
                hint = f" ({self.skipped[name]})" if name in self.skipped else ""
                if not hint and name in KNOWN_DISTRIBUTIONS:
                    hint = f" (pip install {KNOWN_DISTRIBUTIONS[name]} provides it)"
                raise ProviderNotFound(
                    f"no provider named {name!r} is loaded{hint}; loaded: {loaded}", provider=name
                )
            others = [p for n, p in self._providers.items() if n != name]
            route = self._routes[name] = ProviderHooks(self.pm, name, others)
        return route

    # -- the application's hooks ------------------------------------------------------------

    @property
    def status_listened(self) -> bool:
        """Whether a registered plugin implements ``payment_status_changed``."""
        return bool(self.pm.hook.payment_status_changed.get_hookimpls())

    def payment_status_changed(self, change: StatusChange) -> None:
        """Tell the application's plugins of ``change``: its ``payment_status_changed`` hook.

        :raises Exception: whatever an implementation raises.
        """
        from payments_core.telemetry import active, vocabulary

        with active.span("payments.payment_status_changed", vocabulary.attributes_of(change)):
            self.pm.hook.payment_status_changed(change=change)

    def plugins(self) -> Iterator[tuple[str, object]]:
        """Every registered plugin with its name."""
        for name, plugin in self.pm.list_name_plugin():
            if name is not None:
                yield name, plugin


def _load(ep: EntryPoint) -> ProviderFactory:
    try:
        factory = ep.load()
    except Exception as exc:
        raise PluginLoadError(
            f"entry point {ep.name} = {ep.value!r} could not be imported: "
            f"{type(exc).__name__}: {exc}",
            plugin=ep.name,
        ) from exc
    if not callable(factory):
        raise PluginLoadError(
            f"entry point {ep.name} = {ep.value!r} must name a factory (a class or callable "
            "taking a ProviderContext)",
            plugin=ep.name,
        )
    return cast("ProviderFactory", factory)


def _hook_named_in(exc: pluggy.PluginValidationError) -> str | None:
    # pluggy names the hook "for hook 'x'" (wrong arguments) or "unknown hook 'x'".
    match = re.search(r"hook '([^']+)'", str(exc))
    return match.group(1) if match else None
