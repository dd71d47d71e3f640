"""Completion: validation data for every signature (DSS) and a document timestamp → PAdES B-LTA.

:func:`seal_document` writes one incremental update holding the document security store
(certificates, CRLs, OCSP responses) and, covering it, a PAdES document timestamp
(``/DocTimeStamp``, ``/ETSI.RFC3161``). Applied again later, it adds the newest timestamp's
validation data and a fresh timestamp: that is how a B-LTA archive is renewed before the TSA
certificate or the hash algorithm weakens.

Nothing is fetched from the network: the platform supplies its own CRLs and OCSP responses (and
those of an external TSA). :func:`collect_validation_material` checks, with pyHanko's path
builder and revocation checker, that what is supplied covers every chain in the document.
"""

from __future__ import annotations

from collections.abc import Coroutine, Iterable, Iterator, Sequence
from datetime import datetime
from io import BytesIO
from typing import Any

from asn1crypto import cms, core, crl, ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign.signers.pdf_signer import PdfTimeStamper
from pyhanko.sign.validation import DocumentSecurityStore
from pyhanko.sign.validation.dss import collect_validation_info
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError
from pyhanko_certvalidator.path import ValidationPath

from econtract.errors import SigningError, ValidationFailed
from econtract.signing._aio import run_sync
from econtract.signing.keys import as_asn1_certificate
from econtract.signing.sign import open_for_update, run_with_reserve
from econtract.signing.specs import ValidationMaterial
from econtract.signing.timestamps import TsaClient, timestamper_for

#: Document timestamp fields are numbered, so a renewed archive gets a new, unique field.
ARCHIVE_FIELD_PREFIX = "econtract-archive-"


def seal_document(pdf: bytes, *, tsa: TsaClient, validation: ValidationMaterial) -> bytes:
    """Add a DSS covering every signature, then a document timestamp (B-LTA).

    :param pdf: the fully signed contract.
    :param tsa: where the document timestamp comes from.
    :param validation: CRLs/OCSP responses (and extra certificates) for every chain in the
        document, current at sealing time.
    :return: ``pdf`` plus one revision (DSS and ``/DocTimeStamp``).
    :raises SigningError: the document has no signature.
    :raises ValidationFailed: a CRL or OCSP response is not valid DER.
    :raises UpstreamError: the TSA failed.
    """
    writer = open_for_update(pdf)
    signatures = writer.prev.embedded_signatures
    if not signatures:
        raise SigningError("Only a signed document can be sealed", code="signing_unsigned")
    certs = _unique([*_embedded_certs(signatures),
                     *(as_asn1_certificate(c) for c in validation.certificates)])
    crls = _load(crl.CertificateList, validation.crls, "CRL")
    ocsps = _load(ocsp.OCSPResponse, validation.ocsp_responses, "OCSP response")
    _supply_dss(writer, certs, crls, ocsps)
    field = f"{ARCHIVE_FIELD_PREFIX}{len(writer.prev.embedded_timestamp_signatures) + 1}"
    stamper = timestamper_for(tsa)
    doc_stamper = PdfTimeStamper(stamper, field_name=field, readable_field_name="Archive timestamp")
    dss = (certs, crls, ocsps)

    def attempt(out: IncrementalPdfFileWriter, reserve: int) -> Coroutine[Any, Any, BytesIO]:
        if out is not writer:  # the retry starts from the original bytes: add the DSS again
            _supply_dss(out, *dss)
        return doc_stamper.async_timestamp_pdf(out, "sha256", bytes_reserved=reserve,
                                               output=BytesIO())

    return run_with_reserve(pdf, writer, attempt, 0, stamper)


def collect_validation_material(
    pdf: bytes, *, trust_roots: Sequence[x509.Certificate],
    crls: Sequence[bytes] = (), ocsp_responses: Sequence[bytes] = (),
    extra_certificates: Sequence[x509.Certificate] = (), moment: datetime | None = None,
) -> ValidationMaterial:
    """Check that the supplied revocation data covers every chain, and package it for sealing.

    Every signature's signer and timestamp certificates (document timestamps included) are
    path-validated against ``trust_roots`` with revocation checking *required* and fetching off,
    so a missing or stale CRL/OCSP response fails here rather than in a verifier years later.

    :param pdf: the signed document.
    :param trust_roots: the anchors (the platform root; an external TSA's root).
    :param crls: DER CRLs, e.g. the platform CA's current CRL.
    :param ocsp_responses: DER OCSP responses.
    :param extra_certificates: intermediates not embedded in the signatures.
    :param moment: validation time; ``None`` means now.
    :return: the certificates of every validated path, plus the supplied CRLs and responses.
    :raises SigningError: a chain cannot be built or its revocation status is not covered.
    """
    vc = ValidationContext(
        trust_roots=[as_asn1_certificate(c) for c in trust_roots],
        other_certs=[as_asn1_certificate(c) for c in extra_certificates],
        crls=_load(crl.CertificateList, crls, "CRL"),
        ocsps=_load(ocsp.OCSPResponse, ocsp_responses, "OCSP response"),
        allow_fetching=False, revocation_mode="require", moment=moment)
    signatures = open_for_update(pdf).prev.embedded_signatures
    try:
        paths = run_sync(_collect(signatures, vc))
    except (PathBuildingError, PathValidationError) as exc:
        raise SigningError(f"Validation data incomplete: {exc}",
                           code="signing_validation_data") from exc
    certs = _unique(cert for path in paths for cert in path)
    return ValidationMaterial(
        certificates=tuple(x509.load_der_x509_certificate(c.dump()) for c in certs),
        crls=tuple(crls), ocsp_responses=tuple(ocsp_responses))


def _supply_dss(writer: IncrementalPdfFileWriter, certs: list[asn1_x509.Certificate],
                crls: list[Any], ocsps: list[Any]) -> None:
    # No VRI entries: PAdES baseline does not need them, and they would bind the DSS to the
    # exact /Contents bytes of each signature.
    DocumentSecurityStore.supply_dss_in_writer(writer, None, certs=certs, crls=crls, ocsps=ocsps)


async def _collect(signatures: Iterable[EmbeddedPdfSignature],
                   vc: ValidationContext) -> list[ValidationPath]:
    paths: list[ValidationPath] = []
    for signature in signatures:
        paths.extend(await collect_validation_info(signature, vc))
    return paths


def _embedded_certs(signatures: Iterable[EmbeddedPdfSignature]) -> Iterator[asn1_x509.Certificate]:
    """Certificates inside each CMS and inside each signature timestamp token."""
    for signature in signatures:
        yield from _signed_data_certs(signature.signed_data)
        unsigned = signature.signer_info["unsigned_attrs"]
        if isinstance(unsigned, core.Void):
            continue
        # never ask for .native here: asn1crypto would decode every token completely (seconds)
        for attr in unsigned:
            if attr["type"].native == "signature_time_stamp_token":
                for token in attr["values"]:
                    yield from _signed_data_certs(token["content"])


def _signed_data_certs(signed_data: cms.SignedData) -> Iterator[asn1_x509.Certificate]:
    for choice in signed_data["certificates"] or ():
        if choice.name == "certificate":
            yield choice.chosen


def _unique(certs: Iterable[asn1_x509.Certificate]) -> list[asn1_x509.Certificate]:
    seen: dict[bytes, asn1_x509.Certificate] = {}
    for cert in certs:
        seen.setdefault(cert.sha256, cert)
    return list(seen.values())


def _load(cls: type[Any], items: Iterable[bytes], what: str) -> list[Any]:
    loaded = []
    for der in items:
        try:
            item = cls.load(der)
            item.native  # noqa: B018  # parse fully now: a bad DER must not reach the DSS
        except (ValueError, TypeError) as exc:
            raise ValidationFailed(f"Invalid {what}", code="validation_data_invalid") from exc
        loaded.append(item)
    return loaded

