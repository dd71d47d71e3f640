"""Verify the signatures of a PDF: bytes in, a :class:`VerificationReport` out, never a raise.

pyHanko 0.38 does the cryptography, path building and incremental-update diffing. On top of it
this module and :mod:`econtract.signing._verify_rules` apply security.md's rules 1–7: strict
parsing or ``not-a-pdf``; our own byte-range shape check; MD5/SHA-1 refused; trust only to the
configured anchors, at the time a valid timestamp proves (point of existence); revocation from
the DSS and the supplied CRLs/OCSPs, never the network; only LTA material after the newest
signature; certification first; DocMDP and field locks re-checked against our own change list.

Decisions: a signature field whose /V is gone or ``null`` is no signature (``no-signature`` if
none is left), any other damaged signature dictionary is ``invalid-integrity``. A file that
cannot be read as a whole is read up to its last complete revision; the bytes after it make
every signature ``modified-after-signing``, and with no signed complete revision the file is
``not-a-pdf``. Signatures that only older revisions still hold (a /Root swap, a deleted field)
are judged too, as ``modified-after-signing`` at best.

Hostile input belongs in :func:`verify_isolated` (a child process with memory and CPU limits);
:func:`verify_pdf` is for our own output or for use inside that child.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
from collections.abc import Coroutine
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto.x509 import Certificate
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESIndeterminate
from pyhanko.sign.diff_analysis import (
    DEFAULT_DIFF_POLICY,
    DiffResult,
    ModificationLevel,
    SuspiciousModification,
)
from pyhanko.sign.diff_analysis.form_rules_api import FormUpdatingRule
from pyhanko.sign.diff_analysis.policies import StandardDiffPolicy
from pyhanko.sign.diff_analysis.rules.form_field_rules import (
    GenericFieldModificationRule,
    SigFieldCreationRule,
    SigFieldModificationRule,
)
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.validation import (
    EmbeddedPdfSignature,
    PdfSignatureStatus,
    SignatureCoverageLevel,
    async_validate_pdf_signature,
    async_validate_pdf_timestamp,
)
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko_certvalidator import ValidationContext

from econtract.sandbox import SandboxError, run_isolated
from econtract.signing import _verify_rules as rules
from econtract.signing._aio import run_sync
from econtract.signing._verify_rules import Change, deref
from econtract.signing.report import (
    TIME_FAILURES,
    VALID_REASON,
    CertificateSummary,
    ChainEntry,
    SignatureKind,
    SignatureReport,
    Verdict,
    VerificationReport,
    clean_text,
    indication_text,
)

__all__ = ["TrustSpec", "encode_payload", "verify_isolated", "verify_payload", "verify_pdf"]

log = logging.getLogger(__name__)
T = TypeVar("T")

TARGET = "econtract.signing.verify:verify_payload"
MAX_PDF_BYTES = 256 * 1024 * 1024
MAX_SIGNATURES = 100
MAX_REVISIONS = 1_000
_MAGIC = b"ECVERIFY1\n"
_WEAK = frozenset({"md2", "md5", "sha1"})
_TOO_COMPLEX = "The file is too complex or damaged to be verified."
# Either key usage signs documents (Acrobat accepts both); a TSA- or CA-only key does not.
KEY_USAGE = KeyUsageConstraints(key_usage={"digital_signature", "non_repudiation"},
                                match_all_key_usages=False)
# pyHanko's default policy, except that in-place rewrites of an existing appearance stream are
# not whitelisted for ordinary form fields (pitfall 2: an identical rewrite by a later document
# timestamp then counts as "no change", not as a change to a field locked by a seal).
DIFF_POLICY = StandardDiffPolicy(
    global_rules=DEFAULT_DIFF_POLICY.global_rules,
    form_rule=FormUpdatingRule(field_rules=[
        SigFieldCreationRule(), SigFieldModificationRule(),  # type: ignore[no-untyped-call]
        GenericFieldModificationRule(allow_in_place_appearance_stream_changes=False)]))


@dataclass(frozen=True)
class TrustSpec:
    """What the verifier may trust: anchors, revocation data we hold, and the verification time.

    ``roots`` are the only trust anchors (roots embedded in a signature never are). ``crls`` and
    ``ocsps`` are DER blobs used together with those found in the document's DSS. ``moment``
    ``None`` means now; certificates are checked at the time a valid timestamp proves, which is
    never later than ``moment``. A naive ``moment`` is read as UTC.
    """

    roots: tuple[x509.Certificate, ...]
    crls: tuple[bytes, ...] = ()
    ocsps: tuple[bytes, ...] = ()
    moment: datetime | None = None


def verify_pdf(data: bytes, trust: TrustSpec) -> VerificationReport:
    """Judge every signature of ``data``; hostile input becomes a verdict, never an exception."""
    digest = hashlib.sha256(data).hexdigest()
    try:
        return _verify(data, trust, digest)
    except (MemoryError, RecursionError):  # bombs and loops; the stack is unwound by now
        return _refused(data, digest, _TOO_COMPLEX)
    except Exception:  # any parser failure on hostile bytes is a refusal, not a crash
        log.warning("verification failed on a %d-byte file", len(data), exc_info=True)
        return _refused(data, digest, "The file is not a readable PDF.")


def verify_isolated(data: bytes, trust: TrustSpec, *, timeout: float = 30,
                    memory_mb: int = 1024) -> VerificationReport:
    """:func:`verify_pdf` in a sandboxed child; bombs and loops end as ``not-a-pdf``."""
    try:
        result = run_isolated(TARGET, encode_payload(data, trust), timeout=timeout,
                              memory_mb=memory_mb)
    except SandboxError as exc:
        log.warning("sandboxed verification failed: %s", exc.reason)
        return _refused(data, hashlib.sha256(data).hexdigest(), _TOO_COMPLEX)
    return VerificationReport.from_dict(result)


def encode_payload(data: bytes, trust: TrustSpec) -> bytes:
    """The sandbox gets one byte string: magic, header length, JSON trust header, the PDF."""
    header = json.dumps({
        "roots": [base64.b64encode(root.public_bytes(Encoding.DER)).decode() for root in
                  trust.roots],
        "crls": [base64.b64encode(blob).decode() for blob in trust.crls],
        "ocsps": [base64.b64encode(blob).decode() for blob in trust.ocsps],
        "moment": None if trust.moment is None else trust.moment.isoformat(),
    }).encode()
    return _MAGIC + len(header).to_bytes(4, "big") + header + data


def verify_payload(payload: bytes) -> dict[str, Any]:
    """Sandbox target: decode :func:`encode_payload`'s output, verify, return the report dict."""
    if not payload.startswith(_MAGIC):
        raise ValueError("not a verification payload")
    start = len(_MAGIC) + 4
    end = start + int.from_bytes(payload[len(_MAGIC):start], "big")
    header = json.loads(payload[start:end])
    moment = header.get("moment")
    trust = TrustSpec(
        roots=tuple(x509.load_der_x509_certificate(base64.b64decode(r)) for r in header["roots"]),
        crls=tuple(base64.b64decode(blob) for blob in header["crls"]),
        ocsps=tuple(base64.b64decode(blob) for blob in header["ocsps"]),
        moment=None if moment is None else datetime.fromisoformat(moment))
    return verify_pdf(payload[end:], trust).to_dict()


# --- the pipeline ---------------------------------------------------------------------------------


def _verify(data: bytes, trust: TrustSpec, digest: str) -> VerificationReport:
    problem = _precheck(data)
    if problem is not None:
        return _refused(data, digest, problem)
    opened = _open(data)
    if opened is None:
        return _refused(data, digest, "The file is damaged or incomplete: no complete PDF "
                                      "revision could be read.")
    reader, length, tail = opened
    if reader.encrypted:
        return _refused(data, digest, "Encrypted PDFs cannot be verified.")
    revisions = reader.xrefs.total_revisions
    if revisions > MAX_REVISIONS:
        return _refused(data, digest, _TOO_COMPLEX)
    entries, complete = _signature_fields(reader)
    messages = [] if tail is None else [tail]
    if not complete:
        messages.append("The form that holds the signatures is damaged; some signatures may "
                        "not have been found.")
    if not entries:
        if length < len(data) and complete:  # only an unsigned prefix could be read
            return _refused(data, digest, "The file is damaged or incomplete.")
        messages.append("The PDF contains no signature.")
        verdict = Verdict.NO_SIGNATURE if complete else Verdict.INVALID_INTEGRITY
        return VerificationReport(verdict, (), digest, len(data), revisions, tuple(messages))
    document = _Document(data[:length], reader, trust, tail)
    reports = run_sync(document.validate(entries))
    verdicts = [report.verdict for report in reports]
    if not complete:
        verdicts.append(Verdict.INVALID_INTEGRITY)
    return VerificationReport(Verdict.worst(verdicts), tuple(reports), digest, len(data),
                              revisions, tuple(messages))


def _precheck(data: bytes) -> str | None:
    if not data:
        return "The file is empty."
    if not data.startswith(b"%PDF-"):
        return "The file is not a PDF (it does not start with %PDF-)."
    if len(data) > MAX_PDF_BYTES:
        return f"The file is larger than {MAX_PDF_BYTES // 2**20} MiB."
    return None


def _open(data: bytes) -> tuple[PdfFileReader, int, str | None] | None:
    """Read strictly. If the whole file fails, read its longest complete prefix instead: the
    bytes after it (an update without a cross-reference section, a truncated last revision)
    then make every signature ``modified-after-signing``; with no complete prefix, refuse."""
    reader = _strict_reader(data)
    if reader is not None:
        return reader, len(data), rules.tail_problem(data, reader)
    for end in rules.complete_prefixes(data):
        if end < len(data) and (reader := _strict_reader(data[:end])) is not None:
            return reader, end, (f"The file continues after its last complete revision: "
                                 f"{len(data) - end} bytes that are not a proper incremental "
                                 "update (appended without a cross-reference section, or cut).")
    return None


def _strict_reader(data: bytes) -> PdfFileReader | None:
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=True)
        pages = reader.root["/Pages"]
    except (MemoryError, RecursionError):
        raise
    except Exception:  # pyHanko raises many types on malformed input
        return None
    return reader if isinstance(pages, generic.DictionaryObject) else None


def _signature_fields(reader: PdfFileReader) -> tuple[list[Entry], bool]:
    """Every filled signature field, each judged later on its own (pitfall 5: one forged
    signature must not hide the others), then signatures that only older revisions still hold
    (a later /Root swap or a deleted field hides a signature: it must not read "no-signature").
    An empty field or a ``null`` value is no signature. Returns the entries and whether the
    form could be read completely."""
    entries: list[Entry] = []
    seen: set[tuple[int, int]] = set()
    complete = True
    newest = reader.xrefs.total_revisions - 1
    for revision in range(newest, -1, -1):
        handler = reader if revision == newest else reader.get_historical_resolver(revision)
        try:
            for name, _, field_ref in enumerate_sig_fields(handler, filled_status=None):
                entry = _entry(clean_text(name, 200), field_ref, seen, current=handler is reader)
                if entry is not None:
                    entries.append(entry)
                if len(entries) >= MAX_SIGNATURES:
                    return entries, False
        except (MemoryError, RecursionError):
            raise
        except Exception:
            complete = False
    return entries, complete


def _entry(name: str, field_ref: generic.IndirectObject, seen: set[tuple[int, int]], *,
           current: bool) -> Entry | None:
    field = deref(field_ref)
    value = field.raw_get("/V") if "/V" in field else None
    if isinstance(value, generic.IndirectObject):
        key = (value.reference.idnum, value.reference.generation)
        if key in seen:
            return None
        seen.add(key)
        try:
            if isinstance(deref(value), generic.NullObject):
                return None
        except (MemoryError, RecursionError):
            raise
        except Exception:  # a dictionary too broken to read is still a (broken) signature
            pass
    elif value is None or isinstance(value, generic.NullObject) or not current:
        return None
    return Entry(name, field_ref, field, value, current)


def _refused(data: bytes, digest: str, message: str) -> VerificationReport:
    return VerificationReport(Verdict.NOT_A_PDF, (), digest, len(data), 0, (message,))


def _resolved(value: generic.PdfObject) -> generic.DictionaryObject | None:
    try:
        resolved = deref(value)
    except (MemoryError, RecursionError):
        raise
    except Exception:
        return None
    return resolved if isinstance(resolved, generic.DictionaryObject) else None


# --- one document, many signatures ---------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """A filled signature field; ``value`` is its raw /V."""

    name: str
    field_ref: generic.IndirectObject
    field: generic.DictionaryObject
    value: generic.PdfObject
    current: bool  # False: only an older revision still holds this signature


class Outcome:
    """One signature being judged: findings accumulate, the worst verdict wins."""

    def __init__(self, entry: Entry) -> None:
        self.entry = entry
        self.embedded: EmbeddedPdfSignature | None = None
        self.kind = SignatureKind.APPROVAL
        self.revision: int | None = None  # pyHanko's 0-based index of the signed revision
        self.level: ModificationLevel | None = None  # pyHanko's verdict on later revisions
        self.lock: int | None = None  # DocMDP P of a certification, or the field /Lock's P
        self.findings: list[tuple[Verdict, str]] = []
        self.facts: dict[str, Any] = {}

    @property
    def usable(self) -> bool:
        """Readable, and nothing but later changes against it so far."""
        return self.embedded is not None and self.revision is not None and all(
            verdict is Verdict.MODIFIED for verdict, _ in self.findings)

    def add(self, verdict: Verdict, message: str, *, first: bool = False) -> None:
        """Record a finding; ``first`` puts a specific message ahead of generic ones."""
        finding = (verdict, clean_text(message, 400))
        self.findings.insert(0 if first else len(self.findings), finding)

    def read(self, sig: generic.DictionaryObject, embedded: EmbeddedPdfSignature) -> None:
        for key, fact in (("/Name", "stated_name"), ("/Reason", "stated_reason"),
                          ("/Location", "stated_location")):
            with suppress(Exception):
                if isinstance(value := deref(sig.raw_get(key)), str):
                    self.facts[fact] = clean_text(value, 256)
        self.embedded, self.revision = embedded, embedded.signed_revision
        level = embedded.docmdp_level
        self.lock = None if level is None else int(level.value)
        with suppress(Exception):  # a malformed /M or signingTime is simply not reported
            self.facts["claimed_time"] = embedded.self_reported_timestamp

    def embedded_certificates(self) -> None:
        """Signer and chain as the CMS carries them, where validation did not name them (it
        failed, or the chain is not trusted). Finding the signer's certificate among the
        embedded ones costs a few ms of name matching, which validation does anyway: a valid
        signature takes both from its validation instead."""
        if self.embedded is None or ("signer" in self.facts and "chain" in self.facts):
            return
        with suppress(Exception):
            certs = [self.embedded.signer_cert, *self.embedded.other_embedded_certs]
            self.facts.setdefault("signer", CertificateSummary.of(certs[0]))
            self.facts.setdefault("chain", tuple(ChainEntry.of(cert) for cert in certs))

    def timing(self, stamp: Any, validated_at: datetime) -> None:
        self.facts["validated_at"] = validated_at
        if stamp is not None:
            self.facts["timestamp_time"] = stamp.timestamp
            self.facts["tsa"] = CertificateSummary.of(stamp.signing_cert).common_name
            self.facts["timestamp_proven"] = bool(stamp.intact and stamp.valid and stamp.trusted)

    def judge_crypto(self, status: Any, what: str,
                     crls: rules.HeldCrls) -> None:
        """Rule 3 (integrity, algorithms) before rule 4 (trust only to configured anchors)."""
        if not status.intact:
            self.add(Verdict.INVALID_INTEGRITY, f"The bytes covered by the {what} were changed.")
        elif not status.valid:
            self.add(Verdict.INVALID_INTEGRITY, f"The {what} value does not verify.")
        path = status.validation_path
        if status.trust_problem_indic in (AdESIndeterminate.CRYPTO_CONSTRAINTS_FAILURE,
                                          AdESIndeterminate.CRYPTO_CONSTRAINTS_FAILURE_NO_POE):
            self.add(Verdict.INVALID_INTEGRITY, f"The {what} uses an algorithm that is not "
                                                "allowed.")
        elif status.revoked:
            when = status.revocation_details.revocation_date.isoformat()
            self.add(Verdict.INVALID_TRUST, f"The {what}'s certificate was revoked on {when}.")
        elif not status.trusted or path is None:
            self.add(Verdict.INVALID_TRUST, f"The {what}'s certificate is not trusted: "
                                            f"{self.distrust(status)}.")
        else:
            certs = list(path.iter_certs(include_root=True))
            self.facts["chain"] = tuple(ChainEntry.of(cert) for cert in reversed(certs))
            self.facts["chain_trusted"] = True
            # pitfall 3: supplied CRLs count even for certificates without a distribution point
            revoked = crls.revoked(certs, self.facts["validated_at"])
            if revoked is not None:
                self.add(Verdict.INVALID_TRUST, revoked)

    def judge_stamp(self, stamp: Any) -> None:
        if stamp is not None and not (stamp.intact and stamp.valid):
            self.add(Verdict.INVALID_INTEGRITY, "The signature's timestamp token is damaged.")
        elif stamp is not None and not stamp.trusted:
            self.add(Verdict.INVALID_TRUST, "The signature's timestamp is not from a trusted "
                                            f"authority: {self.distrust(stamp)}.")

    def distrust(self, status: Any) -> str:
        if status.signing_cert.self_signed != "no":
            return "it is self-signed"
        when = self.facts.get("validated_at")
        if status.trust_problem_indic in TIME_FAILURES and when is not None:
            proof = "the time a timestamp proves" if self.facts.get("timestamp_proven") else \
                "the verification time (no valid timestamp proves an earlier signing)"
            return f"it was not valid at {proof}, {when:%Y-%m-%d %H:%M} UTC"
        return indication_text(status.trust_problem_indic)

    def judge_coverage(self, coverage: SignatureCoverageLevel | None, diff: object,
                       docmdp_ok: bool | None) -> None:
        self.facts["covers_whole_file"] = coverage == SignatureCoverageLevel.ENTIRE_FILE
        if coverage is None or coverage < SignatureCoverageLevel.ENTIRE_REVISION:
            self.add(Verdict.INVALID_INTEGRITY, "The signature does not cover its whole revision.")
        # pyHanko's message names objects and 0-based revisions; our change list says it better.
        if isinstance(diff, SuspiciousModification):
            self.add(Verdict.MODIFIED, "Later revisions make changes that pyHanko's difference "
                                       "analysis does not permit.")
        elif isinstance(diff, DiffResult):
            self.level = diff.modification_level
            if docmdp_ok is False:
                self.add(Verdict.MODIFIED, "Later revisions exceed what this signature permits.")

    def report(self, total: int) -> SignatureReport:
        self.embedded_certificates()
        verdict = Verdict.worst(verdict for verdict, _ in self.findings)
        messages = [m for v, m in self.findings if v is verdict] or [VALID_REASON[self.kind]]
        others = tuple(m for v, m in self.findings if v is not verdict)
        return SignatureReport(
            field_name=self.entry.name, kind=self.kind, verdict=verdict, reason=messages[0],
            signed_revision=None if self.revision is None else self.revision + 1,
            total_revisions=total, details=(*messages[1:], *others),
            docmdp=self.lock if self.kind is SignatureKind.CERTIFICATION else None, **self.facts)


class _Document:
    """Judges every signature of one file against the same trust, revocation data and clock."""

    def __init__(self, data: bytes, reader: PdfFileReader, trust: TrustSpec,
                 tail: str | None) -> None:
        self.data, self.reader, self.tail = data, reader, tail
        moment = trust.moment or datetime.now(UTC)
        self.moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        self.roots = [Certificate.load(root.public_bytes(Encoding.DER)) for root in trust.roots]
        certs, crls, ocsps = rules.read_dss(reader)
        self.certs = [Certificate.load(blob) for blob in rules.well_formed(certs, "cert")]
        self.crls = rules.well_formed([*trust.crls, *crls], "crl")
        self.ocsps = rules.well_formed([*trust.ocsps, *ocsps], "ocsp")
        self.held_crls = rules.HeldCrls(self.crls)
        # What pyHanko would load from the DER in every context (two per signature), loaded
        # once: asn1crypto keeps what it parses on the object, so the contexts share that work.
        self.asn1_crls = [asn1_crl.CertificateList.load(blob) for blob in self.crls]
        self.asn1_ocsps = [asn1_ocsp.OCSPResponse.load(blob) for blob in self.ocsps]
        self.proofs: list[tuple[int, datetime]] = []  # (revision, time) of proven doc timestamps
        self.changes: dict[int, list[Change]] = {}

    async def validate(self, entries: list[Entry]) -> list[SignatureReport]:
        outcomes = sorted((self.open(entry) for entry in entries),
                          key=lambda o: -1 if o.revision is None else o.revision)
        # Newest document timestamp first: each proves when the revisions before it existed.
        for outcome in reversed(outcomes):
            if outcome.usable and outcome.kind is SignatureKind.DOCUMENT_TIMESTAMP:
                await self.guarded(outcome, self.judge_timestamp(outcome))
        for outcome in outcomes:
            if outcome.usable and outcome.kind is not SignatureKind.DOCUMENT_TIMESTAMP:
                await self.guarded(outcome, self.judge_signature(outcome))
        self.document_rules(outcomes)
        return [outcome.report(self.reader.xrefs.total_revisions) for outcome in outcomes]

    @staticmethod
    async def guarded(outcome: Outcome, judging: Coroutine[Any, Any, None]) -> None:
        """pyHanko raises on some forgeries (unknown /SubFilter, signingCertificateV2 mismatch,
        malformed CMS): that signature fails on its own, the others are still judged."""
        try:
            await judging
        except (MemoryError, RecursionError):
            raise
        except Exception as exc:
            outcome.add(Verdict.INVALID_INTEGRITY,
                        f"The signature cannot be validated ({type(exc).__name__}).")

    def open(self, entry: Entry) -> Outcome:
        outcome = Outcome(entry)
        if not entry.current:
            outcome.add(Verdict.MODIFIED, "A later revision removed this signature from the "
                                          "document (field deleted or document root replaced).")
        value, sig = entry.value, _resolved(entry.value)
        if not isinstance(value, generic.IndirectObject) or sig is None:
            outcome.add(Verdict.INVALID_INTEGRITY,
                        "The signature field holds no readable signature dictionary.")
            return outcome
        outcome.kind = rules.signature_kind(self.reader, value.reference, sig)
        with suppress(KeyError):  # where it sits, even if it cannot be read
            outcome.revision = self.reader.xrefs.get_last_change(value.reference)
        try:
            embedded = EmbeddedPdfSignature(self.reader, entry.field, entry.name)
            outcome.read(sig, embedded)
            problems = [rules.byte_range_problem(
                self.data, embedded.byte_range, embedded.pkcs7_content,
                rules.object_offset(self.reader, value.reference),
                self.reader.xrefs.get_startxref_for_revision(embedded.signed_revision)),
                rules.weak_algorithm(embedded.signed_data)]
        except (MemoryError, RecursionError):
            raise
        except Exception as exc:  # USF: /Contents missing, null, zeros, garbage; no /ByteRange
            outcome.add(Verdict.INVALID_INTEGRITY,
                        f"The signature cannot be read ({type(exc).__name__}).")
            return outcome
        for problem in problems:
            if problem is not None:
                outcome.add(Verdict.INVALID_INTEGRITY, problem)
        return outcome

    def context(self, moment: datetime) -> ValidationContext:
        """A fresh context per check, so certificates one signature carries never help another."""
        return ValidationContext(
            trust_roots=self.roots, other_certs=self.certs, crls=self.asn1_crls,
            ocsps=self.asn1_ocsps,
            moment=moment, allow_fetching=False, revocation_mode="hard-fail",
            retroactive_revinfo=True, weak_hash_algos=_WEAK)

    def proven_time(self, revision: int) -> datetime:
        """Point of existence of a revision: the earliest later document timestamp that holds."""
        return min([self.moment, *(at for rev, at in self.proofs if rev > revision)])

    async def judge_timestamp(self, outcome: Outcome) -> None:
        assert outcome.embedded is not None and outcome.revision is not None
        at = self.proven_time(outcome.revision)
        status = await async_validate_pdf_timestamp(outcome.embedded, self.context(at),
                                                    DIFF_POLICY)
        outcome.facts["signer"] = CertificateSummary.of(status.signing_cert)
        outcome.timing(status, at)
        outcome.judge_crypto(status, "document timestamp", self.held_crls)
        outcome.judge_coverage(status.coverage, status.diff_result, None)
        outcome.facts["timestamp_proven"] = outcome.usable
        if outcome.usable:
            self.proofs.append((outcome.revision, status.timestamp))

    async def judge_signature(self, outcome: Outcome) -> None:
        assert outcome.embedded is not None and outcome.revision is not None
        proven = self.proven_time(outcome.revision)
        claimed = rules.claimed_timestamp(outcome.embedded)
        # Optimistic: check the signer at the time its timestamp claims; if the token does not
        # hold, check again at the proven time (this second pass only happens on broken files).
        at = min(claimed, proven) if claimed is not None else proven
        status = await self.validate_signature(outcome.embedded, at, proven)
        stamp = status.timestamp_validity
        if at != proven and not (stamp and stamp.intact and stamp.valid and stamp.trusted):
            at = proven
            status = await self.validate_signature(outcome.embedded, at, proven)
            stamp = status.timestamp_validity
        outcome.facts["signer"] = CertificateSummary.of(status.signing_cert)
        outcome.timing(stamp, at)
        outcome.judge_crypto(status, "signature", self.held_crls)
        outcome.judge_stamp(stamp)
        if status.seed_value_constraint_error is not None:
            outcome.add(Verdict.INVALID_INTEGRITY, "The signature breaks its field's seed values.")
        outcome.judge_coverage(status.coverage, status.diff_result, status.docmdp_ok)

    async def validate_signature(self, embedded: EmbeddedPdfSignature, at: datetime,
                                 proven: datetime) -> PdfSignatureStatus:
        return await async_validate_pdf_signature(
            embedded, signer_validation_context=self.context(at),
            ts_validation_context=self.context(proven), diff_policy=DIFF_POLICY,
            key_usage_settings=KEY_USAGE)

    def changes_after(self, revision: int) -> list[Change]:
        found: list[Change] = []
        for later in range(revision + 1, self.reader.xrefs.total_revisions):
            if later not in self.changes:
                self.changes[later] = rules.safe_describe(self.reader, later)
            found.extend(self.changes[later])
        return found

    def document_rules(self, outcomes: list[Outcome]) -> None:
        """Rules 5 and 6 across signatures: certification first, and what may follow each."""
        signed = [o.revision for o in outcomes
                  if o.kind is not SignatureKind.DOCUMENT_TIMESTAMP and o.revision is not None]
        newest, first = max(signed, default=-1), min(signed, default=None)
        certifications = [o for o in outcomes if o.kind is SignatureKind.CERTIFICATION]
        for outcome in certifications:
            if outcome.revision != first or outcome is not certifications[0]:
                outcome.add(Verdict.INVALID_INTEGRITY, "A certification signature must be the "
                                                       "first and only one in the document.")
        for outcome in outcomes:
            if outcome.revision is None:
                continue
            changes = self.changes_after(outcome.revision)
            outcome.facts["changes_after"] = tuple(str(change) for change in changes[:50])
            if self.tail is not None:
                outcome.add(Verdict.MODIFIED, self.tail)
            problem = rules.changes_problem(
                changes, lock=outcome.lock, newest=outcome.revision >= newest,
                timestamp=outcome.kind is SignatureKind.DOCUMENT_TIMESTAMP, level=outcome.level)
            if problem is not None:
                outcome.add(Verdict.MODIFIED, problem, first=True)
