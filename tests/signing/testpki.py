"""A throwaway PKI for the signing-core tests (nothing here is production).

Built once per test session with ``cryptography``: an RSA-2048 root, an issuing CA, three signers
(two with Chinese names; keyUsage nonRepudiation + digitalSignature), a TSA (critical EKU
timeStamping), the platform seal certificate, and CRLs of the root and the CA. Certificates below
a root carry a CRL distribution point under ``pki.invalid`` — pyHanko ignores supplied CRLs for
certificates without one (security.md, pitfall 3) — but nothing is ever fetched.

Signer certificates expire after 30 days; the root, CA and TSA live for years, so a test can
validate "two years from now" (past the signers' expiry) to prove long-term validation.
The TSA is the platform's own :class:`econtract.pki.tsa.TimeStampAuthority`, plugged in as an
in-process responder.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from econtract.pki.tsa import TimeStampAuthority
from econtract.signing import SigningKey, TsaClient, ValidationMaterial

NOW = datetime.now(UTC).replace(microsecond=0)
SIGNER_LIFETIME = timedelta(days=30)
SIGNERS = (
    ("张伟", "zhang.wei@example.cn"),
    ("李娜", "li.na@example.cn"),
    ("John Smith", "john.smith@example.com"),
)


@dataclass(frozen=True)
class Issued:
    """A key and its certificate."""

    key: rsa.RSAPrivateKey
    cert: x509.Certificate


def _name(common_name: str, email: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "econtract test PKI"),
             x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if email:
        attrs.append(x509.NameAttribute(NameOID.EMAIL_ADDRESS, email))
    return x509.Name(attrs)


def _usage(*, signing: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=signing, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=not signing,
        crl_sign=not signing, encipher_only=False, decipher_only=False)


_serials = itertools.count(1000)


def _issue(subject: x509.Name, issuer: Issued | None, lifetime: timedelta, *, ca: bool,
           crl_url: str | None = None, eku: x509.ExtendedKeyUsage | None = None,
           email: str | None = None) -> Issued:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signer_key = issuer.key if issuer else key
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer.cert.subject if issuer else subject)
               .public_key(key.public_key())
               .serial_number(next(_serials))
               .not_valid_before(NOW - timedelta(days=1))
               .not_valid_after(NOW + lifetime)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(_usage(signing=not ca), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   signer_key.public_key()), critical=False))
    if crl_url:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    if eku:
        builder = builder.add_extension(eku, critical=True)
    if email:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]),
                                        critical=False)
    return Issued(key, builder.sign(signer_key, hashes.SHA256()))


def _crl(issuer: Issued, issued_at: datetime, number: int,
         revoked: tuple[x509.Certificate, ...] = ()) -> bytes:
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(issuer.cert.subject)
               .last_update(issued_at)
               .next_update(issued_at + timedelta(days=7))
               .add_extension(x509.CRLNumber(number), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   issuer.key.public_key()), critical=False))
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(cert.serial_number)
            .revocation_date(NOW - timedelta(minutes=5)).build())
    return builder.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


class TestPki:
    """Root → issuing CA → signers, TSA, seal; CRLs for both CAs."""

    __test__ = False  # not a test class, despite the name

    def __init__(self) -> None:
        years = timedelta(days=365)
        self.root = _issue(_name("econtract Test Root CA"), None, 20 * years, ca=True)
        self.ca = _issue(_name("econtract Test Issuing CA"), self.root, 10 * years, ca=True,
                         crl_url="http://pki.invalid/crl/root.crl")
        ca_crl = "http://pki.invalid/crl/ca.crl"
        self.signers = [_issue(_name(name, email), self.ca, SIGNER_LIFETIME, ca=False,
                               crl_url=ca_crl, email=email) for name, email in SIGNERS]
        self.tsa = _issue(_name("econtract Test TSA"), self.ca, 10 * years, ca=False,
                          crl_url=ca_crl,
                          eku=x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]))
        self.seal = _issue(_name("econtract Platform Seal"), self.ca, 5 * years, ca=False,
                           crl_url=ca_crl)
        self.crls = self.crls_at(NOW - timedelta(hours=1))
        self._authority = TimeStampAuthority(self.tsa.cert, self.tsa.key,
                                             chain=(self.ca.cert,))
        self.tsa_calls = 0
        self._tsa_serials = itertools.count(1)
        self.tsa_client = TsaClient(responder=self._respond)
        self.signer_keys = [SigningKey(s.key, s.cert, (self.ca.cert, self.root.cert))
                            for s in self.signers]
        self.seal_key = SigningKey(self.seal.key, self.seal.cert, (self.ca.cert, self.root.cert))

    def _respond(self, request_der: bytes) -> bytes:
        self.tsa_calls += 1
        return self._authority.respond(request_der, now=datetime.now(UTC),
                                       serial=next(self._tsa_serials))

    def signer_keys_certs(self) -> list[x509.Certificate]:
        """The three signers' certificates."""
        return [signer.cert for signer in self.signers]

    def crls_at(self, issued_at: datetime) -> tuple[bytes, bytes]:
        """The root's and the issuing CA's CRL (DER), as published at ``issued_at``."""
        number = int(issued_at.timestamp())
        return _crl(self.root, issued_at, number), _crl(self.ca, issued_at, number)

    def material(self) -> ValidationMaterial:
        """Validation data for sealing: the CA chain and CRLs just published (as at completion)."""
        return ValidationMaterial(certificates=(self.ca.cert, self.root.cert),
                                  crls=self.crls_at(datetime.now(UTC).replace(microsecond=0)))
