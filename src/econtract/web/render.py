"""Rendering pages: one Jinja environment per locale, the page unit of work, CSRF helpers.

Every authenticated page runs inside ``page_unit``: one transaction, the session cookie resolved to
a user (idle and absolute timeouts enforced by the accounts service), and a ``Ctx`` acting as that
user. Form posts carry the server-side session's CSRF token in a hidden field; the anonymous login
form uses a double-submit cookie instead, since there is no session yet.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.orm import Session

from econtract.accounts import service as accounts
from econtract.accounts.models import User
from econtract.accounts.security import new_token
from econtract.context import Ctx
from econtract.errors import AuthenticationRequired, CsrfFailed, NotFound
from econtract.http import SESSION_COOKIE, base_ctx, runtime, session_user
from econtract.web import i18n
from econtract.web.i18n import N_

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
LOGIN_CSRF_COOKIE = "econtract_csrf"
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32,128}$")


# --- locale and templates ------------------------------------------------------------------

def locale_of(request: Request) -> str:
    """The locale the middleware chose, or a fresh choice (error handlers outside it)."""
    chosen = getattr(request.state, "locale", None)
    if chosen in i18n.SUPPORTED:
        return str(chosen)
    return i18n.negotiate(request.cookies.get(i18n.LANG_COOKIE),
                          request.headers.get("accept-language"))


def format_utc(value: datetime | None) -> str:
    """``YYYY-MM-DD HH:MM UTC``: the same for every reader, whatever their browser's zone."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def format_day(value: date | None) -> str:
    return value.isoformat() if value is not None else "—"


def format_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


@cache
def static_url(name: str) -> str:
    """A static file's URL with a content hash, so browsers never keep a stale stylesheet."""
    digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:10]
    return f"/static/{name}?v={digest}"


@cache
def environment(locale: str) -> Environment:
    """The template environment of one locale (built once, on first use)."""
    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR),
                      autoescape=select_autoescape(["html"], default_for_string=True),
                      extensions=["jinja2.ext.i18n"], undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    translate = i18n.gettext_for(locale)
    # The i18n extension adds this method at run time, so the type checker cannot see it.
    cast(Any, env).install_gettext_translations(i18n.translations(locale), newstyle=True)
    env.filters.update(utc=format_utc, day=format_day, filesize=format_size)
    env.globals.update(
        static=static_url, locale=locale, html_lang=i18n.HTML_LANG[locale],
        status_label=lambda code: i18n.label(i18n.STATUS_LABELS, code, translate),
        signer_status_label=lambda code: i18n.label(i18n.SIGNER_STATUS_LABELS, code, translate),
        role_label=lambda code: i18n.label(i18n.SIGNER_ROLE_LABELS, code, translate),
        approval_label=lambda code: i18n.label(i18n.APPROVAL_LABELS, code, translate),
        event_label=lambda code: i18n.label(i18n.EVENT_LABELS, code, translate))
    return env


@dataclass(frozen=True)
class Viewer:
    """What the page chrome needs about the signed-in user (safe to keep after the session)."""

    email: str
    name: str
    csrf_token: str


def render(request: Request, template: str, *, viewer: Viewer | None, status: int = 200,
           **context: Any) -> HTMLResponse:
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    env = environment(locale_of(request))
    html = env.get_template(template).render(viewer=viewer, current_path=path,
                                             current_section=_section(request.url.path),
                                             **context)
    return HTMLResponse(html, status_code=status,
                        headers={"Cache-Control": "no-store", "Vary": "Cookie, Accept-Language"})


def _section(path: str) -> str:
    return "contracts" if path.startswith("/contracts") else "dashboard" if path == "/" else ""


def translator(request: Request) -> i18n.Gettext:
    return i18n.gettext_for(locale_of(request))


# --- redirects -----------------------------------------------------------------------------

def safe_next(value: str | None, default: str = "/") -> str:
    """A local path to return to; anything that could leave the site becomes ``default``."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return default
    if "\\" in value or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return default  # browsers read "/\evil" as "//evil"; control characters split headers
    return value


def see_other(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def login_redirect(request: Request, *, expired: bool = False) -> Response:
    """To the login page, coming back here afterwards (only GETs can be replayed)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    back = safe_next(target) if request.method in ("GET", "HEAD") else "/"
    location = "/login?next=" + quote(back, safe="/")
    if expired:
        location += "&expired=1"
    response = see_other(location)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- the page unit of work -----------------------------------------------------------------

@dataclass(frozen=True)
class PageUnit:
    session: Session
    ctx: Ctx
    user: User
    viewer: Viewer

    def check_csrf(self, sent: str | None) -> None:
        check_csrf(sent, self.viewer.csrf_token)


@contextmanager
def page_unit(request: Request) -> Iterator[PageUnit]:
    """One transaction acting as the signed-in user; no valid session → ``AuthenticationRequired``
    (which ``render_error`` turns into a redirect to the login page)."""
    with runtime(request).uow() as session:
        found = session_user(session, request)
        if found is None:
            raise AuthenticationRequired("Please sign in.")
        user, web_session = found
        ctx = base_ctx(request, accounts.actor_for(user))
        yield PageUnit(session=session, ctx=ctx, user=user,
                       viewer=Viewer(email=user.email, name=user.name,
                                     csrf_token=web_session.csrf_token))


def parse_id(raw: str, what: str = "contract") -> uuid.UUID:
    """A UUID from the path; a malformed one is simply a page that does not exist."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"No such {what}.", code=f"{what}_not_found") from None


# --- CSRF ----------------------------------------------------------------------------------

def check_csrf(sent: str | None, expected: str | None) -> None:
    if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfFailed(N_("The form has expired or did not come from this site. "
                            "Reload the page and try again."))


def login_csrf_token(request: Request) -> str:
    """The double-submit token of the login form: the cookie's if it has one, else a new one."""
    current = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return current if _TOKEN_SHAPE.match(current) else new_token()


def set_login_csrf_cookie(response: Response, token: str, *, secure: bool) -> None:
    response.set_cookie(LOGIN_CSRF_COOKIE, token, path="/", httponly=True, samesite="lax",
                        secure=secure)
