"""Turn an uploaded PDF into a clean contract ready to sign, then certify it.

:func:`prepare_document` rewrites the upload in two passes:

1. **pypdf, page by page** (a whitelist, not a blacklist): only the pages are copied — never the
   catalog, so ``/OpenAction``, ``/AA``, ``/Names`` (JavaScript, embedded files), ``/AcroForm``
   (and its XFA), ``/Outlines``, ``/OCProperties``, ``/StructTreeRoot`` and XMP metadata of the
   upload are gone. Each page keeps only its geometry, resources, contents and annotations, and of
   the annotations only:

   * markup annotations (notes, highlights, stamps, ink …) that are not hidden, without actions;
   * links whose action is a plain ``/URI`` (internal ``/GoTo`` links and named destinations are
     dropped: their page references would pull the upload's page tree back in);
   * form widgets are **flattened**: their visible appearance is painted into the page content and
     the field removed — a contract must not carry fields a later "form fill" could change.

   Everything else (file attachments, sound, movie, 3D, rich media, screen annotations, actions of
   any other kind: JavaScript, Launch, SubmitForm, GoToR …) is dropped. Optional content loses its
   catalog entry, so every layer of the upload is shown: nothing hidden can be switched on later.
2. **pyHanko, a full (non-incremental) rewrite**: only objects reachable from the new catalog are
   written, so a shadow catalog or page tree planted in the upload does not survive (security.md
   A1 "Shadow attacks"). The clauses and signature pages, every signer's signature field (they
   must exist before the certification signature, pitfall 6), the attachments and the document
   information are added in the same pass; the result is a single revision.

Placed fields: a signer whose ``SignerSlot`` has a ``page`` and ``rect`` gets their field there, on
the upload's own page (checked by :func:`check_placements`: the page exists and is not rotated, the
rectangle lies inside its visible area, placed fields do not overlap); the others get a box on the
signature page. The signature page is always added and lists every party — a placed signer's cell
says on which page they sign — so it remains the one record of who signs the contract. Placed
fields exist before the certification like the others, so signing them is the "signing" DocMDP
P=2 permits and the verifier's rules apply unchanged.

:func:`certify` then adds the platform's certification signature (DocMDP P=2) as the first one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from io import BytesIO
from typing import cast

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.embed import EmbeddedFileObject, EmbeddedFileParams, FileSpec, embed_file
from pyhanko.pdf_utils.generic import pdf_name, pdf_string
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PdfFileWriter, copy_into_new_writer
from pyhanko.sign.fields import MDPPerm, SigFieldSpec, SigSeedSubFilter, append_signature_field
from pyhanko.sign.signers import PdfSignatureMetadata
from pypdf import PdfReader, PdfWriter
from pypdf import generic as pp
from pypdf.errors import PyPdfError

from econtract.errors import SigningError, ValidationFailed
from econtract.signing.pages import clauses_page, signature_page, signature_page_count
from econtract.signing.sign import field_states, open_for_update, run_signer
from econtract.signing.specs import (
    CERTIFICATION_FIELD,
    Attachment,
    FieldInfo,
    PreparedDocument,
    PrepareSpec,
    SignerSlot,
    SigningKey,
)
from econtract.signing.timestamps import TsaClient


def prepare_document(pdf: bytes, spec: PrepareSpec) -> PreparedDocument:
    """Rewrite ``pdf`` clean and add the contract's pages, fields and attachments.

    :param pdf: the uploaded or rendered contract (already accepted by the upload checks).
    :param spec: title, signers, additional clauses, attachments, locale.
    :return: the prepared, unsigned document with its signature fields.
    :raises ValidationFailed: the PDF is encrypted or cannot be read, or a signer's placement
        does not fit the upload (see :func:`check_placements`).
    """
    created = spec.created_at or datetime.now(UTC)
    upload = _open_upload(pdf)  # fail fast, before the pages are typeset
    placed = check_placements(upload, spec.signers)
    extra: list[bytes] = []
    if spec.clauses:
        extra.append(clauses_page(spec.title, spec.clauses, spec.locale))
    sig_pdf, boxes = signature_page(spec.title, spec.signers)
    extra.append(sig_pdf)
    clean, flatten = _clean_pages(upload, extra)
    try:
        reader = PdfFileReader(BytesIO(clean), strict=True)
        offset = int(reader.root["/Pages"]["/Count"]) - signature_page_count(len(spec.signers))
        on_sig_page = {f.name: FieldInfo(f.name, f.page + offset, f.box) for f in boxes}
        fields = tuple(placed.get(slot.field_name) or on_sig_page[slot.field_name]
                       for slot in spec.signers)
        writer = copy_into_new_writer(reader, {"info": _info(spec.title, created)})
        writer.document_meta.last_modified = created
        for page_index, ops in flatten.items():
            _paint_flattened(writer, page_index, ops)
        for info in fields:
            append_signature_field(writer, SigFieldSpec(info.name, on_page=info.page,
                                                        box=info.box))
        _embed_attachments(writer, spec.attachments, created)
        writer.root["/Lang"] = pdf_string("zh-CN" if spec.locale.startswith("zh") else "en")
        writer.update_root()  # type: ignore[no-untyped-call]  # pyHanko: untyped
        out = BytesIO()
        writer.write(out)  # type: ignore[no-untyped-call]  # pyHanko: untyped
        result = out.getvalue()
        PdfFileReader(BytesIO(result), strict=True).root  # noqa: B018  # re-read strictly
    except (PdfError, ValueError, KeyError, TypeError) as exc:
        raise ValidationFailed("The PDF could not be rewritten") from exc
    return PreparedDocument(result, fields, hashlib.sha256(result).hexdigest())


def _info(title: str, created: datetime) -> generic.DictionaryObject:
    # pyHanko appends "; pyHanko <version>" to /Producer whenever it writes a revision.
    return generic.DictionaryObject({  # type: ignore[no-untyped-call]  # pyHanko: untyped
        pdf_name("/Title"): generic.TextStringObject(title),
        pdf_name("/Producer"): generic.TextStringObject("econtract"),
        pdf_name("/CreationDate"): generic.pdf_date(created),
    })


def _unique_names(attachments: Sequence[Attachment]) -> list[str]:
    seen: set[str] = set()
    names = []
    for attachment in attachments:
        stem, dot, ext = attachment.name.rpartition(".")
        name, n = attachment.name, 1
        while name in seen:
            n += 1
            name = f"{stem} ({n}).{ext}" if dot and stem else f"{attachment.name} ({n})"
        seen.add(name)
        names.append(name)
    return names


def _name_tree_key(name: str) -> bytes:
    """Name trees are sorted by the bytes of their keys: PDFDocEncoding, else UTF-16BE + BOM."""
    try:
        return name.encode("latin-1")  # PDFDocEncoding agrees with Latin-1 on printable text
    except UnicodeEncodeError:
        return b"\xfe\xff" + name.encode("utf-16-be")


def _embed_attachments(writer: PdfFileWriter, attachments: Sequence[Attachment],
                       created: datetime) -> None:
    """Embed each attachment (/EmbeddedFiles, sorted by name) and list it in the catalog's /AF."""
    specs = []
    pairs = zip(_unique_names(attachments), attachments, strict=True)
    for name, attachment in sorted(pairs, key=lambda pair: _name_tree_key(pair[0])):
        params = EmbeddedFileParams(embed_size=True, embed_checksum=True,
                                    creation_date=attachment.modified or created,
                                    modification_date=attachment.modified or created)
        stream = EmbeddedFileObject.from_file_data(writer, attachment.data, params=params,
                                                   mime_type=attachment.mime_type)
        spec = FileSpec(file_spec_string=name, file_name=name, embedded_data=stream,
                        description=attachment.description)
        # af_relationship is left unset because pyHanko would then force PDF 2.0; the /AF
        # array and /AFRelationship are added by hand below (valid in PDF 1.7 / PDF/A-3 too).
        embed_file(writer, spec)
        specs.append(name)
    if not specs:
        return
    names = writer.root["/Names"]["/EmbeddedFiles"]["/Names"]
    refs = [names[i + 1] for i in range(0, len(names), 2)]
    for ref in refs:
        ref.get_object()["/AFRelationship"] = pdf_name("/Supplement")
    writer.root["/AF"] = writer.add_object(generic.ArrayObject(refs))
    writer.update_root()  # type: ignore[no-untyped-call]  # pyHanko: untyped


def certify(pdf: bytes, *, key: SigningKey, tsa: TsaClient | None, reason: str, location: str,
            signing_time: datetime) -> bytes:
    """Add the platform's certification signature: the first signature, DocMDP P=2.

    P=2 permits exactly what the signing flow needs — filling in (signing) the pre-created
    signature fields; the upload's own form fields were flattened, so there is nothing else to
    "fill" — and forbids everything else. The field is invisible: the signature page shows the
    signers, viewers show the certification in their signature panel.

    :param pdf: a prepared document (see :func:`prepare_document`), not yet signed.
    :param key: the platform seal key.
    :param tsa: where the signature timestamp comes from; ``None`` for no timestamp.
    :param reason: ``/Reason`` of the signature.
    :param location: ``/Location`` of the signature.
    :param signing_time: the claimed time (``/M``), timezone-aware.
    :return: the certified PDF (an incremental update of ``pdf``).
    :raises SigningError: the document already carries a signature.
    """
    writer = open_for_update(pdf)
    if any(field_states(writer.prev).values()):
        raise SigningError("Certification must be the first signature in the document")
    meta = PdfSignatureMetadata(
        field_name=CERTIFICATION_FIELD, md_algorithm="sha256", certify=True,
        docmdp_permissions=MDPPerm.FILL_FORMS, subfilter=SigSeedSubFilter.PADES,
        reason=reason, location=location)
    return run_signer(pdf, meta, key=key, tsa=tsa, signing_time=signing_time,
                      existing_fields_only=False, writer=writer)


# --- placed fields ----------------------------------------------------------------------------


def page_areas(pdf: bytes) -> list[tuple[float, float, float, float] | None]:
    """:func:`page_boxes` of a PDF given as bytes (for placement editors and their checks).

    :raises ValidationFailed: the PDF is encrypted or cannot be read.
    """
    reader = _open_upload(pdf)
    try:
        return page_boxes(reader)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValidationFailed("The PDF could not be read", code="upload_unreadable") from exc


def page_boxes(reader: PdfReader) -> list[tuple[float, float, float, float] | None]:
    """Per page of ``reader``, the visible area (CropBox ∩ MediaBox) where a field may go.

    :return: ``(x1, y1, x2, y2)`` in default user space per page, or ``None`` for a rotated page
        (``/Rotate`` ≠ 0: a signature appearance would be drawn sideways, so placing is refused).
    """
    boxes: list[tuple[float, float, float, float] | None] = []
    for page in reader.pages:
        if int(page.rotation) % 360:
            boxes.append(None)
            continue
        media, crop = page.mediabox, page.cropbox
        boxes.append((max(float(media.left), float(crop.left)),
                      max(float(media.bottom), float(crop.bottom)),
                      min(float(media.right), float(crop.right)),
                      min(float(media.top), float(crop.top))))
    return boxes


def check_placements(reader: PdfReader, slots: Sequence[SignerSlot]) -> dict[str, FieldInfo]:
    """The fields of the placed ``slots``, checked against the upload's pages.

    :return: field name → field on its page of the upload (the clean rewrite keeps the upload's
        pages first, in order, so the index carries over).
    :raises ValidationFailed: ``placement_page`` (no such page), ``placement_rotated_page``,
        ``placement_off_page`` (not wholly inside the visible area) or ``placement_overlap``
        (two signers' fields overlap: a later appearance would paint over an earlier one).
    """
    placed = [slot for slot in slots if slot.page is not None]
    if not placed:
        return {}
    try:
        areas = page_boxes(reader)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValidationFailed("The PDF could not be read", code="upload_unreadable") from exc
    fields: dict[str, FieldInfo] = {}
    for slot in placed:
        assert slot.page is not None and slot.box is not None
        if slot.page >= len(areas):
            raise ValidationFailed(f"The document has no page {slot.page + 1}",
                                   code="placement_page")
        area = areas[slot.page]
        if area is None:
            raise ValidationFailed(f"Page {slot.page + 1} is rotated; fields cannot be "
                                   "placed on it", code="placement_rotated_page")
        x1, y1, x2, y2 = slot.box
        if x1 < area[0] or y1 < area[1] or x2 > area[2] or y2 > area[3]:
            raise ValidationFailed(f"The field of {slot.field_name} is not inside page "
                                   f"{slot.page + 1}", code="placement_off_page")
        for other in fields.values():
            if other.page == slot.page and _overlap(other.box, slot.box):
                raise ValidationFailed(f"The fields of {other.name} and {slot.field_name} overlap",
                                       code="placement_overlap")
        fields[slot.field_name] = FieldInfo(slot.field_name, slot.page, slot.box)
    return fields


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


# --- pass 1: pypdf, page by page ------------------------------------------------------------

_PAGE_KEYS = frozenset({"/Type", "/MediaBox", "/CropBox", "/BleedBox", "/TrimBox", "/ArtBox",
                        "/Rotate", "/Resources", "/Contents", "/Annots", "/Group", "/UserUnit"})
_MARKUP = frozenset({"/Text", "/FreeText", "/Line", "/Square", "/Circle", "/Polygon", "/PolyLine",
                     "/Highlight", "/Underline", "/Squiggly", "/StrikeOut", "/Stamp", "/Caret",
                     "/Ink", "/Popup"})
# Keys of kept annotations that are actions or point outside the annotation (/P: the old page,
# /IRT, a popup's /Parent: possibly a dropped annotation) and would drag objects back in.
_ANNOT_DROP = ("/A", "/AA", "/P", "/IRT", "/Parent", "/OC", "/AF", "/Dest", "/PA")
_HIDDEN = 2 | 32  # annotation flags Hidden and NoView
_FLAT = "/EcFlat"


def _open_upload(pdf: bytes) -> PdfReader:
    try:
        reader = PdfReader(BytesIO(pdf), strict=False)
        encrypted = reader.is_encrypted
        pages = len(reader.pages)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValidationFailed("The PDF could not be read", code="upload_unreadable") from exc
    if encrypted:
        raise ValidationFailed("Encrypted PDFs cannot be signed", code="upload_encrypted")
    if not pages:
        raise ValidationFailed("The PDF has no pages", code="upload_unreadable")
    return reader


def _clean_pages(reader: PdfReader, appended: Sequence[bytes]) -> tuple[bytes, dict[int, bytes]]:
    """Copy the pages of ``reader`` then of ``appended`` into a new document, sanitised.

    :return: the new PDF and, per page index, content operators that paint flattened widgets
        (their appearance streams are already in the page's ``/XObject`` resources).
    """
    writer = PdfWriter()
    flatten: dict[int, bytes] = {}
    try:
        for index, page in enumerate(reader.pages):
            ops = _sanitise_page(page)
            if ops:
                flatten[index] = ops
            writer.add_page(page)
        for extra in appended:
            for page in PdfReader(BytesIO(extra)).pages:
                writer.add_page(page)
        out = BytesIO()
        writer.write(out)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValidationFailed("The PDF could not be read", code="upload_unreadable") from exc
    return out.getvalue(), flatten


def _sanitise_page(page: pp.DictionaryObject) -> bytes:
    for key in [k for k in page if k not in _PAGE_KEYS]:
        del page[key]
    annots = page.get("/Annots")
    if not isinstance(annots, pp.ArrayObject):
        page.pop("/Annots", None)
        return b""
    kept: list[pp.PdfObject] = []
    flat_ops: list[bytes] = []
    xobjects: dict[str, pp.PdfObject] = {}
    for ref in annots:
        annot = ref.get_object()
        subtype = annot.get("/Subtype")
        if int(annot.get("/F", 0)) & _HIDDEN:
            continue
        if subtype == "/Widget":
            _flatten_widget(annot, f"{_FLAT}{len(xobjects)}", xobjects, flat_ops)
        elif subtype == "/Link" and _uri_link(annot):
            kept.append(ref)
        elif subtype in _MARKUP:
            for key in _ANNOT_DROP:
                annot.pop(key, None)
            kept.append(ref)
    if kept:
        page[pp.NameObject("/Annots")] = pp.ArrayObject(kept)
    else:
        del page["/Annots"]
    if xobjects:
        resources = pp.DictionaryObject(page.get("/Resources") or {})
        merged = pp.DictionaryObject(resources.get("/XObject") or {})
        merged.update({pp.NameObject(k): v for k, v in xobjects.items()})
        resources[pp.NameObject("/XObject")] = merged
        page[pp.NameObject("/Resources")] = resources
    return b"".join(flat_ops)


def _uri_link(annot: pp.DictionaryObject) -> bool:
    """Keep a link only as a bare URI action (rebuilt, so no /Next chain survives)."""
    action = annot.get("/A")
    uri = action.get("/URI") if isinstance(action, pp.DictionaryObject) else None
    for key in _ANNOT_DROP:
        annot.pop(key, None)
    if action is None or action.get("/S") != "/URI" or not isinstance(uri, pp.TextStringObject
                                                                        | pp.ByteStringObject):
        return False
    annot[pp.NameObject("/A")] = pp.DictionaryObject({
        pp.NameObject("/S"): pp.NameObject("/URI"), pp.NameObject("/URI"): uri})
    return True


def _flatten_widget(annot: pp.DictionaryObject, name: str, xobjects: dict[str, pp.PdfObject],
                    ops: list[bytes]) -> None:
    """Queue the widget's normal appearance for painting where the widget was (ISO 32000 12.5.5)."""
    ap = annot.get("/AP")
    normal = ap.raw_get("/N") if isinstance(ap, pp.DictionaryObject) and "/N" in ap else None
    if normal is not None and not isinstance(normal.get_object(), pp.StreamObject):
        states = normal.get_object()  # on/off appearances: pick the current state (/AS)
        state = annot.get("/AS")
        normal = states.raw_get(state) if state in states else None
    if normal is None or "/Rect" not in annot:
        return
    stream = normal.get_object()
    bbox = [float(v) for v in stream.get("/BBox", [0, 0, 0, 0])]
    m = [float(v) for v in stream.get("/Matrix", [1, 0, 0, 1, 0, 0])]
    xs = [m[0] * x + m[2] * y + m[4] for x in bbox[0::2] for y in bbox[1::2]]
    ys = [m[1] * x + m[3] * y + m[5] for x in bbox[0::2] for y in bbox[1::2]]
    rect = [float(v) for v in cast(pp.ArrayObject, annot["/Rect"])]
    rx0, rx1 = sorted(rect[0::2])
    ry0, ry1 = sorted(rect[1::2])
    if max(xs) - min(xs) <= 0 or max(ys) - min(ys) <= 0:
        return
    sx = (rx1 - rx0) / (max(xs) - min(xs))
    sy = (ry1 - ry0) / (max(ys) - min(ys))
    xobjects[name] = normal
    ops.append(b"q %.4f 0 0 %.4f %.4f %.4f cm %s Do Q\n" % (
        sx, sy, rx0 - sx * min(xs), ry0 - sy * min(ys), name.encode()))


def _paint_flattened(writer: PdfFileWriter, page_index: int, ops: bytes) -> None:
    """Paint flattened widgets on top of the page, the old content isolated in q … Q."""
    before = writer.add_object(generic.StreamObject(stream_data=b"q\n"))
    after = writer.add_object(generic.StreamObject(stream_data=b"Q\n" + ops))
    writer.add_stream_to_page(page_index, before, prepend=True)  # type: ignore[no-untyped-call]  # pyHanko: untyped
    writer.add_stream_to_page(page_index, after)  # type: ignore[no-untyped-call]  # pyHanko: untyped
