"""Completion on both databases: after the seal, the certificate of completion (its hashes, the
signers' facts, the audit head that `econtract audit verify` reports), the final e-mails with both
PDFs to owner, signers and copy recipients, idempotence, and the download API."""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage as MimeMessage
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from econtract.audit.events import EventKind
from econtract.audit.models import AuditEvent
from econtract.cli import main
from econtract.context import Actor, Ctx, utcnow
from econtract.contracts import completion, sending
from econtract.contracts.models import Contract, DocumentVersion
from econtract.errors import IntegrityError
from econtract.jobs import JobRegistry, Worker
from econtract.jobs.models import OutboxJob
from econtract.notifications import messages
from econtract.notifications.email import SmtpEmailBackend, StoredAttachment
from econtract.notifications.jobs import SEND_EMAIL, make_send_email_handler, queue_email
from econtract.parties import service as parties
from econtract.parties.models import Signer
from econtract.runtime import Runtime
from econtract.signing.report import SignatureKind, Verdict
from econtract.signing.specs import CHINA_STANDARD_TIME
from econtract.signing.verify import verify_pdf
from tests.contracts.test_api import api_key
from tests.factories import add_org, owner
from tests.notifications.conftest import SmtpServer
from tests.parties.test_sign import PINS, current_pdf, sent_contract, signer_row

PARTIES: list[dict[str, object]] = [
    {"name": "张三", "email": "zhang@example.com", "order": 1},
    {"name": "Bob Lee", "email": "bob@example.com", "order": 2},
    {"name": "抄送 Carol", "email": "carol@example.com", "order": 1, "role": "cc"},
]
CLIENTS = {"zhang@example.com": ("198.51.100.21", "Mozilla/5.0 (iPhone) 微信 WeChat/8.0"),
           "bob@example.com": ("203.0.113.45", "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0")}
COMPLETED_SUBJECT = "合同已完成 / Contract completed"


# --- helpers -------------------------------------------------------------------------------------


def sign_from(rt: Runtime, contract_id: uuid.UUID, address: str) -> None:
    """Sign as ``address`` from its own IP and browser, after proving identity by e-mail code."""
    signer = signer_row(rt, contract_id, address)
    with rt.uow() as session:  # what the e-mail code step records (parties.otp)
        row = session.get_one(Signer, signer.id)
        row.status, row.identity_method, row.verified_at = "verified", "email_otp", utcnow()
    ip, agent = CLIENTS[address]
    with rt.uow() as session:
        outcome = parties.sign(session, Ctx(actor=parties.signer_actor(signer), ip=ip,
                                            user_agent=agent),
                               blobs=rt.blobs, engine=rt.signing_engine(), keyring=rt.keyring,
                               contract_id=contract_id, signer_id=signer.id, pin=PINS[address],
                               appearance=parties.Appearance(kind="typed"))
    assert outcome.error is None


def status_of(rt: Runtime, contract_id: uuid.UUID) -> str:
    with rt.uow() as session:
        return session.get_one(Contract, contract_id).status


def run_until_completed(rt: Runtime, contract_id: uuid.UUID) -> None:
    for _ in range(20):
        if status_of(rt, contract_id) == "completed":
            return
        assert rt.worker().run_once() > 0
    raise AssertionError("the seal job did not complete the contract")


def drain(rt: Runtime) -> None:
    for _ in range(50):
        if rt.worker().run_once() == 0:
            return
    raise AssertionError("the outbox does not drain")


def completed_contract(rt: Runtime, parties_in: list[dict[str, object]] = PARTIES) -> Contract:
    contract = sent_contract(rt, signers=parties_in)
    for party in parties_in:
        if party.get("role", "signer") == "signer":
            sign_from(rt, contract.id, str(party["email"]))
    run_until_completed(rt, contract.id)
    return contract


def audit_verify(rt: Runtime) -> dict[str, tuple[int, str]]:
    """Run `econtract audit verify` as a user would; the heads it prints, per chain."""
    env = {"ECONTRACT_DATA_DIR": str(rt.settings.data_dir),
           "ECONTRACT_DATABASE_URL": rt.settings.resolved_database_url}
    result = CliRunner().invoke(main, ["audit", "verify"], env=env, catch_exceptions=False)
    assert result.exit_code == 0 and "audit chain OK" in result.output, result.output
    heads = {}
    for line in result.output.splitlines():
        found = re.fullmatch(r"chain (\S+): head seq (\d+) hash ([0-9a-f]{64})", line)
        if found:
            heads[found.group(1)] = (int(found.group(2)), found.group(3))
    return heads


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / f"{uuid.uuid4().hex}.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True,
                          check=True, timeout=60)
    return done.stdout.decode("utf-8")


def completion_mails(rt: Runtime) -> list[MimeMessage]:
    found = []
    for path in sorted(Path(rt.settings.outbox_dir).glob("*.eml")):
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(parsed, MimeMessage)
        if str(parsed["Subject"]).startswith(COMPLETED_SUBJECT):
            found.append(parsed)
    return found


def events_of(rt: Runtime, contract_id: uuid.UUID, kind: EventKind) -> list[AuditEvent]:
    with rt.uow() as session:
        return list(session.scalars(select(AuditEvent).where(
            AuditEvent.contract_id == contract_id, AuditEvent.kind == kind.value)))


def versions(rt: Runtime, contract_id: uuid.UUID) -> dict[str, DocumentVersion]:
    with rt.uow() as session:
        return {v.kind: v for v in session.scalars(select(DocumentVersion).where(
            DocumentVersion.contract_id == contract_id))}


def certificate_of(rt: Runtime, contract_id: uuid.UUID) -> tuple[Contract, bytes]:
    with rt.uow() as session:
        contract = session.get_one(Contract, contract_id)
        assert contract.certificate_blob_key and contract.certificate_sha256
        data = rt.blobs.get(org_id=contract.org_id, contract_id=contract.id,
                            key=contract.certificate_blob_key, sha256=contract.certificate_sha256)
    return contract, data


# --- the certificate -----------------------------------------------------------------------------


def test_certificate_mails_and_audit_head(rt: Runtime, tmp_path: Path) -> None:
    contract = completed_contract(rt)
    # The certificate job was queued with the completion and has not run yet: the chain's head
    # now is the entry the certificate will name, and audit verify reports it.
    with rt.uow() as session:
        job = session.scalars(select(OutboxJob).where(
            OutboxJob.dedupe_key == f"certificate:{contract.id}")).one()
        assert job.kind == sending.CERTIFICATE_JOB and job.status == "pending"
    chain = str(contract.org_id)
    head_seq, head_hash = audit_verify(rt)[chain]
    drain(rt)

    stored, pdf = certificate_of(rt, contract.id)
    assert hashlib.sha256(pdf).hexdigest() == stored.certificate_sha256
    text = pdf_text(pdf, tmp_path)
    rows = versions(rt, contract.id)
    assert rows["certified"].sha256 in text and rows["sealed"].sha256 in text
    assert str(contract.id) in text and "完成证书 / Certificate of completion" in text
    for ip, agent in CLIENTS.values():
        assert ip in text and agent in text
    assert "邮箱验证码 / E-mail one-time code" in text and "无 / none" in text
    assert "抄送 Carol" not in text  # a copy recipient is no signing party

    # each signing time is the one the signature's timestamp proves (our verifier's report)
    _, sealed = current_pdf(rt, contract.id)
    with rt.uow() as session:
        trust = rt.signing_engine().trust(session, utcnow())
    report = verify_pdf(sealed, trust)
    for signature in report.signatures:
        if signature.kind is SignatureKind.APPROVAL:
            assert signature.timestamp_proven and signature.timestamp_time is not None
            local = signature.timestamp_time.astimezone(CHINA_STANDARD_TIME)
            assert f"{local:%Y-%m-%d %H:%M:%S} UTC+8（时间戳证明 / proven by timestamp）" in text

    # the audit head printed is the one audit verify reported just before, and the
    # certificate_issued event follows it directly
    assert head_hash in text and re.search(rf"链头序号 / Head seq\s+{head_seq}\s", text)
    [issued] = events_of(rt, contract.id, EventKind.CERTIFICATE_ISSUED)
    assert issued.chain == chain and issued.seq == head_seq + 1
    assert issued.prev_hash == head_hash and issued.data["audit_head_hash"] == head_hash
    assert issued.data["sha256"] == stored.certificate_sha256
    after = audit_verify(rt)[chain]
    assert after[0] >= issued.seq

    # the certificate is sealed by the platform, certified with no changes allowed
    certificate_report = verify_pdf(pdf, trust)
    assert certificate_report.verdict is Verdict.VALID, certificate_report.to_dict()
    assert certificate_report.signatures[0].docmdp == 1

    # every party and the owner get the final PDF and the certificate, checked by hash
    mails = completion_mails(rt)
    recipients = sorted(str(m["To"]) for m in mails)
    assert recipients == ["bob@example.com", "carol@example.com", "owner@acme.test",
                          "zhang@example.com"]
    for mail in mails:
        files = {str(part.get_filename()): part.get_content() for part in mail.iter_attachments()}
        assert len(files) == 2, files.keys()
        digests = {hashlib.sha256(data).hexdigest() for data in files.values()}
        assert digests == {rows["sealed"].sha256, stored.certificate_sha256}
        assert files["certificate-of-completion.pdf"] == pdf
        body = mail.get_body(("plain",))
        assert body is not None and stored.certificate_sha256 in body.get_content()

    # the outbox never held the PDFs: the delivered jobs keep recipients and hashes only
    with rt.uow() as session:
        sent = [j for j in session.scalars(select(OutboxJob).where(OutboxJob.kind == SEND_EMAIL))
                if str(j.payload.get("subject", "")).startswith(COMPLETED_SUBJECT)]
    assert len(sent) == 4 and all(j.status == "done" for j in sent)
    assert all(len(json.dumps(j.payload)) < 1000 for j in sent)


def test_issuing_twice_issues_once(rt: Runtime) -> None:
    contract = completed_contract(rt, PARTIES[:1])
    drain(rt)
    first, _ = certificate_of(rt, contract.id)
    mails = len(completion_mails(rt))
    assert mails == 2  # the signer and the owner
    system = Ctx(actor=Actor.system("tests"), base_url=rt.settings.base_url)
    # the job again (a worker that lost its lease), the seal job again, the service directly
    with rt.uow() as session:
        job = session.scalars(select(OutboxJob).where(
            OutboxJob.dedupe_key == f"certificate:{contract.id}")).one()
        job.status, job.run_after = "pending", utcnow()
    drain(rt)
    with rt.uow() as session:
        sending.ensure_sealed(session, system, blobs=rt.blobs, engine=rt.signing_engine(),
                              contract_id=contract.id)
        completion.issue_certificate(session, system, blobs=rt.blobs,
                                     engine=rt.signing_engine(), contract_id=contract.id)
    drain(rt)
    again, _ = certificate_of(rt, contract.id)
    assert again.certificate_sha256 == first.certificate_sha256
    assert len(events_of(rt, contract.id, EventKind.CERTIFICATE_ISSUED)) == 1
    assert len(completion_mails(rt)) == mails
    with rt.uow() as session:
        jobs = session.scalar(select(func.count()).select_from(OutboxJob).where(
            OutboxJob.kind == sending.CERTIFICATE_JOB))
    assert jobs == 1


# --- the download --------------------------------------------------------------------------------


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    from econtract.app import create_app

    with TestClient(create_app(rt)) as test_client:
        yield test_client


def test_download_api(rt: Runtime, client: TestClient) -> None:
    headers = api_key(rt, owner(rt))
    pending = sent_contract(rt, signers=PARTIES[:1])
    early = client.get(f"/api/v1/contracts/{pending.id}/certificate", headers=headers)
    assert early.status_code == 404 and early.json()["code"] == "certificate_not_ready"
    assert early.headers["content-type"].startswith("application/problem+json")

    contract = completed_contract(rt, PARTIES[:1])
    assert client.get(f"/api/v1/contracts/{contract.id}/certificate",
                      headers=headers).json()["code"] == "certificate_not_ready"
    drain(rt)
    stored, pdf = certificate_of(rt, contract.id)
    response = client.get(f"/api/v1/contracts/{contract.id}/certificate", headers=headers)
    assert response.status_code == 200 and response.content == pdf
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["x-content-sha256"] == stored.certificate_sha256
    assert "certificate-of-completion" in response.headers["content-disposition"]
    [downloaded] = events_of(rt, contract.id, EventKind.CERTIFICATE_DOWNLOADED)
    assert downloaded.data["sha256"] == stored.certificate_sha256
    assert downloaded.actor_label == "owner@acme.test"

    stranger = api_key(rt, add_org(rt, name="Globex", email="boss@globex.test"))
    other = client.get(f"/api/v1/contracts/{contract.id}/certificate", headers=stranger)
    assert other.status_code == 404 and other.json()["code"] == "contract_not_found"
    missing = client.get(f"/api/v1/contracts/{uuid.uuid4()}/certificate", headers=headers)
    assert missing.status_code == 404
    assert len(events_of(rt, contract.id, EventKind.CERTIFICATE_DOWNLOADED)) == 1

    # the detail page links to it once it exists
    page = _detail_page(client, contract.id)
    assert f"/api/v1/contracts/{contract.id}/certificate" in page
    assert str(stored.certificate_sha256) in page
    assert f"/api/v1/contracts/{pending.id}/certificate" not in _detail_page(client, pending.id)


def _detail_page(client: TestClient, contract_id: uuid.UUID) -> str:
    from tests.web.test_pages import login

    if not client.cookies:
        assert login(client).status_code == 303
    page = client.get(f"/contracts/{contract_id}")
    assert page.status_code == 200, page.text
    return page.text


# --- e-mail attachments by reference -------------------------------------------------------------


def _stored(rt: Runtime, data: bytes, *, sha256: str | None = None) -> StoredAttachment:
    org, contract = uuid.uuid4(), uuid.uuid4()
    blob = rt.blobs.put(org_id=org, contract_id=contract, data=data, kind="document")
    return StoredAttachment(filename="合同.pdf", content_type="application/pdf", org_id=org,
                            contract_id=contract, key=blob.key, sha256=sha256 or blob.sha256)


def test_smtp_carries_stored_attachments(rt: Runtime) -> None:
    server = SmtpServer()
    try:
        backend = SmtpEmailBackend("127.0.0.1", server.port, sender="econtract <a@b.test>")
        registry = JobRegistry()
        registry.register(SEND_EMAIL, make_send_email_handler(backend, blobs=rt.blobs))
        document, certificate = b"%PDF-1.7 final" * 1000, b"%PDF-1.7 certificate"
        good = (_stored(rt, document), _stored(rt, certificate))
        bad = (_stored(rt, document, sha256="0" * 64),)
        now = datetime.now(UTC)
        with rt.uow() as session:
            for attachments in (good, bad):
                queue_email(session, now=now, message=messages.contract_completed(
                    email="x@example.com", name="X", title="T", org_name="Acme",
                    document_sha256="a" * 64, certificate_sha256="b" * 64,
                    verify_url="http://testserver/verify", attachments=attachments))
        assert Worker(rt.session_factory, registry).run_once() >= 2
        received = [email.message_from_bytes(e.content, policy=email.policy.default)
                    for e in server.inbox.envelopes]
        # the message whose blob failed its check was not sent
        [parsed] = [m for m in received if str(m["Subject"]).startswith(COMPLETED_SUBJECT)]
        assert isinstance(parsed, MimeMessage) and parsed.get_content_type() == "multipart/mixed"
        contents = [part.get_content() for part in parsed.iter_attachments()]
        assert contents == [document, certificate]
        with rt.uow() as session:
            failed = session.scalars(select(OutboxJob).where(OutboxJob.status != "done")).one()
            assert IntegrityError.__name__ in str(failed.last_error)
            assert "does not match its recorded SHA-256" in str(failed.last_error)
    finally:
        server.stop()
