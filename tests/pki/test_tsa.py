"""The RFC 3161 TSA: tokens pyHanko accepts, and refusals for what we do not serve."""

from __future__ import annotations

import asyncio
import hashlib
import os
from datetime import UTC, datetime
from typing import ClassVar

import pytest
from asn1crypto import cms, core, tsp
from pyhanko.sign.timestamps.common_utils import handle_tsp_response
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko.sign.validation.status import TimestampSignatureStatus
from pyhanko_certvalidator import ValidationContext

from econtract.errors import ConfigurationError
from econtract.pki import DEFAULT_POLICY_OID, PlatformPki, TimeStampAuthority
from tests.pki._support import InProcessTimeStamper, asn1_cert, crl_for

NOW = datetime(2026, 11, 20, 8, 30, 15, 123456, tzinfo=UTC)
DIGEST = hashlib.sha256(b"the contract").digest()


def ts_request(*, digest: bytes = DIGEST, algorithm: str = "sha256", nonce: int | None = 42,
               cert_req: bool = True, policy: str | None = None,
               extensions: list[dict[str, object]] | None = None) -> bytes:
    fields: dict[str, object] = {
        "version": "v1",
        "message_imprint": {"hash_algorithm": {"algorithm": algorithm},
                            "hashed_message": digest},
        "cert_req": cert_req,
    }
    if nonce is not None:
        fields["nonce"] = nonce
    if policy is not None:
        fields["req_policy"] = policy
    if extensions is not None:
        fields["extensions"] = extensions
    return bytes(tsp.TimeStampReq(fields).dump())


def tsa_context(pki: PlatformPki) -> ValidationContext:
    return ValidationContext(trust_roots=[asn1_cert(pki.root.certificate)],
                             crls=[crl_for(pki.root)], allow_fetching=False,
                             revocation_mode="hard-fail", moment=datetime.now(UTC))


def validate_token(pki: PlatformPki, signed_data: cms.SignedData,
                   digest: bytes) -> TimestampSignatureStatus:
    kwargs = asyncio.run(validate_tst_signed_data(
        signed_data, tsa_context(pki), expected_tst_imprint=lambda algo: digest))
    return TimestampSignatureStatus(**kwargs)


class AnyTimeStampResp(core.Sequence):  # type: ignore[misc]
    """RFC 3161's TimeStampResp; asn1crypto's class wrongly makes the token mandatory."""

    _fields: ClassVar = [("status", tsp.PKIStatusInfo),
                         ("time_stamp_token", cms.ContentInfo, {"optional": True})]


def status_of(response_der: bytes) -> tuple[str, set[str]]:
    status = AnyTimeStampResp.load(response_der)["status"]
    return status["status"].native, set(status["fail_info"].native or ())


def test_token_validates_with_pyhanko(pki: PlatformPki, tsa: TimeStampAuthority) -> None:
    response = tsp.TimeStampResp.load(tsa.respond(ts_request(), now=NOW, serial=77))
    token = handle_tsp_response(response, 42)  # checks status granted and the nonce
    signed_data = token["content"]
    tst_info = signed_data["encap_content_info"]["content"].parsed
    assert tst_info["gen_time"].native == NOW  # microseconds kept
    assert tst_info["nonce"].native == 42 and tst_info["serial_number"].native == 77
    assert tst_info["policy"].dotted == DEFAULT_POLICY_OID
    assert tst_info["message_imprint"]["hashed_message"].native == DIGEST
    assert tst_info["accuracy"]["seconds"].native == 1
    status = validate_token(pki, signed_data, DIGEST)
    assert status.intact and status.valid and status.trusted, status.trust_problem_indic
    assert status.timestamp == NOW


def test_signed_attributes(pki: PlatformPki, tsa: TimeStampAuthority) -> None:
    response = tsp.TimeStampResp.load(tsa.respond(ts_request(), now=NOW, serial=1))
    signed_data = response["time_stamp_token"]["content"]
    assert signed_data["version"].native == "v3"
    signer_info = signed_data["signer_infos"][0]
    attrs = {a["type"].native: a["values"][0] for a in signer_info["signed_attrs"]}
    assert attrs["content_type"].native == "tst_info"
    assert attrs["signing_time"].native == NOW.replace(microsecond=0)
    tst_der = signed_data["encap_content_info"]["content"].contents
    assert attrs["message_digest"].native == hashlib.sha256(tst_der).digest()
    ess = attrs["signing_certificate_v2"]["certs"][0]
    cert_der = asn1_cert(pki.tsa.certificate).dump()
    assert ess["cert_hash"].native == hashlib.sha256(cert_der).digest()
    assert ess["issuer_serial"]["serial_number"].native == pki.tsa.certificate.serial_number
    assert "signing_certificate" not in attrs  # only the v2 (SHA-256) form
    certs = {c.chosen.sha256 for c in signed_data["certificates"]}
    assert asn1_cert(pki.tsa.certificate).sha256 in certs


def test_without_cert_req_no_certificates(tsa: TimeStampAuthority) -> None:
    response = tsp.TimeStampResp.load(tsa.respond(ts_request(cert_req=False, nonce=None),
                                                  now=NOW, serial=2))
    signed_data = response["time_stamp_token"]["content"]
    assert signed_data["certificates"].native is None
    tst_info = signed_data["encap_content_info"]["content"].parsed
    assert tst_info["nonce"].native is None


def test_pyhanko_request_builder_and_client(pki: PlatformPki, tsa: TimeStampAuthority) -> None:
    stamper = InProcessTimeStamper(tsa)
    digest = hashlib.sha512(b"x").digest()
    token = asyncio.run(stamper.async_timestamp(digest, "sha512"))  # checks the nonce itself
    status = validate_token(pki, token["content"], digest)
    assert status.intact and status.valid and status.trusted


def test_our_policy_is_accepted(tsa: TimeStampAuthority) -> None:
    assert status_of(tsa.respond(ts_request(policy=DEFAULT_POLICY_OID), now=NOW, serial=3)) == \
        ("granted", set())


@pytest.mark.parametrize(("request_der", "fail_info"), [
    (ts_request(algorithm="sha1", digest=hashlib.sha1(b"x").digest()), "bad_alg"),
    (ts_request(algorithm="md5", digest=hashlib.md5(b"x").digest()), "bad_alg"),
    (ts_request(digest=b"short"), "bad_data_format"),
    (ts_request(policy="1.2.3.4"), "unaccepted_policy"),
    (ts_request(extensions=[{"extn_id": "1.2.3.4", "extn_value": b"x"}]), "unaccepted_extensions"),
    (b"", "bad_data_format"),
    (b"garbage", "bad_data_format"),
    (b"\x30\x03\x02\x01\x01", "bad_data_format"),
    (ts_request() + b"\x00", "bad_data_format"),
])
def test_refusals(tsa: TimeStampAuthority, request_der: bytes, fail_info: str) -> None:
    assert status_of(tsa.respond(request_der, now=NOW, serial=4)) == ("rejection", {fail_info})


def test_version_2_is_a_bad_request(tsa: TimeStampAuthority) -> None:
    request = tsp.TimeStampReq.load(ts_request())
    request["version"] = 2
    assert status_of(tsa.respond(request.dump(force=True), now=NOW, serial=5)) == \
        ("rejection", {"bad_request"})


def test_no_input_raises(tsa: TimeStampAuthority) -> None:
    good = ts_request()
    samples = [good[:cut] for cut in range(len(good))]
    samples += [bytes(b ^ 0xFF if i == pos else b for i, b in enumerate(good))
                for pos in range(len(good))]
    samples += [os.urandom(n) for n in (1, 10, 100, 1000)]
    for sample in samples:
        state, _ = status_of(tsa.respond(sample, now=NOW, serial=6))
        assert state in ("granted", "rejection")


def test_rejection_is_parseable_by_pyhanko(tsa: TimeStampAuthority) -> None:
    response = AnyTimeStampResp.load(tsa.respond(b"junk", now=NOW, serial=7))
    assert response["time_stamp_token"].native is None
    with pytest.raises(OSError, match="bad_data_format"):
        handle_tsp_response(response, None)


def test_configuration_is_checked(pki: PlatformPki) -> None:
    with pytest.raises(ConfigurationError, match="extended key usage"):
        TimeStampAuthority(pki.seal.certificate, pki.seal.private_key)
    with pytest.raises(ConfigurationError, match="does not belong"):
        TimeStampAuthority(pki.tsa.certificate, pki.seal.private_key)
    with pytest.raises(ConfigurationError, match="not an OID"):
        TimeStampAuthority(pki.tsa.certificate, pki.tsa.private_key, policy_oid="policy-1")
    tsa = TimeStampAuthority(pki.tsa.certificate, pki.tsa.private_key, policy_oid="1.2.3.4.5")
    assert tsa.policy_oid == "1.2.3.4.5"
    with pytest.raises(ValueError):
        tsa.respond(ts_request(), now=NOW, serial=0)
    with pytest.raises(ValueError):
        tsa.respond(ts_request(), now=NOW.replace(tzinfo=None), serial=1)


def test_token_is_der(tsa: TimeStampAuthority) -> None:
    # Re-encoding must not change a byte, or a validator that re-encodes gets another digest.
    token = tsp.TimeStampResp.load(tsa.respond(ts_request(), now=NOW, serial=8))[
        "time_stamp_token"]
    tst_der = token["content"]["encap_content_info"]["content"].contents
    assert tsp.TSTInfo.load(tst_der).dump(force=True) == tst_der
    original = token.dump()
    assert cms.ContentInfo.load(original).dump(force=True) == original
