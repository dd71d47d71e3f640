"""prepare_document: a clean single-revision rewrite, the added pages, fields and attachments."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
from pathlib import Path

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import enumerate_sig_fields
from pypdf import PdfReader, PdfWriter
from pypdf import generic as g

from econtract.errors import SigningError, ValidationFailed
from econtract.signing import PreparedDocument, certify, prepare_document
from tests.signing.conftest import ATTACHMENTS, Flow, contract_pdf, prepare_spec
from tests.signing.testpki import TestPki

SHADOW = b"SHADOW CONTENT"


def _n(name: str) -> g.NameObject:
    return g.NameObject(name)


def _stream(writer: PdfWriter, data: bytes, **entries: g.PdfObject) -> g.IndirectObject:
    stream = g.DecodedStreamObject()
    stream.set_data(data)
    for key, value in entries.items():
        stream[_n("/" + key)] = value
    return writer._add_object(stream)


def _helvetica() -> g.DictionaryObject:
    return g.DictionaryObject({_n("/Font"): g.DictionaryObject({_n("/F1"): g.DictionaryObject({
        _n("/Type"): _n("/Font"), _n("/Subtype"): _n("/Type1"),
        _n("/BaseFont"): _n("/Helvetica")})})})


def _js(code: str) -> g.DictionaryObject:
    return g.DictionaryObject({_n("/S"): _n("/JavaScript"), _n("/JS"): g.TextStringObject(code)})


def _annot(writer: PdfWriter, page: g.DictionaryObject, **entries: g.PdfObject) -> None:
    annot = g.DictionaryObject({_n("/Type"): _n("/Annot")})
    annot.update({_n("/" + k): v for k, v in entries.items()})
    ref = writer._add_object(annot)
    page.setdefault(_n("/Annots"), g.ArrayObject()).append(ref)


def _rect(*values: float) -> g.ArrayObject:
    return g.ArrayObject(g.FloatObject(v) for v in values)


def hostile_pdf() -> tuple[bytes, int]:
    """An upload with every active or hidden feature prepare must remove.

    :return: the PDF and the object number of its planted, unreferenced shadow catalog.
    """
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(contract_pdf("Visible contract text."))))
    root, page = writer._root_object, writer.pages[0]
    root[_n("/OpenAction")] = _js("app.alert('open')")
    root[_n("/AA")] = g.DictionaryObject({_n("/WC"): _js("app.alert('close')")})
    root[_n("/Names")] = g.DictionaryObject({_n("/JavaScript"): g.DictionaryObject({
        _n("/Names"): g.ArrayObject([g.TextStringObject("init"), _js("app.alert('names')")])})})
    writer.add_attachment("payload.exe", b"MZ not really")
    page[_n("/AA")] = g.DictionaryObject({_n("/O"): _js("app.alert('page')")})
    widget_ap = _stream(writer, b"BT /F1 10 Tf 2 4 Td (FILLED FORM VALUE) Tj ET",
                        Type=_n("/XObject"), Subtype=_n("/Form"), BBox=_rect(0, 0, 200, 20),
                        Resources=_helvetica())
    _annot(writer, page, Subtype=_n("/Widget"), FT=_n("/Tx"), T=g.TextStringObject("name"),
           Rect=_rect(72, 600, 272, 620), AP=g.DictionaryObject({_n("/N"): widget_ap}),
           AA=g.DictionaryObject({_n("/K"): _js("app.alert('key')")}))
    root[_n("/AcroForm")] = g.DictionaryObject({
        _n("/Fields"): g.ArrayObject(page["/Annots"]), _n("/XFA"): g.TextStringObject("<xdp/>")})
    uri = g.DictionaryObject({_n("/S"): _n("/URI"), _n("/URI"): g.TextStringObject(
        "https://example.com/terms")})
    _annot(writer, page, Subtype=_n("/Link"), Rect=_rect(72, 500, 200, 520), A=uri)
    launch = g.DictionaryObject({_n("/S"): _n("/Launch"), _n("/F"): g.TextStringObject("calc")})
    _annot(writer, page, Subtype=_n("/Link"), Rect=_rect(72, 450, 200, 470), A=launch)
    _annot(writer, page, Subtype=_n("/FileAttachment"), Rect=_rect(10, 10, 20, 20))
    _annot(writer, page, Subtype=_n("/FreeText"), Rect=_rect(72, 300, 300, 320),
           F=g.NumberObject(2), Contents=g.TextStringObject("hidden note"))
    shadow_number = _plant_shadow(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue(), shadow_number


def _plant_shadow(writer: PdfWriter) -> int:
    """An unreferenced second catalog with its own page tree showing SHADOW (NDSS'21 style)."""
    content = _stream(writer, b"BT /F1 24 Tf 72 700 Td (" + SHADOW + b") Tj ET")
    pages = g.DictionaryObject({_n("/Type"): _n("/Pages"), _n("/Count"): g.NumberObject(1)})
    pages_ref = writer._add_object(pages)
    shadow_page = g.DictionaryObject({
        _n("/Type"): _n("/Page"), _n("/Parent"): pages_ref, _n("/Contents"): content,
        _n("/MediaBox"): _rect(0, 0, 595, 842), _n("/Resources"): _helvetica()})
    pages[_n("/Kids")] = g.ArrayObject([writer._add_object(shadow_page)])
    catalog = writer._add_object(g.DictionaryObject({_n("/Type"): _n("/Catalog"),
                                                     _n("/Pages"): pages_ref}))
    return catalog.idnum


def root_swap(pdf: bytes, root_number: int) -> bytes:
    """Append an update that contains no object at all, only a trailer with a new /Root."""
    prev = int(re.findall(rb"startxref\s+(\d+)", pdf)[-1])
    size = int(PdfFileReader(io.BytesIO(pdf), strict=False).trailer["/Size"])
    xref_at = len(pdf) + 1
    tail = (f"\nxref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size {size} /Root {root_number} 0 R "
            f"/Prev {prev} >>\nstartxref\n{xref_at}\n%%EOF\n")
    return pdf + tail.encode()


def pdftotext(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          check=False, timeout=60)
    return done.stdout.decode("utf-8", "replace")


def unreachable_objects(pdf: bytes) -> set[int]:
    """Object numbers in the xref table that nothing reachable from the trailer refers to."""
    reader = PdfReader(io.BytesIO(pdf))
    seen: set[int] = set()
    todo: list[g.PdfObject] = [reader.trailer]
    while todo:
        obj = todo.pop()
        if isinstance(obj, g.IndirectObject):
            if obj.idnum in seen:
                continue
            seen.add(obj.idnum)
            todo.append(obj.get_object())
        elif isinstance(obj, dict):
            todo.extend(obj.values() if not isinstance(obj, g.StreamObject)
                        else [v for k, v in obj.items() if k != "/Length"])
        elif isinstance(obj, list):
            todo.extend(obj)
    listed = {idnum for table in reader.xref.values() for idnum in table if idnum}
    return listed - seen


@pytest.fixture(scope="module")
def hostile() -> tuple[bytes, int, PreparedDocument]:
    upload, shadow = hostile_pdf()
    return upload, shadow, prepare_document(upload, prepare_spec(signers=2))


def test_shadow_attack_is_real_on_the_upload(hostile: tuple[bytes, int, PreparedDocument],
                                             tmp_path: Path) -> None:
    upload, shadow, _ = hostile
    assert SHADOW.decode() in pdftotext(root_swap(upload, shadow), tmp_path)


def test_prepare_drops_the_shadow_catalog(hostile: tuple[bytes, int, PreparedDocument],
                                          tmp_path: Path) -> None:
    _, shadow, prepared = hostile
    assert SHADOW not in prepared.pdf
    assert unreachable_objects(prepared.pdf) == set()
    swapped = root_swap(prepared.pdf, shadow)
    assert SHADOW.decode() not in pdftotext(swapped, tmp_path)


def test_prepare_removes_active_content(hostile: tuple[bytes, int, PreparedDocument]) -> None:
    _, _, prepared = hostile
    for marker in (b"/JavaScript", b"/OpenAction", b"/AA", b"/Launch", b"/XFA", b"app.alert",
                   b"payload.exe", b"/FileAttachment", b"hidden note"):
        assert marker not in prepared.pdf, marker
    reader = PdfReader(io.BytesIO(prepared.pdf))
    links = [a.get_object() for a in reader.pages[0].get("/Annots", [])]
    assert [a["/A"]["/URI"] for a in links] == ["https://example.com/terms"]
    fields = {name for name, _, _ in enumerate_sig_fields(
        PdfFileReader(io.BytesIO(prepared.pdf), strict=True))}
    assert fields == {"signer-1", "signer-2"}  # the upload's text field is gone …


def test_prepare_flattens_form_fields(hostile: tuple[bytes, int, PreparedDocument],
                                      tmp_path: Path) -> None:
    text = pdftotext(hostile[2].pdf, tmp_path)
    assert "FILLED FORM VALUE" in text  # … but what it showed is still on the page
    assert "Visible contract text." in text


def test_prepared_document_is_one_clean_revision(flow: Flow) -> None:
    pdf = flow.prepared.pdf
    assert pdf.count(b"%%EOF") == 1 and b"/Prev" not in pdf
    reader = PdfFileReader(io.BytesIO(pdf), strict=True)
    assert reader.xrefs.total_revisions == 1
    assert flow.prepared.sha256 == hashlib.sha256(pdf).hexdigest()
    assert unreachable_objects(pdf) == set()
    info = reader.trailer["/Info"]
    assert info["/Title"] == "软件开发服务合同 / Software development agreement"
    assert str(info["/Producer"]).startswith("econtract")
    assert reader.root["/Lang"] == "zh-CN"


def test_clauses_and_signature_page_text(flow: Flow, tmp_path: Path) -> None:
    text = pdftotext(flow.prepared.pdf, tmp_path)
    for expected in ("附加条款 / Additional clauses", "第 1 条", "甲方应在本合同签署后三十日内",
                     "签署页 / Signature page", "张伟", "li.na@example.cn", "见证人 / Witness"):
        assert expected in text, expected
    assert len(PdfReader(io.BytesIO(flow.prepared.pdf)).pages) == 3


def test_signature_fields_sit_on_the_signature_page_boxes(flow: Flow) -> None:
    reader = PdfFileReader(io.BytesIO(flow.prepared.pdf), strict=True)
    fields = {name: ref.get_object() for name, value, ref in enumerate_sig_fields(reader)
              if value is None}
    assert list(fields) == [f.name for f in flow.prepared.fields]
    last_page = reader.root["/Pages"]["/Kids"].raw_get(-1)
    for info in flow.prepared.fields:
        widget = fields[info.name]
        assert tuple(round(float(v)) for v in widget["/Rect"]) == info.box
        assert info.page == 2 and widget.raw_get("/P").idnum == last_page.idnum
    boxes = [f.box for f in flow.prepared.fields]
    assert boxes[0][1] == boxes[1][1] and boxes[0][0] < boxes[1][0]  # two per row
    assert boxes[2][3] < boxes[0][1]  # the third starts a new row


def test_attachments_are_embedded_with_hashes(flow: Flow) -> None:
    attachments = PdfReader(io.BytesIO(flow.prepared.pdf)).attachments
    assert sorted(attachments) == sorted(a.name for a in ATTACHMENTS)
    for attachment in ATTACHMENTS:
        (data,) = attachments[attachment.name]
        assert hashlib.sha256(data).digest() == hashlib.sha256(attachment.data).digest()
    root = PdfFileReader(io.BytesIO(flow.prepared.pdf), strict=True).root
    tree = root["/Names"]["/EmbeddedFiles"]["/Names"]
    names = [tree[i] for i in range(len(tree))]
    assert [str(n) for n in names[0::2]] == ["scope.txt", "报价单.csv"]  # byte order
    assert len(root["/AF"]) == len(ATTACHMENTS)
    by_name = {a.name: a for a in ATTACHMENTS}
    for name, spec in zip(names[0::2], names[1::2], strict=True):
        stream = spec["/EF"]["/F"]
        expected = by_name[str(name)]
        assert stream["/Params"]["/Size"] == len(expected.data)
        assert bytes(stream["/Params"]["/CheckSum"]) == hashlib.md5(expected.data).digest()
        assert "/ModDate" in stream["/Params"]
        assert stream["/Subtype"] == "/" + expected.mime_type
        assert spec["/AFRelationship"] == "/Supplement"


def test_prepare_refuses_garbage_and_encrypted_input() -> None:
    with pytest.raises(ValidationFailed):
        prepare_document(b"%PDF-1.7\nnot really a pdf", prepare_spec())
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(contract_pdf())))
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(ValidationFailed):
        prepare_document(out.getvalue(), prepare_spec())


def test_certify_refuses_a_document_that_is_already_signed(flow: Flow, pki: TestPki) -> None:
    with pytest.raises(SigningError):
        certify(flow.certified, key=pki.seal_key, tsa=None, reason="again", location="x",
                signing_time=flow.signing_time)
