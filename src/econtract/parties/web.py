"""HTML: the signing page ``/s`` that a signer reaches from their invitation link.

``/s/{token}`` (``parties/api.py``) moves the token into the HttpOnly cookie and redirects here.
The page is rendered from the same view as ``GET /api/v1/signer`` — the summary, the state and
what to ask for — and ``static/signing.js`` walks the signer through the steps on the signer JSON
API: the code, the pages, the signature, consent, the PIN, sign or decline. A link that no longer
works gets a page saying why (signed, declined, voided, expired) instead of a bare error.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract import web
from econtract.accounts.security import token_hash
from econtract.contracts.models import Contract
from econtract.contracts.states import Status
from econtract.errors import EContractError
from econtract.http import base_ctx, runtime
from econtract.parties import links
from econtract.parties.api import SIGNER_COOKIE, session_view
from econtract.parties.links import LinkGone
from econtract.parties.models import Signer, SignerLink
from econtract.web.render import render

router = APIRouter(include_in_schema=False)

NOTICES = ("no_link", "signed", "declined", "ended", "voided", "expired", "gone")
"""The states a signer may find instead of a contract to sign (``signing/notice.html``)."""


@router.get("/s")
def signing_page(request: Request) -> Response:
    token = request.cookies.get(SIGNER_COOKIE, "")
    if not token:
        # Someone typed /s, or the cookie expired: a signer has no account to sign in to.
        return _notice(request, "no_link", status=401)
    rt = runtime(request)
    now = base_ctx(request).now()
    try:
        with rt.uow() as session:
            access = links.resolve(session, token=token, now=now)
            view = session_view(session, access, token)
    except LinkGone:
        with rt.uow() as session:
            state = _ended_state(session, token, now)
        return _notice(request, state, status=410)
    except EContractError as exc:
        return web.render_error(request, exc)
    return render(request, "signing/page.html", viewer=None, s=view)


def _ended_state(session: Session, token: str, now: datetime) -> str:
    """Why a known link no longer works, told only to its holder (who knows anyway)."""
    link = session.scalar(select(SignerLink).where(SignerLink.token_hash == token_hash(token)))
    signer = session.get(Signer, link.signer_id) if link else None
    contract = session.get(Contract, link.contract_id) if link else None
    if link is None or signer is None or contract is None:
        return "gone"
    if signer.status in ("signed", "declined"):
        return signer.status
    if contract.status == Status.VOIDED:
        return "voided"
    if contract.status == Status.DECLINED:
        return "ended"  # another signer declined
    deadline_passed = contract.sign_deadline is not None and contract.sign_deadline <= now
    if contract.status == Status.EXPIRED or deadline_passed or link.expires_at <= now:
        return "expired"
    return "gone"


def _notice(request: Request, state: str, *, status: int) -> Response:
    response = render(request, "signing/notice.html", viewer=None, status=status, state=state)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
