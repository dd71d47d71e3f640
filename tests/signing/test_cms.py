"""The templated CMS (econtract.signing.cms) against pyHanko's own assembly, byte for byte."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import cms, core
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes, Signer
from pyhanko.sign.timestamps.api import TimeStamper

from econtract.errors import SigningError
from econtract.signing import SigningKey, keys
from econtract.signing.cms import tlv
from econtract.signing.keys import CachedKeySigner
from econtract.signing.timestamps import timestamper_for
from tests.signing.testpki import NOW, TestPki


class FixedSignature(CachedKeySigner):
    """The real signer with a fixed raw signature: ECDSA is randomised, and what is compared
    here is the CMS around the signature, not the signature."""

    async def async_sign_raw(self, data: bytes, digest_algorithm: str,
                             dry_run: bool = False) -> bytes:
        return hashlib.sha512(data).digest()  # depends on exactly what would be signed


class FixedToken(TimeStamper):
    """Always the same token, so both assemblies embed identical bytes."""

    def __init__(self, token: cms.ContentInfo) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.token = token
        self.digests: list[bytes] = []

    async def async_timestamp(self, message_digest: bytes,
                              md_algorithm: str) -> cms.ContentInfo:
        self.digests.append(message_digest)
        return self.token


def _ecdsa_key(pki: TestPki) -> SigningKey:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "ECDSA 签署人")]))
            .issuer_name(pki.ca.cert.subject).public_key(key.public_key())
            .serial_number(4242).not_valid_before(NOW - timedelta(days=1))
            .not_valid_after(NOW + timedelta(days=30))
            .sign(pki.ca.key, hashes.SHA256()))
    return SigningKey(key, cert, (pki.ca.cert, pki.root.cert))


def _token(pki: TestPki) -> cms.ContentInfo:
    stamper = timestamper_for(pki.tsa_client)
    return asyncio.run(stamper.async_timestamp(hashlib.sha256(b"x").digest(), "sha256"))


def _both(signer: CachedKeySigner, **kwargs: object) -> tuple[bytes, bytes]:
    digest = hashlib.sha256(b"the document's byte ranges").digest()
    ours = asyncio.run(signer.async_sign(digest, "sha256", **kwargs))  # type: ignore[arg-type]
    theirs = asyncio.run(Signer.async_sign(signer, digest, "sha256", **kwargs))  # type: ignore[arg-type]
    return ours.dump(), theirs.dump()


@pytest.mark.parametrize("kind", ["rsa", "ecdsa"])
@pytest.mark.parametrize("timestamped", [False, True])
def test_template_equals_pyhanko_byte_for_byte(pki: TestPki, kind: str,
                                               timestamped: bool) -> None:
    key = pki.signer_keys[0] if kind == "rsa" else _ecdsa_key(pki)
    stamper = FixedToken(_token(pki)) if timestamped else None
    settings = PdfCMSSignedAttributes(signing_time=datetime.now(UTC))  # PAdES leaves it out
    ours, theirs = _both(FixedSignature(key), use_pades=True, timestamper=stamper,
                         signed_attr_settings=settings)
    assert ours == theirs
    info = cms.ContentInfo.load(ours)["content"]["signer_infos"][0]
    assert [a["type"].native for a in info["signed_attrs"]] == [
        "content_type", "message_digest", "signing_certificate_v2"]
    if stamper is not None:
        assert [a["type"].native for a in info["unsigned_attrs"]] == [
            "signature_time_stamp_token"]
        # the token is over the signature value, as pyHanko's TSTProvider asks for it
        assert stamper.digests == [hashlib.sha256(info["signature"].native).digest()] * 2


def test_the_real_key_signs_what_pyhanko_would(pki: TestPki) -> None:
    # RSA PKCS#1 v1.5 is deterministic: with the real key both whole CMS are identical.
    ours, theirs = _both(CachedKeySigner(pki.signer_keys[1]), use_pades=True)
    assert ours == theirs


@pytest.mark.parametrize("kwargs", [
    {"use_pades": False},  # CMS with a signing-time attribute
    {"use_pades": True, "dry_run": True},  # pyHanko's size estimate
    {"use_pades": True, "is_pdf_sig": False},
])
def test_other_shapes_are_left_to_pyhanko(pki: TestPki, kwargs: dict[str, object]) -> None:
    settings = PdfCMSSignedAttributes(signing_time=datetime(2026, 11, 29, tzinfo=UTC))
    ours, theirs = _both(FixedSignature(pki.signer_keys[0]), signed_attr_settings=settings,
                         **kwargs)
    assert ours == theirs
    if not kwargs["use_pades"]:
        info = cms.ContentInfo.load(ours)["content"]["signer_infos"][0]
        assert "signing_time" in [a["type"].native for a in info["signed_attrs"]]


@pytest.mark.parametrize("size", [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000])
def test_tlv_lengths_match_asn1crypto(size: int) -> None:
    data = bytes(size)
    assert tlv(0x04, data) == core.OctetString(data).dump()


def test_a_certificate_the_template_cannot_serve_falls_back(pki: TestPki,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise SigningError("The signed attributes cannot be templated")

    monkeypatch.setattr(keys, "template_for", refuse)
    signer = FixedSignature(pki.signer_keys[0])
    assert signer._template is None  # signing still works, through pyHanko's assembly
    ours, theirs = _both(signer, use_pades=True)
    assert ours == theirs
