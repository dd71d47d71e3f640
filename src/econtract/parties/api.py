"""The signer's side over HTTP: the invitation link ``/s/{token}`` and the JSON API
``/api/v1/signer`` that the signing page (or an integrator's own page) is built on.

Every call resolves its token to exactly one signer and that signer's contract, and everything
it reads or changes is reached from those two rows: there is no id in any path or body, so no id
can be swapped for another contract's. The token comes in the ``X-Signer-Token`` header, or in
the HttpOnly cookie that ``/s/{token}`` sets; cookie-authenticated POSTs also need the
``X-CSRF-Token`` that ``GET /api/v1/signer`` returns (a header no other site can send).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse, RedirectResponse
from sqlalchemy.orm import Session

from econtract import web
from econtract.accounts.models import Organisation, User
from econtract.accounts.security import tokens_equal
from econtract.audit import service as audit
from econtract.audit.events import EventKind
from econtract.context import Ctx
from econtract.contracts import service as contracts
from econtract.credentials import service as credentials
from econtract.errors import (
    AuthenticationRequired,
    CsrfFailed,
    EContractError,
    PermissionDenied,
    ValidationFailed,
)
from econtract.http import CSRF_HEADER, SAFE_METHODS, base_ctx, runtime
from econtract.parties import links, otp, routing
from econtract.parties import service as parties
from econtract.parties.links import SignerAccess
from econtract.parties.schemas import (
    CONSENT_TEXT,
    AppearanceIn,
    CodeIn,
    CodeSentRead,
    ContractView,
    DeclineIn,
    OutcomeRead,
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
def signer_unit(request: Request, *, lock: bool = False) -> Iterator[
        tuple[Session, Ctx, SignerAccess]]:
    """One transaction acting as the token's signer; ``lock`` takes the contract's row lock."""
    token = _token(request)
    with runtime(request).uow() as session:
        ctx = base_ctx(request)
        access = links.resolve(session, token=token, now=ctx.now(), lock=lock)
        yield session, ctx.with_actor(parties.signer_actor(access.signer)), access


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


@link_router.get("/s")
def signing_page() -> Response:
    # A placeholder until the HTML signing page is built on the API below.
    return PlainTextResponse(
        "签署页面即将推出；请使用 /api/v1/signer。\n"
        "The signing page comes next; the signer API is at /api/v1/signer.\n",
        headers={"Cache-Control": "no-store"})


# --- the API -------------------------------------------------------------------------------

@router.get("", response_model=SignerSession, summary="The contract as its signer may see it")
def get_session(request: Request) -> SignerSession:
    with signer_unit(request) as (session, ctx, access):
        if access.signer.status == "invited":  # an integrator's page never opens /s/{token}
            links.record_open(session, ctx, access, via="api")
        return _session_view(session, access, _token(request))


def _session_view(session: Session, access: SignerAccess, token: str) -> SignerSession:
    contract, signer = access.contract, access.signer
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
        identity_methods=[otp.METHOD],
        key_set_up=credentials.active_credential(session, email=signer.email) is not None,
        consent_text=CONSENT_TEXT, csrf_token=csrf_token_for(token),
        link_expires_at=access.link.expires_at)


def _is_turn(access: SignerAccess) -> bool:
    return access.signer.status != "waiting" and routing.is_turn_of(access.contract,
                                                                    access.signer)


@router.post("/otp", response_model=CodeSentRead, summary="Send a one-time code by e-mail")
def send_code(request: Request) -> CodeSentRead:
    with signer_unit(request, lock=True) as (session, ctx, access):
        sent = otp.send_code(session, ctx, access=access)
    return CodeSentRead(channel=sent.channel, sent_to=sent.sent_to, expires_at=sent.expires_at,
                        resend_after=sent.resend_after)


@router.post("/otp/verify", response_model=VerifiedRead, summary="Prove identity with the code")
def verify_code(request: Request, body: CodeIn) -> VerifiedRead:
    with signer_unit(request, lock=True) as (session, ctx, access):
        outcome = otp.verify_code(session, ctx, access=access, code=body.code)
        status = access.signer.status
    if outcome.error is not None:  # raised after the commit, so the wrong try is counted
        raise outcome.error
    return VerifiedRead(identity_verified=True, method=otp.METHOD, signer_status=status)


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
    with signer_unit(request, lock=True) as (session, ctx, access):
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
    image: bytes | None = None
    if appearance.image_png_base64:
        raw = appearance.image_png_base64
        if raw.startswith("data:"):
            raw = raw.partition(",")[2]
        try:
            image = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidationFailed("image_png_base64 is not valid base64.",
                                   code="invalid_image") from exc
        if not image.startswith(PNG_MAGIC) or len(image) > MAX_IMAGE_BYTES:
            raise ValidationFailed("The signature image must be a PNG of at most 2 MB.",
                                   code="invalid_image")
    return parties.Appearance(kind=appearance.type, text=appearance.text, image_png=image)


@router.post("/decline", response_model=OutcomeRead, summary="Decline to sign, with a reason")
def decline(request: Request, body: DeclineIn) -> OutcomeRead:
    with signer_unit(request) as (session, ctx, access):
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
