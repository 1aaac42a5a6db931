"""The sandbox toolkit: what every provider's sandbox is built on (see docs/sandbox.md).

A sandbox imitates a provider's API on loopback or in process; it keeps only what is the
provider's own (its wire, its rules, its error answers) and takes the rest from here:

* :class:`FaultKind`, :class:`FaultProfile`, :data:`PROFILES` and :class:`Faults` — which
  faults strike, drawn reproducibly, each one logged in a :class:`FaultRecord`;
* :func:`background_server` — the sandbox's ASGI app served on loopback in a thread, where
  :func:`reset`, :func:`close` and :func:`stall` break or hold a client's connection;
* :class:`SandboxRequest`, :class:`Answer`, :func:`sandbox_app`, :func:`answer_with_fault`,
  :func:`read_body`, :func:`send_answer` — requests read and answered through the faults;
* :func:`mock_transport` — an ``httpx`` transport that calls the sandbox in process;
* :class:`Delivery`, :func:`post_delivery`, :class:`WebhookPoster`, :class:`DeliveryAttempt`
  — webhooks sent, retried on a schedule, held back or doubled, and logged;
* :class:`RunningSandbox` — the handle a provider's ``open_sandbox`` hook hands over.

"""

from payments_core.testing.sandbox.asgi import (
    Answer,
    Handler,
    SandboxRequest,
    answer_with_fault,
    mock_transport,
    read_body,
    sandbox_app,
    send_answer,
)
from payments_core.testing.sandbox.delivery import (
    Delivery,
    DeliveryAttempt,
    WebhookPoster,
    post_delivery,
)
from payments_core.testing.sandbox.faults import (
    PROFILES,
    REQUEST_FAULTS,
    FaultKind,
    FaultProfile,
    FaultRecord,
    Faults,
)
from payments_core.testing.sandbox.running import Payable, RunningSandbox
from payments_core.testing.sandbox.server import (
    SERVER_OPTIONS,
    ResponseDropped,
    background_server,
    close,
    reset,
    stall,
)

__all__ = [
    "PROFILES",
    "REQUEST_FAULTS",
    "SERVER_OPTIONS",
    "Answer",
    "Delivery",
    "DeliveryAttempt",
    "FaultKind",
    "FaultProfile",
    "FaultRecord",
    "Faults",
    "Handler",
    "Payable",
    "ResponseDropped",
    "RunningSandbox",
    "SandboxRequest",
    "WebhookPoster",
    "answer_with_fault",
    "background_server",
    "close",
    "mock_transport",
    "post_delivery",
    "read_body",
    "reset",
    "sandbox_app",
    "send_answer",
    "stall",
]
