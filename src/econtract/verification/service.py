"""Verifying a signed PDF for anyone: the platform's trust anchors and revocation data, the
sandboxed verifier for untrusted bytes, and an audit record of every verification."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from cryptography import x509
from sqlalchemy.orm import Session

from econtract.audit import service as audit
from econtract.audit.events import EventKind
from econtract.context import Ctx
from econtract.credentials.engine import SigningEngine
from econtract.errors import UploadRejected
from econtract.signing.report import VerificationReport
from econtract.signing.verify import TrustSpec, verify_isolated

__all__ = ["MAX_VERIFY_BYTES", "TrustSpec", "trust_for", "verify_document", "verify_isolated",
           "verify_with_platform"]

MAX_VERIFY_BYTES = 64 * 1024 * 1024


def trust_for(session: Session, engine: SigningEngine | None, ctx: Ctx, *,
              extra_roots: Sequence[x509.Certificate] = (),
              extra_crls: Sequence[bytes] = ()) -> TrustSpec:
    """The platform root with fresh CRLs (when this is a platform), plus what the caller adds."""
    roots, crls = list(extra_roots), list(extra_crls)
    if engine is not None:
        platform = engine.trust(session, ctx.now())
        roots[:0], crls[:0] = platform.roots, platform.crls
    return TrustSpec(roots=tuple(roots), crls=tuple(crls), moment=ctx.now())


def verify_document(session: Session, ctx: Ctx, *, data: bytes, trust: TrustSpec,
                    filename: str = "") -> VerificationReport:
    """Judge an uploaded PDF in the sandbox (the bytes are hostile until proven otherwise)."""
    if len(data) > MAX_VERIFY_BYTES:
        raise UploadRejected(f"The file is larger than {MAX_VERIFY_BYTES // 2**20} MB.",
                             code="upload_too_large")
    report = verify_isolated(data, trust)
    # Only the verdict and the hash: never the document's content or its attacker-chosen text.
    audit.record(session, ctx, EventKind.DOCUMENT_VERIFIED, org_id=ctx.org_id, data={
        "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
        "verdict": report.verdict.value, "signatures": len(report.signatures),
        "filename": filename[:200]})
    return report


def verify_with_platform(session: Session, ctx: Ctx, engine: SigningEngine, *, data: bytes,
                         filename: str = "") -> VerificationReport:
    """What the API and the /verify page do: platform trust, sandboxed verdict, audit."""
    return verify_document(session, ctx, data=data, trust=trust_for(session, engine, ctx),
                           filename=filename)
