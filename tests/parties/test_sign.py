"""The whole signing path at the service level: send (certify), three signers with their own
keys, the seal job (B-LTA), and the platform's verifier on the result — on both databases."""

from __future__ import annotations

import time
import uuid

import pytest
from cryptography import x509
from sqlalchemy import select

from econtract.context import Ctx, utcnow
from econtract.contracts import sending
from econtract.contracts import service as contracts
from econtract.contracts.models import Contract, DocumentVersion
from econtract.errors import Conflict, InvalidTransition, PermissionDenied, PinIncorrect
from econtract.parties import service as parties
from econtract.parties.models import Signer
from econtract.runtime import Runtime
from econtract.signing.report import Verdict
from econtract.signing.verify import verify_pdf
from tests.factories import create_contract, owner, user_ctx

SIGNERS = [{"name": "张三", "email": "zhang@example.com", "order": 1},
           {"name": "Bob Lee", "email": "bob@example.com", "order": 2},
           {"name": "王五", "email": "wang@example.com", "order": 3}]
PINS = {"zhang@example.com": "482915", "bob@example.com": "739261", "wang@example.com": "615384"}


def sent_contract(rt: Runtime, signers: list[dict[str, object]] = SIGNERS) -> Contract:
    contract = create_contract(rt, owner(rt), signers=signers)
    with rt.uow() as session:
        return sending.send(session, user_ctx(owner(rt)), blobs=rt.blobs,
                            engine=rt.signing_engine(), contract_id=contract.id)


def signer_row(rt: Runtime, contract_id: uuid.UUID, email: str) -> Signer:
    with rt.uow() as session:
        return session.scalars(select(Signer).where(Signer.contract_id == contract_id,
                                                    Signer.email == email)).one()


def verify_identity(rt: Runtime, signer: Signer) -> None:
    """Stands in for the e-mail code step of the signing journey (identity proven)."""
    with rt.uow() as session:
        session.get_one(Signer, signer.id).status = "verified"


def sign_as(rt: Runtime, contract_id: uuid.UUID, email: str, pin: str | None = None,
            verify: bool = True) -> parties.SignOutcome:
    signer = signer_row(rt, contract_id, email)
    if verify and signer.status in ("invited", "viewed"):
        verify_identity(rt, signer)
    with rt.uow() as session:
        ctx = Ctx(actor=parties.signer_actor(signer), ip="198.51.100.20", user_agent="pytest")
        return parties.sign(session, ctx, blobs=rt.blobs, engine=rt.signing_engine(),
                            keyring=rt.keyring, contract_id=contract_id, signer_id=signer.id,
                            pin=pin or PINS[email],
                            appearance=parties.Appearance(kind="typed"))


def current_pdf(rt: Runtime, contract_id: uuid.UUID) -> tuple[DocumentVersion, bytes]:
    with rt.uow() as session:
        return contracts.download_document(session, user_ctx(owner(rt)), blobs=rt.blobs,
                                           contract_id=contract_id, audit_as=None)


def test_three_signers_then_seal(rt: Runtime) -> None:
    contract = sent_contract(rt)
    version, _ = current_pdf(rt, contract.id)
    assert version.kind == "certified"
    assert [signer_row(rt, contract.id, s["email"]).status for s in SIGNERS] == [  # type: ignore[index]
        "invited", "waiting", "waiting"]
    for signer in SIGNERS:
        outcome = sign_as(rt, contract.id, str(signer["email"]))
        assert outcome.error is None
    assert rt.worker().run_once() >= 1  # the seal job
    with rt.uow() as session:
        assert session.get_one(Contract, contract.id).status == "completed"
        kinds = [v.kind for v in session.scalars(select(DocumentVersion).where(
            DocumentVersion.contract_id == contract.id).order_by(DocumentVersion.number))]
        assert kinds == ["original", "certified", "signed", "signed", "signed", "sealed"]
        trust = rt.signing_engine().trust(session, utcnow())
    _, pdf = current_pdf(rt, contract.id)
    report = verify_pdf(pdf, trust)
    assert report.verdict is Verdict.VALID, report.to_dict()
    assert b"/DSS" in pdf and b"/DocTimeStamp" in pdf
    approvals = [s for s in report.signatures if s.kind.value == "approval"]
    assert [s.signer.common_name for s in approvals] == ["张三", "Bob Lee", "王五"]  # type: ignore[union-attr]
    assert len({s.signer.serial for s in approvals}) == 3  # type: ignore[union-attr]
    assert all(s.timestamp_proven for s in approvals)


def test_order_pins_and_states(rt: Runtime) -> None:
    contract = sent_contract(rt)
    bob = signer_row(rt, contract.id, "bob@example.com")
    with pytest.raises(PermissionDenied) as info:
        sign_as(rt, contract.id, "bob@example.com", verify=False)
    assert info.value.code in ("not_your_turn", "identity_not_verified")
    assert bob.status == "waiting"
    with pytest.raises(PermissionDenied) as unverified:
        sign_as(rt, contract.id, "zhang@example.com", verify=False)
    assert unverified.value.code == "identity_not_verified"
    assert sign_as(rt, contract.id, "zhang@example.com").error is None
    with pytest.raises(Conflict):
        sign_as(rt, contract.id, "zhang@example.com")
    # the same person on another contract: the key exists, the PIN is asked again
    other = sent_contract(rt, signers=[SIGNERS[0]])
    wrong = sign_as(rt, other.id, "zhang@example.com", pin="000000")
    assert isinstance(wrong.error, PinIncorrect)
    version, _ = current_pdf(rt, other.id)
    assert version.kind == "certified"  # nothing was signed
    with rt.uow() as session:
        contracts.void(session, user_ctx(owner(rt)), contract_id=other.id, reason="test")
    with pytest.raises(InvalidTransition):
        sign_as(rt, other.id, "zhang@example.com")


def test_signer_cannot_sign_for_someone_else(rt: Runtime) -> None:
    contract = sent_contract(rt)
    zhang = signer_row(rt, contract.id, "zhang@example.com")
    bob = signer_row(rt, contract.id, "bob@example.com")
    verify_identity(rt, zhang)
    with pytest.raises(PermissionDenied), rt.uow() as session:
        parties.sign(session, Ctx(actor=parties.signer_actor(bob)), blobs=rt.blobs,
                     engine=rt.signing_engine(), keyring=rt.keyring, contract_id=contract.id,
                     signer_id=zhang.id, pin="482915",
                     appearance=parties.Appearance(kind="typed"))


def test_certificates_name_each_signer(rt: Runtime) -> None:
    contract = sent_contract(rt, signers=SIGNERS[:2])
    for signer in SIGNERS[:2]:
        sign_as(rt, contract.id, str(signer["email"]))
    from econtract.credentials.models import SignerCredential

    with rt.uow() as session:
        certs = [x509.load_der_x509_certificate(c.certificate)
                 for c in session.scalars(select(SignerCredential))]
    names = sorted(c.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
                   for c in certs)
    assert names == ["Bob Lee", "张三"]


def test_pin_reset_revokes_the_old_certificate(rt: Runtime) -> None:
    from cryptography.hazmat.primitives import serialization

    from econtract.credentials.models import SignerCredential

    first = sent_contract(rt, signers=[SIGNERS[0]])
    assert sign_as(rt, first.id, "zhang@example.com").error is None
    second = sent_contract(rt, signers=[SIGNERS[0]])
    zhang = signer_row(rt, second.id, "zhang@example.com")
    verify_identity(rt, zhang)  # identity proven again, then a new PIN
    with rt.uow() as session:
        parties.reset_pin(session, Ctx(actor=parties.signer_actor(zhang)),
                          engine=rt.signing_engine(), keyring=rt.keyring,
                          contract_id=second.id, signer_id=zhang.id, new_pin="307418")
    with rt.uow() as session:
        rows = session.scalars(select(SignerCredential).order_by(SignerCredential.created_at))
        old, new = list(rows)
        assert old.status == "revoked" and new.status == "active"
        crl = x509.load_der_x509_crl(rt.signing_engine().crls(session, utcnow())[1])
    old_serial = x509.load_der_x509_certificate(old.certificate).serial_number
    assert crl.get_revoked_certificate_by_serial_number(old_serial) is not None
    assert isinstance(sign_as(rt, second.id, "zhang@example.com").error, PinIncorrect)
    time.sleep(1.1)  # the growing delay after a wrong PIN (1 s after the first)
    assert sign_as(rt, second.id, "zhang@example.com", pin="307418").error is None
    assert serialization  # the new key signs; the old signature stays in the first contract
