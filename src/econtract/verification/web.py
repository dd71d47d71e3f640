"""HTML: ``/verify`` — anyone, signed in or not, uploads a signed PDF and reads the report.

The page makes the same service calls as ``POST /api/v1/verify``: trust from the platform's CA and
fresh CRLs, the sandboxed verifier, one audit record. There may be no session, so the form carries
the login form's double-submit CSRF token (cookie + hidden field).

Everything in the report that comes from the PDF (file name, ``/Reason``, ``/Name``, certificate
subjects, field names, the list of changes) is plain text; the template autoescapes it, and nothing
here or there marks it safe. The wording (verdicts, signature kinds, labels) lives in the templates,
where the message extractor finds it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from econtract.contracts.service import Upload
from econtract.errors import CsrfFailed, EContractError, ValidationFailed
from econtract.http import SESSION_COOKIE, base_ctx, read_upload, runtime
from econtract.signing.report import Verdict, VerificationReport, clean_text
from econtract.verification import service
from econtract.web.render import (
    LOGIN_CSRF_COOKIE,
    Viewer,
    check_csrf,
    format_size,
    login_csrf_token,
    page_unit,
    render,
    set_login_csrf_cookie,
    translator,
)

router = APIRouter(include_in_schema=False)

FILE_FIELD = "file"
# The banner's colour: green only for valid; amber when there is nothing to judge.
TONES = {Verdict.VALID: "ok", Verdict.NO_SIGNATURE: "warn", Verdict.NOT_A_PDF: "warn"}


def format_seconds(value: datetime | None) -> str:
    """``YYYY-MM-DD HH:MM:SS UTC``: signing times matter to the second."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def size_label(size: int) -> str:
    """The upload limit for people: "64 MB" rather than "64.0 MB"."""
    mib, rest = divmod(size, 2**20)
    return f"{mib} MB" if mib and not rest else format_size(size)


def verdict_tone(verdict: Verdict | str) -> str:
    return TONES.get(Verdict(verdict), "bad")


async def _read_form(request: Request) -> FormData:
    # One file and a token: more parts than that is not this form.
    try:
        return await request.form(max_files=1, max_fields=10)
    except StarletteHTTPException as exc:
        raise ValidationFailed(str(exc.detail), code="invalid_form") from exc


def _upload(form: FormData) -> Upload:
    file = form.get(FILE_FIELD)
    if not isinstance(file, UploadFile) or not file.filename:
        raise ValidationFailed("Choose the PDF file to verify.", code="file_required")
    return read_upload(file, service.MAX_VERIFY_BYTES)


@router.get("/verify")
def verify_form(request: Request) -> Response:
    return _page(request)


@router.post("/verify")
def verify_submit(request: Request,
                  form: Annotated[FormData, Depends(_read_form)]) -> Response:
    token = form.get("csrf_token")
    try:
        check_csrf(token if isinstance(token, str) else None,
                   request.cookies.get(LOGIN_CSRF_COOKIE))
        upload = _upload(form)
    except (CsrfFailed, ValidationFailed) as exc:
        return _page(request, error=exc)
    rt = runtime(request)
    ctx = base_ctx(request)
    engine = rt.signing_engine()
    with rt.uow() as session:
        report = service.verify_with_platform(session, ctx, engine, data=upload.data,
                                              filename=upload.filename)
    # Shown like the report's own strings: no controls or bidi overrides, bounded length.
    return _page(request, report=report, filename=clean_text(upload.filename, 255))


def _page(request: Request, *, report: VerificationReport | None = None, filename: str = "",
          error: EContractError | None = None) -> Response:
    """The form (with the current or a fresh double-submit token), and the report if any."""
    token = login_csrf_token(request)
    response = render(
        request, "verify.html", viewer=_viewer(request), status=error.status if error else 200,
        csrf_token=token, report=report, filename=filename,
        max_size=size_label(service.MAX_VERIFY_BYTES),
        error_code=error.code if error else None,
        error_message=translator(request)(error.message) if error else None,
        when=format_seconds, tone=verdict_tone)
    set_login_csrf_cookie(response, token, secure=runtime(request).settings.secure_cookies)
    return response


def _viewer(request: Request) -> Viewer | None:
    """The signed-in user for the page chrome; the page itself works the same without one."""
    if not request.cookies.get(SESSION_COOKIE):
        return None
    try:
        with page_unit(request) as page:
            return page.viewer
    except EContractError:  # an expired or unknown session: show the page as to anyone
        return None
