"""HTML: sign in, sign out, and the language switch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from econtract.accounts import service
from econtract.errors import AccountLocked, AuthenticationRequired, EContractError
from econtract.http import SESSION_COOKIE, base_ctx, runtime, session_user
from econtract.web import i18n
from econtract.web.render import (
    LOGIN_CSRF_COOKIE,
    check_csrf,
    login_csrf_token,
    render,
    safe_next,
    see_other,
    set_login_csrf_cookie,
    translator,
)

router = APIRouter(include_in_schema=False)

LANG_COOKIE_MAX_AGE = 365 * 24 * 3600


def _login_page(request: Request, *, next_path: str, email: str = "",
                error: EContractError | None = None, notice: str | None = None) -> Response:
    """The login form, with a double-submit CSRF token (cookie + hidden field)."""
    token = login_csrf_token(request)
    _ = translator(request)
    status, message = 200, None
    if error is not None:
        status, message = error.status, _(error.message)
        if isinstance(error, AccountLocked):
            message = _("Too many failed attempts. Try again in %(seconds)s seconds.") % {
                "seconds": error.details.get("retry_after", 60)}
    response = render(request, "login.html", viewer=None, status=status, csrf_token=token,
                      next_path=next_path, email=email, error=message,
                      error_code=error.code if error else None, notice=notice)
    set_login_csrf_cookie(response, token, secure=runtime(request).settings.secure_cookies)
    if isinstance(error, AccountLocked) and "retry_after" in error.details:
        response.headers["Retry-After"] = str(error.details["retry_after"])
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/", expired: str = "") -> Response:
    _ = translator(request)
    notice = _("Your session has expired. Please sign in again.") if expired else None
    return _login_page(request, next_path=safe_next(next), notice=notice)


@router.post("/login")
def login_submit(request: Request, email: Annotated[str, Form(max_length=320)] = "",
                 password: Annotated[str, Form(max_length=1024)] = "",
                 csrf_token: Annotated[str, Form()] = "",
                 next: Annotated[str, Form()] = "/") -> Response:
    next_path = safe_next(next)
    try:
        check_csrf(csrf_token, request.cookies.get(LOGIN_CSRF_COOKIE))
    except EContractError as exc:
        return _login_page(request, next_path=next_path, email=email, error=exc)
    rt = runtime(request)
    settings = rt.settings
    # The unit of work commits whatever the outcome: failed attempts are counted and audited.
    with rt.uow() as session:
        outcome = service.login(
            session, base_ctx(request), email=email, password=password,
            max_failures=settings.login_max_failures, lock_minutes=settings.login_lock_minutes,
            absolute_hours=settings.session_absolute_hours,
            old_token=request.cookies.get(SESSION_COOKIE))
    if outcome.error is not None or outcome.token is None:
        return _login_page(request, next_path=next_path, email=email, error=outcome.error)
    response = see_other(next_path)
    # No max-age: the cookie dies with the browser; the server enforces idle/absolute limits.
    response.set_cookie(SESSION_COOKIE, outcome.token, path="/", httponly=True, samesite="lax",
                        secure=settings.secure_cookies)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    response = see_other("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    if not token:
        return response
    try:
        with runtime(request).uow() as session:
            found = session_user(session, request)
            if found is not None:
                user, web_session = found
                check_csrf(csrf_token, web_session.csrf_token)
                ctx = base_ctx(request, service.actor_for(user))
                service.logout(session, ctx, token=token)
    except AuthenticationRequired:
        pass  # already gone server-side: clearing the cookie is all that is left to do
    return response


@router.get("/lang/{code}")
def switch_language(request: Request, code: str, next: str = "/") -> Response:
    response = see_other(safe_next(next))
    locale = i18n.normalise(code)
    if locale is not None:
        response.set_cookie(i18n.LANG_COOKIE, locale, max_age=LANG_COOKIE_MAX_AGE, path="/",
                            httponly=True, samesite="lax",
                            secure=runtime(request).settings.secure_cookies)
    return response
