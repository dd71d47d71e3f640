"""security.md A1 against the verifier: every attack gets its exact verdict, no attack is ``valid``,
and no honest document raises a false alarm (issue 3, acceptance point 1).

Decisions the table encodes (also in the verifier's docstrings):

* USF that leaves a signature dictionary is ``invalid-integrity``; when no signature dictionary
  remains (the field's /V is blanked) the file has ``no-signature``.
* A file cut inside its only signed revision is ``not-a-pdf``; a multi-revision file cut inside
  a later revision still has complete signed revisions, and the bytes after them make every
  signature ``modified-after-signing``.
* Re-signing by an untrusted key: the victim's signature is ``modified-after-signing``, the
  attacker's ``invalid-trust``, the document ``invalid-trust`` (precedence).
"""

from __future__ import annotations

import io
import random
import resource
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import DiffPolicy, DiffResult, ModificationLevel
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from econtract.signing import verify as verify_module
from econtract.signing.report import SignatureKind, Verdict
from econtract.signing.verify import verify_isolated, verify_pdf
from tests.signing import attacks as at
from tests.signing import verifypki as vp
from tests.signing.attacks import Corpus

INTEGRITY, TRUST, MODIFIED = Verdict.INVALID_INTEGRITY, Verdict.INVALID_TRUST, Verdict.MODIFIED
NOT_A_PDF, NO_SIGNATURE, VALID = Verdict.NOT_A_PDF, Verdict.NO_SIGNATURE, Verdict.VALID
LATER = vp.NOW + timedelta(days=730)  # past every signer certificate's expiry


@pytest.fixture(scope="module")
def docs() -> Corpus:
    return at.corpus()


def _gap(data: bytes, fill: bytes) -> bytes:
    return _gap_of(data, -1, fill)


def _gap_of(data: bytes, index: int, fill: bytes) -> bytes:
    a, b, _, _ = at.signature_span(data, index)
    return data[:a + 1] + (fill * (b - a))[:b - a - 2] + data[b - 1:]


def _range(data: bytes, values: Callable[[int, int, int], tuple[int, int, int]]) -> bytes:
    a, b, c, _ = at.signature_span(data)
    return at.set_byte_range(data, b"/ByteRange [0 %d %d %d]" % values(a, b, c))


def _signed(who: str, **options: object) -> Callable[[Corpus], bytes]:
    def build(_: Corpus) -> bytes:
        p = vp.pki()
        return vp.sign(at.text_pdf(), getattr(p, who), "Signer", **options)  # type: ignore[arg-type]
    return build


def _self_signed_overlay(data: bytes) -> bytes:
    p = vp.pki()
    return vp.sign(vp.add_fields(data, "Overlay"), p.self_signed, "Overlay",
                   issuer=p.self_signed, existing_only=True)


# (id, builder, document verdict, verdict of each signature in revision order or None)
ATTACKS: list[tuple[str, Callable[[Corpus], bytes], Verdict, tuple[Verdict, ...] | None]] = [
    # USF: a signature dictionary that cannot be verified
    ("usf-contents-removed", lambda c: at.set_contents(c.single, b""), INTEGRITY, (INTEGRITY,)),
    ("usf-contents-empty", lambda c: at.set_contents(c.single, b"/Contents <>"), INTEGRITY,
     (INTEGRITY,)),
    ("usf-contents-null", lambda c: at.set_contents(c.single, b"/Contents null"), INTEGRITY,
     (INTEGRITY,)),
    ("usf-contents-zeros", lambda c: _gap(c.single, b"0"), INTEGRITY, (INTEGRITY,)),
    ("usf-contents-garbage", lambda c: _gap(c.single, b"deadbeef"), INTEGRITY, (INTEGRITY,)),
    ("usf-byterange-removed", lambda c: at.set_byte_range(c.single, b""), INTEGRITY,
     (INTEGRITY,)),
    ("usf-byterange-empty", lambda c: at.set_byte_range(c.single, b"/ByteRange []"), INTEGRITY,
     (INTEGRITY,)),
    ("usf-byterange-zeros", lambda c: at.set_byte_range(c.single, b"/ByteRange [0 0 0 0]"),
     INTEGRITY, (INTEGRITY,)),
    ("usf-byterange-partial", lambda c: _range(c.single, lambda a, b, n: (a, b, n - 200)),
     INTEGRITY, (INTEGRITY,)),
    ("usf-byterange-overlapping", lambda c: _range(c.single, lambda a, b, n: (a, a - 100, n)),
     INTEGRITY, (INTEGRITY,)),
    ("usf-value-removed", lambda c: at.remove_value(c.single), NO_SIGNATURE, ()),
    # byte tampering inside the signed range
    ("tamper-content-stream", lambda c: at.flip_byte(c.single, at.content_stream_offset(c.single)),
     INTEGRITY, (INTEGRITY,)),
    ("tamper-cms", lambda c: at.flip_byte(c.single, at.cms_signature_offset(c.single)),
     INTEGRITY, (INTEGRITY,)),
    # SWA
    ("swa", lambda c: at.wrap(c.single), INTEGRITY, (INTEGRITY,)),
    # ISA: incremental saving after signing
    ("isa-page-text", lambda c: at.change_page_text(c.single), MODIFIED, (MODIFIED,)),
    ("isa-new-page", lambda c: at.add_page(c.single), MODIFIED, (MODIFIED,)),
    ("isa-freetext", lambda c: at.add_annotation(c.single), MODIFIED, (MODIFIED,)),
    ("isa-stamp", lambda c: at.add_annotation(c.single, "/Stamp"), MODIFIED, (MODIFIED,)),
    ("isa-form-value-approval-only", lambda c: at.fill_field(c.form_approval, "Company", "Evil"),
     MODIFIED, (MODIFIED,)),
    ("isa-empty-visible-field-approval-only", lambda c: vp.add_fields(c.single, "Overlay"),
     MODIFIED, (MODIFIED,)),  # pitfall 1: pyHanko alone accepts this
    ("isa-no-xref", lambda c: at.append_without_xref(c.single), MODIFIED, (MODIFIED,)),
    ("isa-no-xref-large", lambda c: at.append_without_xref(c.single, 5000), MODIFIED,
     (MODIFIED,)),
    ("isa-trailing-garbage", lambda c: c.single + b"\x00garbage after the end\n", MODIFIED,
     (MODIFIED,)),
    ("isa-resigned-by-untrusted-key", lambda c: vp.sign(
        at.change_page_text(c.single), vp.pki().self_signed, "Evil", issuer=vp.pki().self_signed),
     TRUST, (MODIFIED, TRUST)),
    ("isa-font-remapped", lambda c: at.remap_font(c.single), MODIFIED, (MODIFIED,)),
    # shadow attacks (hide-and-replace)
    ("shadow-root-swap", lambda c: at.swap_root(c.shadow), MODIFIED, (MODIFIED,)),
    ("shadow-root-swap-keeping-form", lambda c: at.swap_root(c.shadow, keep_form=True), MODIFIED,
     (MODIFIED,)),
    # certification attacks on a P=2 certified document
    ("eaa-freetext", lambda c: at.add_annotation(c.certified), MODIFIED, (MODIFIED,)),
    ("eaa-stamp", lambda c: at.add_annotation(c.certified, "/Stamp"), MODIFIED, (MODIFIED,)),
    ("ssa-unsigned", lambda c: vp.add_fields(c.certified, "Overlay"), MODIFIED, (MODIFIED,)),
    ("ssa-signed-by-untrusted-key", lambda c: _self_signed_overlay(c.certified), TRUST,
     (MODIFIED, TRUST)),
    ("certification-after-approval", lambda c: at.certify_after_approval(c.single), INTEGRITY,
     (MODIFIED, INTEGRITY)),
    ("eaa-on-sealed-contract", lambda c: at.add_annotation(c.sealed), MODIFIED, (MODIFIED,) * 4),
    # trust
    ("trust-self-signed", _signed("self_signed", issuer=vp.pki().self_signed), TRUST, (TRUST,)),
    ("trust-rogue-ca-same-dn", _signed("rogue_alice", issuer=vp.pki().rogue_root), TRUST,
     (TRUST,)),
    ("trust-expired-at-proven-time", _signed("expired"), TRUST, (TRUST,)),
    ("trust-revoked", _signed("revoked"), TRUST, (TRUST,)),
    ("trust-revoked-without-distribution-point", _signed("revoked_no_cdp"), TRUST, (TRUST,)),
    ("trust-untrusted-tsa", _signed("alice", tsa=vp.pki().self_signed), TRUST, (TRUST,)),
    ("weak-sha1", _signed("alice", md_algorithm="sha1"), INTEGRITY, (INTEGRITY,)),
    # truncation and non-PDF input
    ("truncated-middle", lambda c: c.single[: len(c.single) // 2], NOT_A_PDF, ()),
    ("truncated-before-eof", lambda c: c.single[: c.single.rindex(b"%%EOF")], NOT_A_PDF, ()),
    ("truncated-sealed-last-revision", lambda c: c.sealed[:-300], MODIFIED, (MODIFIED,) * 4),
    ("not-pdf-png", lambda c: b"\x89PNG\r\n\x1a\n" + bytes(64), NOT_A_PDF, ()),
    ("not-pdf-html", lambda c: b"<html><script>alert(1)</script></html>", NOT_A_PDF, ()),
    ("not-pdf-empty", lambda c: b"", NOT_A_PDF, ()),
    ("not-pdf-header-garbage", lambda c: b"%PDF-1.7\n" + bytes(range(256)) * 8, NOT_A_PDF, ()),
    ("unsigned", lambda c: at.text_pdf(), NO_SIGNATURE, ()),
]


@pytest.mark.parametrize(("build", "verdict", "each"),
                         [pytest.param(b, v, e, id=i) for i, b, v, e in ATTACKS])
def test_attack_gets_its_exact_verdict(docs: Corpus, build: Callable[[Corpus], bytes],
                                       verdict: Verdict, each: tuple[Verdict, ...] | None) -> None:
    report = verify_pdf(build(docs), vp.pki().trust())
    assert report.verdict is verdict, report.to_json()
    if each is not None:
        assert tuple(s.verdict for s in report.signatures) == each, report.to_json()
    assert all(s.reason for s in report.signatures)


def test_swa_file_is_a_real_wrapping(docs: Corpus) -> None:
    # pyHanko finds the copied dictionary and its digest intact: only the shape gives it away.
    embedded = PdfFileReader(io.BytesIO(at.wrap(docs.single))).embedded_signatures[0]
    assert embedded.byte_range[2] != at.signature_span(docs.single)[1]
    context = ValidationContext(trust_roots=[vp.pki().root.asn1], allow_fetching=False)
    status = validate_pdf_signature(embedded, context, skip_diff=True)
    assert status.intact and status.valid


def _set_in_signature(data: bytes, index: int, old: bytes, new: bytes) -> bytes:
    _, _, _, start = at.signature_span(data, index)
    position = data.index(old, start)  # the entry follows /ByteRange in pyHanko's dictionaries
    return at.replace_same_length(data, position, position + len(old), new)


@pytest.mark.parametrize("forge", [
    pytest.param(lambda d: _set_in_signature(d, 1, b"/SubFilter /ETSI.CAdES.detached",
                                             b"/SubFilter /adbe.x509.rsa_sha1"), id="subfilter"),
    pytest.param(lambda d: _gap_of(d, 1, b"deadbeef"), id="contents-garbage"),
])
def test_one_forged_signature_does_not_hide_the_others(docs: Corpus,
                                                      forge: Callable[[bytes], bytes]) -> None:
    # pitfall 5: the middle signature (Alice) is forged; the certification before it still
    # verifies on its own, the signature after it covers the forged bytes.
    report = verify_pdf(forge(docs.certified_chain), vp.pki().trust())
    assert [s.verdict for s in report.signatures] == [VALID, INTEGRITY, INTEGRITY]
    assert report.verdict is INTEGRITY


class _AcceptEverything(DiffPolicy):
    """A difference analysis that sees nothing wrong, to show our own rules stand alone."""

    def apply(self, old: object, new: object, field_mdp_spec: object = None,
              doc_mdp: object = None) -> DiffResult:
        return DiffResult(ModificationLevel.LTA_UPDATES, set())

    def review_file(self, reader: object, base_revision: object, field_mdp_spec: object = None,
                    doc_mdp: object = None) -> DiffResult:
        return DiffResult(ModificationLevel.LTA_UPDATES, set())


@pytest.mark.parametrize("case", [
    "isa-page-text", "isa-new-page", "isa-freetext", "isa-stamp", "isa-form-value-approval-only",
    "isa-empty-visible-field-approval-only", "isa-font-remapped", "isa-no-xref",
    "isa-trailing-garbage", "shadow-root-swap", "shadow-root-swap-keeping-form", "eaa-freetext",
    "eaa-stamp", "ssa-unsigned", "eaa-on-sealed-contract"])
def test_our_rules_catch_modifications_without_pyhanko(docs: Corpus, case: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # Defence in depth: with pyHanko's difference analysis replaced by one that accepts
    # everything, the change list and the LTA-only rule still reject every modification.
    monkeypatch.setattr(verify_module, "DIFF_POLICY", _AcceptEverything())
    build, verdict, _ = next((b, v, e) for i, b, v, e in ATTACKS if i == case)
    report = verify_pdf(build(docs), vp.pki().trust())
    assert report.verdict is verdict, report.to_json()
    for name in ("single", "certified_chain", "form_filled", "renewed", "locked_seal"):
        assert verify_pdf(getattr(docs, name), vp.pki().trust()).verdict is VALID, name


def test_without_revocation_data_trust_cannot_be_confirmed(docs: Corpus) -> None:
    # The certificates name a CRL distribution point; with nothing to check, never "valid".
    report = verify_pdf(docs.single, vp.pki().trust(crls=False))
    assert report.verdict is TRUST
    assert "revocation" in report.signatures[0].reason


def test_expired_signer_without_timestamp_is_untrusted_later(docs: Corpus) -> None:
    data = vp.sign(at.text_pdf(), vp.pki().alice, "Alice", timestamp=False)
    assert verify_pdf(data, vp.pki().trust()).verdict is VALID
    report = verify_pdf(data, vp.pki().trust(moment=LATER, crl_time=LATER))
    assert report.verdict is TRUST and "no valid timestamp" in report.signatures[0].reason


@pytest.mark.parametrize("name", ["single", "certified", "certified_chain", "form_filled",
                                  "form_approval", "sealed", "renewed", "locked_seal", "shadow"])
def test_honest_documents_are_valid(docs: Corpus, name: str) -> None:
    report = verify_pdf(getattr(docs, name), vp.pki().trust())
    assert report.verdict is VALID, report.to_json()
    assert report.signatures and all(s.verdict is VALID for s in report.signatures)


@pytest.mark.parametrize("name", ["single", "sealed", "renewed"])
def test_long_term_validation_past_certificate_expiry(docs: Corpus, name: str) -> None:
    # The verification moment is two years on: every signer certificate has expired, but the
    # timestamps prove the signatures existed while they were valid. The CRLs are "current"
    # ones, as the platform would pass them.
    report = verify_pdf(getattr(docs, name), vp.pki().trust(moment=LATER, crl_time=LATER))
    assert report.verdict is VALID, report.to_json()
    for signature in report.signatures:  # signers checked when a timestamp proves they signed
        if signature.kind is not SignatureKind.DOCUMENT_TIMESTAMP:
            assert signature.validated_at is not None
            assert signature.validated_at < vp.NOW + timedelta(hours=1)


def test_sealed_contract_is_valid_through_the_sandbox(docs: Corpus) -> None:
    trust = vp.pki().trust(moment=vp.NOW + timedelta(hours=1))
    isolated = verify_isolated(docs.renewed, trust)
    assert isolated.verdict is VALID
    assert isolated == verify_pdf(docs.renewed, trust)


def test_random_damage_is_never_valid(docs: Corpus) -> None:
    data = docs.single
    a, b, _, _ = at.signature_span(data)
    rng = random.Random(3)
    outside_gap = [p for p in rng.sample(range(len(data)), 60) if not a <= p < b][:25]
    for position in outside_gap:
        damaged = data[:position] + bytes([data[position] ^ 0x5A]) + data[position + 1:]
        assert verify_pdf(damaged, vp.pki().trust()).verdict is not VALID, position
    for cut in rng.sample(range(1, len(data)), 10):
        assert verify_pdf(data[:cut], vp.pki().trust()).verdict is not VALID, cut


def _rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@pytest.mark.parametrize(("build", "allowed"), [
    pytest.param(at.bomb_pdf, {NO_SIGNATURE, NOT_A_PDF}, id="content-stream-bomb"),
    pytest.param(at.objstm_bomb, {NOT_A_PDF}, id="object-stream-bomb"),
    pytest.param(at.loop_pdf, {NOT_A_PDF}, id="reference-loops"),
    pytest.param(at.many_pages_pdf, {NO_SIGNATURE, NOT_A_PDF}, id="huge-page-count"),
])
def test_hostile_input_is_bounded_in_the_sandbox(build: Callable[[], bytes],
                                                 allowed: set[Verdict]) -> None:
    data = build()
    assert len(data) < 8 * at.MB
    before, started = _rss_kib(), time.monotonic()
    report = verify_isolated(data, vp.pki().trust(), timeout=20, memory_mb=768)
    assert time.monotonic() - started < 30
    assert report.verdict in allowed, report.to_json()
    assert _rss_kib() - before < 100 * 1024  # the parent process never inflated anything
