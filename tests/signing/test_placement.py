"""Signature fields placed on the uploaded document's own pages (issue 5): where they land, that
signing them all stays ``valid`` for our verifier and for poppler's pdfsig, and which placements
are refused. No database."""

from __future__ import annotations

import io
import subprocess
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

from econtract.errors import ValidationFailed
from econtract.signing import (
    PreparedDocument,
    PrepareSpec,
    SignerSlot,
    certify,
    prepare_document,
    seal_document,
    sign_field,
)
from econtract.signing.report import Verdict
from econtract.signing.verify import TrustSpec, verify_pdf
from tests.signing.conftest import ROLES, appearance, contract_pdf
from tests.signing.test_pdfsig import _blocks, _nss_db, _tool
from tests.signing.testpki import SIGNERS, TestPki

#: Signer 1 on page 1 (bottom left), signer 2 on page 2 at the minimum size, signer 3 unplaced.
PLACEMENTS: tuple[tuple[int, tuple[float, float, float, float]] | None, ...] = (
    (0, (72.4, 90.0, 232.0, 154.2)), (1, (300, 500, 360, 524)), None)


def two_pages() -> bytes:
    pdf = FPDF(unit="pt", format="A4")
    pdf.set_font("helvetica", size=12)
    for text in ("Page one: the parties agree.", "Page two: signatures below."):
        pdf.add_page()
        pdf.multi_cell(0, 16, text)
    return bytes(pdf.output())


def slots(placements: tuple[tuple[int, tuple[float, float, float, float]] | None, ...]
          = PLACEMENTS) -> list[SignerSlot]:
    out = []
    for i, ((name, email), place) in enumerate(zip(SIGNERS, placements, strict=True)):
        page, rect = place if place else (None, None)
        out.append(SignerSlot(f"signer-{i + 1}", name, email, ROLES[i], page=page, rect=rect))
    return out


def spec(signers: list[SignerSlot]) -> PrepareSpec:
    return PrepareSpec(title="Placement test", signers=signers,
                       created_at=datetime(2026, 11, 28, 2, 0, tzinfo=UTC))


@dataclass(frozen=True)
class Placed:
    prepared: PreparedDocument
    sealed: bytes


@pytest.fixture(scope="module")
def placed(pki: TestPki) -> Placed:
    prepared = prepare_document(two_pages(), spec(slots()))
    now = datetime.now(UTC)
    pdf = certify(prepared.pdf, key=pki.seal_key, tsa=pki.tsa_client, reason="certify",
                  location="econtract", signing_time=now)
    for index, (info, key) in enumerate(zip(prepared.fields, pki.signer_keys, strict=True)):
        pdf = sign_field(pdf, field_name=info.name, key=key, appearance=appearance(index,
                         image=index == 0, seal=index == 0), tsa=pki.tsa_client,
                         signing_time=now)
        assert _verdict(pki, pdf) is Verdict.VALID, info.name
    return Placed(prepared, seal_document(pdf, tsa=pki.tsa_client, validation=pki.material()))


def _verdict(pki: TestPki, pdf: bytes) -> Verdict:
    return verify_pdf(pdf, TrustSpec(roots=(pki.root.cert,), crls=pki.crls)).verdict


def _widgets(pdf: bytes) -> dict[str, tuple[int, list[float]]]:
    """Field name → (0-based page index, /Rect) of every signature widget, read with pypdf."""
    reader = PdfReader(io.BytesIO(pdf))
    found = {}
    for index, page in enumerate(reader.pages):
        for ref in page.get("/Annots") or []:
            annot = ref.get_object()
            if annot.get("/FT") == "/Sig" or annot.get("/Parent", {}).get("/FT") == "/Sig":
                name = annot.get("/T") or annot["/Parent"]["/T"]
                found[str(name)] = (index, [float(v) for v in annot["/Rect"]])
    return found


def test_placed_fields_are_where_asked(placed: Placed) -> None:
    widgets = _widgets(placed.prepared.pdf)
    assert widgets["signer-1"] == (0, [72, 90, 232, 154])  # rounded to whole points
    assert widgets["signer-2"] == (1, [300, 500, 360, 524])
    pages = len(PdfReader(io.BytesIO(placed.prepared.pdf)).pages)
    assert pages == 3  # the two pages and the signature page, still listing everyone
    assert widgets["signer-3"][0] == 2
    assert [(f.name, f.page) for f in placed.prepared.fields] == [
        ("signer-1", 0), ("signer-2", 1), ("signer-3", 2)]


def test_signature_page_lists_every_party(placed: Placed) -> None:
    text = PdfReader(io.BytesIO(placed.prepared.pdf)).pages[2].extract_text().replace("\x00", "")
    for name, _ in SIGNERS:
        assert name in text
    assert "Signs on page 1 of the document" in text
    assert "Signs on page 2 of the document" in text


def test_signed_placed_fields_stay_valid(placed: Placed, pki: TestPki) -> None:
    assert _verdict(pki, placed.sealed) is Verdict.VALID
    widgets = _widgets(placed.sealed)
    assert widgets["signer-1"] == (0, [72, 90, 232, 154])
    assert widgets["signer-2"] == (1, [300, 500, 360, 524])


def test_pdfsig_trusts_placed_signatures(placed: Placed, pki: TestPki, tmp_path: Path) -> None:
    db = _nss_db(pki, tmp_path / "nss")
    document = tmp_path / "placed.pdf"
    document.write_bytes(placed.sealed)
    done = subprocess.run([_tool("pdfsig"), "-nssdir", db, str(document)], capture_output=True,
                          text=True, timeout=120, check=False)
    blocks = _blocks(done.stdout)
    for field in ("signer-1", "signer-2", "signer-3", "econtract-certification"):
        assert "Signature Validation: Signature is Valid." in blocks[field], done.stdout
        assert "Certificate Validation: Certificate is Trusted." in blocks[field], done.stdout


def test_placed_pages_render(placed: Placed, tmp_path: Path) -> None:
    """The signed page renders (a screenshot for people; poppler must accept it)."""
    document = tmp_path / "placed.pdf"
    document.write_bytes(placed.sealed)
    out = Path("test-artifacts/screenshots")
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([_tool("pdftoppm"), "-png", "-r", "60", "-f", "1", "-l", "2",
                    str(document), str(out / "placement-signed")], check=True, timeout=60)


@pytest.mark.parametrize(("page", "rect", "code"), [
    (2, (72, 90, 232, 154), "placement_page"),
    (0, (-10, 90, 150, 154), "placement_off_page"),
    (0, (500, 800, 660, 864), "placement_off_page"),
    (0, (72, 90, 100, 154), "placement_too_small"),
    (0, (72, 90, 232, 100), "placement_too_small"),
    (0, (0, 0, 590, 400), "placement_too_large"),
    (0, (72, 90, float("nan"), 154), "placement_rect"),
    (-1, (72, 90, 232, 154), "placement_page"),
])
def test_refused_placements(page: int, rect: tuple[float, float, float, float],
                            code: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        prepare_document(two_pages(), spec(slots(((page, rect), None, None))))
    assert caught.value.code == code


def test_overlapping_and_half_placements_are_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        prepare_document(two_pages(), spec(slots(((0, (72, 90, 232, 154)),
                                                  (0, (200, 120, 360, 184)), None))))
    assert caught.value.code == "placement_overlap"
    with pytest.raises(ValidationFailed) as caught:
        SignerSlot("signer-1", "A", "a@example.cn", page=0)
    assert caught.value.code == "placement_incomplete"


def test_rotated_page_is_refused() -> None:
    writer = PdfWriter(clone_from=io.BytesIO(contract_pdf()))
    writer.pages[0].rotate(90)
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(ValidationFailed) as caught:
        prepare_document(out.getvalue(), spec(slots(((0, (72, 90, 232, 154)), None, None))))
    assert caught.value.code == "placement_rotated_page"


def test_crop_box_limits_the_area() -> None:
    writer = PdfWriter(clone_from=io.BytesIO(two_pages()))
    writer.pages[0].cropbox.lower_left = (100, 100)
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(ValidationFailed) as caught:
        prepare_document(out.getvalue(), spec(slots(((0, (72, 90, 232, 154)), None, None))))
    assert caught.value.code == "placement_off_page"
    ok = prepare_document(out.getvalue(), spec(slots(((0, (100, 100, 260, 164)), None, None))))
    assert _widgets(ok.pdf)["signer-1"] == (0, [100, 100, 260, 164])


def test_unplaced_contract_is_unchanged() -> None:
    plain = prepare_document(two_pages(), spec(slots((None, None, None))))
    assert [f.page for f in plain.fields] == [2, 2, 2]
    assert replace(slots((None, None, None))[0]).box is None


def test_appearance_fits_the_placed_rect(placed: Placed) -> None:
    reader = PdfReader(io.BytesIO(placed.sealed))
    for index, (x1, y1, x2, y2) in ((0, (72, 90, 232, 154)), (1, (300, 500, 360, 524))):
        annots = [a.get_object() for a in reader.pages[index].get("/Annots") or []]
        widget = next(a for a in annots if str(a.get("/T", "")).startswith("signer-"))
        bbox = [float(v) for v in widget["/AP"]["/N"].get_object()["/BBox"]]
        width, height = abs(bbox[2] - bbox[0]), abs(bbox[3] - bbox[1])  # pyHanko: [0 h w 0]
        assert (width, height) == (x2 - x1, y2 - y1)
