"""Judge uploaded contracts and attachments from their bytes, never from their name or Content-Type.

Both the file name and the client's Content-Type are chosen by the uploader, so the decision to
accept a file and the type we store for it come from the bytes alone. Anything that needs a real
parser (PDF structure, ZIP central directory) runs in :func:`econtract.sandbox.run_isolated`:
hostile files (decompression bombs, reference loops, millions of objects) then exhaust a child
process with hard limits instead of the web server. This module only *imports* pypdf inside the
sandbox targets, so the server process never parses a PDF here.

Refusals are :class:`~econtract.errors.UploadRejected` with these codes:

``upload_empty``, ``upload_too_large``, ``upload_not_pdf``, ``upload_unreadable``,
``upload_encrypted``, ``upload_javascript``, ``upload_launch_action``, ``upload_xfa``,
``upload_too_many_pages``, ``upload_type_not_allowed``. If the check itself fails (the sandbox
crashed: a bug or a broken deployment) the error is a plain 500
:class:`~econtract.errors.EContractError` with code ``upload_check_failed``.

Messages are fixed English sentences plus numbers we computed; they never quote the file.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from econtract.errors import EContractError, UploadRejected
from econtract.sandbox import SandboxError, run_isolated

if TYPE_CHECKING:
    from pypdf import PdfReader
    from pypdf.generic import DictionaryObject, PdfObject, StreamObject

__all__ = [
    "AttachmentInfo",
    "PdfInfo",
    "inspect_attachment",
    "inspect_pdf",
    "probe_pdf",
    "probe_zip",
    "safe_filename",
]

PDF_PROBE = "econtract.contracts.uploads:probe_pdf"
ZIP_PROBE = "econtract.contracts.uploads:probe_zip"
PROBE_TIMEOUT = 15.0  # seconds of wall clock (and of CPU) per upload
PROBE_MEMORY_MB = 768

_HEADER_WINDOW = 1024  # like common viewers, accept junk before %PDF- in the first KiB
_MAX_OBJECTS = 100_000  # a 500-page contract has ~20k; millions are an attack on time and memory
_MAX_DECODED_BYTES = 512 * 1024 * 1024  # all streams together, on top of pypdf's per-stream cap
_MAX_TREE_DEPTH = 64
_MAX_IMAGE_PIXELS = 250_000_000  # 1200 dpi A4 is 140 Mpx
_PAGE_SIDE = (1.0, 14_400.0)  # points; a little laxer than the standard's 3 at the low end
_MAX_ZIP_ENTRIES = 10_000
_MAX_ZIP_EXPANDED = 2 * 1024**3  # declared uncompressed total; more is a zip bomb
_MAX_FILENAME = 200

_DAMAGED = "The PDF could not be read; it may be damaged or incomplete."
_TOO_COMPLEX = "The PDF is too complex or damaged to be processed."


@dataclass(frozen=True)
class PdfInfo:
    page_count: int
    size: int
    sha256: str
    pdf_version: str
    text: str = ""
    """The text of its pages (for keyword search), extracted in the sandbox."""


@dataclass(frozen=True)
class AttachmentInfo:
    content_type: str
    size: int
    sha256: str


# --- public API ------------------------------------------------------------------------------

def inspect_pdf(data: bytes, *, max_bytes: int, max_pages: int) -> PdfInfo:
    """Accept ``data`` as a contract PDF or raise :class:`UploadRejected` saying why not."""
    _check_size(data, max_bytes)
    kind = _sniff(data)
    if kind != "pdf":
        looks = f"; it looks like {_KIND_LABELS[kind]}" if kind in _KIND_LABELS else ""
        raise UploadRejected(f"The file is not a PDF{looks}.", code="upload_not_pdf")
    probe = _probe(PDF_PROBE, data, complex_message=_TOO_COMPLEX)
    page_count = int(probe["page_count"])
    if page_count > max_pages:
        raise UploadRejected(f"The PDF has {page_count} pages; at most {max_pages} are allowed.",
                             code="upload_too_many_pages",
                             details={"page_count": page_count, "max_pages": max_pages})
    return PdfInfo(page_count=page_count, size=len(data), sha256=_sha256(data),
                   pdf_version=str(probe["pdf_version"]), text=str(probe.get("text", "")))


def inspect_attachment(data: bytes, filename: str, *, max_bytes: int,
                       max_pages: int) -> AttachmentInfo:
    """Accept ``data`` as an attachment and return the content type its bytes prove.

    Allowed: PDF (same checks as :func:`inspect_pdf`), PNG, JPEG, GIF, WebP, Word/Excel/
    PowerPoint (OOXML, without macros), OpenDocument text/spreadsheet/presentation, and UTF-8
    text. ``filename`` never decides acceptance; it only picks ``text/csv`` over ``text/plain``
    for bytes already accepted as text, two types with the same (low) risk.
    """
    _check_size(data, max_bytes)
    kind = _sniff(data)
    if kind == "pdf":
        info = inspect_pdf(data, max_bytes=max_bytes, max_pages=max_pages)
        return AttachmentInfo(content_type="application/pdf", size=info.size, sha256=info.sha256)
    if kind in _IMAGE_TYPES:
        content_type = _IMAGE_TYPES[kind]
    elif kind == "zip":
        probe = _probe(ZIP_PROBE, data, complex_message="The archive is too complex or damaged.")
        content_type = str(probe["content_type"])
    elif kind == "text":
        is_csv = safe_filename(filename).lower().endswith(".csv")
        content_type = "text/csv; charset=utf-8" if is_csv else "text/plain; charset=utf-8"
    else:
        raise UploadRejected(_refusal(kind, data), code="upload_type_not_allowed")
    return AttachmentInfo(content_type=content_type, size=len(data), sha256=_sha256(data))


def safe_filename(name: str, default: str = "file") -> str:
    """A display/download name: no directories, control or format characters, or leading dots.

    Keeps letters of every script (Chinese included) and the extension when shortening to
    200 characters. Format characters go too: "invoice", U+202E (right-to-left override),
    "fdp.exe" displays as "invoiceexe.pdf".
    """
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]  # Windows clients send C:\Users\...\file.pdf
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    name = re.sub(r'[<>:"|?*]', "_", name)  # reserved on Windows, awkward in headers
    name = name.strip().lstrip(".").strip().rstrip(". ")  # no hidden files, no "..", no "a. "
    if not name:
        return default
    if name.split(".")[0].upper() in _WINDOWS_DEVICES:
        name = f"_{name}"
    return _shorten(name, _MAX_FILENAME)


# --- sandbox targets (run in the child; they import pypdf, the parent does not) ---------------

def probe_pdf(data: bytes) -> dict[str, Any]:
    """Sandbox target: parse the PDF and refuse encryption, active content and broken structure.

    Returns ``{"page_count": int, "pdf_version": "1.7", "text": str}``; raises
    :class:`UploadRejected`.
    """
    from pypdf.errors import LimitReachedError

    try:
        return _probe_pdf(data)
    except (UploadRejected, MemoryError):
        raise
    except LimitReachedError as exc:  # pypdf's own anti-bomb limits
        raise UploadRejected(_TOO_COMPLEX, code="upload_unreadable") from exc
    except Exception as exc:
        # pypdf answers hostile input with a zoo of exception types (PdfReadError, KeyError,
        # AssertionError in strict mode, RecursionError, zlib.error...). Any of them means we
        # cannot vouch for what a viewer would make of the file.
        raise UploadRejected(_DAMAGED, code="upload_unreadable") from exc


def probe_zip(data: bytes) -> dict[str, Any]:
    """Sandbox target: return the OOXML/ODF content type of a ZIP, or refuse it."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > _MAX_ZIP_ENTRIES or \
                    sum(info.file_size for info in infos) > _MAX_ZIP_EXPANDED:
                raise UploadRejected("The archive is too complex or damaged.",
                                     code="upload_unreadable")
            return {"content_type": _office_type(archive, infos)}
    except (UploadRejected, MemoryError):
        raise
    except Exception as exc:  # BadZipFile, zlib.error, NotImplementedError, RuntimeError...
        raise UploadRejected("The archive could not be read; it may be damaged.",
                             code="upload_unreadable") from exc


# --- size, sniffing, refusals ------------------------------------------------------------------

def _check_size(data: bytes, max_bytes: int) -> None:
    if not data:
        raise UploadRejected("The file is empty.", code="upload_empty")
    if len(data) > max_bytes:
        raise UploadRejected(f"The file is larger than the {_megabytes(max_bytes)} MB limit.",
                             code="upload_too_large",
                             details={"size": len(data), "max_bytes": max_bytes})


def _megabytes(size: int) -> str:
    megabytes = size / (1024 * 1024)
    return f"{megabytes:.1f}".removesuffix(".0") if megabytes >= 0.1 else f"{megabytes:.2g}"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x7fELF", "executable"),
    (b"\xfe\xed\xfa\xce", "executable"), (b"\xfe\xed\xfa\xcf", "executable"),  # Mach-O
    (b"\xce\xfa\xed\xfe", "executable"), (b"\xcf\xfa\xed\xfe", "executable"),
    (b"\xca\xfe\xba\xbe", "executable"),  # Mach-O universal, Java class
    (b"#!", "script"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"), (b"GIF89a", "gif"),
    (b"PK\x03\x04", "zip"), (b"PK\x05\x06", "zip"),
)
_IMAGE_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif",
                "webp": "image/webp"}
_KIND_LABELS = {
    "png": "a PNG image", "jpeg": "a JPEG image", "gif": "a GIF image", "webp": "a WebP image",
    "zip": "a ZIP archive or Office document", "executable": "a program", "script": "a script",
    "markup": "an HTML or XML document", "text": "a text file",
}
# Tags a browser's content sniffing (or an SVG viewer) would treat as an active document.
_MARKUP = (b"<html", b"<!doctype", b"<script", b"<svg", b"<?xml", b"<iframe", b"<body",
           b"<head", b"<object", b"<embed")


def _sniff(data: bytes) -> str | None:
    """Name the kind of file the leading bytes prove, or None."""
    head = data[:_HEADER_WINDOW]
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head.startswith(b"MZ") and b"\x00" in head[:64]:  # DOS/PE header; text may start "MZ"
        return "executable"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    pdf_at = head.find(b"%PDF-")
    if pdf_at >= 0 and not _looks_like_markup(head[:pdf_at]):  # no HTML/PDF polyglots
        return "pdf"
    if _looks_like_markup(head):
        return "markup"
    if b"\x00" not in data and _is_utf8(data):
        return "text"
    return None


def _looks_like_markup(head: bytes) -> bool:
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    return text.startswith(b"<") or any(tag in text for tag in _MARKUP)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _refusal(kind: str | None, data: bytes) -> str:
    if kind in ("executable", "script"):
        return "Programs and scripts are not allowed."
    if kind == "markup":
        return "HTML, SVG and XML files are not allowed because they can contain scripts."
    if b"\x00" not in data[:65536]:
        return "Text files must be UTF-8 encoded."  # e.g. a GBK CSV exported by Excel
    return ("This file type is not allowed. Allowed: PDF, PNG, JPEG, GIF, WebP, Word, Excel, "
            "PowerPoint, OpenDocument, plain text and CSV.")


def _probe(target: str, data: bytes, *, complex_message: str) -> dict[str, Any]:
    try:
        return run_isolated(target, data, timeout=PROBE_TIMEOUT, memory_mb=PROBE_MEMORY_MB)
    except SandboxError as exc:
        if exc.reason == "crashed":
            # The probes turn every parser exception into a refusal, so a crash is our bug or a
            # broken deployment (child cannot start, import fails): a 500 that gets noticed,
            # not a 422 that blames every user's file.
            raise EContractError("The file could not be checked because of a server problem.",
                                 code="upload_check_failed") from exc
        # Out of time or memory: the file attacks the parser, or is too much for it.
        raise UploadRejected(complex_message, code="upload_unreadable",
                             details={"reason": exc.reason}) from exc


# --- file names --------------------------------------------------------------------------------

_WINDOWS_DEVICES = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                              *(f"LPT{i}" for i in range(1, 10))})


def _shorten(name: str, limit: int) -> str:
    if len(name) <= limit:
        return name
    stem, dot, extension = name.rpartition(".")
    if dot and stem and 0 < len(extension) <= 16:
        return f"{stem[: limit - len(extension) - 1].rstrip('. ')}.{extension}"
    return name[:limit]


# --- ZIP: OOXML and ODF --------------------------------------------------------------------------

_OOXML = (("word/", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
          ("xl/", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
          ("ppt/", "application/vnd.openxmlformats-officedocument.presentationml.presentation"))
_ODF = frozenset({"application/vnd.oasis.opendocument.text",
                  "application/vnd.oasis.opendocument.spreadsheet",
                  "application/vnd.oasis.opendocument.presentation"})
_NOT_OFFICE = ("This file type is not allowed. ZIP archives are accepted only as Word, Excel, "
               "PowerPoint or OpenDocument files.")


def _office_type(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> str:
    names = [info.filename for info in infos]
    lowered = [name.lower() for name in names]
    # Macros (VBA in OOXML, Basic/scripts in ODF) are the classic malware carrier.
    if any(n.endswith("vbaproject.bin") or n.startswith(("basic/", "scripts/")) for n in lowered):
        raise UploadRejected("Office documents with macros are not allowed.",
                             code="upload_type_not_allowed")
    if "[Content_Types].xml" in names:
        for prefix, content_type in _OOXML:
            if any(name.startswith(prefix) for name in names):
                return content_type
    elif infos and infos[0].filename == "mimetype":  # ODF: stored first, holds the media type
        with archive.open(infos[0]) as member:
            media_type = member.read(128).decode("ascii", "replace").strip()
        if media_type in _ODF:
            return media_type
    raise UploadRejected(_NOT_OFFICE, code="upload_type_not_allowed")


# --- PDF (runs inside the sandbox) --------------------------------------------------------------

_ENCRYPTED, _LAUNCH, _JAVASCRIPT, _XFA = "encrypted", "launch", "javascript", "xfa"
_FINDINGS = {  # most serious first: that one is reported
    _ENCRYPTED: ("upload_encrypted", "The PDF is encrypted or password-protected. "
                 "Please upload an unprotected copy."),
    _LAUNCH: ("upload_launch_action",
              "The PDF contains an action that starts other programs, which is not allowed."),
    _JAVASCRIPT: ("upload_javascript", "The PDF contains JavaScript, which is not allowed."),
    _XFA: ("upload_xfa", "The PDF contains an XFA form, which is not supported. "
           "Please print it to a regular PDF first."),
}
_VERSION = re.compile(r"%PDF-(\d\.\d)")
_CATALOG_VERSION = re.compile(r"/(\d\.\d)")


def _probe_pdf(data: bytes) -> dict[str, Any]:
    import logging

    from pypdf import PdfReader, apply_configuration

    # Hostile files make pypdf log a warning per broken object; nobody reads them here.
    logging.getLogger("pypdf").setLevel(logging.CRITICAL)
    start = data[:_HEADER_WINDOW].find(b"%PDF-")
    # No external JBIG2 decoder: the child must not start programs.
    with apply_configuration(jbig2dec_binary=None):
        # strict: a broken xref is refused instead of "repaired" by guessing, because a viewer
        # that guesses differently could see objects (and scripts) that we never checked.
        reader = PdfReader(io.BytesIO(data[start:]), strict=True)
        if reader.is_encrypted:  # even with an empty user password, which pypdf opens silently
            _raise_findings({_ENCRYPTED})
        refs = _object_refs(reader)
        version = _pdf_version(reader)
        _raise_findings(_scan_objects(reader, refs))
        page_count = _check_page_tree(reader)
    return {"page_count": page_count, "pdf_version": version, "text": _page_text(data[start:])}


MAX_TEXT_CHARS = 1_000_000
"""Text kept for keyword search: about 500 dense pages; the rest is not indexed."""


def _page_text(data: bytes) -> str:
    """The document's text, page by page (PDFium reads CJK text correctly where pypdf often
    does not); runs in the sandbox child, after the checks above accepted the file."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(data)
    parts: list[str] = []
    size = 0
    try:
        for index in range(len(document)):
            page = document[index]
            text_page = page.get_textpage()
            try:
                text = text_page.get_text_range()
            finally:
                text_page.close()
                page.close()
            parts.append(text)
            size += len(text)
            if size >= MAX_TEXT_CHARS:
                break
    finally:
        document.close()
    return "\n".join(parts).strip()[:MAX_TEXT_CHARS]


def _raise_findings(findings: set[str]) -> None:
    for finding, (code, message) in _FINDINGS.items():
        if finding in findings:
            raise UploadRejected(message, code=code, details={"findings": sorted(findings)})


def _pdf_version(reader: PdfReader) -> str:
    header = _VERSION.fullmatch(reader.pdf_header)
    if header is None:
        raise UploadRejected(_DAMAGED, code="upload_unreadable")
    version = header.group(1)
    # A later revision may raise the version in the catalog (PDF 1.4+).
    catalog = _CATALOG_VERSION.fullmatch(str(reader.root_object.get("/Version", "")))
    if catalog is not None and catalog.group(1) > version:
        version = catalog.group(1)
    return version


def _object_refs(reader: PdfReader) -> list[tuple[int, int]]:
    """Every (number, generation) in the cross-reference data, object streams included."""
    refs = sorted({(num, gen) for gen, entries in reader.xref.items() for num in entries}
                  | {(num, 0) for num in reader.xref_objStm})
    if len(refs) > _MAX_OBJECTS:  # checked before parsing any object
        raise UploadRejected(_TOO_COMPLEX, code="upload_unreadable")
    return [ref for ref in refs if ref[0] != 0]  # 0 heads the free list, never an object


def _scan_objects(reader: PdfReader, refs: list[tuple[int, int]]) -> set[str]:
    """Look at EVERY indirect object, including those packed in object streams.

    Following references from the catalog is not enough: a viewer may reach objects through
    paths we would not model, so anything present in the file counts.
    """
    from pypdf.generic import IndirectObject, StreamObject

    findings: set[str] = set()
    seen: set[int] = set()
    decoded = 0
    _scan_value(reader.trailer, findings, seen)
    for num, gen in refs:
        obj = reader.get_object(IndirectObject(num, gen, reader))
        _scan_value(obj, findings, seen)
        if isinstance(obj, StreamObject):
            decoded += _stream_cost(obj)
            if decoded > _MAX_DECODED_BYTES:
                raise UploadRejected(_TOO_COMPLEX, code="upload_unreadable")
    return findings


def _scan_value(root: PdfObject | None, findings: set[str], seen: set[int]) -> None:
    """Check every dictionary nested (directly, not via references) in ``root``."""
    from pypdf.generic import ArrayObject, DictionaryObject

    stack: list[Any] = [root]
    while stack:
        item = stack.pop()
        if not isinstance(item, (DictionaryObject, ArrayObject)) or id(item) in seen:
            continue
        seen.add(id(item))  # pypdf copies inherited page attributes: visit each container once
        if isinstance(item, DictionaryObject):
            _check_dict(item, findings)
            stack.extend(dict.values(item))
        else:
            stack.extend(list.__iter__(item))


def _check_dict(obj: DictionaryObject, findings: set[str]) -> None:
    keys = set(dict.keys(obj))
    # /JS: script of a JavaScript or Rendition action; /JavaScript: the document-level name
    # tree; /OnInstantiate: scripts of 3D artwork. Name escapes (/J#53) are decoded by pypdf.
    if keys & {"/JS", "/JavaScript", "/OnInstantiate"}:
        findings.add(_JAVASCRIPT)
    if "/XFA" in keys:
        findings.add(_XFA)
    if "/Encrypt" in keys:  # e.g. in an xref stream of an incremental update
        findings.add(_ENCRYPTED)
    action = _resolve(dict.get(obj, "/S"))
    if action == "/JavaScript":
        findings.add(_JAVASCRIPT)
    elif action == "/Launch":
        findings.add(_LAUNCH)
    elif action == "/URI" and _is_script_uri(_resolve(dict.get(obj, "/URI"))):
        findings.add(_JAVASCRIPT)


def _resolve(value: Any) -> Any:
    """Follow a short chain of references: ``/S 12 0 R`` with ``12 0 obj /JavaScript`` counts."""
    from pypdf.generic import IndirectObject

    for _ in range(8):
        if not isinstance(value, IndirectObject):
            return value
        value = value.get_object()
    return None


def _is_script_uri(uri: Any) -> bool:
    from pypdf.generic import ByteStringObject

    text = uri.decode("latin-1") if isinstance(uri, ByteStringObject) else str(uri or "")
    return re.sub(r"[\s\x00-\x1f]", "", text).lower().startswith(("javascript:", "vbscript:"))


def _stream_cost(stream: StreamObject) -> int:
    """Decoded size of a stream that readers decode in full; images are checked, not decoded.

    Page contents, forms, fonts and object streams are decoded completely by every viewer,
    renderer and signer that touches the file, so one that inflates to gigabytes is refused
    here, once (pypdf caps each stream; we cap the sum). Images are decoded by renderers only
    up to their declared size, so that size is what must be sane; inflating them here would
    refuse long lossless scans for no gain.
    """
    if _resolve(dict.get(stream, "/Subtype")) == "/Image":
        width, height = (_resolve(dict.get(stream, key)) for key in ("/Width", "/Height"))
        if isinstance(width, int) and isinstance(height, int) and \
                width * height > _MAX_IMAGE_PIXELS:
            raise UploadRejected(_TOO_COMPLEX, code="upload_unreadable")
        return 0
    return _decoded_size(stream)


def _decoded_size(stream: StreamObject) -> int:
    from pypdf.errors import DependencyError
    from pypdf.filters import decode_stream_data

    try:
        return len(decode_stream_data(stream))  # not get_data(): that caches the result
    except (DependencyError, NotImplementedError):
        return 0  # a filter we cannot run here (JBIG2, Brotli, /Crypt): nothing to measure


def _check_page_tree(reader: PdfReader) -> int:
    """Count the pages and check each one's /Parent chain and size."""
    pages = reader.pages  # pypdf refuses cyclic /Kids and overly deep or large trees
    if len(pages) == 0:
        raise UploadRejected("The PDF has no pages.", code="upload_unreadable")
    for page in pages:
        _check_parents(page)
        # Renderers size bitmaps from the page box: a 1 x 1,000,000 pt page previewed 800 px
        # wide is a 10^9-pixel image. ISO 32000 allows 3 to 14,400 units per side.
        box = page.mediabox
        if not all(_PAGE_SIDE[0] <= abs(side) <= _PAGE_SIDE[1]
                   for side in (box.width, box.height)):
            raise UploadRejected("The PDF has pages of an unsupported size.",
                                 code="upload_unreadable")
    return len(pages)


def _check_parents(page: DictionaryObject) -> None:
    """Refuse a /Parent chain that loops or goes too deep: viewers walk it for inheritance."""
    from pypdf.generic import DictionaryObject, IndirectObject

    node: Any = page
    seen = {_ref_key(page.indirect_reference)}
    for _ in range(_MAX_TREE_DEPTH):
        parent = dict.get(node, "/Parent")
        if parent is None:
            return
        if not isinstance(parent, IndirectObject) or _ref_key(parent) in seen:
            raise UploadRejected(_DAMAGED, code="upload_unreadable")
        seen.add(_ref_key(parent))
        node = parent.get_object()
        if not isinstance(node, DictionaryObject):
            raise UploadRejected(_DAMAGED, code="upload_unreadable")
    raise UploadRejected(_TOO_COMPLEX, code="upload_unreadable")


def _ref_key(ref: Any) -> tuple[int, int] | None:
    return (ref.idnum, ref.generation) if ref is not None else None
