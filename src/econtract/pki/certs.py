"""The platform's certificate hierarchy and the certificates it issues to signers.

::

    <name> Root CA            RSA-3072, 20 y, CA pathlen 1, self-signed
    ├── <name> Signer CA      RSA-3072, 10 y, CA pathlen 0      slug "signer-ca"
    │   ├── <name> Platform Seal   RSA-2048, 5 y               slug "seal"
    │   └── <signer>               RSA-2048, 2 y (per signer, issued at the first signature)
    └── <name> Time Stamping  RSA-2048, 10 y, EKU timeStamping (critical)   slug "tsa"

Profiles (every certificate: SHA-256 with RSA, random 159-bit serial, SKI; every non-root one:
AKI, a CRL distribution point ``{base}/pki/crl/{issuer}.crl`` and an AIA with OCSP
``{base}/pki/ocsp`` and caIssuers ``{base}/pki/ca/{issuer}.crt``):

- CAs: basicConstraints CA (critical), keyUsage keyCertSign + cRLSign + digitalSignature (critical).
  digitalSignature is there because each CA signs the OCSP responses about its own certificates
  (no delegated responder); CA/B Forum BR 7.1.2.1/7.1.2.2 require the bit for exactly that case.
- Signers and the seal: keyUsage digitalSignature + nonRepudiation (critical), EKU emailProtection
  (non-critical; what Adobe, NSS/pdfsig and pyHanko accept for document signing, and it keeps
  the certificate out of TLS use), basicConstraints CA:FALSE. A signer's certificate names them:
  CN (UTF-8, e.g. "张三") + emailAddress, and the address again as SAN rfc822Name.
- TSA: keyUsage digitalSignature + nonRepudiation (critical), EKU timeStamping only, critical
  (RFC 3161 §2.3 requires exactly this).

Validity starts one minute before ``now`` (``BACKDATE``): a certificate issued on one machine and
immediately checked on another (the TSA, a validator) with a slightly slower clock is otherwise
"not yet valid". No certificate outlives its issuer.
"""

from __future__ import annotations

import calendar
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from econtract.errors import ValidationFailed

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
_Profile = Callable[[x509.CertificateBuilder], x509.CertificateBuilder]

ROOT_SLUG = "root"
SIGNER_CA_SLUG = "signer-ca"
TSA_SLUG = "tsa"
SEAL_SLUG = "seal"

BACKDATE = timedelta(minutes=1)
_CN_MAX = 64  # ub-common-name, RFC 5280 appendix A


@dataclass(frozen=True)
class CaMaterial:
    """A certificate with its private key; ``slug`` names it in URLs and storage labels."""

    slug: str
    certificate: x509.Certificate
    private_key: PrivateKey = field(repr=False)

    @property
    def cert_der(self) -> bytes:
        """The certificate in DER (what ``/pki/ca/{slug}.crt`` serves)."""
        return self.certificate.public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True)
class PlatformPki:
    """Everything ``econtract init`` creates: root, signer CA, TSA and platform seal."""

    root: CaMaterial
    issuing: CaMaterial
    tsa: CaMaterial
    seal: CaMaterial


# --- URLs (the web app serves exactly these paths) -----------------------------------------------

def crl_url(base_url: str, issuer_slug: str) -> str:
    """Where the CRL of ``issuer_slug`` is published."""
    return f"{base_url.rstrip('/')}/pki/crl/{issuer_slug}.crl"


def ca_cert_url(base_url: str, issuer_slug: str) -> str:
    """Where the DER certificate of ``issuer_slug`` is published (AIA caIssuers)."""
    return f"{base_url.rstrip('/')}/pki/ca/{issuer_slug}.crt"


def ocsp_url(base_url: str) -> str:
    """The OCSP responder, one for every CA (it picks the CA by the request's issuer hashes)."""
    return f"{base_url.rstrip('/')}/pki/ocsp"


# --- keys ----------------------------------------------------------------------------------------

def new_signer_key() -> rsa.RSAPrivateKey:
    """A fresh RSA-2048 key: pyHanko's CMS build is ~2x faster for RSA than ECDSA once tuned."""
    return _rsa(2048)


def _rsa(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


# --- the platform hierarchy ----------------------------------------------------------------------

def create_platform_pki(*, name: str, base_url: str, now: datetime) -> PlatformPki:
    """Create the root CA, the signer CA, the TSA certificate and the platform seal (new keys)."""
    now = require_aware(now)
    org = _clean_name(name, room=len(" Platform Seal"))
    root_key = _rsa(3072)
    root_subject = _name(f"{org} Root CA", org)
    root_builder = _base(root_subject, root_subject, root_key.public_key(), now, _years(now, 20))
    root_cert = _ca_extensions(root_builder, path_length=1).sign(
        root_key, hashes.SHA256())
    root = CaMaterial(ROOT_SLUG, root_cert, root_key)

    issuing_key = _rsa(3072)
    issuing_cert = _issue(
        root, _name(f"{org} Signer CA", org), issuing_key.public_key(), base_url, now,
        _years(now, 10), lambda b: _ca_extensions(b, path_length=0))
    issuing = CaMaterial(SIGNER_CA_SLUG, issuing_cert, issuing_key)

    tsa_key = _rsa(2048)
    tsa_cert = _issue(root, _name(f"{org} Time Stamping", org), tsa_key.public_key(), base_url,
                      now, _years(now, 10), _tsa_extensions)
    seal_key = _rsa(2048)
    seal_cert = _issue(issuing, _name(f"{org} Platform Seal", org), seal_key.public_key(),
                       base_url, now, _years(now, 5), _signer_extensions)
    return PlatformPki(root=root, issuing=issuing, tsa=CaMaterial(TSA_SLUG, tsa_cert, tsa_key),
                       seal=CaMaterial(SEAL_SLUG, seal_cert, seal_key))


def issue_signer_certificate(issuing: CaMaterial, *, public_key: PublicKey, name: str, email: str,
                             base_url: str, now: datetime, days: int = 730,
                             serial: int | None = None) -> x509.Certificate:
    """Certify a verified signer's identity (name, e-mail) for their own signing key.

    ``serial`` lets the caller use a serial it has already recorded (so a crash between issuing
    and storing cannot leave an unknown certificate in circulation); by default it is random.
    """
    now = require_aware(now)
    if days < 1:
        raise ValueError("a signer certificate must be valid for at least one day")
    cn = _clean_name(name)
    address = ascii_email(email)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                         x509.NameAttribute(NameOID.EMAIL_ADDRESS, address)])

    def extensions(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
        san = x509.SubjectAlternativeName([x509.RFC822Name(address)])
        return _signer_extensions(builder).add_extension(san, critical=False)

    return _issue(issuing, subject, public_key, base_url, now, now + timedelta(days=days),
                  extensions, serial=serial)


# --- building blocks -----------------------------------------------------------------------------

def require_aware(moment: datetime) -> datetime:
    """Refuse naive datetimes: a naive "now" silently shifts every validity by the local offset."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetimes given to the PKI must be timezone-aware (UTC)")
    return moment


def ascii_email(email: str) -> str:
    """The address as it can appear in a certificate (IA5String): IDNA domain, ASCII local part."""
    local, at, domain = email.strip().rpartition("@")
    if not at or not local or not domain:
        raise ValidationFailed("the signer's e-mail address is not valid", code="invalid_email")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValidationFailed("the e-mail domain cannot be encoded",
                               code="invalid_email") from None
    if not local.isascii():
        raise ValidationFailed("e-mail addresses with non-ASCII names cannot be certified",
                               code="invalid_email")
    if any(not 0x21 <= ord(ch) <= 0x7E for ch in local + domain):
        raise ValidationFailed("the signer's e-mail address is not valid", code="invalid_email")
    return f"{local}@{domain}"


def _clean_name(name: str, room: int = 0) -> str:
    """NFC, single spaces; no control/format characters: a bidi override (U+202E) in a signer's
    name would make viewers display a different name than the one certified."""
    cleaned = " ".join(unicodedata.normalize("NFC", name).split())
    if any(unicodedata.category(ch).startswith("C") for ch in cleaned):
        raise ValidationFailed("a name must not contain control or formatting characters",
                               code="invalid_certificate_name")
    if not 1 <= len(cleaned) <= _CN_MAX - room:
        raise ValidationFailed(f"a name must have 1 to {_CN_MAX - room} characters",
                               code="invalid_certificate_name")
    return cleaned


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _years(moment: datetime, years: int) -> datetime:
    year = moment.year + years
    day = min(moment.day, calendar.monthrange(year, moment.month)[1])  # 29 Feb -> 28 Feb
    return moment.replace(year=year, day=day)


def _base(subject: x509.Name, issuer: x509.Name, public_key: PublicKey, now: datetime,
          not_after: datetime, serial: int | None = None) -> x509.CertificateBuilder:
    if serial is not None and not 0 < serial < 2**159:
        raise ValueError("a certificate serial must be positive and at most 20 octets")
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(serial if serial is not None else x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(not_after)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))


def _issue(issuer: CaMaterial, subject: x509.Name, public_key: PublicKey, base_url: str,
           now: datetime, not_after: datetime, profile: _Profile,
           serial: int | None = None) -> x509.Certificate:
    """An end or intermediate certificate signed by ``issuer`` with the revocation pointers."""
    # A certificate outliving its issuer would be refused by validators after the issuer expires.
    not_after = min(not_after, issuer.certificate.not_valid_after_utc)
    builder = _base(subject, issuer.certificate.subject, public_key, now, not_after, serial)
    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
        issuer.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value)
    builder = builder.add_extension(aki, critical=False)
    # pyHanko ignores configured CRLs for certificates without a CDP (security.md, pitfall 3).
    cdp = x509.CRLDistributionPoints([x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(crl_url(base_url, issuer.slug))],
        relative_name=None, reasons=None, crl_issuer=None)])
    aia = x509.AuthorityInformationAccess([
        x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                               x509.UniformResourceIdentifier(ocsp_url(base_url))),
        x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS,
                               x509.UniformResourceIdentifier(ca_cert_url(base_url, issuer.slug))),
    ])
    builder = builder.add_extension(cdp, critical=False).add_extension(aia, critical=False)
    return profile(builder).sign(issuer.private_key, hashes.SHA256())


def _key_usage(*, signing: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=signing,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False)


def _ca_extensions(builder: x509.CertificateBuilder, *,
                   path_length: int) -> x509.CertificateBuilder:
    return (builder
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(_key_usage(signing=False, ca=True), critical=True))


def _signer_extensions(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    return (builder
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(signing=True, ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                           critical=False))


def _tsa_extensions(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    return (builder
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(signing=True, ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]),
                           critical=True))

