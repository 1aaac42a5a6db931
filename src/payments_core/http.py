"""Sans-I/O HTTP: how a provider asks the core to send a request.

A provider hook does no I/O. It returns an *operation*: a generator that yields each
:class:`HttpRequest` it needs sent and receives the :class:`HttpResponse` back, then returns its
result. The core runs the same operation over a blocking or an asynchronous client, owns the
connection pool, the timeouts and the retries, and maps transport failures to
:mod:`payments_core.errors` at this one boundary. A test can drive an operation by hand::

    op = provider.create_order(request=req)
    sent = next(op)                        # the HttpRequest, fully signed
    op.send(HttpResponse(200, {}, b"..."))  # raises StopIteration(value=Order)

:func:`payments_core.transport.drive` does the same with any ``send`` function.

The facade's own operations (a create with its recovery, a refund with its ledger steps) are
written the same way, once for blocking and asynchronous callers: besides requests they yield
a :class:`Blocking` step (ledger work, an application hook) and a :class:`Wait` (a retry's
backoff), which :func:`~payments_core.transport.drive` runs in place and
:func:`~payments_core.transport.drive_async` in a worker thread and with ``await``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from functools import partial
from typing import Any, Generic, ParamSpec, TypeAlias, TypeVar

import attrs

__all__ = ["Blocking", "HttpRequest", "HttpResponse", "Operation", "Wait", "blocking"]

T = TypeVar("T")
P = ParamSpec("P")


def _lower_keys(headers: Mapping[str, str]) -> Mapping[str, str]:
    return {k.lower(): v for k, v in dict(headers).items()}


@attrs.frozen
class HttpRequest:
    """One request a provider wants sent, byte for byte.

    Attributes:
        method: ``GET``, ``POST``, ...
        url: The absolute URL.
        headers: Header names and values, sent exactly as given.
        content: The body bytes, sent exactly as given (signatures cover them).
        operation: The operation it belongs to, for logs and errors (``create_order``).
    """

    method: str
    url: str
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    content: bytes = attrs.field(default=b"", repr=False)
    operation: str = ""


@attrs.frozen
class HttpResponse:
    """The answer to an :class:`HttpRequest`.

    Attributes:
        status_code: The HTTP status.
        headers: Header names in lower case mapped to values.
        content: The raw body bytes.
    """

    status_code: int
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_lower_keys, repr=False)
    content: bytes = attrs.field(default=b"", repr=False)


Operation: TypeAlias = Generator[HttpRequest, HttpResponse, T]
"""A provider operation: yields requests, receives responses, returns ``T``."""


@attrs.frozen
class Blocking(Generic[T]):
    """A step that blocks (ledger work, an application's hook): run in place by the blocking
    runner, in a worker thread by the asynchronous one; its result is sent back.

    Attributes:
        call: What to run, taking no arguments.
    """

    call: Callable[[], T]


@attrs.frozen
class Wait:
    """A step that waits (a retry's backoff) with the runner's sleep.

    Attributes:
        seconds: How long.
    """

    seconds: float


def blocking(
    call: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
) -> Generator[Blocking[T], Any, T]:
    """``call(*args, **kwargs)`` as a :class:`Blocking` step: ``yield from`` it for the result."""
    result: T = yield Blocking(partial(call, *args, **kwargs))
    return result
