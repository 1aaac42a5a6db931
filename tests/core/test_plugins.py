"""Plugin loading and routing: entry points, allow-lists, refusals, one provider per call."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from payments_core import (
    Config,
    Money,
    OrderRequest,
    PluginLoadError,
    ProviderContext,
    ProviderNotFound,
    hookimpl,
    hookspecs,
)
from payments_core.plugins import PluginHost, ProviderHooks

from .fakes import EchoProvider


@pytest.fixture
def installed_plugin(tmp_path: Path) -> Iterator[str]:
    """Install a provider package the way pip would: a module plus a dist-info entry point."""
    (tmp_path / "fakeprov.py").write_text(
        textwrap.dedent(
            """
            from payments_core import ProviderInfo, hookimpl

            class FakeProvider:
                def __init__(self, context):
                    self.name = context.name

                @hookimpl
                def describe_provider(self):
                    return ProviderInfo(name=self.name, display_name="Fake")
            """
        )
    )
    info = tmp_path / "fakeprov-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeprov\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[payments.providers]\nfakeprov = fakeprov:FakeProvider\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield "fakeprov"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("fakeprov", None)


def test_providers_are_discovered_through_entry_points(installed_plugin: str) -> None:
    host = PluginHost(Config.load(environ={}))
    assert host.load_entry_points(allow=[installed_plugin]) == [installed_plugin]
    info = host.provider(installed_plugin).describe_provider()
    assert info is not None
    assert info.display_name == "Fake"


def test_the_allow_list_limits_what_loads_and_says_why(installed_plugin: str) -> None:
    host = PluginHost(Config.load(environ={"PAYMENTS_PROVIDERS": "none-such"}))
    assert host.load_entry_points() == []
    assert host.provider_names == []
    assert "allow-list" in host.skipped[installed_plugin]
    assert "no installed package" in host.skipped["none-such"]
    with pytest.raises(ProviderNotFound, match="allow-list"):
        host.provider(installed_plugin)


class Refused:
    def __init__(self, context: ProviderContext) -> None:
        pass


class Misspelled(Refused):
    @hookimpl
    def create_ordr(self, request: OrderRequest) -> None:
        raise AssertionError("never called")


class WrongArgs(Refused):
    @hookimpl
    def create_order(self, order_request: Any) -> None:
        raise AssertionError("never called")


@pytest.mark.parametrize(
    ("factory", "hook"), [(Misspelled, "create_ordr"), (WrongArgs, "create_order")]
)
def test_a_misspelled_hook_or_one_with_unknown_arguments_is_refused_naming_it(
    factory: type, hook: str
) -> None:
    host = PluginHost(Config.load(environ={}))
    with pytest.raises(PluginLoadError) as caught:
        host.register_provider("typo", factory)
    assert caught.value.hook == hook
    assert hook in str(caught.value)
    assert host.provider_names == []
    assert "typo" not in dict(host.plugins())


def test_a_failing_factory_is_a_load_error() -> None:
    def broken(context: ProviderContext) -> object:
        raise RuntimeError("boom")

    host = PluginHost(Config.load(environ={}))
    with pytest.raises(PluginLoadError, match="failed to start: RuntimeError: boom"):
        host.register_provider("broken", broken)


class Observer:
    """A wrapper (not a provider) that notes the name of every provider described."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl(wrapper=True)
    def describe_provider(self) -> Iterator[None]:
        result = yield
        self.seen.append(result.name)
        return result  # type: ignore[no-any-return]


def test_a_call_for_one_provider_reaches_that_provider_alone() -> None:
    observer = Observer()
    seen = observer.seen
    host = PluginHost(Config.load(environ={}))
    alpha = host.register_provider("alpha", EchoProvider)
    beta = host.register_provider("beta", EchoProvider)
    host.register(observer)

    info = host.provider("beta").describe_provider()
    assert info is not None
    assert info.name == "beta"
    request = OrderRequest(
        reference="r1", price=Money("1.00", "USD"),
        callback_url="https://app.example/cb",
    )  # fmt: skip
    operation = host.provider("alpha").create_order(request)
    assert operation is not None
    next(operation)
    assert alpha.calls == ["create_order"]  # type: ignore[attr-defined]
    assert beta.calls == []  # type: ignore[attr-defined]
    # Wrappers that are not providers still see calls for every provider.
    host.provider("alpha").describe_provider()
    assert seen == ["beta", "alpha"]


def test_two_providers_cannot_share_a_name() -> None:
    host = PluginHost(Config.load(environ={}))
    host.register_provider("alpha", EchoProvider)
    with pytest.raises(PluginLoadError, match="already loaded"):
        host.register_provider("alpha", EchoProvider)


def test_a_hook_called_directly_still_meets_a_wrapper_added_later() -> None:
    # A wrapper registered after the route was built must still see the call, whether it is
    # registered through the host or straight through the plugin manager.
    observer = Observer()
    seen = observer.seen
    host = PluginHost(Config.load(environ={}))
    host.register_provider("alpha", EchoProvider)
    hooks = host.provider("alpha")
    assert hooks.describe_provider() is not None
    assert seen == []
    host.pm.register(observer, name="observer-behind-the-host")
    hooks.describe_provider()
    assert seen == ["alpha"]
    host.pm.unregister(name="observer-behind-the-host")
    hooks.describe_provider()
    assert seen == ["alpha"]


def test_a_hook_called_directly_is_still_traced() -> None:
    traced: list[str] = []
    host = PluginHost(Config.load(environ={}))
    host.register_provider("alpha", EchoProvider)
    hooks = host.provider("alpha")
    hooks.describe_provider()
    undo = host.pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: traced.append(name), lambda *args: None
    )
    try:
        hooks.describe_provider()
    finally:
        undo()
    hooks.describe_provider()
    assert traced == ["describe_provider"]


def test_a_second_implementation_for_the_same_provider_goes_through_pluggy() -> None:
    class Shadow:  # implements the same hook for every provider: pluggy must decide
        @hookimpl(tryfirst=True)
        def describe_provider(self) -> None:
            calls.append("shadow")

    calls: list[str] = []
    host = PluginHost(Config.load(environ={}))
    host.register_provider("alpha", EchoProvider)
    hooks = host.provider("alpha")
    host.pm.register(Shadow(), name="shadow")
    info = hooks.describe_provider()
    assert calls == ["shadow"]
    assert info is not None
    assert info.name == "alpha"


def test_provider_hooks_offer_every_routed_hook_of_the_spec_and_nothing_else() -> None:
    # The hook list is the spec: ProviderHooks types each hook once, and only register_commands
    # (called on every plugin by the command line) is not routed to one provider.
    spec = {name for name in vars(hookspecs.PaymentProvider) if not name.startswith("_")}
    typed = {name for name in vars(ProviderHooks) if not name.startswith("_")}
    assert typed == spec - {"register_commands"}


def test_the_application_hook_is_called_through_the_host() -> None:
    class App:
        @hookimpl
        def payment_status_changed(self, change: object) -> None:
            heard.append(change)

    heard: list[object] = []
    host = PluginHost(Config.load(environ={}))
    before = host.status_listened
    host.register(App())
    assert (before, host.status_listened) == (False, True)
    host.payment_status_changed(change="moved")  # type: ignore[arg-type]
    assert heard == ["moved"]
