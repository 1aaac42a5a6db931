"""Who may see the console and who may act in it.

The application decides, with an ``authorize(request)`` callable that returns the
:class:`Operator` behind a request, or ``None`` to refuse it. The default,
:func:`refuse_everyone`, refuses every request: a console mounted without a decision shows
nothing.

:class:`OneTimeToken` is the decision ``payments console`` makes for a person at the machine:
a token printed at start, exchanged once for a session cookie, as a notebook server does.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Callable

import attrs
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

__all__ = ["Authorize", "OneTimeToken", "Operator", "refuse_everyone"]

SESSION_COOKIE = "payments_console_session"


@attrs.frozen(kw_only=True)
class Operator:
    """The person (or role) behind a console request.

    Attributes:
        name: Who they are, as the console's log of actions names them.
        may_act: Whether they may reconcile, announce, refund and close; otherwise they only
            read.
    """

    name: str
    may_act: bool = False


#: Decides who is behind a request: an :class:`Operator`, or ``None`` to refuse it.
Authorize = Callable[[Request], Operator | None]


def refuse_everyone(request: Request) -> Operator | None:
    """The default ``authorize``: nobody sees anything until the application decides."""
    del request
    return None


class OneTimeToken:
    """A token good for one login, which then gives its browser a session that may act.

    :param operator: Who a session is, in the log of actions.
    """

    def __init__(self, operator: str) -> None:
        self.operator = operator
        self.token: str | None = secrets.token_urlsafe(32)
        self._sessions: set[str] = set()
        self._lock = threading.Lock()

    def login_path(self, token: str) -> str:
        """The path, under the console's prefix, that exchanges ``token`` for a session."""
        return f"/login?token={token}"

    def authorize(self, request: Request) -> Operator | None:
        """The operator, if the request carries a session this token opened."""
        session = request.cookies.get(SESSION_COOKIE, "")
        with self._lock:
            known = any(hmac.compare_digest(session, open_) for open_ in self._sessions)
        return Operator(name=self.operator, may_act=True) if known else None

    def login(self, request: Request) -> Response:
        """``GET /login?token=...``: the first use of the token opens a session, later ones fail."""
        offered = request.query_params.get("token", "")
        with self._lock:
            token, valid = self.token, False
            if token is not None and hmac.compare_digest(offered, token):
                self.token, valid = None, True
                session = secrets.token_urlsafe(32)
                self._sessions.add(session)
        if not valid:
            return PlainTextResponse(
                "This login link is not valid, or was used already: restart `payments console` "
                "for a new one.",
                status_code=403,
            )
        response = RedirectResponse(f"{request.scope.get('root_path', '')}/", status_code=303)
        set_console_cookie(response, request, SESSION_COOKIE, session)
        return response


def set_console_cookie(response: Response, request: Request, name: str, value: str) -> None:
    """Set the console's cookie ``name`` on ``response``: hidden from scripts, never sent by
    another site's page, scoped to the console's prefix, and over HTTPS only when the console
    is served so."""
    root = request.scope.get("root_path", "")
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="strict",
        path=f"{root}/",
        secure=request.url.scheme == "https",
    )
