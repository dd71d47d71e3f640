"""seal_document: DSS + document timestamp (PAdES B-LTA), valid long after the signers expire."""

from __future__ import annotations

import asyncio
import dataclasses
import io
from datetime import timedelta

import pytest
from asn1crypto import crl as asn1_crl
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESPassed
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko.sign.validation.ades import ades_lta_validation
from pyhanko.sign.validation.policy_decl import (
    LocalKnowledge,
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko.sign.validation.status import ModificationLevel, SignatureCoverageLevel
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
from pyhanko_certvalidator.policy_decl import REQUIRE_REVINFO, CertRevTrustPolicy
from pyhanko_certvalidator.registry import SimpleTrustManager
from pyhanko_certvalidator.revinfo.archival import CRLContainer

from econtract.errors import SigningError, ValidationFailed
from econtract.signing import ValidationMaterial, collect_validation_material, seal_document
from econtract.signing.keys import as_asn1_certificate
from tests.signing.conftest import Flow, assert_fully_valid, validate_all, validation_context
from tests.signing.testpki import NOW, SIGNER_LIFETIME, TestPki


def _reader(pdf: bytes) -> PdfFileReader:
    return PdfFileReader(io.BytesIO(pdf), strict=True)


def test_sealed_file_has_dss_and_a_document_timestamp(flow: Flow, pki: TestPki) -> None:
    reader = _reader(flow.sealed)
    dss = reader.root["/DSS"]
    certs = {as_asn1_certificate(c).sha256 for c in
             (pki.root.cert, pki.ca.cert, pki.tsa.cert, pki.seal.cert, *pki.signer_keys_certs())}
    embedded = {stream_cert.sha256 for stream_cert in _dss_certs(dss)}
    assert certs <= embedded
    assert len(dss["/CRLs"]) == 2
    (timestamp,) = reader.embedded_timestamp_signatures
    assert timestamp.sig_object["/Type"] == "/DocTimeStamp"
    assert timestamp.sig_object["/SubFilter"] == "/ETSI.RFC3161"
    status = validate_pdf_timestamp(timestamp, validation_context(pki))
    assert status.intact and status.valid and status.trusted
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE


def _dss_certs(dss: object) -> list[object]:
    from asn1crypto import x509

    return [x509.Certificate.load(ref.get_object().data) for ref in dss["/Certs"]]  # type: ignore[index]


def test_every_signature_stays_valid_after_sealing(flow: Flow, pki: TestPki) -> None:
    results = list(validate_all(pki, flow.sealed))
    assert len(results) == 4
    for name, status in results:
        assert_fully_valid(name, status)
    assert results[-1][1].modification_level == ModificationLevel.LTA_UPDATES


def _lta_spec(pki: TestPki, crls: tuple[bytes, ...]) -> PdfSignatureValidationSpec:
    policy = CertValidationPolicySpec(
        trust_manager=SimpleTrustManager.build(trust_roots=[as_asn1_certificate(pki.root.cert)]),
        revinfo_policy=CertRevTrustPolicy(REQUIRE_REVINFO))
    knowledge = LocalKnowledge(known_crls=[CRLContainer(asn1_crl.CertificateList.load(der))
                                           for der in crls])
    return PdfSignatureValidationSpec(SignatureValidationSpec(
        cert_validation_policy=policy, local_knowledge=knowledge,
        revinfo_gathering_policy=RevocationInfoGatheringSpec(
            online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY)))


def test_long_term_validation_after_the_signers_expired(flow: Flow, pki: TestPki) -> None:
    """Two years on, signer certificates long expired: PAdES-LTA validation still passes.

    The verifier of the future has the CAs' CRLs of its own day (for the document timestamp);
    everything about the signatures comes from the DSS, proven to exist by the timestamp.
    """
    future = NOW + timedelta(days=730)
    assert future > NOW + SIGNER_LIFETIME
    spec = _lta_spec(pki, pki.crls_at(future - timedelta(hours=1)))
    timing = ValidationTimingInfo(validation_time=future, best_signature_time=future,
                                  point_in_time_validation=False)
    for sig in _reader(flow.sealed).embedded_regular_signatures:
        plain = validate_pdf_signature(sig, validation_context(pki, moment=future))
        assert not plain.bottom_line, "without LTV the expired signers must fail"
        result = asyncio.run(ades_lta_validation(sig, spec, timing_info=timing))
        assert result.ades_subindic == AdESPassed.OK, (sig.field_name, result.ades_subindic)


def test_sealing_again_renews_the_archive_timestamp(flow: Flow, pki: TestPki) -> None:
    renewed = seal_document(flow.sealed, tsa=pki.tsa_client, validation=pki.material())
    stamps = _reader(renewed).embedded_timestamp_signatures
    assert [s.field_name for s in stamps] == ["econtract-archive-1", "econtract-archive-2"]
    for stamp in stamps:
        status = validate_pdf_timestamp(stamp, validation_context(pki))
        assert status.valid and status.trusted, stamp.field_name
    for name, status in validate_all(pki, renewed):
        assert_fully_valid(name, status)


def test_collect_validation_material_checks_coverage(flow: Flow, pki: TestPki) -> None:
    material = collect_validation_material(flow.signed[-1], trust_roots=[pki.root.cert],
                                           crls=pki.crls)
    fingerprints = {c.fingerprint(c.signature_hash_algorithm) for c in material.certificates
                    if c.signature_hash_algorithm}
    for cert in (pki.root.cert, pki.ca.cert, pki.tsa.cert, *pki.signer_keys_certs()):
        assert cert.fingerprint(cert.signature_hash_algorithm) in fingerprints  # type: ignore[arg-type]
    assert material.crls == pki.crls
    with pytest.raises(SigningError) as caught:
        collect_validation_material(flow.signed[-1], trust_roots=[pki.root.cert],
                                    crls=pki.crls[:1])  # the CA's CRL is missing
    assert caught.value.code == "signing_validation_data"


def test_seal_refuses_unsigned_documents_and_bad_crls(flow: Flow, pki: TestPki) -> None:
    with pytest.raises(SigningError):
        seal_document(flow.prepared.pdf, tsa=pki.tsa_client, validation=pki.material())
    bad = dataclasses.replace(pki.material(), crls=(b"\x30\x03garbage",))
    with pytest.raises(ValidationFailed):
        seal_document(flow.signed[-1], tsa=pki.tsa_client, validation=bad)
    assert ValidationMaterial().crls == ()
