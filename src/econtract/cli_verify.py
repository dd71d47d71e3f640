"""The pieces of ``econtract verify``: reading trust material, running, printing the report."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from econtract import bootstrap
from econtract.audit.evidence_check import EvidenceReport
from econtract.context import Actor, Ctx
from econtract.errors import ConfigurationError
from econtract.runtime import Runtime
from econtract.settings import Settings
from econtract.signing.report import SignatureReport, Verdict, VerificationReport
from econtract.verification import service

VERDICT_TEXT = {
    Verdict.VALID: "VALID — every signature is intact, trusted, and nothing changed after it",
    Verdict.INVALID_INTEGRITY: "INVALID — a signature is broken or forged",
    Verdict.INVALID_TRUST: "INVALID — a signer is not trusted (unknown CA, expired or revoked)",
    Verdict.MODIFIED: "INVALID — the document was changed after it was signed",
    Verdict.NOT_A_PDF: "NOT A PDF — the file could not be read as a PDF",
    Verdict.NO_SIGNATURE: "NO SIGNATURE — the document carries no signature",
}


def load_certificates(paths: Iterable[Path]) -> list[x509.Certificate]:
    certificates = []
    for path in paths:
        data = path.read_bytes()
        try:
            if b"-----BEGIN" in data:
                certificates.extend(x509.load_pem_x509_certificates(data))
            else:
                certificates.append(x509.load_der_x509_certificate(data))
        except ValueError as exc:
            raise ConfigurationError(f"{path} is not a certificate (PEM or DER)") from exc
    return certificates


def load_crls(paths: Iterable[Path]) -> list[bytes]:
    crls = []
    for path in paths:
        data = path.read_bytes()
        try:
            crl = x509.load_pem_x509_crl(data) if b"-----BEGIN" in data else \
                x509.load_der_x509_crl(data)
        except ValueError as exc:
            raise ConfigurationError(f"{path} is not a CRL (PEM or DER)") from exc
        crls.append(crl.public_bytes(serialization.Encoding.DER))
    return crls


def run_verify(settings: Settings, data: bytes, *, roots: list[x509.Certificate],
               crls: list[bytes], filename: str) -> VerificationReport:
    """With an initialised data dir, the platform's root and CRLs join the trust anchors."""
    ctx = Ctx(actor=Actor.system("econtract verify"), base_url=settings.base_url)
    if not bootstrap.is_initialised(settings):
        if not roots:
            click.echo("note: no --trust given and no initialised data dir: no signer can be "
                       "trusted", err=True)
        trust = service.TrustSpec(roots=tuple(roots), crls=tuple(crls), moment=ctx.now())
        return service.verify_isolated(data, trust)
    rt = Runtime.open(settings)
    try:
        with rt.uow() as session:
            trust = service.trust_for(session, rt.signing_engine(), ctx, extra_roots=roots,
                                      extra_crls=crls)
            return service.verify_document(session, ctx, data=data, trust=trust,
                                           filename=filename)
    finally:
        rt.close()


def print_report(report: VerificationReport, name: str) -> None:
    click.echo(f"{name}  sha256 {report.sha256}  {report.size} bytes, "
               f"{report.revisions} revision(s)")
    for message in report.messages:
        click.echo(f"  note: {message}")
    for index, signature in enumerate(report.signatures, start=1):
        _print_signature(index, signature)
    click.echo(f"verdict: {report.verdict.value}  —  {VERDICT_TEXT[report.verdict]}")


def _print_signature(index: int, s: SignatureReport) -> None:
    who = s.signer.common_name or s.signer.subject if s.signer else "(no certificate)"
    email = f" <{s.signer.email}>" if s.signer and s.signer.email else ""
    when = (f"{s.timestamp_time:%Y-%m-%d %H:%M:%S} UTC (proven by timestamp"
            f"{' of ' + s.tsa if s.tsa else ''})" if s.timestamp_proven and s.timestamp_time
            else f"{s.claimed_time:%Y-%m-%d %H:%M:%S} UTC (claimed by the signer)"
            if s.claimed_time else "unknown")
    click.echo(f"[{index}] {s.kind.value}  {who}{email}")
    click.echo(f"    verdict: {s.verdict.value} — {s.reason}")
    click.echo(f"    signed: {when}; revision {s.signed_revision}/{s.total_revisions}"
               f"{', covers the whole file' if s.covers_whole_file else ''}")
    if s.chain:
        trusted = "trusted" if s.chain_trusted else "NOT trusted"
        click.echo(f"    chain ({trusted}): " + " → ".join(e.subject for e in s.chain))
    for change in s.changes_after:
        click.echo(f"    changed later: {change}")


def print_evidence_report(report: EvidenceReport, name: str) -> None:
    title = report.contract.get("title", "")
    click.echo(f"{name}  {title}  ({report.contract.get('id', 'unknown contract')})")
    for check in report.checks:
        click.echo(f"  [{'ok' if check.ok else 'FAILED'}] {check.name}: {check.detail}")
    if report.root_fingerprint:
        click.echo(f"root CA SHA-256 fingerprint: {report.root_fingerprint}")
        click.echo("  (compare it with the one your platform publishes at /pki/ca/root.crt)")
    click.echo("evidence: INTACT" if report.ok else "evidence: NOT INTACT")
