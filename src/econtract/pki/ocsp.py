"""An OCSP responder (RFC 6960) for the platform CAs, served at ``POST /pki/ocsp``.

Each CA answers for its own certificates and signs the response itself (no delegated responder
certificate to issue, rotate and revoke); the responder ID is the CA's key hash. The CA is found
by the request's issuer name hash *and* issuer key hash, so a rogue CA with the same name never
matches. The answer is fresh for one hour (``RESPONSE_VALIDITY``); the nonce is echoed (RFC 8954).

Failure modes are answered, never raised: unparseable requests get ``malformedRequest``, a request
about an issuer we do not run gets ``unauthorized`` (RFC 5019 §2.2.3: a responder that cannot
answer authoritatively; signing "unknown" with an unrelated CA key would not verify anyway), and
a status lookup that fails gets ``internalError``.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from econtract.pki.certs import CaMaterial, require_aware

log = logging.getLogger(__name__)

RESPONSE_VALIDITY = timedelta(hours=1)
# RFC 8954 §2.1: nonces of 1..32 octets; longer or empty ones are refused as malformed.
_NONCE_MAX = 32


@dataclass(frozen=True)
class CertStatus:
    """What the platform knows about one serial of one CA."""

    state: Literal["good", "revoked", "unknown"]
    revoked_at: datetime | None = None
    reason: x509.ReasonFlags | None = None

    def __post_init__(self) -> None:
        if (self.state == "revoked") != (self.revoked_at is not None):
            raise ValueError("revoked_at is required for, and only for, a revoked certificate")

    @classmethod
    def good(cls) -> CertStatus:
        return cls("good")

    @classmethod
    def revoked(cls, at: datetime, reason: x509.ReasonFlags | None = None) -> CertStatus:
        return cls("revoked", require_aware(at), reason)

    @classmethod
    def unknown(cls) -> CertStatus:
        return cls("unknown")


StatusLookup = Callable[[str, int], CertStatus]
"""``status_of(ca_slug, serial)``: the caller's view of its issued-certificate records."""


@dataclass(frozen=True)
class _Question:
    algorithm: hashes.HashAlgorithm
    name_hash: bytes
    key_hash: bytes
    serial: int
    nonce: bytes | None


class _Malformed(Exception):
    pass


def respond(request_der: bytes, *, cas: Sequence[CaMaterial], status_of: StatusLookup,
            now: datetime) -> bytes:
    """Answer one DER ``OCSPRequest`` with a DER ``OCSPResponse`` (never raises on bad input)."""
    require_aware(now)
    try:
        question = _parse(request_der)
    except _Malformed:
        return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    ca = next((c for c in cas if _issued_by(c, question)), None)
    if ca is None:
        return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    try:
        status = status_of(ca.slug, question.serial)
    except Exception:
        # The boundary of a network protocol: the client gets the RFC's "try later" answer and
        # the operator gets the traceback, rather than a bare HTTP 500 the client cannot read.
        log.exception("OCSP status lookup failed for %s serial %x", ca.slug, question.serial)
        return _unsuccessful(ocsp.OCSPResponseStatus.INTERNAL_ERROR)
    return _signed_answer(ca, question, status, now)


def _parse(request_der: bytes) -> _Question:
    try:
        request = ocsp.load_der_ocsp_request(request_der)
        algorithm = request.hash_algorithm
        question = _Question(algorithm, request.issuer_name_hash, request.issuer_key_hash,
                             request.serial_number, _nonce(request.extensions))
    except (ValueError, TypeError, UnsupportedAlgorithm, x509.DuplicateExtension):
        raise _Malformed from None
    if not (len(question.name_hash) == len(question.key_hash) == algorithm.digest_size):
        raise _Malformed
    return question


def _nonce(extensions: x509.Extensions) -> bytes | None:
    try:
        nonce = extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return None
    if not 1 <= len(nonce) <= _NONCE_MAX:
        raise ValueError("OCSP nonce length out of range")
    return nonce


def _issued_by(ca: CaMaterial, question: _Question) -> bool:
    cert = asn1_x509.Certificate.load(ca.cert_der)
    # The key hash covers the subjectPublicKey BIT STRING value, without its unused-bits octet.
    key_bits = cert.public_key["public_key"].contents[1:]
    name_ok = hmac.compare_digest(_digest(question.algorithm, cert.subject.dump()),
                                  question.name_hash)
    key_ok = hmac.compare_digest(_digest(question.algorithm, key_bits), question.key_hash)
    return name_ok and key_ok


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


_STATES = {"good": ocsp.OCSPCertStatus.GOOD, "revoked": ocsp.OCSPCertStatus.REVOKED,
           "unknown": ocsp.OCSPCertStatus.UNKNOWN}


def _signed_answer(ca: CaMaterial, question: _Question, status: CertStatus,
                   now: datetime) -> bytes:
    builder = (ocsp.OCSPResponseBuilder()
               .add_response_by_hash(
                   issuer_name_hash=question.name_hash, issuer_key_hash=question.key_hash,
                   serial_number=question.serial, algorithm=question.algorithm,
                   cert_status=_STATES[status.state], this_update=now,
                   next_update=now + RESPONSE_VALIDITY, revocation_time=status.revoked_at,
                   revocation_reason=status.reason if status.state == "revoked" else None)
               .responder_id(ocsp.OCSPResponderEncoding.HASH, ca.certificate))
    if question.nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(question.nonce), critical=False)
    response = builder.sign(ca.private_key, hashes.SHA256())
    return response.public_bytes(serialization.Encoding.DER)


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    response = ocsp.OCSPResponseBuilder.build_unsuccessful(status)
    return response.public_bytes(serialization.Encoding.DER)
