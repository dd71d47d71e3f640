"""Test data builders: PDFs made on the fly, users, contracts in a given state."""

from __future__ import annotations

import io
import uuid
import zlib
from typing import Any

from pypdf import PdfWriter
from pypdf.generic import DictionaryObject, NameObject, TextStringObject
from sqlalchemy import update
from sqlalchemy.orm import Session

from econtract.accounts import service as accounts
from econtract.accounts.models import User
from econtract.accounts.policy import Role
from econtract.context import Actor, Ctx
from econtract.contracts import service as contracts
from econtract.contracts.models import Contract
from econtract.contracts.schemas import ContractCreate
from econtract.runtime import Runtime

PASSWORD = "a long enough test password"


def make_pdf(pages: int = 1, text: str = "Service agreement") -> bytes:
    """A small valid PDF with one line of Helvetica text per page (no dependencies)."""
    objects: list[bytes] = []
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode())
    font_ref = 3 + 2 * pages
    for i in range(pages):
        content = f"BT /F1 18 Tf 72 760 Td ({text} - page {i + 1}) Tj ET".encode()
        stream = zlib.compress(content)
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
                       f"/Resources << /Font << /F1 {font_ref} 0 R >> >> "
                       f"/Contents {4 + 2 * i} 0 R >>".encode())
        objects.append(f"<< /Length {len(stream)} /Filter /FlateDecode >>\nstream\n".encode()
                       + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
              .encode())
    return out.getvalue()


def encrypted_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    writer.encrypt(user_password="", owner_password="owner")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def javascript_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    action = DictionaryObject({NameObject("/S"): NameObject("/JavaScript"),
                               NameObject("/JS"): TextStringObject("app.alert('hello');")})
    writer._root_object[NameObject("/OpenAction")] = writer._add_object(action)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def system_ctx() -> Ctx:
    return Ctx(actor=Actor.system("tests"))


def user_ctx(user: User, clock: Any = None) -> Ctx:
    ctx = Ctx(actor=accounts.actor_for(user), ip="203.0.113.7", user_agent="pytest")
    return ctx if clock is None else Ctx(actor=ctx.actor, ip=ctx.ip, user_agent=ctx.user_agent,
                                         clock=clock)


def add_user(rt: Runtime, *, email: str, role: Role = Role.MEMBER,
             org_id: uuid.UUID | None = None) -> User:
    with rt.uow() as session:
        org = accounts.first_org(session) if org_id is None else None
        return accounts.create_user(session, system_ctx(), org_id=org_id or org.id,  # type: ignore[union-attr]
                                    email=email, password=PASSWORD, role=role)


def add_org(rt: Runtime, *, name: str, email: str) -> User:
    with rt.uow() as session:
        _, owner = accounts.create_org(session, system_ctx(), name=name, admin_email=email,
                                       admin_password=PASSWORD)
        return owner


def owner(rt: Runtime) -> User:
    with rt.uow() as session:
        found = accounts.get_user_by_email(session, "owner@acme.test")
        assert found is not None
        return found


def contract_meta(**overrides: Any) -> ContractCreate:
    data: dict[str, Any] = {
        "title": "房屋租赁合同 Lease 2026", "category": "lease", "tags": ["租赁", "2026"],
        "signers": [{"name": "张三", "email": "zhang@example.com", "order": 1},
                    {"name": "Bob Lee", "email": "bob@example.com", "phone": "+86 138 0000 0000",
                     "order": 2}],
        "effective_date": "2027-01-01", "expiry_date": "2027-12-31",
        "clauses": ["押金两个月。", {"title": "Pets", "body": "No pets allowed."}],
    }
    data.update(overrides)
    return ContractCreate.model_validate(data)


def create_contract(rt: Runtime, user: User, *, pdf: bytes | None = None, clock: Any = None,
                    **overrides: Any) -> Contract:
    document = contracts.Upload("lease.pdf", make_pdf(2) if pdf is None else pdf)
    notes = contracts.Upload("notes.txt", "附件：钥匙两把".encode())
    with rt.uow() as session:
        return contracts.create(session, user_ctx(user, clock), blobs=rt.blobs, limits=rt.limits,
                                contract_in=contract_meta(**overrides), document=document,
                                attachments=[notes])


def force_status(session: Session, contract_id: uuid.UUID, status: str) -> None:
    """Put a contract into a state the later signing work reaches (test set-up only)."""
    session.execute(update(Contract).where(Contract.id == contract_id).values(status=status))
