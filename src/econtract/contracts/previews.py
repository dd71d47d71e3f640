"""Page preview images (pypdfium2), for the detail page and the signing page."""

from __future__ import annotations

import io
import threading

import pypdfium2 as pdfium
from PIL import Image

from econtract.errors import NotFound

MAX_HEIGHT_PX = 2400

# PDFium is not thread-safe: the web server renders previews from several worker threads at
# once (a detail page asks for three pages in parallel), and concurrent calls can crash the
# whole process. Every use of pypdfium2 in the process goes through this lock.
PDFIUM_LOCK = threading.Lock()


def render_page_png(pdf: bytes, *, page: int, width: int = 800) -> bytes:
    """Page ``page`` (1-based) rendered ``width`` pixels wide, as PNG."""
    with PDFIUM_LOCK:
        return _render(pdf, page, width)


def _render(pdf: bytes, page: int, width: int) -> bytes:
    # The PIL image may share PDFium's bitmap memory, so it is encoded before the document
    # (and its bitmap) is closed, inside the lock.
    document = pdfium.PdfDocument(pdf)
    try:
        if not 1 <= page <= len(document):
            raise NotFound(f"The document has {len(document)} pages.", code="page_not_found")
        pdf_page = document[page - 1]
        # Bound the bitmap whatever the page's shape (uploads allow 1 pt × 14,400 pt pages).
        scale = min(width / max(pdf_page.get_width(), 1.0),
                    MAX_HEIGHT_PX / max(pdf_page.get_height(), 1.0))
        image: Image.Image = pdf_page.render(scale=scale).to_pil()
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=False)
        return out.getvalue()
    finally:
        document.close()


def page_count(pdf: bytes) -> int:
    """Pages of a PDF the platform produced or already checked."""
    with PDFIUM_LOCK:
        document = pdfium.PdfDocument(pdf)
        try:
            return len(document)
        finally:
            document.close()
