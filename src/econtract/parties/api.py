"""The signer's side over HTTP: the invitation link ``/s/{token}`` and the JSON API
``/api/v1/signer`` that the signing page (or an integrator's own page) is built on.

Every call resolves its token to exactly one signer and that signer's contract, and everything
it reads or changes is reached from those two rows, so no id can be swapped for another
contract's. The token comes in the ``X-Signer-Token`` header, or in the HttpOnly cookie that
``/s/{token}`` sets; cookie-authenticated POSTs also need the ``X-CSRF-Token`` that
``GET /api/v1/signer`` returns (a header no other site can send).

Ids: no path of the signer API takes one (``/api/v1/signer/{uuid}`` and the like are 404 by
routing). Request bodies may carry ``contract_id`` and ``signer_id``, and so may the query
string: absent or the token's own, the call proceeds; any other value is 404 ``not_found`` with
the same message whether that id exists or not, so the answer reveals nothing. Other unknown
body fields are refused (422). ``signer_unit`` does this check for every route.

Access code: while the sender's access code has not been entered, ``signer_unit`` refuses every
call with 403 ``access_code_required`` (``parties.access.require_granted``), except
``GET /api/v1/signer`` (title and organisation only) and ``POST /api/v1/signer/access-code``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from econtract import web
from econtract.accounts.models import Organisation, User
from econtract.accounts.security import tokens_equal
from econtract.audit import service as audit
from econtract.audit.events import EventKind
from econtract.context import Ctx
from econtract.contracts import previews
from econtract.contracts import service as contracts
from econtract.contracts.models import DocumentVersion
from econtract.credentials import service as credentials
from econtract.errors import (
    AuthenticationRequired,
    CsrfFailed,
    EContractError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from econtract.http import CSRF_HEADER, SAFE_METHODS, base_ctx, runtime
from econtract.parties import access as access_code
from econtract.parties import links, otp, routing
from econtract.parties import service as parties
from econtract.parties.links import SignerAccess
from econtract.parties.schemas import (
    CONSENT_TEXT,
    AccessCodeIn,
    AccessGrantedRead,
    AppearanceIn,
    CodeIn,
    CodeSentRead,
    ContractView,
    DeclineIn,
    OutcomeRead,
    ScopedIn,
    SignerSelf,
    SignerSession,
    SignIn,
    VerifiedRead,
)

SIGNER_COOKIE = "econtract_signer"
TOKEN_HEADER = "x-signer-token"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_IMAGE_BYTES = 2 * 2**20

router = APIRouter(prefix="/signer", tags=["signer"])
link_router = APIRouter(include_in_schema=False)


def csrf_token_for(token: str) -> str:
    """Derived from the token, so nothing is stored and only the token's holder can know it."""
    return hashlib.sha256(f"econtract-signer-csrf|{token}".encode()).hexdigest()


def _token(request: Request) -> str:
    header = (request.headers.get(TOKEN_HEADER) or "").strip()
    if header:
        return header
    cookie = request.cookies.get(SIGNER_COOKIE)
    if not cookie:
        raise AuthenticationRequired("Open your signing link, or send the X-Signer-Token "
                                     "header.", code="signer_token_required")
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not tokens_equal(sent, csrf_token_for(cookie)):
            raise CsrfFailed("Missing or wrong X-CSRF-Token header for a signing cookie.")
    return cookie


@contextmanager
def signer_unit(request: Request, *, lock: bool = False, scope: ScopedIn | None = None,
                gated: bool = True) -> Iterator[tuple[Session, Ctx, SignerAccess]]:
    """One transaction acting as the token's signer; ``lock`` takes the contract's row lock.

    Before the caller's block runs: ids in the body ``scope`` or the query string that are not
    the token's own are 404 (``check_scope``), and unless ``gated`` is false the access-code
    gate applies (403 ``access_code_required``). Every signer route uses this unit, so a new
    route gets both without asking.
    """
    token = _token(request)
    with runtime(request).uow() as session:
        ctx = base_ctx(request)
        access = links.resolve(session, token=token, now=ctx.now(), lock=lock)
        check_scope(request, access, scope)
        if gated:
            access_code.require_granted(access)
        yield session, ctx.with_actor(parties.signer_actor(access.signer)), access


SCOPE_FIELDS = ("contract_id", "signer_id")


def check_scope(request: Request, access: SignerAccess, scope: ScopedIn | None) -> None:
    """404 unless every ``contract_id``/``signer_id`` in the body or query is the token's own.

    The same answer for an id of another contract, another organisation's, or none at all:
    nothing is looked up, so nothing can be learnt from the response or its timing.
    """
    own = {"contract_id": access.contract.id, "signer_id": access.signer.id}
    for name in SCOPE_FIELDS:
        claimed: list[object] = list(request.query_params.getlist(name))
        if scope is not None and getattr(scope, name) is not None:
            claimed.append(getattr(scope, name))
        for value in claimed:
            if _as_uuid(value) != own[name]:
                raise NotFound()


def _as_uuid(value: object) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


# --- the link ------------------------------------------------------------------------------

@link_router.get("/s/{token}")
def open_link(request: Request, token: str) -> Response:
    """Move the token from the URL into a cookie and redirect to a URL without it, so it does
    not linger in the address bar, the history or a Referer header."""
    try:
        with runtime(request).uow() as session:
            ctx = base_ctx(request)
            access = links.resolve(session, token=token, now=ctx.now(), lock=True)
            ctx = ctx.with_actor(parties.signer_actor(access.signer))
            links.record_open(session, ctx, access, via="link")
            max_age = int((access.link.expires_at - ctx.now()).total_seconds())
    except EContractError as exc:
        response = web.render_error(request, exc)
    else:
        response = RedirectResponse("/s", status_code=303)
        response.set_cookie(SIGNER_COOKIE, token, max_age=max_age, path="/", httponly=True,
                            samesite="lax", secure=runtime(request).settings.secure_cookies)
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


# The signing page itself, ``GET /s``, lives in ``parties/web.py``.


# --- the API -------------------------------------------------------------------------------

@router.get("", response_model=SignerSession, summary="The contract as its signer may see it")
def get_session(request: Request) -> SignerSession:
    with signer_unit(request, gated=False) as (session, ctx, access):
        if access.signer.status == "invited":  # an integrator's page never opens /s/{token}
            links.record_open(session, ctx, access, via="api")
        return session_view(session, access, _token(request))


def session_view(session: Session, access: SignerAccess, token: str) -> SignerSession:
    contract, signer = access.contract, access.signer
    if access_code.required(signer):
        return _access_code_view(session, access, token)
    version = contracts.current_version(session, contract=contract) if _is_turn(access) else None
    org = session.get(Organisation, contract.org_id)
    owner = session.get(User, contract.owner_id)
    view = ContractView.model_validate({
        "title": contract.title, "status": contract.status,
        "organisation": org.name if org else "", "sender": owner.name if owner else "",
        "effective_date": contract.effective_date, "expiry_date": contract.expiry_date,
        "sign_deadline": contract.sign_deadline, "clauses": contract.clauses,
        "attachments": contract.attachments})
    return SignerSession(
        contract=view, signer=SignerSelf.model_validate(signer),
        your_turn=_is_turn(access), identity_verified=signer.status == "verified",
        identity_method=otp.method_of(signer), identity_methods=[otp.method_of(signer)],
        key_set_up=credentials.active_credential(session, email=signer.email) is not None,
        consent_text=CONSENT_TEXT, csrf_token=csrf_token_for(token),
        link_expires_at=access.link.expires_at,
        page_count=version.page_count if version else None,
        document_sha256=version.sha256 if version else None)


def _access_code_view(session: Session, access: SignerAccess, token: str) -> SignerSession:
    """Before the access code: whose contract it is, and what to ask for; nothing else."""
    org = session.get(Organisation, access.contract.org_id)
    return SignerSession(
        contract=ContractView(title=access.contract.title, organisation=org.name if org else ""),
        signer=None, access_code_required=True, identity_method=otp.method_of(access.signer),
        your_turn=False, identity_verified=False, identity_methods=[], key_set_up=False,
        consent_text=CONSENT_TEXT, csrf_token=csrf_token_for(token), link_expires_at=None)


def _is_turn(access: SignerAccess) -> bool:
    return access.signer.status != "waiting" and routing.is_turn_of(access.contract,
                                                                    access.signer)


@router.post("/access-code", response_model=AccessGrantedRead,
             summary="Enter the access code the sender gave you")
def enter_access_code(request: Request, body: AccessCodeIn) -> AccessGrantedRead:
    with signer_unit(request, lock=True, scope=body, gated=False) as (session, ctx, access):
        outcome = access_code.enter_code(session, ctx, access=access, code=body.code)
    if outcome.error is not None:  # raised after the commit, so the wrong try is counted
        raise outcome.error
    return AccessGrantedRead(access_granted=True)


@router.post("/otp", response_model=CodeSentRead,
             summary="Send a one-time code (by e-mail, or SMS if the sender chose it)")
def send_code(request: Request, body: ScopedIn | None = None) -> CodeSentRead:
    settings = runtime(request).settings
    with signer_unit(request, lock=True, scope=body) as (session, ctx, access):
        outcome = otp.send_code(session, ctx, access=access,
                                sms_enabled=settings.sms_backend != "none",
                                default_country_code=settings.sms_default_country_code)
    sent = outcome.sent
    if outcome.error is not None or sent is None:  # raised after the commit: it is audited
        raise outcome.error or EContractError()
    return CodeSentRead(channel=sent.channel, sent_to=sent.sent_to, expires_at=sent.expires_at,
                        resend_after=sent.resend_after)


@router.post("/otp/verify", response_model=VerifiedRead, summary="Prove identity with the code")
def verify_code(request: Request, body: CodeIn) -> VerifiedRead:
    with signer_unit(request, lock=True, scope=body) as (session, ctx, access):
        outcome = otp.verify_code(session, ctx, access=access, code=body.code)
        status = access.signer.status
    if outcome.error is not None:  # raised after the commit, so the wrong try is counted
        raise outcome.error
    return VerifiedRead(identity_verified=True, method=outcome.method, signer_status=status)


@router.post("/sign", response_model=OutcomeRead,
             summary="Sign (the first signature sets up the signer's key with the PIN)")
def sign(request: Request, body: SignIn) -> OutcomeRead:
    if body.consent is not True:
        raise ValidationFailed("Tick the consent to sign electronically first.",
                               code="consent_required")
    appearance = _appearance(body.appearance)
    rt = runtime(request)
    # The contract lock first, as the sign service takes it: the consent event below must not
    # hold the audit head while waiting for the contract (lock order contract → audit head).
    with signer_unit(request, lock=True, scope=body) as (session, ctx, access):
        audit.record(session, ctx, EventKind.SIGNER_CONSENTED, org_id=access.contract.org_id,
                     contract_id=access.contract.id,
                     data={"signer_id": str(access.signer.id), "text": CONSENT_TEXT})
        outcome = parties.sign(session, ctx, blobs=rt.blobs, engine=rt.signing_engine(),
                               keyring=rt.keyring, contract_id=access.contract.id,
                               signer_id=access.signer.id, pin=body.pin, appearance=appearance)
        if outcome.error is None:
            links.revoke_for_signer(session, signer=access.signer, now=ctx.now())
        result = OutcomeRead(signer_status=access.signer.status,
                             contract_status=access.contract.status)
    if outcome.error is not None:  # the wrong PIN is counted by the commit above
        raise outcome.error
    return result


def _appearance(appearance: AppearanceIn) -> parties.Appearance:
    return parties.Appearance(
        kind=appearance.type, text=appearance.text,
        image_png=_png(appearance.image_png_base64, "image_png_base64", "signature image"),
        seal_png=_png(appearance.seal_png_base64, "seal_png_base64", "seal image"))


def _png(raw: str | None, field: str, what: str) -> bytes | None:
    """A base64 PNG (a ``data:`` URL too) of at most 2 MB, or ``invalid_image``."""
    if not raw:
        return None
    if raw.startswith("data:"):
        raw = raw.partition(",")[2]
    try:
        image = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed(f"{field} is not valid base64.", code="invalid_image") from exc
    if not image.startswith(PNG_MAGIC) or len(image) > MAX_IMAGE_BYTES:
        raise ValidationFailed(f"The {what} must be a PNG of at most 2 MB.",
                               code="invalid_image")
    return image


@router.post("/decline", response_model=OutcomeRead, summary="Decline to sign, with a reason")
def decline(request: Request, body: DeclineIn) -> OutcomeRead:
    with signer_unit(request, scope=body) as (session, ctx, access):
        contract = parties.decline(session, ctx, contract_id=access.contract.id,
                                   signer_id=access.signer.id, reason=body.reason)
        return OutcomeRead(signer_status=access.signer.status, contract_status=contract.status)


@router.get("/document", summary="The contract PDF as it stands (once it is your turn)",
            response_class=Response,
            responses={200: {"content": {"application/pdf": {}}}})
def document(request: Request) -> Response:
    rt = runtime(request)
    with signer_unit(request) as (session, ctx, access):
        if not _is_turn(access):
            raise PermissionDenied("It is not your turn to sign yet.", code="not_your_turn")
        version, data = contracts.download_document(session, ctx, blobs=rt.blobs,
                                                    contract_id=access.contract.id)
    return Response(data, media_type="application/pdf", headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(version.filename)}",
        "X-Content-SHA256": version.sha256, "Cache-Control": "private, no-store"})


# --- reading on the signing page ------------------------------------------------------------

PAGE_MAX_AGE = 3600
"""Seconds a browser may keep a page image: URLs carry the document's hash (``?v=``), and the
ETag names the version anyway, so a new signature never shows as a stale page."""


@router.get("/pages/{page}", summary="An image of one page of the current document",
            response_class=Response, responses={200: {"content": {"image/jpeg": {}}},
                                                304: {"description": "Not modified"}})
def page_image(request: Request, page: int,
               width: Annotated[int, Query(ge=400, le=1600)] = 800) -> Response:
    rt = runtime(request)
    with signer_unit(request) as (session, ctx, access):
        version = _turn_version(session, access)
        if not 1 <= page <= version.page_count:
            raise NotFound(f"The document has {version.page_count} pages.",
                           code="page_not_found")
        key = (version.sha256, page, width)
        headers = {"ETag": f'"{version.sha256[:40]}-{page}-{width}"',
                   "Cache-Control": f"private, max-age={PAGE_MAX_AGE}",
                   "Vary": "Cookie, X-Signer-Token"}
        if request.headers.get("if-none-match") == headers["ETag"]:
            return Response(status_code=304, headers=headers)
        image = previews.SIGNER_PAGES.get(key)
        pdf = b""
        if image is None:
            _, pdf = contracts.download_document(session, ctx, blobs=rt.blobs,
                                                 contract_id=access.contract.id,
                                                 number=version.number, audit_as=None)
    if image is None:  # rendered outside the transaction: it takes a while for a big page
        image = previews.render_page_jpeg(pdf, page=page, width=width)
        previews.SIGNER_PAGES.put(key, image)
    return Response(image, media_type="image/jpeg", headers=headers)


def _turn_version(session: Session, access: SignerAccess) -> DocumentVersion:
    if not _is_turn(access):
        raise PermissionDenied("It is not your turn to sign yet.", code="not_your_turn")
    return contracts.current_version(session, contract=access.contract)


@router.get("/attachments/{attachment_id}", summary="Download an attachment of the contract",
            response_class=Response)
def attachment(request: Request, attachment_id: uuid.UUID) -> Response:
    rt = runtime(request)
    with signer_unit(request) as (session, ctx, access):
        _turn_version(session, access)
        found, data = contracts.download_attachment(session, ctx, blobs=rt.blobs,
                                                    contract_id=access.contract.id,
                                                    attachment_id=attachment_id)
    # Always a download, never shown inline: an attachment is the sender's file, not ours.
    return Response(data, media_type="application/octet-stream", headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(found.filename)}",
        "X-Content-SHA256": found.sha256, "Cache-Control": "private, no-store"})
