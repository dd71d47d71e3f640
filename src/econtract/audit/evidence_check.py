"""Checking an evidence package offline, with nothing but the zip (``econtract verify-evidence``).

The checks, in order; each names what failed:

1. the archive is a sane zip (bounded entries and sizes, no path tricks);
2. every file is listed in the manifest with its SHA-256, and nothing else is in the archive
   (first, so that an altered file is named even when it is one the signature check uses);
3. ``manifest.sig`` is a valid signature of ``manifest.json`` by the platform seal certificate,
   which the package's root CA issued;
4. ``contract.pdf`` (and the certificate of completion) verify ``valid`` against the package's
   root and CRLs, with the platform's own verifier;
5. the audit chain: every full event hashes to its recorded hash, each event links to the one
   before, and the chain ends at the head recorded in the manifest;
6. the document hashes the audit events recorded (sent, signed, sealed) are revisions of
   ``contract.pdf``, and so are the versions the manifest lists.

The root of trust is the package's root CA: compare its fingerprint (printed) with the one your
platform publishes. Pure: bytes in, a report out.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes

from econtract.audit.evidence import (
    CERTIFICATE_PDF,
    CONTRACT_PDF,
    EVENTS,
    FORMAT,
    MANIFEST,
    ROOT_PEM,
    SEAL_PEM,
    SIGNATURE,
)
from econtract.audit.service import GENESIS, hash_fields
from econtract.pki.detached import verify_detached
from econtract.signing.report import Verdict
from econtract.signing.verify import TrustSpec, verify_pdf

MAX_ENTRIES = 10_000
MAX_TOTAL_BYTES = 1024**3
DOCUMENT_EVENTS = {"contract.sent": "document_sha256", "signer.signed": "sha256",
                   "document.sealed": "sha256"}
"""Audit events that record the SHA-256 of a version of the signed document."""


class EvidenceError(Exception):
    """A check failed; the message names the file or the event."""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class EvidenceReport:
    checks: list[Check] = field(default_factory=list)
    contract: dict[str, Any] = field(default_factory=dict)
    root_fingerprint: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "contract": self.contract,
                "root_fingerprint_sha256": self.root_fingerprint,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail}
                           for c in self.checks]}


def verify_package(data: bytes) -> EvidenceReport:
    """Run every check; stop at the first failure (later checks would rely on it)."""
    report = EvidenceReport()
    package = _Package(data)
    steps: list[tuple[str, Callable[[], str]]] = [
        ("archive", package.open), ("file hashes", package.check_files),
        ("manifest signature", package.check_signature),
        ("signatures of contract.pdf", package.check_contract_pdf),
        ("certificate of completion", package.check_certificate_pdf),
        ("audit chain", package.check_chain),
        ("document hashes", package.check_document_hashes)]
    for name, step in steps:
        try:
            detail = step()
        except EvidenceError as exc:
            report.checks.append(Check(name, False, str(exc)))
            break
        report.checks.append(Check(name, True, detail))
    report.contract = package.manifest.get("contract", {}) if package.manifest else {}
    report.root_fingerprint = package.fingerprint
    return report


class _Package:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.files: dict[str, bytes] = {}
        self.manifest: dict[str, Any] = {}
        self.fingerprint = ""
        self.events: list[dict[str, Any]] = []

    def open(self) -> str:
        try:
            archive = zipfile.ZipFile(io.BytesIO(self.data))
        except zipfile.BadZipFile as exc:
            raise EvidenceError(f"not a zip archive ({exc})") from None
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES or sum(i.file_size for i in infos) > MAX_TOTAL_BYTES:
            raise EvidenceError("the archive is too large to be an evidence package")
        for info in infos:
            name = info.filename
            if name.startswith("/") or ".." in name.split("/") or "\\" in name:
                raise EvidenceError(f"unsafe file name in the archive: {name!r}")
            if name in self.files:
                raise EvidenceError(f"{name}: appears twice in the archive")
            try:
                self.files[name] = archive.read(info)
            except (zipfile.BadZipFile, OSError, ValueError) as exc:
                raise EvidenceError(f"{name}: cannot be read ({exc})") from None
        if MANIFEST not in self.files or SIGNATURE not in self.files:
            raise EvidenceError(f"{MANIFEST} or {SIGNATURE} is missing")
        try:
            self.manifest = json.loads(self.files[MANIFEST])
        except ValueError:
            raise EvidenceError(f"{MANIFEST}: not valid JSON") from None
        if self.manifest.get("format") != FORMAT:
            raise EvidenceError(f"{MANIFEST}: unknown format {self.manifest.get('format')!r}")
        return f"{len(self.files)} files"

    def _certificate(self, name: str) -> x509.Certificate:
        try:
            return x509.load_pem_x509_certificate(self.files[name])
        except (KeyError, ValueError):
            raise EvidenceError(f"{name}: missing or not a certificate") from None

    def check_signature(self) -> str:
        root, seal = self._certificate(ROOT_PEM), self._certificate(SEAL_PEM)
        self.fingerprint = root.fingerprint(hashes.SHA256()).hex(":").upper()
        if not self._chains_to(seal, root):
            raise EvidenceError(f"{SEAL_PEM}: not issued by the package's root CA")
        if not verify_detached(seal, self.files[MANIFEST], self.files[SIGNATURE]):
            raise EvidenceError(f"{SIGNATURE}: not a valid signature of {MANIFEST} by the "
                                "platform seal")
        return f"signed by {seal.subject.rfc4514_string()}"

    def _chains_to(self, certificate: x509.Certificate, root: x509.Certificate) -> bool:
        """Issued by ``root`` directly or through one CA certificate of the package."""
        candidates = [root] + [self._certificate(name) for name in sorted(self.files)
                               if name.startswith("certificates/") and name.endswith("-ca.pem")
                               and name != ROOT_PEM]
        for issuer in candidates:
            try:
                certificate.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature):
                continue
            if issuer is root:
                return True
            try:
                issuer.verify_directly_issued_by(root)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return True
        return False

    def check_files(self) -> str:
        listed: dict[str, str] = self.manifest.get("files") or {}
        for name, expected in sorted(listed.items()):
            if name not in self.files:
                raise EvidenceError(f"{name}: listed in the manifest but missing")
            if hashlib.sha256(self.files[name]).hexdigest() != expected:
                raise EvidenceError(f"{name}: its SHA-256 does not match the manifest "
                                    "(the file was altered)")
        extra = sorted(set(self.files) - set(listed) - {MANIFEST, SIGNATURE})
        if extra:
            raise EvidenceError(f"{extra[0]}: in the archive but not in the manifest")
        return f"{len(listed)} files match"

    def _trust(self) -> TrustSpec:
        crls = tuple(data for name, data in sorted(self.files.items())
                     if name.startswith("revocation/") and name.endswith(".crl"))
        return TrustSpec(roots=(self._certificate(ROOT_PEM),), crls=crls)

    def _verify(self, name: str) -> str:
        report = verify_pdf(self.files[name], self._trust())
        if report.verdict is not Verdict.VALID:
            reasons = "; ".join(s.reason for s in report.signatures if s.reason)
            raise EvidenceError(f"{name}: {report.verdict.value}"
                                f"{' — ' + reasons if reasons else ''}")
        return f"valid, {len(report.signatures)} signature(s)"

    def check_contract_pdf(self) -> str:
        if CONTRACT_PDF not in self.files:
            raise EvidenceError(f"{CONTRACT_PDF} is missing")
        return self._verify(CONTRACT_PDF)

    def check_certificate_pdf(self) -> str:
        if CERTIFICATE_PDF not in self.files:
            return "not part of this package"
        return self._verify(CERTIFICATE_PDF)

    def check_chain(self) -> str:
        try:
            self.events = [json.loads(line) for line in
                           self.files[EVENTS].decode().splitlines() if line.strip()]
        except (KeyError, ValueError, UnicodeDecodeError):
            raise EvidenceError(f"{EVENTS}: missing or not JSON lines") from None
        head = self.manifest.get("audit_head") or {}
        previous: dict[str, Any] | None = None
        full = 0
        for event in self.events:
            seq = event.get("seq")
            if previous is not None and seq != previous["seq"] + 1:
                raise EvidenceError(f"{EVENTS}: event {seq} does not follow {previous['seq']}")
            if previous is not None and event.get("prev_hash") != previous["hash"]:
                raise EvidenceError(f"{EVENTS}: event {seq} does not link to event "
                                    f"{previous['seq']}")
            if previous is None and seq == 1 and event.get("prev_hash") != GENESIS:
                raise EvidenceError(f"{EVENTS}: the first event does not start the chain")
            if not event.get("redacted"):
                fields = {k: v for k, v in event.items() if k != "hash"}
                if hash_fields(fields) != event.get("hash"):
                    raise EvidenceError(f"{EVENTS}: event {seq} ({event.get('kind')}) does not "
                                        "match its hash (it was altered)")
                full += 1
            previous = event
        if previous is None or previous["seq"] != head.get("seq") or \
                previous["hash"] != head.get("hash"):
            raise EvidenceError(f"{EVENTS}: the chain does not end at the recorded head")
        return f"{full} contract events, chain intact up to head {head.get('seq')}"

    def check_document_hashes(self) -> str:
        revisions = revision_hashes(self.files[CONTRACT_PDF])
        for version in self.manifest.get("versions") or []:
            if version.get("kind") in ("certified", "signed", "sealed") and \
                    version.get("sha256") not in revisions:
                raise EvidenceError(f"{MANIFEST}: version {version.get('number')} "
                                    f"({version.get('kind')}) is not a revision of "
                                    f"{CONTRACT_PDF}")
        checked = 0
        for event in self.events:
            key = DOCUMENT_EVENTS.get(str(event.get("kind")))
            digest = (event.get("data") or {}).get(key) if key else None
            if digest is None:
                continue
            if digest not in revisions:
                raise EvidenceError(f"{EVENTS}: event {event.get('seq')} ({event.get('kind')}) "
                                    f"records a document hash that is not a revision of "
                                    f"{CONTRACT_PDF}")
            checked += 1
        if not checked:
            raise EvidenceError(f"{EVENTS}: no event records a document hash")
        return f"{checked} recorded document hashes are revisions of {CONTRACT_PDF}"


_EOF = re.compile(rb"%%EOF(\r\n|\r|\n)?")


def revision_hashes(pdf: bytes) -> set[str]:
    """SHA-256 of every prefix of ``pdf`` that ends a revision (after ``%%EOF`` and its
    end-of-line, with or without it: writers differ)."""
    hashes_: set[str] = set()
    for match in _EOF.finditer(pdf):
        for end in {match.start() + 5, match.end()}:
            hashes_.add(hashlib.sha256(pdf[:end]).hexdigest())
    return hashes_
