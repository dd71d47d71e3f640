"""The pure signing core: bytes in, bytes out (pyHanko is imported only inside this package).

Flow (see ARCHITECTURE.md, "The sign → seal flow")::

    prepared = prepare_document(upload, PrepareSpec(...))        # clean rewrite, pages, fields
    pdf = certify(prepared.pdf, key=platform_seal, tsa=tsa, ...)  # first signature, DocMDP P=2
    pdf = sign_field(pdf, field_name=..., key=signer_key, ...)    # once per signer, PAdES B-T
    pdf = seal_document(pdf, tsa=tsa, validation=material)        # DSS + document timestamp
    report = verify_pdf(pdf, TrustSpec(roots=(...,), crls=(...)))  # the verdict

Names are imported lazily (PEP 562): the sandboxed verifier child imports only what verification
needs, not the page-layout code and its fonts (about a second of start-up).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "certify": "prepare", "prepare_document": "prepare",
    "collect_validation_material": "seal", "seal_document": "seal",
    "sign_field": "sign", "TsaClient": "timestamps",
    "TrustSpec": "verify", "verify_pdf": "verify", "verify_isolated": "verify",
    "SignatureKind": "report", "SignatureReport": "report", "Verdict": "report",
    "VerificationReport": "report",
    **dict.fromkeys(("CERTIFICATION_FIELD", "CHINA_STANDARD_TIME", "AppearanceSpec",
                     "Attachment", "FieldInfo", "PreparedDocument", "PrepareSpec", "SignerSlot",
                     "SigningKey", "ValidationMaterial"), "specs"),
}

__all__ = [
    "CERTIFICATION_FIELD",
    "CHINA_STANDARD_TIME",
    "AppearanceSpec",
    "Attachment",
    "FieldInfo",
    "PrepareSpec",
    "PreparedDocument",
    "SignatureKind",
    "SignatureReport",
    "SignerSlot",
    "SigningKey",
    "TrustSpec",
    "TsaClient",
    "ValidationMaterial",
    "Verdict",
    "VerificationReport",
    "certify",
    "collect_validation_material",
    "prepare_document",
    "seal_document",
    "sign_field",
    "verify_isolated",
    "verify_pdf",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'econtract.signing' has no attribute {name!r}")
    value = getattr(import_module(f"econtract.signing.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


if TYPE_CHECKING:
    from econtract.signing.prepare import certify, prepare_document
    from econtract.signing.report import (
        SignatureKind,
        SignatureReport,
        Verdict,
        VerificationReport,
    )
    from econtract.signing.seal import collect_validation_material, seal_document
    from econtract.signing.sign import sign_field
    from econtract.signing.specs import (
        CERTIFICATION_FIELD,
        CHINA_STANDARD_TIME,
        AppearanceSpec,
        Attachment,
        FieldInfo,
        PreparedDocument,
        PrepareSpec,
        SignerSlot,
        SigningKey,
        ValidationMaterial,
    )
    from econtract.signing.timestamps import TsaClient
    from econtract.signing.verify import TrustSpec, verify_isolated, verify_pdf
