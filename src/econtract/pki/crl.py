"""Certificate revocation lists (RFC 5280 §5): one full CRL per CA, at ``/pki/crl/{slug}.crl``.

Every issued certificate names its issuer's CRL in its CRL distribution point, so validators in
"hard-fail" mode (pyHanko) and Acrobat can check it. The CRL carries the CRL number (monotonic:
the caller keeps the counter) and the authority key identifier, which validators use to match the
CRL to the right CA key even when two CAs share a name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from econtract.pki.certs import CaMaterial, require_aware

_MAX_CRL_NUMBER = 2**159  # RFC 5280 §5.2.3: at most 20 octets, non-negative


@dataclass(frozen=True)
class Revocation:
    """One revoked certificate of the CA: serial, when, and optionally why."""

    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags | None = None


def build_crl(ca: CaMaterial, revoked: Iterable[Revocation], *, now: datetime,
              next_update: datetime, number: int) -> bytes:
    """A DER CRL signed by ``ca`` listing ``revoked``; valid from ``now`` to ``next_update``."""
    require_aware(now)
    require_aware(next_update)
    if next_update <= now:
        raise ValueError("a CRL's next update must lie after its this-update time")
    if not 0 <= number < _MAX_CRL_NUMBER:
        raise ValueError("a CRL number must be non-negative and at most 20 octets")
    ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(ca.certificate.subject)
               .last_update(now)
               .next_update(next_update)
               .add_extension(x509.CRLNumber(number), critical=False)
               .add_extension(
                   x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                   critical=False))
    for entry in _earliest_per_serial(revoked):
        builder = builder.add_revoked_certificate(_entry(entry))
    return builder.sign(ca.private_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _earliest_per_serial(revoked: Iterable[Revocation]) -> list[Revocation]:
    # A serial listed twice makes some parsers reject the whole CRL; the first revocation counts.
    earliest: dict[int, Revocation] = {}
    for entry in revoked:
        require_aware(entry.revoked_at)
        known = earliest.get(entry.serial)
        if known is None or entry.revoked_at < known.revoked_at:
            earliest[entry.serial] = entry
    return sorted(earliest.values(), key=lambda e: e.serial)


def _entry(revocation: Revocation) -> x509.RevokedCertificate:
    builder = (x509.RevokedCertificateBuilder()
               .serial_number(revocation.serial)
               .revocation_date(revocation.revoked_at))
    # RFC 5280 §5.3.1: the reason code "unspecified" SHOULD be absent rather than present.
    reason = revocation.reason
    if reason is not None and reason is not x509.ReasonFlags.unspecified:
        builder = builder.add_extension(x509.CRLReason(reason), critical=False)
    return builder.build()
