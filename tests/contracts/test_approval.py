"""Internal approval (合同审批): no sending before approval; sequential and any-one modes;
a rejection returns the contract to draft with the comment on the timeline; e-mails go out."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from econtract.accounts.models import User
from econtract.accounts.policy import Role
from econtract.contracts import approval, sending
from econtract.contracts import service as contracts
from econtract.contracts.schemas import ContractUpdate
from econtract.errors import (
    Conflict,
    InvalidTransition,
    PermissionDenied,
    ValidationFailed,
)
from econtract.jobs.models import OutboxJob
from econtract.runtime import Runtime
from tests.factories import add_user, create_contract, owner, user_ctx

SIGNER = [{"name": "张三", "email": "zhang@example.com"}]


def _people(rt: Runtime) -> tuple[User, User, User]:
    return (add_user(rt, email="legal@acme.test", role=Role.MANAGER),
            add_user(rt, email="finance@acme.test", role=Role.VIEWER),
            owner(rt))


def _send(rt: Runtime, contract_id: uuid.UUID) -> None:
    with rt.uow() as session:
        sending.send(session, user_ctx(owner(rt)), blobs=rt.blobs, engine=rt.signing_engine(),
                     contract_id=contract_id)


def _decide(rt: Runtime, user: User, contract_id: uuid.UUID, approve: bool,
            comment: str = "") -> str:
    with rt.uow() as session:
        return approval.decide(session, user_ctx(user), contract_id=contract_id,
                               approve=approve, comment=comment).status


def _mails_to(rt: Runtime, email: str) -> list[str]:
    with rt.uow() as session:
        jobs = session.scalars(select(OutboxJob).where(OutboxJob.kind == "email.send"))
        return [str(j.payload.get("subject", "")) for j in jobs
                if email in (j.payload.get("to") or [])
                and "approv" in str(j.payload.get("subject", "")).lower()]


def _owner_mails(rt: Runtime) -> list[str]:
    with rt.uow() as session:
        jobs = session.scalars(select(OutboxJob).where(OutboxJob.kind == "email.send"))
        return [str(j.payload.get("subject", "")) for j in jobs
                if "owner@acme.test" in (j.payload.get("to") or [])]


def test_sequential_approval_gates_sending(rt: Runtime) -> None:
    legal, finance, boss = _people(rt)
    contract = create_contract(rt, boss, signers=SIGNER,
                               approvers=["legal@acme.test", "FINANCE@acme.test"])
    with pytest.raises(InvalidTransition) as caught:
        _send(rt, contract.id)
    assert caught.value.code == "approval_required"
    with rt.uow() as session:
        approval.submit(session, user_ctx(boss), contract_id=contract.id)
    assert _mails_to(rt, "legal@acme.test") and not _mails_to(rt, "finance@acme.test")
    with pytest.raises(PermissionDenied):  # not finance's turn, and the owner is no approver
        _decide(rt, boss, contract.id, True)
    with pytest.raises(Conflict):
        _decide(rt, finance, contract.id, True)
    with pytest.raises(InvalidTransition):
        _send(rt, contract.id)
    assert _decide(rt, legal, contract.id, True, "条款无误") == "pending_approval"
    assert _mails_to(rt, "finance@acme.test")
    assert _decide(rt, finance, contract.id, True) == "approved"
    _send(rt, contract.id)
    with rt.uow() as session:
        ctx = user_ctx(boss)
        kinds = [e.kind for e in contracts.timeline(session, ctx, contract_id=contract.id)]
        decisions = [a.status for a in contracts.get(session, ctx,
                                                      contract_id=contract.id).approvals]
    assert kinds.count("approval.decided") == 2 and "contract.approved" in kinds
    assert decisions == ["approved", "approved"]


def test_rejection_returns_to_draft_with_the_comment(rt: Runtime) -> None:
    legal, _finance, boss = _people(rt)
    contract = create_contract(rt, boss, signers=SIGNER,
                               approvers=["legal@acme.test", "finance@acme.test"])
    with rt.uow() as session:
        approval.submit(session, user_ctx(boss), contract_id=contract.id)
    with pytest.raises(ValidationFailed) as caught:
        _decide(rt, legal, contract.id, False)
    assert caught.value.code == "comment_required"
    assert _decide(rt, legal, contract.id, False, "违约金条款过高") == "draft"
    assert any("Rejected" in subject for subject in _owner_mails(rt))
    with rt.uow() as session:
        events = contracts.timeline(session, user_ctx(boss), contract_id=contract.id)
        rejected = [e for e in events if e.kind == "contract.rejected"]
        assert rejected and rejected[0].data["comment"] == "违约金条款过高"
        # A draft again: it can be edited and submitted for a second round.
        contracts.update(session, user_ctx(boss), contract_id=contract.id,
                         patch=ContractUpdate(title="修改后的合同"))
        approval.submit(session, user_ctx(boss), contract_id=contract.id)
        rounds = {a.round for a in contracts.get(session, user_ctx(boss),
                                                 contract_id=contract.id).approvals}
    assert rounds == {1, 2}
    with pytest.raises(InvalidTransition):
        _send(rt, contract.id)


def test_any_one_approver_suffices(rt: Runtime) -> None:
    legal, finance, boss = _people(rt)
    contract = create_contract(rt, boss, signers=SIGNER, approval_mode="any",
                               approvers=["legal@acme.test", "finance@acme.test"])
    with rt.uow() as session:
        approval.submit(session, user_ctx(boss), contract_id=contract.id)
    assert _mails_to(rt, "legal@acme.test") and _mails_to(rt, "finance@acme.test")
    with rt.uow() as session:
        assert [c.id for c in approval.pending_for(session, user_ctx(finance))] == [contract.id]
    assert _decide(rt, finance, contract.id, True) == "approved"
    with pytest.raises(InvalidTransition):
        _decide(rt, legal, contract.id, True)
    _send(rt, contract.id)


def test_approvers_must_be_active_users_of_the_organisation(rt: Runtime) -> None:
    boss = owner(rt)
    with pytest.raises(ValidationFailed) as caught:
        create_contract(rt, boss, signers=SIGNER, approvers=["nobody@elsewhere.test"])
    assert caught.value.code == "approver_not_found"
    contract = create_contract(rt, boss, signers=SIGNER)
    with rt.uow() as session, pytest.raises(ValidationFailed) as no_one:
        approval.submit(session, user_ctx(boss), contract_id=contract.id)
    assert no_one.value.code == "no_approvers"
    _send(rt, contract.id)  # no approvers: sending needs no approval


def test_approval_and_sending_through_the_api_and_the_pages(rt: Runtime) -> None:
    """The whole path over HTTP: submit (API), approve (API, as the approver), send from the
    contract page (the owner's browser session), and the page's approval panel."""
    from fastapi.testclient import TestClient

    from econtract.app import create_app
    from tests.contracts.test_api import api_key
    from tests.web.test_pages import csrf, login

    legal, _finance, boss = _people(rt)
    contract = create_contract(rt, boss, signers=SIGNER, approvers=["legal@acme.test"])
    with TestClient(create_app(rt)) as client:
        as_owner, as_legal = api_key(rt, boss), api_key(rt, legal)
        url = f"/api/v1/contracts/{contract.id}"
        refused = client.post(f"{url}/send", headers=as_owner)
        assert refused.status_code == 409 and refused.json()["code"] == "approval_required"
        assert client.post(f"{url}/submit", headers=as_owner).json()["status"] == \
            "pending_approval"
        assert client.post(f"{url}/reject", headers=as_legal, json={}).status_code == 422
        approved = client.post(f"{url}/approve", headers=as_legal, json={"comment": "同意"})
        assert approved.status_code == 200, approved.text
        body = approved.json()
        assert body["status"] == "approved" and body["approvals"][0]["comment"] == "同意"
        assert body["approver_ids"] == [str(legal.id)]
        assert login(client).status_code == 303
        page = client.get(f"/contracts/{contract.id}")
        assert 'id="send-form"' in page.text and 'class="approvers"' in page.text
        sent = client.post(f"/contracts/{contract.id}/send",
                           data={"csrf_token": csrf(page.text)}, follow_redirects=False)
        assert sent.status_code == 303
        assert client.get(url, headers=as_owner).json()["status"] == "sent"
