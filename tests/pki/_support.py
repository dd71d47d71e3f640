"""PKI test helpers: asn1crypto conversions, pyHanko validation, an in-process TSA."""

from __future__ import annotations

import asyncio
import io
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.path import ValidationPath
from pypdf import PdfWriter

from econtract.pki import CaMaterial, PlatformPki, Revocation, TimeStampAuthority, build_crl

BASE_URL = "http://testserver"
# Issued a day ago so that "now" (what pyHanko uses when signing) lies well inside validity.
ISSUED = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)


@dataclass(frozen=True)
class Signer:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(der(cert))


def asn1_key(key: rsa.RSAPrivateKey) -> asn1_keys.PrivateKeyInfo:
    return asn1_keys.PrivateKeyInfo.load(key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def crl_for(ca: CaMaterial, revoked: Iterable[Revocation] = (), *, number: int = 1) -> bytes:
    now = datetime.now(UTC) - timedelta(minutes=5)
    return build_crl(ca, revoked, now=now, next_update=now + timedelta(days=7), number=number)


def validation_context(pki: PlatformPki, *, crls: Iterable[bytes] = (),
                       ocsps: Iterable[bytes] = (), moment: datetime | None = None,
                       ) -> ValidationContext:
    """Trust only our root; no network; missing revocation data for a CDP-bearing cert fails."""
    return ValidationContext(trust_roots=[asn1_cert(pki.root.certificate)],
                             other_certs=[asn1_cert(pki.issuing.certificate)],
                             allow_fetching=False, crls=list(crls), ocsps=list(ocsps),
                             revocation_mode="hard-fail", moment=moment)


def validate_signer(cert: x509.Certificate, context: ValidationContext) -> ValidationPath:
    validator = CertificateValidator(asn1_cert(cert), validation_context=context)
    return asyncio.run(validator.async_validate_usage({"non_repudiation"}))


def blank_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


class InProcessTimeStamper(TimeStamper):
    """pyHanko's TimeStamper with the HTTP round trip replaced by a call to our TSA."""

    def __init__(self, tsa: TimeStampAuthority) -> None:
        super().__init__(include_nonce=True)
        self.tsa = tsa
        self.serials = itertools.count(1000)
        self.responses: list[bytes] = []

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        response = self.tsa.respond(req.dump(), now=datetime.now(UTC), serial=next(self.serials))
        self.responses.append(response)
        return tsp.TimeStampResp.load(response)
