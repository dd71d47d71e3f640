"""Pages the platform appends to a contract (fpdf2), and CJK text for signature appearances.

All text is set in Noto Sans SC (OFL, shipped by ``pylopdf_fonts_zh_cn``). On the clauses and
signature pages it is embedded as a font subset, so it stays extractable (``pdftotext``). The
signature page returns its boxes' rectangles so that the signature fields can be placed exactly
on them.

Signature appearances are drawn while signing, where subsetting the 8 MB CFF font would cost
about 300 ms per signature (pyHanko's OpenType engine, measured). There the text is shaped with
HarfBuzz and drawn as glyph outlines (:func:`outline_text`): vector, exact, font-independent in
every viewer, about a millisecond per caption with the outlines cached — but not selectable,
which is fine for a stamp whose facts are in the certificate and the signature dictionary.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence
from functools import cache, lru_cache
from pathlib import Path

import uharfbuzz as hb  # type: ignore[import-untyped]  # ships no type information
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from econtract.signing.specs import FieldInfo, SignerSlot

#: A4 in points, as fpdf2 defines it.
PAGE_W, PAGE_H = 595.28, 841.89
_MARGIN = 56
_FONT = "noto-sans-sc"
_GRAY = 110
# Signature grid: 2 columns × 3 rows per page, integral PDF coordinates for the field boxes.
_COLS, _ROWS = 2, 3
_CELL_W, _CELL_H, _GAP = 234, 184, 16
_GRID_TOP = 720  # PDF y of the first row's upper edge (below the page heading)
_BOX_INSET, _BOX_H = 8, 112


@cache
def cjk_font_path() -> Path:
    """Path of the Noto Sans SC OpenType font used for every CJK text.

    :return: the ``.otf`` file inside the ``pylopdf_fonts_zh_cn`` package.
    """
    path = Path(str(importlib.resources.files("pylopdf_fonts_zh_cn") / "NotoSansSC-Regular.otf"))
    if not path.is_file():
        raise FileNotFoundError(f"CJK font missing: {path}")
    return path


def _new_pdf(title: str) -> FPDF:
    pdf = FPDF(unit="pt", format="A4")
    pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
    pdf.set_auto_page_break(True, margin=_MARGIN)
    pdf.add_font(_FONT, fname=str(cjk_font_path()))
    pdf.set_title(title)
    pdf.set_producer("econtract")
    return pdf


def _fit(pdf: FPDF, text: str, width: float) -> str:
    """``text`` shortened with an ellipsis until it fits ``width`` in the current font."""
    text = " ".join(text.split())
    if pdf.get_string_width(text) <= width:
        return text
    while text and pdf.get_string_width(text + "…") > width:
        text = text[:-1]
    return text + "…"


def _line(pdf: FPDF, text: str, size: float, *, gray: int = 0, height: float | None = None) -> None:
    pdf.set_font(_FONT, size=size)
    pdf.set_text_color(gray)
    pdf.multi_cell(0, height or size * 1.5, text, align="L",
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def clauses_page(title: str, clauses: Sequence[tuple[str, str]], locale: str = "zh_CN") -> bytes:
    """Render the additional clauses (附加条款) as one or more A4 pages.

    :param title: the contract title, printed under the bilingual heading.
    :param clauses: ``(heading, text)`` pairs, numbered in order.
    :param locale: ``zh…`` numbers clauses "第 1 条", anything else "Clause 1".
    :return: a PDF document holding only these pages.
    """
    pdf = _new_pdf(title)
    pdf.add_page()
    _line(pdf, "附加条款 / Additional clauses", 18)
    _line(pdf, f"合同 / Contract: {title}", 10, gray=_GRAY)
    pdf.ln(10)
    for number, (heading, text) in enumerate(clauses, start=1):
        label = f"第 {number} 条" if locale.startswith("zh") else f"Clause {number}."
        _line(pdf, f"{label}  {heading}".strip(), 12)
        _line(pdf, text, 10.5, height=16)
        pdf.ln(8)
    return bytes(pdf.output())


def signature_page(contract_title: str,
                   signers: Sequence[SignerSlot]) -> tuple[bytes, list[FieldInfo]]:
    """Render the signature page (签署页): one labelled cell per signer, two per row.

    Every party is listed, so the page stays the record of who signs. A signer whose field is
    placed on the document itself (``slot.page``) gets a note "signs on page N" in their cell
    instead of a signature box.

    :param contract_title: printed under the heading.
    :param signers: the signers in order; six fit on a page, more continue on further pages.
    :return: the PDF, and for each signer without a placement the field rectangle (page index
        within this PDF); it has :func:`signature_page_count` pages.
    """
    pdf = _new_pdf(contract_title)
    fields: list[FieldInfo] = []
    per_page = _COLS * _ROWS
    for index, slot in enumerate(signers):
        if index % per_page == 0:
            pdf.add_page()
            _signature_heading(pdf, contract_title, continued=index > 0)
        row, col = divmod(index % per_page, _COLS)
        left = _MARGIN + col * (_CELL_W + _GAP)
        top = _GRID_TOP - row * (_CELL_H + _GAP)
        box = _signer_cell(pdf, slot, index + 1, left, top)
        if box is not None:
            fields.append(FieldInfo(slot.field_name, pdf.page_no() - 1, box))
    return bytes(pdf.output()), fields


def signature_page_count(signers: int) -> int:
    """How many pages :func:`signature_page` renders for ``signers`` signers."""
    per_page = _COLS * _ROWS
    return max(1, -(-signers // per_page))


def _signature_heading(pdf: FPDF, contract_title: str, *, continued: bool) -> None:
    _line(pdf, "签署页（续）/ Signature page (continued)" if continued
          else "签署页 / Signature page", 20)
    _line(pdf, f"合同 / Contract: {contract_title}", 10, gray=_GRAY)
    _line(pdf, "各方以本人的数字证书在下方签署框内签署。"
          "/ Each party signs in their box below with their own digital certificate.",
          9, gray=_GRAY)


def _text_at(pdf: FPDF, x: float, pdf_y: float, text: str, size: float, width: float,
             gray: int) -> None:
    """Write one line whose baseline is at PDF coordinate ``pdf_y``, cut to ``width``."""
    pdf.set_font(_FONT, size=size)
    pdf.set_text_color(gray)
    pdf.text(x, PAGE_H - pdf_y, _fit(pdf, text, width))


def _signer_cell(pdf: FPDF, slot: SignerSlot, number: int, left: int, top: int) -> tuple[
        int, int, int, int] | None:
    """Draw one signer's labelled cell; return its signature box in PDF coordinates, or
    ``None`` when the signer's field is placed on the document (a note says where)."""
    pdf.set_draw_color(190)
    pdf.set_line_width(0.6)
    pdf.rect(left, PAGE_H - top, _CELL_W, _CELL_H)
    width = _CELL_W - 2 * _BOX_INSET
    label = f"签署方 {number} / Signer {number}" + (f" · {slot.role}" if slot.role else "")
    x = left + _BOX_INSET
    _text_at(pdf, x, top - 16, label, 8.5, width, _GRAY)
    _text_at(pdf, x, top - 34, slot.name, 13, width, 0)
    _text_at(pdf, x, top - 50, slot.email, 9, width, 60)
    if slot.page is not None:
        _text_at(pdf, x, top - 90, f"签署位置：合同正文第 {slot.page + 1} 页", 10, width, _GRAY)
        _text_at(pdf, x, top - 106, f"Signs on page {slot.page + 1} of the document", 9, width,
                 _GRAY)
        return None
    box = (x, top - _CELL_H + _BOX_INSET, x + width, top - _CELL_H + _BOX_INSET + _BOX_H)
    pdf.set_draw_color(150)
    pdf.set_line_width(0.5)
    pdf.set_dash_pattern(dash=3, gap=2)
    pdf.rect(box[0], PAGE_H - box[3], width, _BOX_H)
    pdf.set_dash_pattern()
    return box


# --- text as glyph outlines (signature appearances) -------------------------------------------


@cache
def _hb_font() -> hb.Font:
    return hb.Font(hb.Face(cjk_font_path().read_bytes()))


class _PathPen:
    """Collects a glyph outline as PDF path operators, in font units."""

    def __init__(self) -> None:
        self.ops: list[str] = []
        self._at = (0.0, 0.0)

    def moveTo(self, p: tuple[float, float]) -> None:  # HarfBuzz pen protocol
        self.ops.append(f"{p[0]:g} {p[1]:g} m")
        self._at = p

    def lineTo(self, p: tuple[float, float]) -> None:
        self.ops.append(f"{p[0]:g} {p[1]:g} l")
        self._at = p

    def curveTo(self, c1: tuple[float, float], c2: tuple[float, float],
                p: tuple[float, float]) -> None:
        self.ops.append(f"{c1[0]:g} {c1[1]:g} {c2[0]:g} {c2[1]:g} {p[0]:g} {p[1]:g} c")
        self._at = p

    def qCurveTo(self, c: tuple[float, float], p: tuple[float, float]) -> None:
        # PDF has cubic curves only: raise the quadratic (TrueType outlines) to a cubic.
        (x0, y0), (cx, cy) = self._at, c
        self.curveTo((x0 + 2 * (cx - x0) / 3, y0 + 2 * (cy - y0) / 3),
                     (p[0] + 2 * (cx - p[0]) / 3, p[1] + 2 * (cy - p[1]) / 3), p)

    def closePath(self) -> None:
        self.ops.append("h")


@lru_cache(maxsize=8192)
def _glyph_path(gid: int) -> bytes:
    pen = _PathPen()
    _hb_font().draw_glyph_with_pen(gid, pen)
    return " ".join(pen.ops).encode("ascii")


def _shape(text: str) -> list[tuple[int, int, int, int]]:
    """(glyph id, x advance, x offset, y offset) per glyph, in font units."""
    buf = hb.Buffer()
    buf.add_str(text)
    buf.guess_segment_properties()
    hb.shape(_hb_font(), buf, {})
    return [(info.codepoint, pos.x_advance, pos.x_offset, pos.y_offset)
            for info, pos in zip(buf.glyph_infos, buf.glyph_positions, strict=True)]


def text_width(text: str, size: float) -> float:
    """Advance width of ``text`` set in Noto Sans SC at ``size`` points.

    :param text: the text (any script the font covers).
    :param size: font size in points.
    :return: the width in points.
    """
    upem = _hb_font().face.upem
    return float(sum(advance for _, advance, _, _ in _shape(text)) * size / upem)


def outline_text(text: str, size: float, x: float, y: float) -> bytes:
    """PDF content operators that fill ``text`` as outlines, baseline starting at ``(x, y)``.

    The caller sets the fill colour. Glyphs missing from the font come out as the font's
    ``.notdef`` box, never as a wrong character.

    :param text: the text to draw.
    :param size: font size in points.
    :param x: start of the baseline, in the content stream's coordinates.
    :param y: the baseline.
    :return: content stream bytes (``q … cm <path> f Q`` per glyph).
    """
    scale = size / _hb_font().face.upem
    ops = []
    for gid, advance, dx, dy in _shape(text):
        path = _glyph_path(gid)
        if path:
            ops.append(b"q %.5f 0 0 %.5f %.2f %.2f cm %s f Q" % (
                scale, scale, x + dx * scale, y + dy * scale, path))
        x += advance * scale
    return b"\n".join(ops)
