"""The evidence package (证据包): everything needed to prove a completed contract, in one zip.

Contents (every file is listed with its SHA-256 in ``manifest.json``, and the manifest is signed
by the platform seal key in ``manifest.sig``)::

    README.txt                       what is inside and how to check it (zh + en)
    contract.pdf                     the final, sealed PDF (PAdES B-LTA)
    certificate-of-completion.pdf    the sealed certificate of completion, when issued
    audit/events.jsonl               the organisation's audit chain from the contract's first
                                     event to the head: the contract's own events in full, every
                                     other event reduced to (seq, prev_hash, hash)
    certificates/*.pem               root CA, signer CA, TSA, platform seal, each signer
    revocation/*.crl                 current CRLs of both CAs (DER)
    verification-report.json         the platform verifier's report on both PDFs
    manifest.json, manifest.sig      file hashes, versions, audit head; seal signature

``econtract verify-evidence`` (``audit.evidence_check``) checks all of it with nothing but the zip.
Other contracts' events are redacted to their hashes, so the chain can be followed from this
contract's events to the head without disclosing anything else of the organisation.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import zipfile
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract.audit import service as audit
from econtract.audit.events import EventKind
from econtract.audit.models import AuditEvent, AuditHead
from econtract.context import Ctx
from econtract.contracts import service as contracts
from econtract.contracts.models import Contract
from econtract.contracts.states import Status
from econtract.credentials.engine import SigningEngine
from econtract.credentials.models import SignerCredential
from econtract.errors import InvalidTransition
from econtract.pki.detached import sign_detached
from econtract.signing.verify import verify_pdf
from econtract.storage import BlobStore

FORMAT = "econtract-evidence/1"
MANIFEST, SIGNATURE = "manifest.json", "manifest.sig"
CONTRACT_PDF, CERTIFICATE_PDF = "contract.pdf", "certificate-of-completion.pdf"
EVENTS = "audit/events.jsonl"
REPORT = "verification-report.json"
ROOT_PEM, SEAL_PEM = "certificates/root-ca.pem", "certificates/platform-seal.pem"
READY = frozenset({Status.COMPLETED, Status.LAPSED})

README = """econtract 证据包 / evidence package
=====================================

合同 / Contract: {title}
编号 / Id: {contract_id}
生成时间 / Created: {created}

本压缩包包含已完成合同的全部证据：最终签署并封存的 PDF（contract.pdf）、完成证书、
合同的审计事件及其哈希链（audit/events.jsonl）、全部证书与证书吊销列表、验证报告。
manifest.json 列出每个文件的 SHA-256，并由平台封存密钥签名（manifest.sig）。
离线校验：econtract verify-evidence 本文件.zip

This archive holds the evidence of a completed contract: the final signed and sealed PDF
(contract.pdf), the certificate of completion, the contract's audit events with their hash
chain (audit/events.jsonl), every certificate and the certificate revocation lists, and a
verification report. manifest.json lists each file's SHA-256 and is signed by the platform
seal key (manifest.sig). Check it offline with: econtract verify-evidence THIS.zip

Root CA fingerprint (SHA-256) — compare it with the one your platform publishes at
/pki/ca/root.crt:
{root_fingerprint}
"""


@dataclass(frozen=True)
class EvidencePackage:
    filename: str
    data: bytes
    sha256: str


def build(session: Session, ctx: Ctx, *, blobs: BlobStore, engine: SigningEngine,
          contract_id: uuid.UUID) -> EvidencePackage:
    """The evidence zip of a completed contract (audited as ``evidence.exported``)."""
    contract = contracts.get(session, ctx, contract_id=contract_id)
    if Status(contract.status) not in READY:
        raise InvalidTransition("The evidence package is made once the contract is completed.",
                                code="evidence_not_ready")
    now = ctx.now()
    files: dict[str, bytes] = {}
    final = contracts.current_version(session, contract=contract)
    files[CONTRACT_PDF] = blobs.get(org_id=contract.org_id, contract_id=contract.id,
                                    key=final.blob_key, sha256=final.sha256)
    certificate = _certificate_pdf(contract, blobs)
    if certificate is not None:
        files[CERTIFICATE_PDF] = certificate
    head, events = _events(session, contract)
    files[EVENTS] = "".join(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n"
                            for e in events).encode()
    files.update(_certificates(session, engine, contract))
    root_crl, signer_crl = engine.crls(session, now)
    files["revocation/root-ca.crl"], files["revocation/signer-ca.crl"] = root_crl, signer_crl
    trust = engine.trust(session, now)
    reports = {CONTRACT_PDF: verify_pdf(files[CONTRACT_PDF], trust).to_dict()}
    if certificate is not None:
        reports[CERTIFICATE_PDF] = verify_pdf(certificate, trust).to_dict()
    files[REPORT] = json.dumps(reports, ensure_ascii=False, indent=2, default=str).encode()
    fingerprint = engine.authority.root.certificate.fingerprint(
        hashes.SHA256()).hex(":").upper()
    files["README.txt"] = README.format(
        title=contract.title, contract_id=contract.id, created=now.isoformat(),
        root_fingerprint=fingerprint).encode()
    manifest = {
        "format": FORMAT, "created_at": now.astimezone(UTC).isoformat(),
        "contract": {"id": str(contract.id), "title": contract.title, "status": contract.status,
                     "organisation_id": str(contract.org_id)},
        "versions": [{"number": v.number, "kind": v.kind, "sha256": v.sha256}
                     for v in contracts.versions(session, contract=contract)],
        "audit_head": head, "root_fingerprint_sha256": fingerprint,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
    files[MANIFEST] = manifest_bytes
    files[SIGNATURE] = sign_detached(engine.seal_key.private_key, manifest_bytes)
    data = _zip(files)
    digest = hashlib.sha256(data).hexdigest()
    audit.record(session, ctx, EventKind.EVIDENCE_EXPORTED, org_id=contract.org_id,
                 contract_id=contract.id, data={"sha256": digest, "files": len(files)})
    return EvidencePackage(filename=f"evidence-{contract.id}.zip", data=data, sha256=digest)


def _certificate_pdf(contract: Contract, blobs: BlobStore) -> bytes | None:
    key = getattr(contract, "certificate_blob_key", None)
    if not key:
        return None
    return blobs.get(org_id=contract.org_id, contract_id=contract.id, key=key,
                     sha256=contract.certificate_sha256)


def _events(session: Session, contract: Contract) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The head, and the chain from the contract's first event to it (others redacted)."""
    chain = audit.chain_for(contract.org_id)
    head = session.get_one(AuditHead, chain)
    own = {e.seq: e for e in audit.contract_events(session, org_id=contract.org_id,
                                                    contract_id=contract.id)}
    first = min(own) if own else head.seq
    rows = session.execute(select(AuditEvent.seq, AuditEvent.prev_hash, AuditEvent.hash)
                           .where(AuditEvent.chain == chain, AuditEvent.seq >= first,
                                  AuditEvent.seq <= head.seq).order_by(AuditEvent.seq))
    events: list[dict[str, Any]] = []
    for seq, prev_hash, digest in rows:
        if seq in own:
            events.append({**audit.event_fields(own[seq]), "hash": digest})
        else:
            events.append({"seq": seq, "prev_hash": prev_hash, "hash": digest,
                           "redacted": True})
    return {"chain": chain, "seq": head.seq, "hash": head.hash}, events


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _certificates(session: Session, engine: SigningEngine,
                  contract: Contract) -> dict[str, bytes]:
    a = engine.authority
    files = {ROOT_PEM: _pem(a.root.certificate),
             "certificates/signer-ca.pem": _pem(a.issuing.certificate),
             "certificates/tsa.pem": _pem(a.tsa.certificate),
             SEAL_PEM: _pem(a.seal.certificate)}
    serials = [s.credential_serial for s in contract.signers if s.credential_serial]
    if serials:
        for credential in session.scalars(select(SignerCredential)
                                          .where(SignerCredential.serial.in_(serials))):
            files[f"certificates/signer-{credential.serial}.pem"] = _pem(
                x509.load_der_x509_certificate(credential.certificate))
    return files


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name])
    return out.getvalue()
