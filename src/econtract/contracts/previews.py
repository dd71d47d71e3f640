"""Page preview images (pypdfium2), for the detail page and the signing page."""

from __future__ import annotations

import io

import pypdfium2 as pdfium

from econtract.errors import NotFound

MAX_HEIGHT_PX = 2400


def render_page_png(pdf: bytes, *, page: int, width: int = 800) -> bytes:
    """Page ``page`` (1-based) rendered ``width`` pixels wide, as PNG."""
    document = pdfium.PdfDocument(pdf)
    try:
        if not 1 <= page <= len(document):
            raise NotFound(f"The document has {len(document)} pages.", code="page_not_found")
        pdf_page = document[page - 1]
        # Bound the bitmap whatever the page's shape (uploads allow 1 pt × 14,400 pt pages).
        scale = min(width / max(pdf_page.get_width(), 1.0),
                    MAX_HEIGHT_PX / max(pdf_page.get_height(), 1.0))
        image = pdf_page.render(scale=scale).to_pil()
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=False)
        return out.getvalue()
    finally:
        document.close()


def page_count(pdf: bytes) -> int:
    """Pages of a PDF the platform produced or already checked."""
    document = pdfium.PdfDocument(pdf)
    try:
        return len(document)
    finally:
        document.close()
