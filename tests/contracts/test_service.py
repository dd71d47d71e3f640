"""Contract services: create, edit in draft only, void, lists, encrypted storage."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from econtract.accounts.policy import Role
from econtract.contracts import service as contracts
from econtract.contracts.models import Attachment, Contract, DocumentVersion
from econtract.contracts.schemas import ContractFilter, ContractUpdate
from econtract.errors import (
    ContractNotEditable,
    IntegrityError,
    NotFound,
    PermissionDenied,
    UploadRejected,
)
from econtract.runtime import Runtime
from tests.factories import (
    add_org,
    add_user,
    contract_meta,
    create_contract,
    encrypted_pdf,
    force_status,
    javascript_pdf,
    make_pdf,
    owner,
    user_ctx,
)


def test_create_keeps_every_field(rt: Runtime) -> None:
    contract = create_contract(rt, owner(rt), sign_deadline="2026-12-20T18:00:00+08:00")
    with rt.uow() as session:
        c = contracts.get(session, user_ctx(owner(rt)), contract_id=contract.id)
        assert c.status == "draft" and c.title == "房屋租赁合同 Lease 2026"
        assert [s.name for s in c.signers] == ["张三", "Bob Lee"]
        assert c.signers[1].phone == "+86 138 0000 0000" and c.signers[1].order == 2
        assert [t.tag for t in c.tags] == ["2026", "租赁"]
        assert [(k.position, k.title, k.body) for k in c.clauses] == [
            (1, "", "押金两个月。"), (2, "Pets", "No pets allowed.")]
        assert c.effective_date == date(2027, 1, 1) and c.expiry_date == date(2027, 12, 31)
        assert c.sign_deadline is not None and c.sign_deadline.hour == 10  # 18:00+08 in UTC
        assert [a.filename for a in c.attachments] == ["notes.txt"]
        version = contracts.current_version(session, contract=c)
        assert version.number == 1 and version.page_count == 2 and len(version.sha256) == 64


def test_raw_bytes_never_reach_the_disk(rt: Runtime, settings: object) -> None:
    marker = "UNIQUE-PLAINTEXT-MARKER-7f3a9c"
    pdf = make_pdf(1, text=marker)
    create_contract(rt, owner(rt), pdf=pdf)
    data_dir: Path = rt.settings.data_dir
    for path in data_dir.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            assert pdf not in blob and marker.encode() not in blob, path
            assert "附件：钥匙两把".encode() not in blob, path


def _blob_path(rt: Runtime, key: str) -> Path:
    return Path(rt.settings.resolved_storage_url.removeprefix("file://")) / key


def test_flipped_byte_is_detected(rt: Runtime) -> None:
    user = owner(rt)
    contract = create_contract(rt, user)
    with rt.uow() as session:
        version = contracts.current_version(session, contract=contract)
    path = _blob_path(rt, version.blob_key)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError), rt.uow() as session:
        contracts.download_document(session, user_ctx(user), blobs=rt.blobs,
                                    contract_id=contract.id)


def test_blob_moved_to_another_contract_is_detected(rt: Runtime) -> None:
    user = owner(rt)
    first, second = create_contract(rt, user), create_contract(rt, user, title="Other")
    with rt.uow() as session:
        v1 = contracts.current_version(session, contract=first)
        v2 = contracts.current_version(session, contract=second)
    # The attacker copies contract 1's file over contract 2's blob and fixes up the hash.
    _blob_path(rt, v2.blob_key).write_bytes(_blob_path(rt, v1.blob_key).read_bytes())
    with rt.uow() as session:
        row = session.get_one(DocumentVersion, v2.id)
        row.sha256 = v1.sha256
    with pytest.raises(IntegrityError), rt.uow() as session:
        contracts.download_document(session, user_ctx(user), blobs=rt.blobs,
                                    contract_id=second.id)


@pytest.mark.parametrize(("data", "code"), [
    (b"GIF89a not a pdf at all", "upload_not_pdf"),
    (b"", "upload_empty"),
    ("encrypted", "upload_encrypted"),
    ("javascript", "upload_javascript"),
    (b"%PDF-1.7\n" + b"0" * (3 * 2**20), "upload_too_large"),
])
def test_bad_uploads_store_nothing(rt: Runtime, data: bytes | str, code: str) -> None:
    payload = {"encrypted": encrypted_pdf, "javascript": javascript_pdf}[data]() \
        if isinstance(data, str) else data
    with pytest.raises(UploadRejected) as info:
        create_contract(rt, owner(rt), pdf=payload)
    assert info.value.code == code
    with rt.uow() as session:
        assert session.scalar(select(func.count()).select_from(Contract)) == 0
        assert session.scalar(select(func.count()).select_from(Attachment)) == 0
    blobs = Path(rt.settings.resolved_storage_url.removeprefix("file://"))
    assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))


def test_edit_only_in_draft(rt: Runtime) -> None:
    user = owner(rt)
    contract = create_contract(rt, user)
    with rt.uow() as session:
        edited = contracts.update(session, user_ctx(user), contract_id=contract.id,
                                  patch=ContractUpdate(title="New title", tags=["a", "b", "a"],
                                                       signers=[]))
        assert edited.title == "New title" and [t.tag for t in edited.tags] == ["a", "b"]
        assert edited.signers == []
    with rt.uow() as session:
        contracts.replace_document(session, user_ctx(user), blobs=rt.blobs, limits=rt.limits,
                                   contract_id=contract.id,
                                   document=contracts.Upload("v2.pdf", make_pdf(3)))
    with rt.uow() as session:
        c = contracts.get(session, user_ctx(user), contract_id=contract.id)
        assert [v.number for v in contracts.versions(session, contract=c)] == [1, 2]
        force_status(session, contract.id, "sent")
    with pytest.raises(ContractNotEditable), rt.uow() as session:
        contracts.update(session, user_ctx(user), contract_id=contract.id,
                         patch=ContractUpdate(title="Too late"))
    with pytest.raises(ContractNotEditable), rt.uow() as session:
        contracts.add_attachment(session, user_ctx(user), blobs=rt.blobs, limits=rt.limits,
                                 contract_id=contract.id,
                                 upload=contracts.Upload("x.txt", b"late"))


def test_void_needs_reason_and_is_final(rt: Runtime) -> None:
    user = owner(rt)
    contract = create_contract(rt, user)
    with rt.uow() as session:
        voided = contracts.void(session, user_ctx(user), contract_id=contract.id,
                                reason="Wrong counterparty")
        assert voided.status == "voided" and voided.void_reason == "Wrong counterparty"
    with pytest.raises(ContractNotEditable), rt.uow() as session:
        contracts.update(session, user_ctx(user), contract_id=contract.id,
                         patch=ContractUpdate(title="x"))


def test_roles_and_tenants(rt: Runtime) -> None:
    boss = owner(rt)
    member = add_user(rt, email="member@acme.test", role=Role.MEMBER)
    viewer = add_user(rt, email="viewer@acme.test", role=Role.VIEWER)
    stranger = add_org(rt, name="Globex", email="boss@globex.test")
    contract = create_contract(rt, boss)
    mine = create_contract(rt, member, title="Member's own")
    with rt.uow() as session:
        # viewers read everything, change nothing
        contracts.view(session, user_ctx(viewer), contract_id=contract.id)
        with pytest.raises(PermissionDenied):
            contracts.void(session, user_ctx(viewer), contract_id=contract.id, reason="x")
        with pytest.raises(PermissionDenied):
            contracts.create(session, user_ctx(viewer), blobs=rt.blobs, limits=rt.limits,
                             contract_in=contract_meta(),
                             document=contracts.Upload("a.pdf", make_pdf()))
        # members see only their own
        with pytest.raises(NotFound):
            contracts.view(session, user_ctx(member), contract_id=contract.id)
        contracts.update(session, user_ctx(member), contract_id=mine.id,
                         patch=ContractUpdate(category="own"))
        items, total = contracts.list_(session, user_ctx(member), filters=ContractFilter())
        assert total == 1 and items[0].id == mine.id
        # another organisation sees nothing
        with pytest.raises(NotFound):
            contracts.view(session, user_ctx(stranger), contract_id=contract.id)
        assert contracts.list_(session, user_ctx(stranger), filters=ContractFilter())[1] == 0


def test_list_filters_sort_and_pages(rt: Runtime, clock: object) -> None:
    user = owner(rt)
    create_contract(rt, user, title="Alpha purchase", category="purchase", tags=["q1"],
                    expiry_date="2027-03-01", effective_date="2027-01-01")
    create_contract(rt, user, title="Beta lease", category="lease", tags=["q2"])
    create_contract(rt, user, title="Gamma 劳动合同", category="hr", tags=["q1", "人事"],
                    signers=[{"name": "李四", "email": "li@example.com"}])
    ctx = user_ctx(user)

    def titles(**kw: object) -> list[str]:
        with rt.uow() as session:
            items, _ = contracts.list_(session, ctx, filters=ContractFilter.model_validate(kw))
            return [c.title for c in items]

    assert titles(q="lease") == ["Beta lease"]
    assert titles(q="劳动") == ["Gamma 劳动合同"]
    assert titles(q="李四") == ["Gamma 劳动合同"]  # signer names are searched too
    assert titles(q="%") == []  # wildcards are literal
    assert sorted(titles(tag="q1")) == ["Alpha purchase", "Gamma 劳动合同"]
    assert titles(category="purchase") == ["Alpha purchase"]
    assert titles(tag="q1", category="hr") == ["Gamma 劳动合同"]
    assert titles(expiry_to="2027-06-30") == ["Alpha purchase"]
    assert titles(sort="title") == ["Alpha purchase", "Beta lease", "Gamma 劳动合同"]
    assert titles(sort="title", per_page=2, page=2) == ["Gamma 劳动合同"]
    assert titles(status=["voided"]) == []
    with rt.uow() as session:
        counts = contracts.status_counts(session, ctx)
        assert counts["draft"] == 3 and counts["completed"] == 0
