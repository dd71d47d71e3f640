"""Page images (pypdfium2): PNG previews for the detail page, cached JPEG pages for signers."""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from typing import Literal

import pypdfium2 as pdfium
from PIL import Image

from econtract.errors import NotFound

MAX_HEIGHT_PX = 2400
JPEG_QUALITY = 82

# PDFium is not thread-safe: the web server renders previews from several worker threads at
# once (a detail page asks for three pages in parallel), and concurrent calls can crash the
# whole process. Every use of pypdfium2 in the process goes through this lock.
PDFIUM_LOCK = threading.Lock()

ImageFormat = Literal["PNG", "JPEG"]


def render_page_png(pdf: bytes, *, page: int, width: int = 800) -> bytes:
    """Page ``page`` (1-based) rendered ``width`` pixels wide, as PNG."""
    with PDFIUM_LOCK:
        return _render(pdf, page, width, "PNG")


def render_page_jpeg(pdf: bytes, *, page: int, width: int = 800) -> bytes:
    """Page ``page`` (1-based) rendered ``width`` pixels wide, as JPEG (a fifth of the PNG's
    size for a scanned page, which matters on a phone)."""
    with PDFIUM_LOCK:
        return _render(pdf, page, width, "JPEG")


def _render(pdf: bytes, page: int, width: int, fmt: ImageFormat) -> bytes:
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
        if fmt == "JPEG":
            image.convert("RGB").save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
        else:
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


class ImageCache:
    """A small in-process LRU of rendered pages, bounded in bytes.

    Keys name an immutable input (a document version's SHA-256, the page, the width), so an
    entry is never stale; a new version of the document simply has other keys.
    """

    def __init__(self, max_bytes: int = 64 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, int]) -> bytes | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[str, int, int], image: bytes) -> None:
        if len(image) > self.max_bytes:
            return
        with self._lock:
            previous = self._items.pop(key, None)
            if previous is not None:
                self._size -= len(previous)
            self._items[key] = image
            self._size += len(image)
            while self._size > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


SIGNER_PAGES = ImageCache()
"""Pages shown to signers: every signer of a contract reads the same versions."""
