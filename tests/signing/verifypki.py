"""A throwaway PKI and pyHanko signing helpers for the verifier tests (nothing here is production).

Built once per process with ``cryptography``: a root, an issuing CA, a TSA (critical EKU
timeStamping), a seal certificate, signers (one with a Chinese name), an expired signer, a revoked
signer (plus the CRL that says so), a self-signed signer and a *rogue* root that carries exactly the
real root's distinguished name and issues a look-alike signer. Every certificate below a root
declares a CRL distribution point and an OCSP URL under ``pki.invalid`` (nothing is ever fetched:
the verifier must work from the CRLs it is given or finds in the DSS).

The signing helpers call pyHanko directly, the way an honest platform (or an attacker with their
own key) would; the verifier under test never sees these objects, only the bytes.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import MDPPerm, SigFieldSpec
from pyhanko.sign.signers.pdf_signer import PdfTimeStamper
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko.sign.validation import add_validation_info
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from econtract.signing.verify import TrustSpec

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)
ROOT_DN = [("Econtract Test Root CA", NameOID.COMMON_NAME),
           ("Econtract Test", NameOID.ORGANIZATION_NAME)]
_ROOT_CRL_URL = "http://pki.invalid/crl/root.crl"
_ISSUING_CRL_URL = "http://pki.invalid/crl/issuing.crl"
_OCSP_URL = "http://pki.invalid/ocsp"


def _name(parts: list[tuple[str, x509.ObjectIdentifier]]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for value, oid in parts])


@dataclass(frozen=True)
class Identity:
    """A certificate with its key, convertible to what pyHanko wants."""

    cert: x509.Certificate
    key: rsa.RSAPrivateKey

    @property
    def asn1(self) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(self.cert.public_bytes(serialization.Encoding.DER))

    @property
    def asn1_key(self) -> asn1_keys.PrivateKeyInfo:
        der = self.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
        return asn1_keys.PrivateKeyInfo.load(der)


@functools.cache
def _keys() -> tuple[rsa.RSAPrivateKey, ...]:
    return tuple(rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(12))


def _issue(subject: x509.Name, key: rsa.RSAPrivateKey, issuer: Identity | None, *,
           ca: bool = False, not_before: datetime = NOW - 30 * DAY,
           not_after: datetime = NOW + 365 * DAY, eku: x509.ObjectIdentifier | None = None,
           email: str | None = None, crl_url: str | None = None) -> Identity:
    sign_key = issuer.key if issuer else key
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer.cert.subject if issuer else subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   sign_key.public_key()), critical=False))
    builder = builder.add_extension(x509.KeyUsage(
        digital_signature=not ca, content_commitment=not ca and eku is None,
        key_encipherment=False, data_encipherment=False, key_agreement=False,
        key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False), critical=True)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=True)
    if email is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]),
                                        critical=False)
    if crl_url is not None:
        builder = builder.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier(crl_url)], None, None, None)]), critical=False)
        builder = builder.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            x509.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(_OCSP_URL))]),
            critical=False)
    return Identity(builder.sign(sign_key, hashes.SHA256()), key)


def _person(cn: str, email: str) -> x509.Name:
    return _name([(cn, NameOID.COMMON_NAME), (email, NameOID.EMAIL_ADDRESS),
                  ("Econtract Test", NameOID.ORGANIZATION_NAME)])


@dataclass(frozen=True)
class Pki:
    root: Identity
    issuing: Identity
    tsa: Identity
    seal: Identity
    alice: Identity
    zhang: Identity
    expired: Identity
    revoked: Identity
    revoked_no_cdp: Identity  # listed in the issuing CA's CRL, but names no distribution point
    self_signed: Identity
    rogue_root: Identity
    rogue_alice: Identity

    def crls(self, at: datetime = NOW) -> tuple[bytes, ...]:
        """DER CRLs of the root and the issuing CA as published at ``at`` (valid 7 days)."""
        revoked = [x509.RevokedCertificateBuilder().serial_number(who.cert.serial_number)
                   .revocation_date(NOW - 2 * DAY).build()
                   for who in (self.revoked, self.revoked_no_cdp)]
        return (_crl(self.root, at, []), _crl(self.issuing, at, revoked))

    def trust(self, *, moment: datetime | None = None, crl_time: datetime = NOW,
              crls: bool = True) -> TrustSpec:
        return TrustSpec(roots=(self.root.cert,), crls=self.crls(crl_time) if crls else (),
                         moment=moment)

    def timestamper(self, tsa: Identity | None = None) -> DummyTimeStamper:
        tsa = tsa or self.tsa
        return DummyTimeStamper(tsa_cert=tsa.asn1, tsa_key=tsa.asn1_key,
                                certs_to_embed=SimpleCertificateStore.from_certs([self.root.asn1]))

    def validation_context(self) -> ValidationContext:
        """What an honest platform uses to collect DSS data (never used by the verifier)."""
        return ValidationContext(trust_roots=[self.root.asn1], other_certs=[self.issuing.asn1],
                                 crls=list(self.crls()), allow_fetching=False)

    def signer(self, who: Identity, issuer: Identity | None = None) -> signers.SimpleSigner:
        chain = [c.asn1 for c in (issuer or self.issuing, self.root) if c is not who]
        return signers.SimpleSigner(signing_cert=who.asn1, signing_key=who.asn1_key,
                                    cert_registry=SimpleCertificateStore.from_certs(chain))


def _crl(ca: Identity, at: datetime, revoked: list[x509.RevokedCertificate]) -> bytes:
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.cert.subject)
               .last_update(at - timedelta(hours=1)).next_update(at + 7 * DAY)
               .add_extension(x509.CRLNumber(int(at.timestamp())), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca.key.public_key()), critical=False))
    for entry in revoked:
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@functools.cache
def pki() -> Pki:
    k = _keys()
    root = _issue(_name(ROOT_DN), k[0], None, ca=True, not_before=NOW - 60 * DAY,
                  not_after=NOW + 7300 * DAY)
    issuing = _issue(_name([("Econtract Test Issuing CA", NameOID.COMMON_NAME)]), k[1], root,
                     ca=True, not_after=NOW + 3650 * DAY, crl_url=_ROOT_CRL_URL)
    ident = functools.partial(_issue, issuer=issuing, crl_url=_ISSUING_CRL_URL)
    rogue_root = _issue(_name(ROOT_DN), k[9], None, ca=True, not_after=NOW + 3650 * DAY)
    return Pki(
        root=root, issuing=issuing,
        tsa=_issue(_name([("Econtract Test TSA", NameOID.COMMON_NAME)]), k[2], root,
                   not_after=NOW + 3650 * DAY, eku=ExtendedKeyUsageOID.TIME_STAMPING,
                   crl_url=_ROOT_CRL_URL),
        seal=ident(_name([("Econtract Platform Seal", NameOID.COMMON_NAME)]), k[3]),
        alice=ident(_person("Alice Liddell", "alice@example.com"), k[4],
                    email="alice@example.com"),
        zhang=ident(_person("张三", "zhangsan@example.cn"), k[5], email="zhangsan@example.cn"),
        expired=ident(_person("Ed Expired", "ed@example.com"), k[6],
                      not_before=NOW - 400 * DAY, not_after=NOW - DAY),
        revoked=ident(_person("Rita Revoked", "rita@example.com"), k[7]),
        revoked_no_cdp=_issue(_person("Nora NoCDP", "nora@example.com"), k[11], issuing),
        self_signed=_issue(_person("Alice Liddell", "alice@example.com"), k[8], None),
        rogue_root=rogue_root,
        rogue_alice=_issue(_person("Alice Liddell", "alice@example.com"), k[10], rogue_root),
    )


# --- signing with pyHanko -------------------------------------------------------------------------


def _writer(data: bytes) -> IncrementalPdfFileWriter:
    return IncrementalPdfFileWriter(io.BytesIO(data), strict=False)


def add_fields(data: bytes, *names: str, visible: bool = True) -> bytes:
    """Pre-create signature fields (page 1, side by side) in one incremental update."""
    writer = _writer(data)
    for i, name in enumerate(names):
        box = (50 + 170 * i, 60, 200 + 170 * i, 120) if visible else None
        fields.append_signature_field(writer, SigFieldSpec(name, on_page=0, box=box))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def sign(data: bytes, who: Identity, field: str, *, certify: bool = False,
         timestamp: bool = True, issuer: Identity | None = None, reason: str | None = None,
         name: str | None = None, new_fields: tuple[str, ...] = (), lock_p1: bool = False,
         existing_only: bool = False, tsa: Identity | None = None,
         md_algorithm: str = "sha256") -> bytes:
    """One PAdES signature by ``who`` into ``field`` (created if missing), as pyHanko makes it."""
    p = pki()
    writer = _writer(data)
    for i, extra in enumerate(new_fields):  # the certify-first workflow: every field up front
        fields.append_signature_field(writer, SigFieldSpec(
            extra, on_page=0, box=(50 + 170 * i, 60, 200 + 170 * i, 120)))
    if lock_p1:
        fields.append_signature_field(writer, SigFieldSpec(
            field, on_page=0, field_mdp_spec=fields.FieldMDPSpec(fields.FieldMDPAction.ALL),
            doc_mdp_update_value=MDPPerm.NO_CHANGES))
    meta = signers.PdfSignatureMetadata(
        field_name=field, certify=certify, docmdp_permissions=MDPPerm.FILL_FORMS,
        subfilter=fields.SigSeedSubFilter.PADES, reason=reason, name=name,
        md_algorithm=md_algorithm)
    pdf_signer = signers.PdfSigner(meta, signer=p.signer(who, issuer),
                                   timestamper=p.timestamper(tsa) if timestamp else None)
    out = pdf_signer.sign_pdf(writer, existing_fields_only=existing_only)
    return bytes(out.getvalue())


def seal(data: bytes) -> bytes:
    """B-LTA: a DSS with chains and CRLs for every signature, then a document timestamp."""
    p = pki()
    context = p.validation_context()
    count = len(PdfFileReader(io.BytesIO(data)).embedded_regular_signatures)
    for index in range(count):  # one DSS update per signature, as LTV tools commonly do
        embedded = PdfFileReader(io.BytesIO(data)).embedded_regular_signatures[index]
        data = bytes(add_validation_info(embedded, context).getvalue())
    return document_timestamp(data)


def document_timestamp(data: bytes) -> bytes:
    p = pki()
    out = PdfTimeStamper(p.timestamper()).timestamp_pdf(
        _writer(data), "sha256", validation_context=p.validation_context())
    return bytes(out.getvalue())
