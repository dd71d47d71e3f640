"""The pyHanko side of a :class:`~econtract.signing.specs.SigningKey`, built once per key.

pyHanko's ``SimpleSigner`` keeps the key as PKCS#8 and re-parses it on every raw signature (about
40 ms for RSA with OpenSSL 3's consistency check, twice per signature with the size estimate; see
performance.md). The adapter here signs with the ``cryptography`` key object it was given and
converts the certificates to asn1crypto once. Every signature gets a fixed ``/Contents`` reserve
(:func:`reserve_for`), so pyHanko never runs its dry-run size estimate, and the CMS itself is
assembled from a per-certificate template (:mod:`econtract.signing.cms`) instead of asn1crypto
objects.

The reserve is not free: pyHanko's pure-Python tokenizer reads a ``/Contents`` hex string at about
1 µs per character, and every later signature reads the certification signature's (DocMDP check),
so a 28 KiB reserve costs each later signer ~25 ms. Hence the reserve is sized from the actual
certificates plus the size of the TSA's previous token, with a generous allowance only until a
token has been seen (and one retry with that allowance if a token ever outgrows the estimate).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import weakref
from typing import Any

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes, Signer
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

from econtract.errors import SigningError
from econtract.signing.cms import CmsTemplate, template_for
from econtract.signing.specs import SigningKey

# /Contents reserve, in hex characters (2 per DER byte). CMS without certificates: signed
# attributes, SignerInfo, a signature of up to 512 bytes (RSA-4096): under 1.5 KiB. A timestamp
# token embeds the TSA certificate and often its chain: unseen, allow 8 KiB (3 certificates plus
# the TSTInfo); seen, its last size plus 1 KiB (serials, nonces and times vary by a few bytes).
_CMS_OVERHEAD = 1536
TIMESTAMP_ALLOWANCE = 8192
_TOKEN_MARGIN = 1024
_GRANULE = 2048
#: Reserve of a document timestamp before its TSA's token size is known.
DOC_TIMESTAMP_RESERVE = 2 * (TIMESTAMP_ALLOWANCE + _CMS_OVERHEAD)


class CachedKeySigner(Signer):
    """A pyHanko ``Signer`` over an already-parsed ``cryptography`` private key."""

    def __init__(self, key: SigningKey) -> None:
        signing_cert = as_asn1_certificate(key.certificate)
        chain = [as_asn1_certificate(cert) for cert in key.chain]
        super().__init__(
            signing_cert=signing_cert,
            cert_registry=SimpleCertificateStore.from_certs(chain),  # type: ignore[no-untyped-call]  # pyHanko: untyped
            embed_roots=True,  # some validators only build paths from embedded roots
        )
        self._private_key = key.private_key
        self.certificates_size = sum(len(c.public_bytes(serialization.Encoding.DER))
                                     for c in (key.certificate, *key.chain))
        """DER bytes of the certificates embedded in every CMS made with this key."""
        self._template: CmsTemplate | None = None
        # A certificate the template cannot serve keeps None: pyHanko assembles its CMS.
        with contextlib.suppress(SigningError):
            self._template = template_for(
                signing_cert, tuple(chain), self.get_signature_mechanism_for_digest("sha256"))

    async def async_sign(self, data_digest: bytes, digest_algorithm: str, dry_run: bool = False,
                         use_pades: bool = False, timestamper: TimeStamper | None = None,
                         signed_attr_settings: PdfCMSSignedAttributes | None = None,
                         is_pdf_sig: bool = True, encap_content_info: Any = None,
                         ) -> cms.ContentInfo:
        """The detached CMS over ``data_digest``, from the signer's precomputed template
        (:mod:`econtract.signing.cms`) when it is the platform's PAdES shape; otherwise
        pyHanko's own assembly (same arguments, same result, slower).

        PAdES leaves out the signing-time attribute (the claimed time is ``/M``), so
        ``signed_attr_settings.signing_time`` does not change the CMS on this path either.
        """
        settings = signed_attr_settings or PdfCMSSignedAttributes()
        if (self._template is None or dry_run or not use_pades or not is_pdf_sig
                or encap_content_info is not None
                or digest_algorithm != "sha256" or settings.cades_signed_attrs is not None
                or settings.adobe_revinfo_attr is not None or self.attribute_certs
                or self.signed_attr_prov_spec is not None
                or self.unsigned_attr_prov_spec is not None):
            return await super().async_sign(
                data_digest, digest_algorithm, dry_run=dry_run, use_pades=use_pades,
                timestamper=timestamper, signed_attr_settings=signed_attr_settings,
                is_pdf_sig=is_pdf_sig, encap_content_info=encap_content_info)
        signed_attributes = self._template.signed_attributes(data_digest)
        signature = await self.async_sign_raw(signed_attributes, "sha256")
        token = None
        if timestamper is not None:
            response = await timestamper.async_timestamp(hashlib.sha256(signature).digest(),
                                                         "sha256")
            token = response.dump()
        return cms.ContentInfo.load(self._template.assemble(signed_attributes, signature,
                                                             token))

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        """Sign ``data`` (the DER signed attributes) with the cached key.

        :param data: the bytes to sign.
        :param digest_algorithm: pyHanko's name of the digest, e.g. ``sha256``.
        :param dry_run: ignored; a fixed reserve means pyHanko never asks for a dry run.
        :return: the raw signature value.
        """
        hash_algo = get_pyca_cryptography_hash(digest_algorithm)
        key = self._private_key
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), hash_algo)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(data, ec.ECDSA(hash_algo))
        raise SigningError("Unsupported signing key type")  # SigningKey refuses others


_signers: weakref.WeakKeyDictionary[SigningKey, CachedKeySigner] = weakref.WeakKeyDictionary()


def pyhanko_signer(key: SigningKey) -> CachedKeySigner:
    """Return the pyHanko signer of ``key``, building it on first use only.

    :param key: the signing key; the adapter lives as long as this object does.
    :return: a signer that never re-parses the key.
    """
    signer = _signers.get(key)
    if signer is None:
        signer = _signers[key] = CachedKeySigner(key)
    return signer


def reserve_for(certificates_size: int, token_size: int | None) -> int:
    """``bytes_reserved`` for a CMS signature, optionally with a timestamp token.

    :param certificates_size: DER size of the embedded certificates
        (:attr:`CachedKeySigner.certificates_size`; 0 for a document timestamp).
    :param token_size: DER size of the TSA's last token; ``None`` if not seen yet (generous
        allowance), 0 for no timestamp.
    :return: hex characters to reserve for ``/Contents``, a multiple of 2048.
    """
    token = TIMESTAMP_ALLOWANCE if token_size is None else token_size + _TOKEN_MARGIN
    if token_size == 0:
        token = 0
    needed = 2 * (_CMS_OVERHEAD + certificates_size + token)
    return -(-needed // _GRANULE) * _GRANULE


def as_asn1_certificate(cert: x509.Certificate) -> asn1_x509.Certificate:
    """Convert a ``cryptography`` certificate to asn1crypto (pyHanko's certificate type).

    The parsed object is shared per DER encoding: a signer's adapter is built for every
    signature (the key is unlocked each time), and registering the same issuer and root parsed
    afresh (names, key identifiers) cost ~1 ms of each signature. pyHanko only reads them.

    :param cert: the certificate.
    :return: the same certificate, parsed by asn1crypto.
    """
    return _parsed_certificate(cert.public_bytes(serialization.Encoding.DER))


@functools.lru_cache(maxsize=128)
def _parsed_certificate(der: bytes) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(der)
