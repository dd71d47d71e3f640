"""The platform hierarchy and signer certificates: chains, profiles, names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from econtract.errors import ValidationFailed
from econtract.pki import (
    PlatformPki,
    ca_cert_url,
    crl_url,
    issue_signer_certificate,
    new_signer_key,
    ocsp_url,
)
from tests.pki._support import BASE_URL, ISSUED, Signer, der

T = TypeVar("T", bound=x509.ExtensionType)


def ext(cert: x509.Certificate, kind: type[T]) -> x509.Extension[T]:
    return cert.extensions.get_extension_for_class(kind)


def test_each_certificate_verifies_against_its_issuer(pki: PlatformPki, signer: Signer) -> None:
    root = pki.root.certificate
    root.verify_directly_issued_by(root)
    pki.issuing.certificate.verify_directly_issued_by(root)
    pki.tsa.certificate.verify_directly_issued_by(root)
    pki.seal.certificate.verify_directly_issued_by(pki.issuing.certificate)
    signer.certificate.verify_directly_issued_by(pki.issuing.certificate)
    with pytest.raises((ValueError, TypeError)):
        signer.certificate.verify_directly_issued_by(root)


def test_ca_profiles(pki: PlatformPki) -> None:
    for material, path_length, bits in ((pki.root, 1, 3072), (pki.issuing, 0, 3072)):
        cert = material.certificate
        bc = ext(cert, x509.BasicConstraints)
        assert bc.critical and bc.value.ca and bc.value.path_length == path_length
        ku = ext(cert, x509.KeyUsage)
        assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
        assert ku.value.digital_signature  # the CA signs OCSP responses itself
        key = cert.public_key()
        assert isinstance(key, rsa.RSAPublicKey) and key.key_size == bits
        assert ext(cert, x509.SubjectKeyIdentifier).value == \
            x509.SubjectKeyIdentifier.from_public_key(key)
    assert pki.root.certificate.subject == pki.root.certificate.issuer
    assert pki.root.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value \
        == "Acme 电子合同 Root CA"
    assert "Signer CA" in pki.issuing.certificate.subject.rfc4514_string()
    lifetime = pki.root.certificate.not_valid_after_utc - pki.root.certificate.not_valid_before_utc
    assert timedelta(days=365 * 20) <= lifetime <= timedelta(days=365 * 20 + 6)


def test_tsa_profile(pki: PlatformPki) -> None:
    cert = pki.tsa.certificate
    eku = ext(cert, x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    ku = ext(cert, x509.KeyUsage).value
    assert ku.digital_signature and ku.content_commitment and not ku.key_cert_sign
    assert cert.issuer == pki.root.certificate.subject
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048


def test_seal_profile(pki: PlatformPki) -> None:
    cert = pki.seal.certificate
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
        "Acme 电子合同 Platform Seal"
    ku = ext(cert, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.content_commitment
    assert not ext(cert, x509.BasicConstraints).value.ca
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert timedelta(days=365 * 5) <= lifetime <= timedelta(days=365 * 5 + 2)


def test_revocation_pointers_name_the_issuer(pki: PlatformPki, signer: Signer) -> None:
    cases = [(pki.issuing.certificate, "root"), (pki.tsa.certificate, "root"),
             (pki.seal.certificate, "signer-ca"), (signer.certificate, "signer-ca")]
    for cert, issuer_slug in cases:
        cdp = ext(cert, x509.CRLDistributionPoints).value
        assert [n.value for n in cdp[0].full_name or []] == [
            f"{BASE_URL}/pki/crl/{issuer_slug}.crl"]
        aia = {(d.access_method, d.access_location.value)
               for d in ext(cert, x509.AuthorityInformationAccess).value}
        assert aia == {(AuthorityInformationAccessOID.OCSP, f"{BASE_URL}/pki/ocsp"),
                       (AuthorityInformationAccessOID.CA_ISSUERS,
                        f"{BASE_URL}/pki/ca/{issuer_slug}.crt")}
        issuer = pki.root if issuer_slug == "root" else pki.issuing
        issuer_ski = ext(issuer.certificate, x509.SubjectKeyIdentifier).value
        assert ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == issuer_ski.digest
    with pytest.raises(x509.ExtensionNotFound):
        ext(pki.root.certificate, x509.CRLDistributionPoints)
    assert crl_url(BASE_URL + "/", "x") == f"{BASE_URL}/pki/crl/x.crl"
    assert ca_cert_url(BASE_URL, "x") == f"{BASE_URL}/pki/ca/x.crt"
    assert ocsp_url(BASE_URL) == f"{BASE_URL}/pki/ocsp"


def test_signer_certificate_names_the_signer(pki: PlatformPki, signer: Signer) -> None:
    reparsed = x509.load_der_x509_certificate(der(signer.certificate))
    assert reparsed.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "张三"
    assert reparsed.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)[0].value == \
        "zhangsan@example.cn"
    san = ext(reparsed, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["zhangsan@example.cn"]
    ku = ext(reparsed, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.content_commitment
    assert not ku.value.key_encipherment and not ku.value.key_cert_sign
    assert list(ext(reparsed, x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.EMAIL_PROTECTION]
    assert reparsed.not_valid_before_utc == ISSUED - timedelta(minutes=1)
    assert reparsed.not_valid_after_utc == ISSUED + timedelta(days=730)
    assert reparsed.public_key() == signer.key.public_key()


def test_serials_are_random_and_159_bit(pki: PlatformPki, signer: Signer) -> None:
    serials = [c.serial_number for c in (pki.root.certificate, pki.issuing.certificate,
                                         pki.tsa.certificate, pki.seal.certificate,
                                         signer.certificate)]
    assert len(set(serials)) == len(serials)
    assert all(0 < s < 2**159 for s in serials)
    assert max(s.bit_length() for s in serials) > 150


def test_signer_options(pki: PlatformPki) -> None:
    key = new_signer_key()
    assert key.key_size == 2048
    cert = issue_signer_certificate(pki.issuing, public_key=key.public_key(),
                                    name="  欧阳  娜娜 ", email="nana@例子.中国",
                                    base_url=BASE_URL, now=ISSUED, days=30, serial=4242)
    assert cert.serial_number == 4242
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "欧阳 娜娜"
    assert cert.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)[0].value == \
        "nana@xn--fsqu00a.xn--fiqs8s"
    assert cert.not_valid_after_utc == ISSUED + timedelta(days=30)
    # Never beyond the issuing CA's own expiry.
    long = issue_signer_certificate(pki.issuing, public_key=key.public_key(), name="Long",
                                    email="l@example.com", base_url=BASE_URL, now=ISSUED,
                                    days=365 * 30)
    assert long.not_valid_after_utc == pki.issuing.certificate.not_valid_after_utc


@pytest.mark.parametrize(("name", "email"), [
    ("", "a@example.com"), ("x" * 65, "a@example.com"), ("张三", "not-an-address"),
    ("张三", "张三@example.com"), ("张三", "@example.com"), ("张三", "a b@example.com"),
    ("\u202eneG", "a@example.com"), ("A\x00B", "a@example.com"),
])
def test_bad_signer_identity_is_refused(pki: PlatformPki, name: str, email: str) -> None:
    with pytest.raises(ValidationFailed):
        issue_signer_certificate(pki.issuing, public_key=new_signer_key().public_key(),
                                 name=name, email=email, base_url=BASE_URL, now=ISSUED)


def test_naive_datetimes_are_refused(pki: PlatformPki) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        issue_signer_certificate(pki.issuing, public_key=new_signer_key().public_key(),
                                 name="A", email="a@example.com", base_url=BASE_URL,
                                 now=datetime(2026, 1, 1))  # naive on purpose
    assert ISSUED.tzinfo is UTC
