"""Names a package loads on first use, so that importing the package stays cheap."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(
    namespace: dict[str, Any], homes: Mapping[str, str], *, renamed: Mapping[str, str] | None = None
) -> Callable[[str], Any]:
    """A package's ``__getattr__``: each name in ``homes``, imported from its module.

    A name is imported when first asked for and kept in ``namespace``, so it is imported once.

    :param namespace: The package's ``globals()``.
    :param homes: Each name, and its module: a dotted module name, or a submodule's name.
    :param renamed: Old names that still work, with a ``DeprecationWarning``, and the new name
        each stands for.
    """
    package = namespace["__name__"]
    renamed = renamed or {}

    def load(name: str) -> Any:
        new = renamed.get(name)
        if new is not None:
            warnings.warn(f"{package}.{name} is deprecated; use {new}", DeprecationWarning, 2)
            name = new
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(home if "." in home else f"{package}.{home}"), name)
        namespace[name] = value
        return value

    return load
