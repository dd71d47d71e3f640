"""The OCSP responder: round trips with cryptography's request builder, and hostile input."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ocsp

from econtract.pki import CertStatus, PlatformPki, respond
from econtract.pki.ocsp import RESPONSE_VALIDITY
from tests.pki._support import Signer

NOW = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
REVOKED_AT = datetime(2026, 11, 19, 17, 0, tzinfo=UTC)


def request_for(cert: x509.Certificate, issuer: x509.Certificate, *, nonce: bytes | None = None,
                algorithm: hashes.HashAlgorithm | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm or hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def answer(pki: PlatformPki, request: bytes, status: CertStatus,
           calls: list[tuple[str, int]] | None = None) -> ocsp.OCSPResponse:
    def status_of(slug: str, serial: int) -> CertStatus:
        if calls is not None:
            calls.append((slug, serial))
        return status

    der = respond(request, cas=[pki.root, pki.issuing], status_of=status_of, now=NOW)
    return ocsp.load_der_ocsp_response(der)


def test_good_with_nonce(pki: PlatformPki, signer: Signer) -> None:
    nonce = os.urandom(16)
    calls: list[tuple[str, int]] = []
    resp = answer(pki, request_for(signer.certificate, pki.issuing.certificate, nonce=nonce),
                  CertStatus.good(), calls)
    assert calls == [("signer-ca", signer.certificate.serial_number)]
    assert resp.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert resp.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert resp.serial_number == signer.certificate.serial_number
    assert resp.this_update_utc == NOW and resp.next_update_utc == NOW + RESPONSE_VALIDITY
    assert resp.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    # Signed by the issuing CA itself, identified by its key hash.
    ski = pki.issuing.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert resp.responder_key_hash == ski.value.digest
    key = pki.issuing.certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and resp.signature_hash_algorithm is not None
    key.verify(resp.signature, resp.tbs_response_bytes, padding.PKCS1v15(),
               resp.signature_hash_algorithm)


def test_revoked_and_unknown(pki: PlatformPki, signer: Signer) -> None:
    request = request_for(signer.certificate, pki.issuing.certificate)
    revoked = answer(pki, request, CertStatus.revoked(REVOKED_AT, x509.ReasonFlags.key_compromise))
    assert revoked.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert revoked.revocation_time_utc == REVOKED_AT
    assert revoked.revocation_reason is x509.ReasonFlags.key_compromise
    with pytest.raises(x509.ExtensionNotFound):  # no nonce asked, none given
        revoked.extensions.get_extension_for_class(x509.OCSPNonce)
    unknown = answer(pki, request, CertStatus.unknown())
    assert unknown.certificate_status is ocsp.OCSPCertStatus.UNKNOWN


def test_the_root_answers_for_its_own_certificates(pki: PlatformPki) -> None:
    calls: list[tuple[str, int]] = []
    resp = answer(pki, request_for(pki.tsa.certificate, pki.root.certificate,
                                   algorithm=hashes.SHA256()), CertStatus.good(), calls)
    assert calls == [("root", pki.tsa.certificate.serial_number)]
    assert resp.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert isinstance(resp.hash_algorithm, hashes.SHA256)  # the CertID echoes the request's hash


def test_unknown_issuer_is_unauthorized(pki: PlatformPki, signer: Signer) -> None:
    # Asking the root about a certificate of the signer CA: name and key hashes do not match.
    resp = answer(pki, request_for(signer.certificate, pki.root.certificate), CertStatus.good())
    assert resp.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
    only_root = respond(request_for(signer.certificate, pki.issuing.certificate),
                        cas=[pki.root], status_of=lambda s, n: CertStatus.good(), now=NOW)
    assert ocsp.load_der_ocsp_response(only_root).response_status is \
        ocsp.OCSPResponseStatus.UNAUTHORIZED


@pytest.mark.parametrize("payload", [b"", b"\x30\x00", b"garbage", b"\x30\x82\xff\xff",
                                     b"\x00" * 100])
def test_malformed_requests_get_malformed_request(pki: PlatformPki, payload: bytes) -> None:
    resp = answer(pki, payload, CertStatus.good())
    assert resp.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_truncated_and_oversized_nonce_requests(pki: PlatformPki, signer: Signer) -> None:
    request = request_for(signer.certificate, pki.issuing.certificate, nonce=os.urandom(16))
    for cut in range(1, len(request)):
        der = respond(request[:cut], cas=[pki.issuing], status_of=lambda s, n: CertStatus.good(),
                      now=NOW)
        assert ocsp.load_der_ocsp_response(der).response_status is \
            ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    too_long = request_for(signer.certificate, pki.issuing.certificate, nonce=os.urandom(33))
    assert answer(pki, too_long, CertStatus.good()).response_status is \
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_failing_lookup_is_internal_error(pki: PlatformPki, signer: Signer) -> None:
    def broken(slug: str, serial: int) -> CertStatus:
        raise RuntimeError("database down")

    der = respond(request_for(signer.certificate, pki.issuing.certificate), cas=[pki.issuing],
                  status_of=broken, now=NOW)
    assert ocsp.load_der_ocsp_response(der).response_status is \
        ocsp.OCSPResponseStatus.INTERNAL_ERROR


def test_cert_status_shape() -> None:
    with pytest.raises(ValueError):
        CertStatus("revoked")
    with pytest.raises(ValueError):
        CertStatus("good", revoked_at=REVOKED_AT)
    with pytest.raises(ValueError):
        CertStatus.revoked(REVOKED_AT.replace(tzinfo=None))
    assert CertStatus.revoked(REVOKED_AT).reason is None
    assert timedelta(hours=1) == RESPONSE_VALIDITY
