"""``create_app(runtime)``: the web UI at ``/`` and the REST API at ``/api/v1``, one error mapping.

Errors: every ``EContractError`` becomes problem+json under ``/api/`` and an error page elsewhere;
anything else is logged and shown as ``internal_error`` without internals.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from econtract import web
from econtract.accounts import api as accounts_api
from econtract.audit import api as audit_api
from econtract.context import utcnow
from econtract.contracts import api as contracts_api
from econtract.contracts import bulk_api, bulk_web, placement_web
from econtract.credentials import api as credentials_api
from econtract.errors import EContractError, ValidationFailed
from econtract.http import problem_response
from econtract.parties import api as parties_api
from econtract.parties import web as parties_web
from econtract.runtime import Runtime
from econtract.templates import api as templates_api
from econtract.templates import web as templates_web
from econtract.verification import api as verification_api

log = logging.getLogger("econtract")

API_PREFIX = "/api/v1"


def create_app(runtime: Runtime, *, start_worker: bool = False,
               clock: Callable[[], datetime] = utcnow) -> FastAPI:
    """Build the ASGI app around an opened runtime (the caller owns the runtime's lifetime)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if start_worker:
            runtime.start_worker_thread()
        try:
            yield
        finally:
            runtime.stop_worker_thread()

    app = FastAPI(title="econtract", version="1", lifespan=lifespan,
                  openapi_url=f"{API_PREFIX}/openapi.json", docs_url=f"{API_PREFIX}/docs",
                  redoc_url=None, description=_API_DESCRIPTION)
    app.state.runtime = runtime
    app.state.clock = clock
    api = APIRouter(prefix=API_PREFIX)
    for module in (accounts_api, contracts_api, audit_api, verification_api, parties_api):
        api.include_router(module.router)
    api.include_router(bulk_api.router)
    api.include_router(templates_api.router)
    api.include_router(templates_api.clause_router)
    app.include_router(api)
    app.include_router(credentials_api.router)
    app.include_router(parties_api.link_router)
    app.include_router(parties_web.router)
    app.include_router(templates_web.router)
    app.include_router(bulk_web.router)
    app.include_router(placement_web.router)
    web.mount(app)
    _install_error_handlers(app)
    app.middleware("http")(_security_headers(runtime.settings.secure_cookies))
    return app


MACHINE_PREFIXES = (API_PREFIX, "/pki/", "/tsa")
"""Paths that machines call: their errors are problem+json, never an HTML page."""


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(MACHINE_PREFIXES)


def _install_error_handlers(app: FastAPI) -> None:
    async def domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, EContractError)
        return problem_response(exc, request) if _is_api(request) else \
            web.render_error(request, exc)

    async def request_invalid(request: Request, exc: Exception) -> Response:
        errors = exc.errors() if isinstance(exc, RequestValidationError | ValidationError) else []
        wrapped = ValidationFailed(_summarise(errors), details={"errors": _clean(errors)})
        return await domain_error(request, wrapped)

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return await domain_error(request, EContractError("Something went wrong on our side."))

    app.add_exception_handler(EContractError, domain_error)
    app.add_exception_handler(RequestValidationError, request_invalid)
    app.add_exception_handler(ValidationError, request_invalid)
    app.add_exception_handler(Exception, unexpected)


def _clean(errors: object) -> list[dict[str, object]]:
    # Only location, message and type: pydantic's "input"/"ctx" may echo large or secret input.
    if not isinstance(errors, list):
        return []
    return [{"loc": list(e.get("loc") or ()), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in errors if isinstance(e, dict)]


def _summarise(errors: object) -> str:
    cleaned = _clean(errors)
    if not cleaned:
        return "The request is not valid."
    first = cleaned[0]
    loc = first["loc"]
    where = ".".join(str(p) for p in loc if p != "body") if isinstance(loc, list) else ""
    more = f" (and {len(cleaned) - 1} more)" if len(cleaned) > 1 else ""
    return f"{where}: {first['msg']}{more}" if where else f"{first['msg']}{more}"


def _security_headers(https: bool) -> Callable[[Request, Callable[[Request], Awaitable[Response]]],
                                               Awaitable[Response]]:
    async def add_headers(request: Request,
                          call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.url.path.startswith(f"{API_PREFIX}/docs"):
            response.headers.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
        if https:
            response.headers.setdefault("Strict-Transport-Security",
                                        "max-age=63072000; includeSubDomains")
        return response

    return add_headers


_API_DESCRIPTION = """
The econtract REST API. Authenticate with `Authorization: Bearer <api key>` (create one with
`econtract apikey create --email you@example.com`, or in the web UI). Errors are RFC 9457
`application/problem+json` objects with a stable `code`.
"""
