"""Who signs when: sequential groups by order number (equal numbers sign in parallel), or
everyone at once when the contract's ``routing`` is ``parallel``."""

from __future__ import annotations

from sqlalchemy.orm import Session

from econtract.audit import service as audit
from econtract.audit.events import EventKind
from econtract.context import Ctx
from econtract.contracts.models import Contract
from econtract.parties import invitations, reminders
from econtract.parties.models import Signer

SIGNING_ROLES = frozenset({"signer"})


def signing_parties(contract: Contract) -> list[Signer]:
    """The parties who sign, in signing order (approvers and cc recipients do not)."""
    return [s for s in contract.signers if s.role in SIGNING_ROLES]


def all_signed(contract: Contract) -> bool:
    parties = signing_parties(contract)
    return bool(parties) and all(s.status == "signed" for s in parties)


def current_group(contract: Contract) -> list[Signer]:
    """The signers whose turn it is: the lowest order number not fully signed yet, or every
    signer still to sign when the contract is routed in parallel."""
    pending = [s for s in signing_parties(contract) if s.status != "signed"]
    if not pending or contract.routing == "parallel":
        return pending
    turn = min(s.order for s in pending)
    return [s for s in pending if s.order == turn]


def is_turn_of(contract: Contract, signer: Signer) -> bool:
    return any(s.id == signer.id for s in current_group(contract))


def open_next_group(session: Session, ctx: Ctx, contract: Contract) -> list[Signer]:
    """Invite the group whose turn has come (signers still ``waiting``): each gets a personal
    link by e-mail through the outbox, committed with the change that opened the group, and the
    group's reminders are scheduled from now."""
    invited = []
    for signer in current_group(contract):
        if signer.status == "waiting":
            signer.status = "invited"
            invited.append(signer)
            audit.record(session, ctx, EventKind.SIGNER_INVITED, org_id=contract.org_id,
                         contract_id=contract.id,
                         data={"signer_id": str(signer.id), "email": signer.email,
                               "order": signer.order})
    session.flush()
    invitations.invite(session, ctx, contract=contract, signers=invited)
    if invited:
        reminders.schedule(session, contract=contract, now=ctx.now())
    return invited
