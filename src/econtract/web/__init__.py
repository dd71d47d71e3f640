"""The server-rendered web UI (Jinja2, Simplified Chinese and English).

``mount(app)`` adds the pages of ``accounts.web``, ``contracts.web`` and ``verification.web``,
the static files and the locale middleware; ``render_error`` is the web side of the one error
mapping in ``app.py``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from econtract.errors import AccountLocked, AuthenticationRequired, EContractError, NotFound
from econtract.http import SESSION_COOKIE
from econtract.web import i18n
from econtract.web.i18n import N_
from econtract.web.render import (
    STATIC_DIR,
    Viewer,
    login_redirect,
    page_unit,
    render,
    translator,
)

log = logging.getLogger("econtract.web")

__all__ = ["mount", "render_error"]


class LocaleMiddleware:
    """Chooses the page language once per request (cookie, then Accept-Language)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            conn = HTTPConnection(scope)
            conn.state.locale = i18n.negotiate(conn.cookies.get(i18n.LANG_COOKIE),
                                               conn.headers.get("accept-language"))
        await self.app(scope, receive, send)


def mount(app: FastAPI) -> None:
    # Imported here: those modules import this package's helpers, so a top-level import would
    # be circular whenever one of them is imported first.
    from econtract.accounts import web as accounts_web
    from econtract.contracts import web as contracts_web
    from econtract.verification import web as verification_web

    i18n.load_all()
    app.add_middleware(LocaleMiddleware)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(accounts_web.router)
    app.include_router(contracts_web.router)
    app.include_router(verification_web.router)
    app.add_exception_handler(StarletteHTTPException, _http_error)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown pages get the friendly error page; the API keeps FastAPI's JSON answer."""
    assert isinstance(exc, StarletteHTTPException)
    if request.url.path.startswith("/api/") or exc.status_code != 404:
        return await http_exception_handler(request, exc)
    return render_error(request, NotFound(N_("There is no page at this address.")))


def render_error(request: Request, exc: EContractError) -> Response:
    """The error page: translated title, message and the stable code, with the error's status.

    A missing or expired session on a page is not an error to show but a reason to sign in.
    """
    if isinstance(exc, AuthenticationRequired):
        return login_redirect(request, expired=exc.code == "session_expired")
    _ = translator(request)
    message = _(exc.message)
    headers: dict[str, str] = {}
    if isinstance(exc, AccountLocked) and "retry_after" in exc.details:
        headers["Retry-After"] = str(exc.details["retry_after"])
        message = _("Too many failed attempts. Try again in %(seconds)s seconds.") % {
            "seconds": exc.details["retry_after"]}
    response: Response
    try:
        response = render(request, "error.html", viewer=_viewer(request, exc), status=exc.status,
                          title=_(exc.title), message=message, code=exc.code,
                          http_status=exc.status)
    except Exception:  # the error page must never fail in turn
        log.exception("could not render the error page")
        response = PlainTextResponse(f"{exc.title}: {exc.message} ({exc.code})",
                                     status_code=exc.status)
    response.headers.update(headers)
    return response


def _viewer(request: Request, exc: EContractError) -> Viewer | None:
    """The signed-in user for the page chrome, looked up again in a unit of its own (the
    failed request's one was rolled back); never on server errors, which may be the database's."""
    if exc.status >= 500 or not request.cookies.get(SESSION_COOKIE):
        return None
    try:
        with page_unit(request) as page:
            return page.viewer
    except Exception:  # no session after all, or no database: the page works without it
        return None
