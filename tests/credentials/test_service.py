"""The platform PKI at run time: publication endpoints, signer keys, PIN lockout, revocation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from asn1crypto import tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from fastapi.testclient import TestClient
from sqlalchemy import select

from econtract import pki
from econtract.app import create_app
from econtract.context import Actor, ActorKind, Ctx
from econtract.credentials import service as credentials
from econtract.credentials.models import PlatformCredential, SignerCredential
from econtract.errors import PinIncorrect, SigningLocked, ValidationFailed
from econtract.runtime import Runtime
from tests.conftest import FakeClock

PIN = "482915"


@pytest.fixture
def client(rt: Runtime, clock: FakeClock) -> Iterator[TestClient]:
    with TestClient(create_app(rt, clock=clock)) as test_client:
        yield test_client


def signer_ctx(clock: FakeClock) -> Ctx:
    return Ctx(actor=Actor(kind=ActorKind.SIGNER, label="zhang@example.com"), clock=clock,
               ip="198.51.100.9")


def set_up(rt: Runtime, clock: FakeClock, email: str = "zhang@example.com"
           ) -> SignerCredential:
    with rt.uow() as session:
        credential, _ = credentials.set_up_credential(
            session, signer_ctx(clock), keyring=rt.keyring, authority=rt.authority(),
            name="张三", email=email, pin=PIN, base_url=rt.settings.base_url)
        return credential


def unlock(rt: Runtime, clock: FakeClock, pin: str) -> credentials.UnlockOutcome:
    with rt.uow() as session:
        row = session.scalars(select(SignerCredential)).one()
        return credentials.unlock(session, signer_ctx(clock), keyring=rt.keyring,
                                  credential=row, pin=pin)


def test_platform_keys_are_stored_sealed(rt: Runtime) -> None:
    authority = rt.authority()
    assert authority.tsa.certificate.extensions.get_extension_for_class(
        x509.ExtendedKeyUsage).critical
    with rt.uow() as session:
        for row in session.scalars(select(PlatformCredential)):
            material = authority.ca(row.slug)
            der = material.private_key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption())
            assert der[40:80] not in row.key_blob  # no clear key material in the database


def test_ca_certificates_and_crls_are_published(client: TestClient, rt: Runtime) -> None:
    root = x509.load_der_x509_certificate(client.get("/pki/ca/root.crt").content)
    assert root == rt.authority().root.certificate
    response = client.get("/pki/crl/signer-ca.crl")
    assert response.headers["content-type"] == "application/pkix-crl"
    crl = x509.load_der_x509_crl(response.content)
    assert crl.is_signature_valid(rt.authority().issuing.certificate.public_key())
    assert client.get("/pki/crl/tsa.crl").status_code == 404
    assert client.get("/pki/crl/nope.crl").status_code == 404


def _ocsp_request(cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    return (ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256()).build()
            .public_bytes(serialization.Encoding.DER))


def _ocsp_status(client: TestClient, cert: x509.Certificate,
                 issuer: x509.Certificate) -> ocsp.OCSPCertStatus:
    response = client.post("/pki/ocsp", content=_ocsp_request(cert, issuer),
                           headers={"Content-Type": "application/ocsp-request"})
    assert response.headers["content-type"] == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(response.content).certificate_status


def test_revocation_shows_in_crl_and_ocsp(client: TestClient, rt: Runtime,
                                          clock: FakeClock) -> None:
    credential = set_up(rt, clock)
    cert = x509.load_der_x509_certificate(credential.certificate)
    issuer = rt.authority().issuing.certificate
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "张三"
    assert _ocsp_status(client, cert, issuer) == ocsp.OCSPCertStatus.GOOD
    with rt.uow() as session:
        row = session.get_one(SignerCredential, credential.id)
        credentials.revoke_credential(session, signer_ctx(clock), credential=row)
    assert _ocsp_status(client, cert, issuer) == ocsp.OCSPCertStatus.REVOKED
    crl = x509.load_der_x509_crl(client.get("/pki/crl/signer-ca.crl").content)
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    garbage = client.post("/pki/ocsp", content=b"nonsense",
                          headers={"Content-Type": "application/ocsp-request"})
    assert ocsp.load_der_ocsp_response(garbage.content).response_status == \
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_built_in_tsa_answers(client: TestClient, clock: FakeClock) -> None:
    request = tsp.TimeStampReq({
        "version": "v1", "message_imprint": {"hash_algorithm": {"algorithm": "sha256"},
                                             "hashed_message": b"\x01" * 32},
        "nonce": 42, "cert_req": True}).dump()
    response = client.post("/tsa", content=request,
                           headers={"Content-Type": "application/timestamp-query"})
    assert response.headers["content-type"] == "application/timestamp-reply"
    reply = tsp.TimeStampResp.load(response.content)
    assert reply["status"]["status"].native == "granted"
    info = reply["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed
    assert info["nonce"].native == 42 and info["gen_time"].native == clock()
    wrong = client.post("/tsa", content=request, headers={"Content-Type": "text/plain"})
    assert wrong.status_code == 422 and wrong.json()["code"] == "wrong_content_type"


def test_pin_unlocks_and_wrong_pins_lock(rt: Runtime, clock: FakeClock) -> None:
    set_up(rt, clock)
    assert unlock(rt, clock, PIN).key is not None
    waits = []
    for attempt in range(1, 6):
        outcome = unlock(rt, clock, "000000" if attempt % 2 else "999999")
        assert outcome.key is None
        expected = SigningLocked if attempt == 5 else PinIncorrect
        assert isinstance(outcome.error, expected), attempt
        early = unlock(rt, clock, PIN)  # even the right PIN waits
        assert isinstance(early.error, SigningLocked)
        waits.append(early.error.details["retry_after"])
        clock.advance(seconds=waits[-1])
    assert waits[:4] == sorted(waits[:4]) and waits[4] >= 14 * 60
    assert unlock(rt, clock, PIN).key is not None  # the lock served its time; count reset
    with rt.uow() as session:
        assert session.scalars(select(SignerCredential)).one().pin_failures == 0


def test_weak_pins_are_refused(rt: Runtime, clock: FakeClock) -> None:
    with pytest.raises(ValidationFailed) as info, rt.uow() as session:
        credentials.set_up_credential(session, signer_ctx(clock), keyring=rt.keyring,
                                      authority=rt.authority(), name="A", email="a@example.com",
                                      pin="123456", base_url=rt.settings.base_url)
    assert info.value.code == "weak_pin"


def test_key_blob_is_bound_to_its_credential(rt: Runtime, clock: FakeClock) -> None:
    first = set_up(rt, clock, "one@example.com")
    second = set_up(rt, clock, "two@example.com")
    from econtract.errors import IntegrityError

    with rt.uow() as session:  # an attacker with database access swaps the key blobs
        a = session.get_one(SignerCredential, first.id)
        b = session.get_one(SignerCredential, second.id)
        a.key_blob, b.key_blob = b.key_blob, a.key_blob
    with pytest.raises(IntegrityError), rt.uow() as session:
        row = session.get_one(SignerCredential, first.id)
        credentials.unlock(session, signer_ctx(clock), keyring=rt.keyring, credential=row,
                           pin=PIN)
    assert pki.SIGNER_CA_SLUG == "signer-ca"
