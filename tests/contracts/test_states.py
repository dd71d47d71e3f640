"""The lifecycle table, and compare-and-set transitions under a race."""

from __future__ import annotations

import pytest
from sqlalchemy.orm.attributes import set_committed_value

from econtract.contracts import states
from econtract.contracts.models import Contract
from econtract.contracts.states import Event, Status
from econtract.errors import InvalidTransition
from econtract.runtime import Runtime
from tests.factories import create_contract, force_status, owner, user_ctx

LIFECYCLE = [
    (Status.DRAFT, Event.SUBMIT, Status.PENDING_APPROVAL),
    (Status.PENDING_APPROVAL, Event.APPROVE, Status.APPROVED),
    (Status.PENDING_APPROVAL, Event.REJECT, Status.DRAFT),
    (Status.DRAFT, Event.SEND, Status.SENT),
    (Status.APPROVED, Event.SEND, Status.SENT),
    (Status.SENT, Event.SIGN_PARTIALLY, Status.SIGNING),
    (Status.SIGNING, Event.SIGN_PARTIALLY, Status.SIGNING),
    (Status.SENT, Event.COMPLETE, Status.COMPLETED),
    (Status.SIGNING, Event.COMPLETE, Status.COMPLETED),
    (Status.SENT, Event.DECLINE, Status.DECLINED),
    (Status.SIGNING, Event.DECLINE, Status.DECLINED),
    (Status.DECLINED, Event.VOID, Status.VOIDED),
    (Status.SENT, Event.VOID, Status.VOIDED),
    (Status.SIGNING, Event.VOID, Status.VOIDED),
    (Status.DRAFT, Event.VOID, Status.VOIDED),
    (Status.SENT, Event.EXPIRE, Status.EXPIRED),
    (Status.SIGNING, Event.EXPIRE, Status.EXPIRED),
    (Status.COMPLETED, Event.LAPSE, Status.LAPSED),
]


def test_table_is_the_product_lifecycle() -> None:
    for source, event, target in LIFECYCLE:
        assert states.target_of(source, event) is target
    allowed = {(s, e) for s, e, _ in LIFECYCLE} | {
        (Status.PENDING_APPROVAL, Event.VOID), (Status.APPROVED, Event.VOID)}
    assert set(states.TRANSITIONS) == allowed


@pytest.mark.parametrize("status", list(Status))
def test_everything_else_is_refused(status: Status) -> None:
    for event in Event:
        if (status, event) not in states.TRANSITIONS:
            with pytest.raises(InvalidTransition) as info:
                states.target_of(status, event)
            assert info.value.code == "invalid_transition"


def test_every_transition_runs_and_is_audited(rt: Runtime) -> None:
    user = owner(rt)
    contract = create_contract(rt, user)
    for source, event, target in LIFECYCLE:
        with rt.uow() as session:
            force_status(session, contract.id, source.value)
            row = session.get_one(Contract, contract.id)
            session.refresh(row)
            assert states.transition(session, user_ctx(user), row, event) is target
            assert row.status == target.value
    from econtract.audit import service as audit

    with rt.uow() as session:
        kinds = [e.kind for e in audit.contract_events(session, org_id=contract.org_id,
                                                       contract_id=contract.id)]
        assert kinds.count("contract.voided") == 4 and "contract.lapsed" in kinds
        assert audit.verify_chains(session).ok


def test_compare_and_set_lets_one_racer_win(rt: Runtime) -> None:
    user = owner(rt)
    contract = create_contract(rt, user)
    stale = rt.session_factory()
    stale_row = stale.get_one(Contract, contract.id)  # read while still draft
    stale.rollback()  # release SQLite's write lock; the object keeps its stale status
    with rt.uow() as session:
        row = session.get_one(Contract, contract.id)
        states.transition(session, user_ctx(user), row, Event.SEND)
    set_committed_value(stale_row, "status", Status.DRAFT.value)  # what the loser believes
    with pytest.raises(InvalidTransition) as info:
        states.transition(stale, user_ctx(user), stale_row, Event.VOID)
    stale.rollback()
    stale.close()
    assert "changed meanwhile" in info.value.message
    with rt.uow() as session:
        assert session.get_one(Contract, contract.id).status == Status.SENT.value
