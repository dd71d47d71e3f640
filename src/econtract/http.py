"""What the API and the web UI share at the edge: request context, authentication, units of work,
and the one mapping from ``EContractError`` to problem+json.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from econtract.accounts import service as accounts
from econtract.accounts.models import User, WebSession
from econtract.accounts.security import tokens_equal
from econtract.context import Actor, Ctx
from econtract.contracts.service import Upload
from econtract.errors import (
    AccountLocked,
    AuthenticationFailed,
    AuthenticationRequired,
    CsrfFailed,
    EContractError,
    UploadRejected,
)
from econtract.runtime import Runtime

SESSION_COOKIE = "econtract_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PROBLEM_JSON = "application/problem+json"


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def clock(request: Request) -> Callable[[], datetime]:
    fn: Callable[[], datetime] = request.app.state.clock
    return fn


def client_ip(request: Request) -> str | None:
    # Behind a reverse proxy, configure it to pass the client address to uvicorn
    # (--proxy-headers / --forwarded-allow-ips); we never trust X-Forwarded-For ourselves.
    return request.client.host if request.client else None


def base_ctx(request: Request, actor: Actor | None = None) -> Ctx:
    locale = getattr(request.state, "locale", "en")
    return Ctx(actor=actor or Actor.anonymous(), ip=client_ip(request),
               user_agent=(request.headers.get("user-agent") or "")[:1000] or None,
               clock=clock(request), locale=locale, base_url=runtime(request).settings.base_url)


def session_user(session: Session, request: Request) -> tuple[User, WebSession] | None:
    """The browser session's user, or ``None`` when there is no cookie."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    rt = runtime(request)
    return accounts.resolve_session(session, token=token, now=clock(request)(),
                                    idle_minutes=rt.settings.session_idle_minutes)


def authenticate(session: Session, request: Request) -> Ctx:
    """API authentication: a Bearer API key, or the browser session (plus CSRF header)."""
    ctx = base_ctx(request)
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthenticationRequired("Use `Authorization: Bearer <api key>`.")
        user, key = accounts.authenticate_api_key(
            session, ctx, raw_key=value.strip(), route=f"{request.method} {request.url.path}")
        return ctx.with_actor(accounts.actor_for(user, api_key=key))
    found = session_user(session, request)
    if found is None:
        raise AuthenticationRequired("Sign in, or send `Authorization: Bearer <api key>`.")
    user, web_session = found
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not tokens_equal(sent, web_session.csrf_token):
            raise CsrfFailed("Missing or wrong X-CSRF-Token header for a cookie session.")
    return ctx.with_actor(accounts.actor_for(user))


@contextmanager
def api_unit(request: Request) -> Iterator[tuple[Session, Ctx]]:
    """One authenticated transaction for an API call."""
    with runtime(request).uow() as session:
        ctx = authenticate(session, request)
        yield session, ctx


def read_upload(file: UploadFile, max_bytes: int) -> Upload:
    """Read at most one byte past the limit, so an oversized upload is refused without holding
    all of it in memory (used by the API and the web forms alike)."""
    data = file.file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UploadRejected(f"The file is larger than the limit of {max_bytes // 2**20} MB.",
                             code="upload_too_large")
    return Upload(filename=file.filename or "upload", data=data)


def problem_body(exc: EContractError, instance: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:econtract:problem:{exc.code}", "title": exc.title, "status": exc.status,
        "detail": exc.message, "code": exc.code, "instance": instance}
    for key, value in exc.details.items():
        body.setdefault(key, value)
    return body


def problem_response(exc: EContractError, request: Request) -> JSONResponse:
    headers: dict[str, str] = {}
    if isinstance(exc, AccountLocked) and "retry_after" in exc.details:
        headers["Retry-After"] = str(exc.details["retry_after"])
    if isinstance(exc, AuthenticationRequired | AuthenticationFailed):
        headers["WWW-Authenticate"] = 'Bearer realm="econtract"'
    return JSONResponse(problem_body(exc, request.url.path), status_code=exc.status,
                        media_type=PROBLEM_JSON, headers=headers)
