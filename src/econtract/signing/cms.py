"""The CMS of a PAdES signature, assembled from DER fragments prepared once per certificate.

pyHanko builds every ``SignedData`` as a tree of asn1crypto objects and encodes it, which costs
about 10 ms per signature in pure Python (performance.md, "Beyond tuned pyHanko"). For the one
shape the platform signs — PAdES (``/ETSI.CAdES.detached``), SHA-256, the signed attributes
content-type, message-digest and signing-certificate-v2, optionally a signature timestamp — only
the document digest, the signature value and the timestamp token change between signatures.
Everything else is encoded once per signing certificate, *by asn1crypto itself*, and kept:

- the signed attributes as ``head + digest + tail`` (a DER ``SET OF``, tag ``0x31``: what is
  signed);
- the SignerInfo's version, issuer-and-serial-number and digest algorithm;
- the signature algorithm (pyHanko's choice for the key);
- the SignedData's version, digest algorithms, encapsulated content info (``id-data``, detached)
  and the ``[0]`` certificate set (signer, chain and root, DER-sorted, as pyHanko embeds them).

Per signature, :meth:`CmsTemplate.assemble` concatenates those with the signed attributes
re-tagged ``[0] IMPLICIT`` (``0xA0``), the signature and an optional
``id-aa-signatureTimeStampToken`` unsigned attribute, computing the lengths. The result is
byte-for-byte what pyHanko's ``Signer.async_sign`` produces for the same inputs (the tests
compare both, RSA and ECDSA, with and without a timestamp); anything else — another digest,
CAdES extras, attribute certificates, dry runs — is left to pyHanko (see
:meth:`econtract.signing.keys.CachedKeySigner.async_sign`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from asn1crypto import algos, cms, core
from asn1crypto import x509 as asn1_x509
from pyhanko.sign.general import as_signing_certificate_v2

from econtract.errors import SigningError

DIGEST_SIZE = 32
"""Bytes of a SHA-256 digest: the only message digest the template takes."""

_SIGNED_DATA = cms.ContentType("signed_data").dump()
_TIMESTAMP_ATTRIBUTE = cms.CMSAttributeType("signature_time_stamp_token").dump()
_VERSION_1 = core.Integer(1).dump()
_SHA256 = algos.DigestAlgorithm({"algorithm": "sha256"}).dump()


def tlv(tag: int, content: bytes) -> bytes:
    """One DER element: ``tag``, the definite length of ``content``, then ``content``."""
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


@dataclass(frozen=True)
class CmsTemplate:
    """The fixed DER of one signer's PAdES CMS; see the module docstring."""

    attributes_head: bytes
    """The signed attributes up to the message digest's value."""
    attributes_tail: bytes
    """The signed attributes after the message digest's value."""
    signer_info_head: bytes
    """SignerInfo: version, sid, digest algorithm."""
    signature_algorithm: bytes
    """SignerInfo: the signature algorithm identifier."""
    signed_data_head: bytes
    """SignedData: version, digest algorithms, encapsulated content info, ``[0]`` certificates."""

    def signed_attributes(self, digest: bytes) -> bytes:
        """The DER ``SET OF`` signed attributes for a document ``digest`` (what is signed)."""
        if len(digest) != DIGEST_SIZE:
            raise SigningError("The CMS template takes a SHA-256 digest")
        return self.attributes_head + digest + self.attributes_tail

    def assemble(self, signed_attributes: bytes, signature: bytes,
                 timestamp_token: bytes | None = None) -> bytes:
        """The ``ContentInfo`` DER: ``signed_attributes`` (from :meth:`signed_attributes`)
        with their ``signature``, and the RFC 3161 token over that signature if any."""
        unsigned = b""
        if timestamp_token is not None:
            unsigned = tlv(0xA1, tlv(0x30, _TIMESTAMP_ATTRIBUTE + tlv(0x31, timestamp_token)))
        signer_info = tlv(0x30, self.signer_info_head + b"\xa0" + signed_attributes[1:]
                          + self.signature_algorithm + tlv(0x04, signature) + unsigned)
        signed_data = tlv(0x30, self.signed_data_head + tlv(0x31, signer_info))
        return tlv(0x30, _SIGNED_DATA + tlv(0xA0, signed_data))


def template_for(signing_cert: asn1_x509.Certificate,
                 certificates: tuple[asn1_x509.Certificate, ...],
                 signature_algorithm: algos.SignedDigestAlgorithm) -> CmsTemplate:
    """The template of a signer, built on first use and cached by the DER it depends on.

    :param signing_cert: the signer's certificate.
    :param certificates: every certificate to embed besides it (chain and root).
    :param signature_algorithm: the signature algorithm identifier for SHA-256.
    """
    return _template(signing_cert.dump(), tuple(c.dump() for c in certificates),
                     signature_algorithm.dump())


@functools.lru_cache(maxsize=64)
def _template(signing_cert_der: bytes, certificate_ders: tuple[bytes, ...],
              signature_algorithm_der: bytes) -> CmsTemplate:
    signing_cert = asn1_x509.Certificate.load(signing_cert_der)

    def attributes(digest: bytes) -> bytes:
        # The attributes pyHanko's PAdES signer adds, in its words (general.simple_cms_attribute).
        return cms.CMSAttributes([  # type: ignore[no-any-return]
            cms.CMSAttribute({"type": kind, "values": [value]}) for kind, value in (
                ("content_type", "data"), ("message_digest", digest),
                ("signing_certificate_v2", as_signing_certificate_v2(signing_cert)))
        ]).dump()

    low, high = attributes(bytes(DIGEST_SIZE)), attributes(b"\xff" * DIGEST_SIZE)
    start = low.find(b"\x04\x20" + bytes(DIGEST_SIZE)) + 2
    head, tail = low[:start], low[start + DIGEST_SIZE:]
    if start < 2 or high != head + b"\xff" * DIGEST_SIZE + tail:
        # DER sorts a SET OF by encoding; ours must not depend on the digest.
        raise SigningError("The signed attributes cannot be templated")
    sid = cms.SignerIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber({
        "issuer": signing_cert.issuer, "serial_number": signing_cert.serial_number})})
    embedded = {signing_cert_der, *certificate_ders}
    certificate_set = cms.CertificateSet([
        cms.CertificateChoices(name="certificate", value=asn1_x509.Certificate.load(der))
        for der in embedded]).dump()
    return CmsTemplate(
        attributes_head=head, attributes_tail=tail,
        signer_info_head=_VERSION_1 + sid.dump() + _SHA256,
        signature_algorithm=signature_algorithm_der,
        signed_data_head=(_VERSION_1 + tlv(0x31, _SHA256)
                          + cms.EncapsulatedContentInfo({"content_type": "data"}).dump()
                          + b"\xa0" + certificate_set[1:]),
    )
