"""The verifier's answer: plain, frozen data that the CLI, the API and the verify page render.

Nothing here is markup. Strings that come from the PDF (field names, ``/Reason``, ``/Name``,
certificate subjects) are attacker-controlled: they are kept as the plain text they are, stripped
of control and bidirectional-override characters (with them, "invoice\u202efdp.exe" displays
as "invoiceexe.pdf") and capped in length. Escaping for HTML is the job of the
page that shows them, exactly once.

Revision numbers are 1-based ("revision 1" is the file as first written), like the text in
``changes_after``.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from asn1crypto import x509 as asn1_x509
from pyhanko.sign.ades.report import AdESFailure, AdESIndeterminate, AdESSubIndic

__all__ = [
    "VALID_REASON",
    "CertificateSummary",
    "ChainEntry",
    "SignatureKind",
    "SignatureReport",
    "Verdict",
    "VerificationReport",
    "clean_text",
]

_TEXT_LIMIT = 512
# Bidirectional embeddings/overrides/isolates and the implicit marks: they reorder what a reader
# sees without changing the bytes a program compares (the "Trojan Source" trick).
_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_text(value: object, limit: int = _TEXT_LIMIT) -> str:
    """Plain text safe to show anywhere once escaped: no controls, no bidi tricks, bounded."""
    text = value if isinstance(value, str) else str(value)
    kept = "".join(" " if ch in "\t\r\n" else ch for ch in text
                   if ch in "\t\r\n" or (unicodedata.category(ch) != "Cc" and ch not in _BIDI))
    return kept if len(kept) <= limit else kept[: limit - 1] + "…"


class Verdict(StrEnum):
    """Verdicts from best to worst; :meth:`worst` applies security.md's precedence."""

    VALID = "valid"
    MODIFIED = "modified-after-signing"
    INVALID_TRUST = "invalid-trust"
    INVALID_INTEGRITY = "invalid-integrity"
    NO_SIGNATURE = "no-signature"
    NOT_A_PDF = "not-a-pdf"

    @property
    def rank(self) -> int:
        return list(Verdict).index(self)

    @staticmethod
    def worst(verdicts: Iterable[Verdict]) -> Verdict:
        """``not-a-pdf > no-signature > invalid-integrity > invalid-trust > modified > valid``."""
        return max(verdicts, key=lambda verdict: verdict.rank, default=Verdict.VALID)


class SignatureKind(StrEnum):
    APPROVAL = "approval"
    CERTIFICATION = "certification"
    DOCUMENT_TIMESTAMP = "document-timestamp"


@dataclass(frozen=True)
class CertificateSummary:
    """Who a certificate names (the signer, or the TSA of a document timestamp)."""

    common_name: str | None
    email: str | None
    serial: str  # hexadecimal
    subject: str
    issuer: str
    sha256: str  # hexadecimal fingerprint of the DER certificate

    @classmethod
    def of(cls, cert: asn1_x509.Certificate) -> CertificateSummary:
        subject = cert.subject.native
        email = subject.get("email_address")
        for name in cert.subject_alt_name_value or ():
            if email is None and name.name == "rfc822_name":
                email = name.native
        common_name = subject.get("common_name")
        return cls(common_name=None if common_name is None else clean_text(_first(common_name)),
                   email=None if email is None else clean_text(_first(email)),
                   serial=format(cert.serial_number, "x"),
                   subject=clean_text(cert.subject.human_friendly),
                   issuer=clean_text(cert.issuer.human_friendly), sha256=cert.sha256.hex())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CertificateSummary:
        return cls(common_name=_opt_str(data.get("common_name")), email=_opt_str(data.get("email")),
                   serial=str(data["serial"]), subject=str(data["subject"]),
                   issuer=str(data["issuer"]), sha256=str(data["sha256"]))


@dataclass(frozen=True)
class ChainEntry:
    subject: str
    sha256: str

    @classmethod
    def of(cls, cert: asn1_x509.Certificate) -> ChainEntry:
        return cls(subject=clean_text(cert.subject.human_friendly), sha256=cert.sha256.hex())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChainEntry:
        return cls(subject=str(data["subject"]), sha256=str(data["sha256"]))


@dataclass(frozen=True)
class SignatureReport:
    """One signature or document timestamp, judged on its own.

    ``chain`` runs from the signer to the configured trust anchor when ``chain_trusted``;
    otherwise it lists the certificates the signature itself carried. ``validated_at`` is the
    moment the certificates were checked: the time a valid timestamp proves (point of existence)
    or the verification moment. ``changes_after`` lists what later revisions changed.
    """

    field_name: str
    kind: SignatureKind
    verdict: Verdict
    reason: str
    signer: CertificateSummary | None = None
    chain: tuple[ChainEntry, ...] = ()
    chain_trusted: bool = False
    claimed_time: datetime | None = None
    timestamp_time: datetime | None = None
    timestamp_proven: bool = False
    tsa: str | None = None
    validated_at: datetime | None = None
    signed_revision: int | None = None
    total_revisions: int = 0
    covers_whole_file: bool = False
    docmdp: int | None = None
    changes_after: tuple[str, ...] = ()
    stated_name: str | None = None
    stated_reason: str | None = None
    stated_location: str | None = None
    details: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {key: _jsonable(value) for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignatureReport:
        signer = data.get("signer")
        return cls(
            field_name=str(data["field_name"]), kind=SignatureKind(data["kind"]),
            verdict=Verdict(data["verdict"]), reason=str(data["reason"]),
            signer=CertificateSummary.from_dict(signer) if isinstance(signer, Mapping) else None,
            chain=tuple(ChainEntry.from_dict(entry) for entry in data.get("chain") or ()),
            chain_trusted=bool(data.get("chain_trusted")),
            claimed_time=_time(data.get("claimed_time")),
            timestamp_time=_time(data.get("timestamp_time")),
            timestamp_proven=bool(data.get("timestamp_proven")), tsa=_opt_str(data.get("tsa")),
            validated_at=_time(data.get("validated_at")),
            signed_revision=_opt_int(data.get("signed_revision")),
            total_revisions=int(data.get("total_revisions") or 0),
            covers_whole_file=bool(data.get("covers_whole_file")),
            docmdp=_opt_int(data.get("docmdp")),
            changes_after=_strings(data.get("changes_after")),
            stated_name=_opt_str(data.get("stated_name")),
            stated_reason=_opt_str(data.get("stated_reason")),
            stated_location=_opt_str(data.get("stated_location")),
            details=_strings(data.get("details")))


@dataclass(frozen=True)
class VerificationReport:
    """The whole file: the worst signature's verdict, every signature, and file-level notes."""

    verdict: Verdict
    signatures: tuple[SignatureReport, ...]
    sha256: str
    size: int
    revisions: int
    messages: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return self.verdict is Verdict.VALID

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict.value,
                "signatures": [signature.to_dict() for signature in self.signatures],
                "sha256": self.sha256, "size": self.size, "revisions": self.revisions,
                "messages": list(self.messages)}

    def to_json(self, *, indent: int | None = 2) -> str:
        """For ``econtract verify --json``: UTF-8 text, names in Chinese stay readable."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VerificationReport:
        return cls(verdict=Verdict(data["verdict"]),
                   signatures=tuple(SignatureReport.from_dict(item)
                                    for item in data.get("signatures") or ()),
                   sha256=str(data["sha256"]), size=int(data["size"]),
                   revisions=int(data.get("revisions") or 0),
                   messages=_strings(data.get("messages")))


# --- wording -------------------------------------------------------------------------------------

VALID_REASON = {
    SignatureKind.APPROVAL: "The signature is intact and trusted; later changes are permitted.",
    SignatureKind.CERTIFICATION: "The certification is intact and trusted; later changes stay "
                                 "within its permissions.",
    SignatureKind.DOCUMENT_TIMESTAMP: "The document timestamp is intact and trusted.",
}
# ETSI EN 319 102-1 sub-indications (as pyHanko reports them) in words for the reader.
_INDICATIONS: dict[AdESSubIndic, str] = {
    AdESIndeterminate.NO_CERTIFICATE_CHAIN_FOUND: "no chain to a configured trust anchor",
    AdESIndeterminate.CERTIFICATE_CHAIN_GENERAL_FAILURE:
        "its chain could not be validated (for example, no revocation data)",
    AdESIndeterminate.REVOKED_NO_POE: "it was revoked",
    AdESIndeterminate.REVOCATION_OUT_OF_BOUNDS_NO_POE: "no current revocation data",
    AdESIndeterminate.TRY_LATER: "no current revocation data",
    AdESIndeterminate.CHAIN_CONSTRAINTS_FAILURE:
        "its chain breaks a constraint (key usage, path length or name constraints)",
    AdESIndeterminate.SIG_CONSTRAINTS_FAILURE: "its key usage does not allow signing",
}
TIME_FAILURES = frozenset({
    AdESIndeterminate.OUT_OF_BOUNDS_NO_POE, AdESIndeterminate.OUT_OF_BOUNDS_NOT_REVOKED,
    AdESIndeterminate.NOT_YET_VALID, AdESFailure.NOT_YET_VALID, AdESIndeterminate.EXPIRED})


def indication_text(indication: AdESSubIndic | None) -> str:
    if indication is None:
        return "no chain to a configured trust anchor"
    default = str(getattr(indication, "name", indication)).lower().replace("_", " ")
    return _INDICATIONS.get(indication, default)


def _first(value: object) -> object:
    return value[0] if isinstance(value, list) and value else value


def _jsonable(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _strings(values: Sequence[Any] | None) -> tuple[str, ...]:
    return tuple(str(value) for value in values or ())
