"""What the verification report says: signers, chains, times, revisions, later changes, JSON,
precedence, plain-data strings, and the sandbox plumbing around :func:`verify_pdf`."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes

from econtract.sandbox import SandboxError
from econtract.signing import verify as verify_module
from econtract.signing.report import (
    SignatureKind,
    SignatureReport,
    Verdict,
    VerificationReport,
    clean_text,
)
from econtract.signing.verify import (
    TrustSpec,
    encode_payload,
    verify_isolated,
    verify_payload,
    verify_pdf,
)
from tests.signing import attacks as at
from tests.signing import verifypki as vp
from tests.signing.attacks import Corpus

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def docs() -> Corpus:
    return at.corpus()


@pytest.fixture(scope="module")
def sealed(docs: Corpus) -> VerificationReport:
    return verify_pdf(docs.sealed, vp.pki().trust())


def test_signers_chains_and_kinds(sealed: VerificationReport) -> None:
    p = vp.pki()
    seal, alice, zhang, stamp = sealed.signatures
    assert [s.kind for s in sealed.signatures] == [
        SignatureKind.CERTIFICATION, SignatureKind.APPROVAL, SignatureKind.APPROVAL,
        SignatureKind.DOCUMENT_TIMESTAMP]
    assert seal.docmdp == 2 and alice.docmdp is None
    assert zhang.signer is not None and zhang.signer.common_name == "张三"
    assert zhang.signer.email == "zhangsan@example.cn"
    assert zhang.signer.serial == format(p.zhang.cert.serial_number, "x")
    assert "Econtract Test Issuing CA" in zhang.signer.issuer
    assert zhang.chain_trusted
    assert [entry.sha256 for entry in zhang.chain] == [
        who.cert.fingerprint(hashes.SHA256()).hex() for who in (p.zhang, p.issuing, p.root)]
    assert "Econtract Test Root CA" in zhang.chain[-1].subject
    assert stamp.signer is not None and stamp.signer.common_name == "Econtract Test TSA"
    assert alice.signer is not None and alice.signer.email == "alice@example.com"


def test_claimed_and_proven_times(sealed: VerificationReport, docs: Corpus) -> None:
    alice = sealed.signatures[1]
    assert alice.claimed_time is not None and alice.timestamp_time is not None
    assert alice.timestamp_proven and alice.tsa == "Econtract Test TSA"
    assert alice.validated_at == alice.timestamp_time  # point of existence, not "now"
    assert abs(alice.claimed_time - alice.timestamp_time) < timedelta(minutes=5)
    moment = vp.NOW + timedelta(days=3)
    untimed = vp.sign(at.text_pdf(), vp.pki().alice, "Alice", timestamp=False)
    report = verify_pdf(untimed, vp.pki().trust(moment=moment)).signatures[0]
    assert report.timestamp_time is None and not report.timestamp_proven and report.tsa is None
    assert report.claimed_time is not None and report.validated_at == moment


def test_revisions_coverage_and_later_changes(sealed: VerificationReport) -> None:
    seal, alice, zhang, stamp = sealed.signatures
    assert sealed.revisions == 9 and {s.total_revisions for s in sealed.signatures} == {9}
    assert [s.signed_revision for s in sealed.signatures] == [2, 3, 4, 8]
    assert not any(s.covers_whole_file for s in sealed.signatures)
    assert "revision 3: signature added in field 'Alice'" in seal.changes_after
    assert "revision 5: validation data (DSS) updated" in zhang.changes_after
    assert any(c.startswith("revision 8: document timestamp added") for c in zhang.changes_after)
    assert stamp.changes_after == ("revision 9: validation data (DSS) updated",)
    assert alice.changes_after[0].startswith("revision 4:")


@pytest.mark.parametrize(("build", "change"), [
    (lambda c: at.change_page_text(c.single), "revision 3: page 1 content changed"),
    (lambda c: at.add_page(c.single), "revision 3: page count changed from 1 to 2"),
    (lambda c: at.add_annotation(c.single), "revision 3: new annotation /FreeText on page 1"),
    (lambda c: at.swap_root(c.shadow), "revision 3: /Root replaced"),
    (lambda c: at.fill_field(c.form_approval, "Company", "X"),
     "revision 3: form field 'Company' value changed"),
    (lambda c: vp.add_fields(c.certified, "Overlay"),
     "revision 3: new visible unsigned signature field 'Overlay'"),
])
def test_later_changes_are_listed_in_words(docs: Corpus, build: object, change: str) -> None:
    report = verify_pdf(build(docs), vp.pki().trust())  # type: ignore[operator]
    assert change in report.signatures[0].changes_after
    assert change in report.signatures[0].reason or report.signatures[0].verdict is not \
        Verdict.VALID


def test_json_shape(sealed: VerificationReport) -> None:
    text = sealed.to_json()
    assert "张三" in text  # not \\u-escaped: the CLI prints readable names
    data = json.loads(text)
    assert data["verdict"] == "valid" and len(data["signatures"]) == 4
    first = data["signatures"][0]
    assert {"field_name", "kind", "verdict", "reason", "signer", "chain", "claimed_time",
            "timestamp_time", "timestamp_proven", "signed_revision", "changes_after"} <= set(first)
    assert first["kind"] == "certification" and first["timestamp_time"].endswith("Z")
    assert VerificationReport.from_dict(data) == sealed


def test_document_verdict_is_the_worst_signature() -> None:
    order = [Verdict.VALID, Verdict.MODIFIED, Verdict.INVALID_TRUST, Verdict.INVALID_INTEGRITY,
             Verdict.NO_SIGNATURE, Verdict.NOT_A_PDF]
    for worse, better in zip(order[1:], order, strict=False):
        assert Verdict.worst([better, worse, better]) is worse
    assert Verdict.worst([]) is Verdict.VALID


def test_precedence_in_a_real_document(docs: Corpus) -> None:
    p = vp.pki()
    data = vp.sign(at.change_page_text(docs.single), p.self_signed, "Evil", issuer=p.self_signed)
    report = verify_pdf(data, p.trust())
    assert [s.verdict for s in report.signatures] == [Verdict.MODIFIED, Verdict.INVALID_TRUST]
    assert report.verdict is Verdict.INVALID_TRUST


def test_attacker_strings_come_back_as_plain_data() -> None:
    p = vp.pki()
    data = vp.sign(at.text_pdf(), p.alice, f"Field{SCRIPT}", reason=SCRIPT, name=SCRIPT)
    report = verify_pdf(data, p.trust())
    signature = report.signatures[0]
    assert report.verdict is Verdict.VALID
    assert signature.stated_reason == SCRIPT and signature.stated_name == SCRIPT
    assert signature.field_name == f"Field{SCRIPT}"
    assert "&lt;" not in report.to_json()  # escaping is the page's job, done exactly once
    assert json.loads(report.to_json())["signatures"][0]["stated_reason"] == SCRIPT


def test_clean_text_drops_controls_and_bidi_overrides() -> None:
    assert clean_text("invoice\u202efdp.exe\x00\x07") == "invoicefdp.exe"
    assert clean_text("a\tb\nc") == "a b c"
    assert len(clean_text("x" * 5000)) == 512


def test_payload_round_trip_matches_in_process(docs: Corpus) -> None:
    trust = vp.pki().trust(moment=vp.NOW + timedelta(hours=2))
    assert verify_payload(encode_payload(docs.single, trust)) == \
        verify_pdf(docs.single, trust).to_dict()
    with pytest.raises(ValueError, match="payload"):
        verify_payload(b"%PDF-1.7 not a payload")


def test_sandbox_failure_is_a_refusal(monkeypatch: pytest.MonkeyPatch, docs: Corpus) -> None:
    def failing(*args: object, **kwargs: object) -> dict[str, object]:
        raise SandboxError("memory", "out of memory")

    monkeypatch.setattr(verify_module, "run_isolated", failing)
    report = verify_isolated(docs.single, vp.pki().trust())
    assert report.verdict is Verdict.NOT_A_PDF and "too complex" in report.messages[0]
    assert report.size == len(docs.single) and report.signatures == ()


def test_unexpected_errors_become_a_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> VerificationReport:
        raise KeyError("bug")

    monkeypatch.setattr(verify_module, "_verify", broken)
    assert verify_pdf(b"%PDF-1.7", vp.pki().trust()).verdict is Verdict.NOT_A_PDF


def test_works_inside_a_running_event_loop(docs: Corpus) -> None:
    async def inside() -> VerificationReport:
        return verify_pdf(docs.single, vp.pki().trust())

    assert asyncio.run(inside()).verdict is Verdict.VALID


def test_naive_moment_is_utc(docs: Corpus) -> None:
    moment = (vp.NOW + timedelta(days=1)).replace(tzinfo=None)
    trust = TrustSpec(roots=(vp.pki().root.cert,), crls=vp.pki().crls(), moment=moment)
    untimed = vp.sign(at.text_pdf(), vp.pki().alice, "Alice", timestamp=False)
    signature = verify_pdf(untimed, trust).signatures[0]
    assert signature.validated_at is not None and signature.validated_at.utcoffset() == \
        timedelta(0) and signature.validated_at.replace(tzinfo=None) == moment


def test_only_configured_roots_are_trusted(docs: Corpus) -> None:
    p = vp.pki()
    rogue_trust = TrustSpec(roots=(p.rogue_root.cert,), crls=p.crls())
    assert verify_pdf(docs.single, rogue_trust).verdict is Verdict.INVALID_TRUST
    nothing = TrustSpec(roots=())
    assert verify_pdf(docs.single, nothing).verdict is Verdict.INVALID_TRUST


def test_junk_revocation_data_is_ignored(docs: Corpus) -> None:
    p = vp.pki()
    trust = TrustSpec(roots=(p.root.cert,), crls=(b"junk", *p.crls()), ocsps=(b"\x30\x00",))
    assert verify_pdf(docs.sealed, trust).verdict is Verdict.VALID


def test_report_fields_are_data_not_markup(sealed: VerificationReport) -> None:
    def strings(value: object) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, dict):
            return [s for item in value.values() for s in strings(item)]
        if isinstance(value, list):
            return [s for item in value for s in strings(item)]
        return []

    for text in strings(sealed.to_dict()):
        assert "<" not in text and ">" not in text, text
    assert isinstance(sealed.signatures[0], SignatureReport)
    assert isinstance(sealed.signatures[0].timestamp_time, datetime)
