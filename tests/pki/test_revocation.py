"""pyHanko's certificate path validation against our root, CRLs and OCSP responses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from pyhanko_certvalidator.errors import InsufficientRevinfoError, RevokedError

from econtract.pki import CertStatus, PlatformPki, Revocation, build_crl, respond
from tests.pki._support import ISSUED, Signer, crl_for, validate_signer, validation_context
from tests.pki.conftest import make_signer


def ocsp_answer(pki: PlatformPki, cert: x509.Certificate, status: CertStatus) -> bytes:
    request = (ocsp.OCSPRequestBuilder()
               .add_certificate(cert, pki.issuing.certificate, hashes.SHA1()).build()
               .public_bytes(serialization.Encoding.DER))
    return respond(request, cas=[pki.root, pki.issuing], status_of=lambda s, n: status,
                   now=datetime.now(UTC) - timedelta(minutes=1))


def test_fresh_signer_validates_with_crls(pki: PlatformPki, signer: Signer) -> None:
    context = validation_context(pki, crls=[crl_for(pki.root), crl_for(pki.issuing)])
    path = validate_signer(signer.certificate, context)
    assert path.leaf.subject.native["common_name"] == "张三"
    assert path.pkix_len == 2  # signer CA, then the leaf (the root is the anchor)


def test_the_seal_validates_too(pki: PlatformPki) -> None:
    context = validation_context(pki, crls=[crl_for(pki.root), crl_for(pki.issuing)])
    validate_signer(pki.seal.certificate, context)


def test_without_revocation_data_hard_fail_refuses(pki: PlatformPki, signer: Signer) -> None:
    with pytest.raises(InsufficientRevinfoError):
        validate_signer(signer.certificate, validation_context(pki, crls=[crl_for(pki.root)]))


def test_revoked_in_crl(pki: PlatformPki) -> None:
    victim = make_signer(pki, "李四", "lisi@example.cn")
    revoked_crl = crl_for(pki.issuing, [
        Revocation(victim.certificate.serial_number, ISSUED + timedelta(hours=1),
                   x509.ReasonFlags.key_compromise),
        Revocation(12345, ISSUED),
    ], number=2)
    context = validation_context(pki, crls=[crl_for(pki.root), revoked_crl])
    with pytest.raises(RevokedError):
        validate_signer(victim.certificate, context)


def test_revoked_signer_ca_in_root_crl(pki: PlatformPki, signer: Signer) -> None:
    root_crl = crl_for(pki.root, [Revocation(pki.issuing.certificate.serial_number, ISSUED)])
    context = validation_context(pki, crls=[root_crl, crl_for(pki.issuing)])
    with pytest.raises(RevokedError):
        validate_signer(signer.certificate, context)


def test_ocsp_good_and_revoked(pki: PlatformPki) -> None:
    victim = make_signer(pki, "王五", "wangwu@example.cn")
    good = ocsp_answer(pki, victim.certificate, CertStatus.good())
    validate_signer(victim.certificate,
                    validation_context(pki, crls=[crl_for(pki.root)], ocsps=[good]))
    revoked = ocsp_answer(pki, victim.certificate,
                          CertStatus.revoked(ISSUED + timedelta(hours=2)))
    with pytest.raises(RevokedError):
        validate_signer(victim.certificate,
                        validation_context(pki, crls=[crl_for(pki.root)], ocsps=[revoked]))


def test_crl_contents(pki: PlatformPki) -> None:
    now = datetime(2026, 11, 20, tzinfo=UTC)
    der = build_crl(pki.issuing, [
        Revocation(7, now - timedelta(days=1), x509.ReasonFlags.unspecified),
        Revocation(7, now - timedelta(days=2), x509.ReasonFlags.superseded),  # earliest wins
        Revocation(9, now - timedelta(hours=3), x509.ReasonFlags.cessation_of_operation),
    ], now=now, next_update=now + timedelta(days=1), number=41)
    crl = x509.load_der_x509_crl(der)
    assert crl.is_signature_valid(pki.issuing.private_key.public_key())
    assert crl.issuer == pki.issuing.certificate.subject
    assert crl.last_update_utc == now and crl.next_update_utc == now + timedelta(days=1)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 41
    ski = pki.issuing.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert aki.value.key_identifier == ski.value.digest
    assert len(crl) == 2
    seven = crl.get_revoked_certificate_by_serial_number(7)
    assert seven is not None and seven.revocation_date_utc == now - timedelta(days=2)
    nine = crl.get_revoked_certificate_by_serial_number(9)
    assert nine is not None
    reason = nine.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.cessation_of_operation


def test_crl_argument_checks(pki: PlatformPki) -> None:
    now = datetime(2026, 11, 20, tzinfo=UTC)
    with pytest.raises(ValueError):
        build_crl(pki.root, [], now=now, next_update=now, number=1)
    with pytest.raises(ValueError):
        build_crl(pki.root, [], now=now, next_update=now + timedelta(days=1), number=-1)
    empty = x509.load_der_x509_crl(
        build_crl(pki.root, [], now=now, next_update=now + timedelta(days=1), number=0))
    assert len(empty) == 0
