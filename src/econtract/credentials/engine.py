"""The signing engine as the platform uses it: the seal key, the TSA, trust and revocation data.

Built once per process by the runtime (keys parsed once, the TSA client and the seal key's pyHanko
adapter reused: performance.md), and handed to the services that send, sign and seal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from sqlalchemy.orm import Session

from econtract import pki
from econtract.context import utcnow
from econtract.credentials import service as credentials
from econtract.credentials.service import PlatformAuthority
from econtract.signing import SigningKey, TsaClient, ValidationMaterial
from econtract.signing.verify import TrustSpec


@dataclass(frozen=True)
class SigningEngine:
    authority: PlatformAuthority
    seal_key: SigningKey
    tsa: TsaClient
    base_url: str

    @classmethod
    def build(cls, authority: PlatformAuthority, *, tsa_url: str, base_url: str,
              clock: Callable[[], datetime] = utcnow) -> SigningEngine:
        """``tsa_url`` empty means the built-in TSA, called in-process (no HTTP round trip)."""

        def built_in(request: bytes) -> bytes:
            return credentials.timestamp(authority, request_der=request, now=clock())

        tsa = TsaClient(url=tsa_url) if tsa_url else TsaClient(responder=built_in)
        seal = SigningKey(authority.seal.private_key, authority.seal.certificate,
                          chain=(authority.issuing.certificate, authority.root.certificate))
        return cls(authority=authority, seal_key=seal, tsa=tsa, base_url=base_url)

    def signer_key(self, private_key: pki.PrivateKey, certificate: x509.Certificate) -> SigningKey:
        return SigningKey(private_key, certificate,
                          chain=(self.authority.issuing.certificate,
                                 self.authority.root.certificate))

    def crls(self, session: Session, now: datetime) -> tuple[bytes, bytes]:
        """Fresh CRLs of both issuing authorities (root for CAs and TSA, signer CA for people)."""
        return (credentials.crl(session, self.authority, slug=pki.ROOT_SLUG, now=now),
                credentials.crl(session, self.authority, slug=pki.SIGNER_CA_SLUG, now=now))

    def trust(self, session: Session, now: datetime) -> TrustSpec:
        """The platform root as the only anchor, with current revocation data."""
        return TrustSpec(roots=(self.authority.root.certificate,),
                         crls=self.crls(session, now), moment=now)

    def validation_material(self, session: Session, now: datetime) -> ValidationMaterial:
        """What the seal embeds for long-term validation (PAdES B-LT/B-LTA)."""
        a = self.authority
        return ValidationMaterial(
            certificates=(a.root.certificate, a.issuing.certificate, a.tsa.certificate),
            crls=self.crls(session, now))
