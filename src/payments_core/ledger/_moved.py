"""Names that moved to another module keep working from the old one, with a warning."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from importlib import import_module

__all__ = ["moved_names"]


def moved_names(
    module: str, moved: Mapping[str, str], *, stacklevel: int = 2
) -> Callable[[str], object]:
    """What a module's ``__getattr__`` returns: each name in ``moved``, from its new module.

    :param module: The old module's name, for messages.
    :param moved: Each moved name, and the module it lives in now.
    :param stacklevel: Where the warning points: 2 is the code that asked the module for the
        name (``lookup`` is the module's ``__getattr__``); 3 when a ``__getattr__`` calls it.
    """

    def lookup(name: str) -> object:
        new = moved.get(name)
        if new is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(
            f"{module}.{name} has moved: import it from {new}",
            DeprecationWarning,
            stacklevel=stacklevel,
        )
        return getattr(import_module(new), name)

    return lookup
