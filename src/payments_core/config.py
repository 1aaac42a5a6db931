"""Configuration from the environment and an optional TOML file.

Precedence, highest first: values passed in code, environment variables, the TOML file,
defaults. The file is read only when named, by ``PAYMENTS_CONFIG`` or by the caller::

    [payments]
    providers = ["binance"]            # allow-list; PAYMENTS_PROVIDERS=binance,other
    default_provider = "binance"       # PAYMENTS_DEFAULT_PROVIDER
    database_url = "sqlite:///payments.sqlite3"   # PAYMENTS_DATABASE_URL

    [payments.http]
    connect_timeout = 5.0
    read_timeout = 15.0

    [payments.retry]
    max_attempts = 5
    deadline = 30.0

    [providers.binance]                # one section per provider
    api_key = "..."                    # or BINANCE_PAY_API_KEY
    api_secret = "..."                 # or BINANCE_PAY_API_SECRET

Secrets read through :meth:`ProviderSettings.secret` come back as
:class:`~payments_core.redaction.Secret` and never show in a repr or a log line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from payments_core.errors import ConfigurationError
from payments_core.redaction import Secret

__all__ = ["Config", "HttpSettings", "ProviderSettings"]


def _section(data: Mapping[str, Any], *path: str) -> Mapping[str, Any]:
    node: Any = data
    for key in path:
        node = node.get(key, {}) if isinstance(node, Mapping) else {}
    if not isinstance(node, Mapping):
        raise ConfigurationError(f"[{'.'.join(path)}] must be a table")
    return node


@attrs.frozen
class ProviderSettings:
    """One provider's settings: its TOML section, the environment, and values given in code.

    A provider reads a key with :meth:`get` or :meth:`secret`, naming the environment variable
    that may override it.
    """

    name: str
    values: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    environ: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    overrides: Mapping[str, Any] = attrs.field(factory=dict, repr=False, kw_only=True)

    def get(self, key: str, *, env: str | None = None, default: str | None = None) -> str | None:
        """Return ``key``: given in code, else environment variable ``env``, else the file."""
        value = self.overrides.get(key)
        if value is None and env is not None and self.environ.get(env):
            return self.environ[env]
        if value is None:
            value = self.values.get(key)
        if value is None:
            return default
        if isinstance(value, Secret):
            return value.reveal()
        return str(value)

    def secret(self, key: str, *, env: str | None = None) -> Secret | None:
        """Return the setting ``key`` wrapped as a :class:`Secret`, or ``None`` if unset."""
        value = self.get(key, env=env)
        return Secret(value) if value else None

    def number(self, key: str, *, env: str | None = None, default: float) -> float:
        """Return the setting ``key`` as a number, raising ``ConfigurationError`` if it is not."""
        raw = self.get(key, env=env)
        if raw is None:
            return default
        try:
            return float(raw)
        except ValueError:
            source = env if env and self.environ.get(env) else f"[providers.{self.name}] {key}"
            raise ConfigurationError(f"{source} must be a number, got {raw!r}") from None

    def __repr__(self) -> str:
        keys = sorted({*self.values, *self.overrides})
        return f"ProviderSettings(name={self.name!r}, keys={keys!r})"


@attrs.frozen(kw_only=True)
class HttpSettings:
    """Timeouts and pool sizes of the HTTP clients the core owns (seconds, connections)."""

    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    write_timeout: float = 10.0
    pool_timeout: float = 10.0
    max_connections: int = 100
    max_keepalive_connections: int = 20


@attrs.frozen(kw_only=True)
class Config:
    """Everything the :class:`~payments_core.Payments` facade is configured with.

    Attributes:
        providers: Allow-list of provider names to load from entry points; ``None`` loads all.
        default_provider: The provider used when a call names none.
        database_url: Where the ledger lives (``sqlite:///path`` or ``postgresql://...``).
        http: Client timeouts and pool sizes.
        retry: Keyword arguments for :class:`~payments_core.retry.RetryPolicy`.
        provider_values: Each provider's TOML section.
        environ: The environment the configuration was read from.
    """

    providers: tuple[str, ...] | None = None
    default_provider: str | None = None
    database_url: str | None = None
    http: HttpSettings = HttpSettings()
    retry: Mapping[str, float] = attrs.field(factory=dict)
    provider_values: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, repr=False)
    environ: Mapping[str, str] = attrs.field(factory=dict, repr=False)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> Config:
        """Read the configuration from ``environ`` (default ``os.environ``) and a TOML file.

        The file is ``path`` if given, else ``$PAYMENTS_CONFIG`` if set, else none.

        :raises ConfigurationError: if the file is missing, is not valid TOML, or holds a value
            of the wrong type.
        """
        import tomllib  # only when a file is read

        env = dict(os.environ if environ is None else environ)
        file = path if path is not None else env.get("PAYMENTS_CONFIG")
        data: Mapping[str, Any] = {}
        if file:
            try:
                data = tomllib.loads(Path(file).read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise ConfigurationError(f"configuration file {file} does not exist") from None
            except tomllib.TOMLDecodeError as exc:
                raise ConfigurationError(f"configuration file {file} is not TOML: {exc}") from None
        core = _section(data, "payments")
        providers: tuple[str, ...] | None = None
        if env.get("PAYMENTS_PROVIDERS") is not None:
            providers = tuple(p.strip() for p in env["PAYMENTS_PROVIDERS"].split(",") if p.strip())
        elif "providers" in core:
            listed = core["providers"]
            if not isinstance(listed, list) or not all(isinstance(p, str) for p in listed):
                raise ConfigurationError("[payments] providers must be a list of names")
            providers = tuple(listed)
        try:
            http = HttpSettings(**_section(data, "payments", "http"))
        except TypeError as exc:
            raise ConfigurationError(f"[payments.http]: {exc}") from None
        return cls(
            providers=providers,
            default_provider=env.get("PAYMENTS_DEFAULT_PROVIDER") or core.get("default_provider"),
            database_url=env.get("PAYMENTS_DATABASE_URL") or core.get("database_url"),
            http=http,
            retry=dict(_section(data, "payments", "retry")),
            provider_values={k: dict(v) for k, v in _section(data, "providers").items()},
            environ=env,
        )

    def for_provider(self, name: str, **overrides: Any) -> ProviderSettings:
        """The settings of provider ``name``, with ``overrides`` taking precedence."""
        return ProviderSettings(
            name, self.provider_values.get(name, {}), self.environ, overrides=overrides
        )
