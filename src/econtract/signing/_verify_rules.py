"""The verifier's own rules on top of pyHanko (security.md, "What a correct verifier must do").

Each check works on the raw bytes or on the revision structure on purpose: pyHanko's judgment is
the first line, these are the second, and each rule names the attack it stops. The change list
(:func:`describe_revision`) is what the report shows as "later changes" and what rules 5 and 6
(:func:`changes_problem`) are checked against, independently of pyHanko's difference analysis.
Everything is bounded (pages, fields, depth) because the input is hostile.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import HistoricalResolver, PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import EmbeddedPdfSignature

from econtract.signing.report import SignatureKind, clean_text

log = logging.getLogger(__name__)

_EOL = (b"\r\n", b"\n", b"\r")
_WS = rb"[\x00\t\n\f\r ]"
_HEX = re.compile(rb"[0-9A-Fa-f]*")
_CONTENTS_KEY = re.compile(rb"/Contents" + _WS + rb"*\Z")
_REVISION_END = re.compile(rb"startxref" + _WS + rb"+(\d+)" + _WS + rb"*%%EOF(?:\r\n|\r|\n)?\Z")
_OBJECT_HEADER = re.compile(rb"\d+" + _WS + rb"+\d+" + _WS + rb"+obj\b")
_WEAK_DIGESTS = frozenset({"md2", "md5", "sha1"})
MAX_PAGES = 5_000  # page walks in the change analysis stop here (a contract has far fewer)
MAX_FIELDS = 2_000


def deref(value: object) -> Any:
    """Resolve an indirect object or a reference (pyHanko 0.38 leaves these untyped)."""
    if isinstance(value, generic.IndirectObject):
        return value.get_object()  # type: ignore[no-untyped-call]  # untyped in pyHanko
    if isinstance(value, generic.Reference):
        return value.get_object()
    return value


# --- rule 2: byte range shape (USF, SWA) ---------------------------------------------------------


def byte_range_problem(data: bytes, byte_range: object, contents: bytes, sig_offset: int | None,
                       revision_startxref: int) -> str | None:
    """Why ``/ByteRange`` is not exactly "the signature's revision minus its ``/Contents``".

    USF leaves a dictionary whose range covers nothing or part of the file; SWA moves the signed
    tail and plants a copied dictionary with a new range in the unsigned gap. Both fail here:
    the gap must be precisely this dictionary's ``/Contents`` hex string, the dictionary must
    start and end inside the signed bytes, and the range must end where its revision ends.
    """
    values = list(byte_range) if isinstance(byte_range, generic.ArrayObject) else []
    if len(values) != 4 or not all(type(v) is generic.NumberObject for v in values):
        return "The /ByteRange is not four integers."
    start, a, b, c = (int(v) for v in values)
    if start != 0 or not (0 < a < b and c >= 0 and b + c <= len(data)):
        return "The /ByteRange does not describe two ranges around one gap inside the file."
    body = data[a + 1: b - 1]
    if data[a:a + 1] != b"<" or data[b - 1:b] != b">" or not _HEX.fullmatch(body):
        return "The gap in the /ByteRange is not a hexadecimal string."
    if len(body) % 2 or bytes.fromhex(body.decode("ascii")) != contents:
        return "The gap in the /ByteRange is not this signature's /Contents."
    if sig_offset is None or not sig_offset < a:
        return "The signature dictionary does not start inside the signed bytes."
    if not _CONTENTS_KEY.search(data[max(sig_offset, a - 64):a]):
        return "The gap in the /ByteRange does not follow this dictionary's /Contents key."
    if data.find(b"endobj", b, b + c) < 0:
        return "The signature dictionary does not end inside the signed bytes."
    end = _REVISION_END.search(data[max(0, b + c - 64): b + c])
    if end is None:
        return "The signed bytes do not end at the end of a revision (%%EOF)."
    if int(end.group(1)) != revision_startxref:
        return "The signed bytes end at a different revision than the signature belongs to."
    return None


def object_offset(reader: PdfFileReader, ref: generic.Reference) -> int | None:
    """File offset of an uncompressed object as the newest revision defining it says."""
    revision = reader.xrefs.get_last_change(ref)
    location = reader.xrefs.get_historical_ref(ref, revision)
    return location if isinstance(location, int) else None


# --- rule 1 and 5: what follows the last revision ------------------------------------------------


def eof_end(data: bytes, eof: int) -> int:
    """Offset just after ``%%EOF`` at ``eof`` and its optional end-of-line."""
    end = eof + 5
    for eol in _EOL:
        if data.startswith(eol, end):
            return end + len(eol)
    return end


def complete_prefixes(data: bytes, attempts: int = 8) -> Iterator[int]:
    """Lengths of candidate prefixes ending at an ``%%EOF``, newest first (bounded work)."""
    position = len(data)
    for _ in range(attempts):
        eof = data.rfind(b"%%EOF", 0, position)
        if eof < 0:
            return
        yield eof_end(data, eof)
        position = eof


def tail_problem(data: bytes, reader: PdfFileReader) -> str | None:
    """Bytes after the last revision that a repairing viewer may show but pyHanko ignores.

    ISA variants: trailing garbage, or objects appended *without* a cross-reference section
    (alone, or followed by a copy of the old ``startxref``), which readers in repair mode
    pick up. pyHanko 0.38 reads such a file as if the tail were not there.
    """
    eof = data.rfind(b"%%EOF")
    extra = len(data) - eof_end(data, eof)
    if extra > 0:
        return f"{extra} bytes follow the last %%EOF; they are not a proper incremental update."
    newest = reader.xrefs.get_xref_container_info(reader.xrefs.total_revisions - 1)
    startxref = data.rfind(b"startxref", 0, eof)
    between = data[newest.end_location:startxref]
    if startxref < newest.end_location or _OBJECT_HEADER.search(between) or b"%%EOF" in between:
        return "Objects follow the last cross-reference section; they belong to no revision."
    return None


# --- rule 3: algorithm policy --------------------------------------------------------------------


def weak_algorithm(signed_data: cms.SignedData) -> str | None:
    """MD5 or SHA-1 anywhere in the signer info (collisions make such signatures forgeable)."""
    for signer_info in signed_data["signer_infos"]:
        digest = str(signer_info["digest_algorithm"]["algorithm"].native)
        mechanism = signer_info["signature_algorithm"]
        name = str(mechanism["algorithm"].native)
        pss_hash = ""
        if name == "rsassa_pss":
            pss_hash = str(mechanism["parameters"]["hash_algorithm"]["algorithm"].native)
        if digest in _WEAK_DIGESTS or pss_hash in _WEAK_DIGESTS or name.split("_")[0] in \
                _WEAK_DIGESTS:
            return f"The signature uses a weak algorithm ({digest}, {name})."
    return None


# --- rule 4: revocation from the CRLs we hold, even without a distribution point ----------------


class HeldCrls:
    """The CRLs a verification holds (trust configuration and DSS), checked for every
    certificate of every validated path: pyHanko's revocation modes skip supplied CRLs for
    certificates without a CRL distribution point (security.md pitfall 3); this closes that gap.

    One instance serves one document: the chains of its signatures share their CAs, so each
    certificate is parsed once and each CRL's signature checked once per issuer.
    """

    def __init__(self, crls: list[bytes]) -> None:
        self.crls = [x509.load_der_x509_crl(blob) for blob in crls]
        self._certs: dict[bytes, x509.Certificate] = {}
        self._signed: dict[tuple[int, bytes], bool] = {}

    def revoked(self, path: list[asn1_x509.Certificate], at: datetime) -> str | None:
        """Why a certificate of ``path`` (root first) is revoked before ``at`` by a held CRL
        its issuer in the path signed; ``None`` if none is."""
        certs = [self._load(cert.dump()) for cert in path]
        for issuer, cert, named in zip(certs, certs[1:], path[1:], strict=False):
            for index, crl in enumerate(self.crls):
                if crl.issuer != issuer.subject or not self._signed_by(index, issuer):
                    continue
                entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
                if entry is not None and entry.revocation_date_utc <= at:
                    when = entry.revocation_date_utc.isoformat()
                    return f"The certificate of {clean_text(named.subject.human_friendly)} " \
                           f"was revoked on {when}."
        return None

    def _load(self, der: bytes) -> x509.Certificate:
        cert = self._certs.get(der)
        if cert is None:
            cert = self._certs[der] = x509.load_der_x509_certificate(der)
        return cert

    def _signed_by(self, index: int, issuer: x509.Certificate) -> bool:
        key = (index, issuer.fingerprint(hashes.SHA256()))
        if key not in self._signed:
            try:
                self._signed[key] = self.crls[index].is_signature_valid(
                    issuer.public_key())  # type: ignore[arg-type]
            except (TypeError, ValueError):  # key type that cannot sign CRLs
                self._signed[key] = False
        return self._signed[key]


# --- rule 5: what each later revision changed ----------------------------------------------------


class Category(IntEnum):
    """How much a change may matter, least first. Rules compare against these."""

    LTA = 0  # DSS, document timestamps, metadata: never visible content
    SIGNATURE = 1  # a signature into an invisible or pre-existing field
    FORM = 2  # form field values and their appearances
    WIDGET = 3  # a new visible signature field (SSA: it can paint over the page)
    ANNOTATION = 4  # any other new or changed annotation (EAA overlays)
    CONTENT = 5  # pages, content streams, catalog, anything unexplained


@dataclass(frozen=True)
class Change:
    revision: int  # pyHanko's 0-based index
    text: str
    category: Category

    def __str__(self) -> str:
        return f"revision {self.revision + 1}: {self.text}"


# Catalog entries described as a whole; the form's own fields are described one by one.
_CATALOG_PARTS = {
    "/DSS": ("validation data (DSS) updated", Category.LTA),
    "/Metadata": ("XMP metadata updated", Category.LTA),
    "/Extensions": ("extension declarations updated", Category.LTA),
    "/AcroForm": ("", Category.SIGNATURE),  # silent: its fields are described one by one
}
_INFO_BOOKKEEPING = frozenset({"/ModDate", "/Producer"})
_PAGE_KEYS = {"/Contents": "content", "/Resources": "resources", "/MediaBox": "size",
              "/CropBox": "size", "/Rotate": "rotation"}
_TREE_KEYS = frozenset({"/Kids", "/Count"})
_FORM_SETTINGS = frozenset({"/Fields", "/SigFlags", "/DR", "/DA"})
Field = tuple[generic.Reference, generic.DictionaryObject, str]  # ref, dictionary, field type


class _Diff:
    """Describes one revision against the previous one; ``explained`` collects what it covered."""

    def __init__(self, reader: PdfFileReader, revision: int) -> None:
        self.old: HistoricalResolver = reader.get_historical_resolver(revision - 1)
        self.new: HistoricalResolver = reader.get_historical_resolver(revision)
        self.revision = revision
        self.updated = reader.xrefs.explicit_refs_in_revision(revision)
        self.explained: set[generic.Reference] = set()
        self.widgets: set[generic.Reference] = set()  # annotations already described as fields
        self.changes: list[Change] = []

    def add(self, text: str, category: Category) -> None:
        self.changes.append(Change(self.revision, text, category))

    def existed(self, ref: generic.Reference) -> bool:
        return not self.old.is_ref_unassignable(ref)

    def differs(self, ref: generic.Reference) -> bool:
        """New, or overwritten with something else (writers rewrite objects identically)."""
        return not self.existed(ref) or not _same(self.old(ref), self.new(ref))

    def run(self) -> list[Change]:
        if self.new.reader.xrefs.refs_freed_in_revision(self.revision):
            self.add("objects deleted", Category.CONTENT)
        self.catalog()
        self.fields()
        self.pages()
        self.leftovers()
        return self.changes

    def catalog(self) -> None:
        # Hide-and-replace (shadow attack): a trailer whose /Root points to a pre-planted catalog.
        if self.old.root_ref != self.new.root_ref:
            self.add("/Root replaced", Category.CONTENT)
            return
        info = _raw(self.new.trailer_view, "/Info")
        if isinstance(info, generic.IndirectObject) and info.reference in self.updated:
            self.explained.add(info.reference)
            keys = _changed_keys(_get(self.old.trailer_view, "/Info"), deref(info))
            if keys - _INFO_BOOKKEEPING:
                names = ", ".join(clean_text(k, 32) for k in sorted(keys - _INFO_BOOKKEEPING)[:5])
                self.add(f"document information changed ({names})", Category.LTA)
        old, new = self.old.root, self.new.root
        changed = _changed_keys(old, new) if self.new.root_ref in self.updated else set()
        self.explained.add(self.new.root_ref)
        for key in sorted(changed - _CATALOG_PARTS.keys()):
            self.add(f"document catalog entry {clean_text(key, 64)} changed", Category.CONTENT)
        for key, (text, category) in _CATALOG_PARTS.items():
            refs = self.explain(_raw(new, key))
            if text and (key in changed or refs & self.updated):
                self.add(text, category)
        if isinstance(_get(old, "/AcroForm"), generic.DictionaryObject):
            for key in sorted(_changed_keys(old["/AcroForm"], new["/AcroForm"]) - _FORM_SETTINGS):
                self.add(f"interactive form entry {clean_text(key, 64)} changed", Category.FORM)

    def fields(self) -> None:
        old_fields, new_fields = _fields(self.old), _fields(self.new)
        for name, (ref, field, kind) in new_fields.items():
            label = clean_text(name, 128)
            before = old_fields.get(name)
            touched = any(self.differs(r) for r in self.explain_field(ref, field) & self.updated)
            if before is None:
                self.new_field(label, field, kind)
            elif before[0] != ref:
                self.add(f"form field '{label}' replaced", Category.CONTENT)
            elif touched:
                self.changed_field(label, before[1], field, kind)
        for name in old_fields.keys() - new_fields.keys():
            self.add(f"form field '{clean_text(name, 128)}' removed", Category.CONTENT)

    def new_field(self, label: str, field: generic.DictionaryObject, kind: str) -> None:
        value = _value(field)
        visible = _visible(field)
        if kind != "/Sig":
            self.add(f"new form field '{label}'", Category.CONTENT)
        elif visible:  # SSA: a new signature widget can paint anything over the page
            signed = "signed" if value is not None else "unsigned"
            self.add(f"new visible {signed} signature field '{label}'", Category.WIDGET)
        elif value is not None and value.get("/Type") == "/DocTimeStamp":
            self.add(f"document timestamp added (field '{label}')", Category.LTA)
        elif value is not None:
            self.add(f"signature added in new field '{label}'", Category.SIGNATURE)
        else:
            self.add(f"new empty invisible signature field '{label}'", Category.LTA)

    def changed_field(self, label: str, old: generic.DictionaryObject,
                      new: generic.DictionaryObject, kind: str) -> None:
        if kind != "/Sig":
            what = "value" if _changed_keys(old, new) & {"/V"} else "appearance"
            self.add(f"form field '{label}' {what} changed", Category.FORM)
            return
        before, after = _value(old), _value(new)
        if before is None and after is not None:
            stamp = after.get("/Type") == "/DocTimeStamp" and not _visible(new)
            self.add(f"document timestamp added (field '{label}')" if stamp
                     else f"signature added in field '{label}'",
                     Category.LTA if stamp else Category.SIGNATURE)
        elif before is not None and old.raw_get("/V") != new.raw_get("/V"):
            self.add(f"signature in field '{label}' replaced", Category.CONTENT)
        else:  # a signed widget repainted later is an overlay, like a new one (SSA)
            self.add(f"signature field '{label}' appearance changed", Category.WIDGET)

    def explain_field(self, ref: generic.Reference, field: generic.DictionaryObject) \
            -> set[generic.Reference]:
        """The field, its widgets, their appearances and value: what a change to it touches."""
        kids = _widgets(field)
        self.widgets.update([ref, *(kid.reference for kid in kids)])
        touched = {ref, *(kid.reference for kid in kids)}
        for holder in (field, *(deref(kid) for kid in kids)):
            touched |= self.explain(_raw(holder, "/AP"))
        self.explained |= touched
        self.explain(_raw(field, "/V"), holds=False)  # its /Reference /Data is the catalog
        return touched

    def explain(self, value: object, *, holds: bool = True) -> set[generic.Reference]:
        """Mark what ``value`` legitimately brings along: itself, the objects it ``holds``
        directly and objects new in this revision. An *existing* object deeper down (a font
        shared with the page, say) that was overwritten stays unexplained and is listed."""
        direct = {*_refs_in(value), *(_refs_in(deref(value)) if holds else ())}
        fresh = {ref for ref in _reachable(value, self.new) if not self.existed(ref)}
        self.explained |= direct | fresh
        return direct

    def pages(self) -> None:
        old_pages, new_pages = _pages(self.old), _pages(self.new)
        for node in _page_nodes(self.new) & self.updated:
            self.explained.add(node)
            # Inheritable attributes (resources, boxes) on a /Pages node change every page.
            if self.existed(node) and _changed_keys(self.old(node), self.new(node)) - _TREE_KEYS:
                self.add("page tree attributes changed", Category.CONTENT)
        if len(old_pages) != len(new_pages):
            self.add(f"page count changed from {len(old_pages)} to {len(new_pages)}",
                     Category.CONTENT)
        for number, ((old_ref, old), (new_ref, new)) in enumerate(
                zip(old_pages, new_pages, strict=False), start=1):
            if old_ref != new_ref:
                self.add(f"page {number} replaced", Category.CONTENT)
                continue
            self.page(number, new_ref, old, new)

    def page(self, number: int, ref: generic.Reference, old: generic.DictionaryObject,
             new: generic.DictionaryObject) -> None:
        self.explained.add(ref)
        for key in sorted(_changed_keys(old, new) - {"/Annots"}):
            what = _PAGE_KEYS.get(key, f"entry {clean_text(key, 64)}")
            self.add(f"page {number} {what} changed", Category.CONTENT)
        streams = _refs_in(_raw(new, "/Contents"))
        if any(s in self.updated and self.existed(s) for s in streams):
            self.add(f"page {number} content changed", Category.CONTENT)
        self.explained.update(streams)
        old_annots, new_annots = _annots(old), _annots(new)
        if isinstance(annots_ref := _raw(new, "/Annots"), generic.IndirectObject):
            self.explained.add(annots_ref.reference)
        if old_annots - new_annots:
            self.add(f"annotation removed from page {number}", Category.CONTENT)
        for annot in sorted(new_annots - self.widgets, key=lambda r: r.idnum):
            if annot in old_annots and annot not in self.updated:
                continue
            subtype = clean_text(str(_get(deref(annot), "/Subtype", "/Unknown")), 64)
            verb = "changed" if annot in old_annots else "new"
            self.add(f"{verb} annotation {subtype} on page {number}", Category.ANNOTATION)
            self.explained.add(annot)

    def leftovers(self) -> None:
        streams = self.old.reader.xrefs.xref_stream_refs | set(
            self.new.object_streams_used())  # type: ignore[no-untyped-call]  # untyped in pyHanko
        rest = sorted((ref for ref in self.updated - self.explained - streams
                       if self.existed(ref) and self.differs(ref)), key=lambda ref: ref.idnum)
        for ref in rest[:3]:
            self.add(f"object {ref.idnum} modified", Category.CONTENT)
        if len(rest) > 3:
            self.add(f"{len(rest) - 3} more objects modified", Category.CONTENT)



def describe_revision(reader: PdfFileReader, revision: int) -> list[Change]:
    """What revision ``revision`` (0-based, > 0) changed, in words and categories."""
    return _Diff(reader, revision).run()


def _changed_keys(old: object, new: object) -> set[str]:
    if not isinstance(old, generic.DictionaryObject) or \
            not isinstance(new, generic.DictionaryObject):
        return {"(type)"} if not _same(old, new) else set()
    return {str(key) for key in old.keys() | new.keys()
            if key not in old or key not in new or not _same(old.raw_get(key), new.raw_get(key))}


def _same(old: object, new: object, depth: int = 0) -> bool:
    """Structural equality that compares references, not what they point to (bounded depth)."""
    if depth > 32:
        return False
    if isinstance(old, generic.StreamObject) != isinstance(new, generic.StreamObject):
        return False
    if isinstance(old, generic.StreamObject) and isinstance(new, generic.StreamObject) \
            and old.encoded_data != new.encoded_data:
        return False
    if isinstance(old, generic.DictionaryObject) and isinstance(new, generic.DictionaryObject):
        return old.keys() == new.keys() and all(
            _same(old.raw_get(k), new.raw_get(k), depth + 1) for k in old)
    if isinstance(old, generic.ArrayObject) and isinstance(new, generic.ArrayObject):
        return len(old) == len(new) and all(
            _same(x, y, depth + 1) for x, y in zip(old, new, strict=True))
    return bool(type(old) is type(new) and old == new)


def _refs_in(value: object, depth: int = 0) -> list[generic.Reference]:
    """References held directly (or in nested direct containers) by ``value``."""
    if isinstance(value, generic.IndirectObject):
        return [value.reference]
    if depth > 8:
        return []
    items = value.values() if isinstance(value, generic.DictionaryObject) else \
        value if isinstance(value, generic.ArrayObject) else []
    return [ref for item in items for ref in _refs_in(item, depth + 1)]


def _fields(resolver: HistoricalResolver) -> dict[str, Field]:
    """Terminal form fields by fully qualified name (bounded; loops are cut)."""
    found: dict[str, Field] = {}
    fields = _get(_get(resolver.root, "/AcroForm"), "/Fields")
    if not isinstance(fields, generic.ArrayObject):
        return found
    stack = [(item, "", None) for item in reversed(list(fields))]
    seen: set[generic.Reference] = set()
    while stack and len(seen) < MAX_FIELDS:
        item, prefix, inherited = stack.pop()
        if not isinstance(item, generic.IndirectObject) or item.reference in seen:
            continue
        seen.add(item.reference)
        field = deref(item)
        if not isinstance(field, generic.DictionaryObject) or "/T" not in field:
            continue
        name = f"{prefix}.{field['/T']}" if prefix else str(field["/T"])
        kind = field.get("/FT", inherited)
        kids = [kid for kid in _get(field, "/Kids", ()) if "/T" in deref(kid)]
        if kids:
            stack.extend((kid, name, kind) for kid in reversed(kids))
        else:
            found[name] = (item.reference, field, str(kind))
    return found


def _get(holder: object, key: str, default: Any = None) -> Any:
    """``holder[key]`` dereferenced (pyHanko's ``dict.get`` returns raw references)."""
    if isinstance(holder, generic.DictionaryObject) and key in holder:
        return holder[key]
    return default


def _raw(holder: object, key: str) -> Any:
    if isinstance(holder, generic.DictionaryObject) and key in holder:
        return holder.raw_get(key)
    return None


def _reachable(value: object, resolver: HistoricalResolver, limit: int = 5_000) \
        -> set[generic.Reference]:
    """References reachable from ``value``, not descending into pages or the catalog."""
    found: set[generic.Reference] = set()
    stack = [value]
    while stack and len(found) < limit:
        item = stack.pop()
        if isinstance(item, generic.IndirectObject):
            if item.reference in found:
                continue
            found.add(item.reference)
            item = resolver(item.reference)
            if _get(item, "/Type") in ("/Page", "/Pages", "/Catalog"):
                continue
        if isinstance(item, generic.DictionaryObject):
            stack.extend(item.raw_get(key) for key in item)
        elif isinstance(item, generic.ArrayObject):
            stack.extend(item)
    return found


def _value(field: generic.DictionaryObject) -> generic.DictionaryObject | None:
    value = _get(field, "/V")
    return value if isinstance(value, generic.DictionaryObject) else None


def _widgets(field: generic.DictionaryObject) -> list[generic.IndirectObject]:
    kids = _get(field, "/Kids", ())
    return [kid for kid in kids if isinstance(kid, generic.IndirectObject)
            and "/T" not in deref(kid)] if isinstance(kids, generic.ArrayObject) else []


def _visible(field: generic.DictionaryObject) -> bool:
    holders = [field, *(deref(kid) for kid in _widgets(field))]
    for holder in holders:
        try:
            x1, y1, x2, y2 = (float(v) for v in holder["/Rect"])
        except (KeyError, TypeError, ValueError):
            continue
        if abs(x2 - x1) * abs(y2 - y1) > 0:
            return True
    return False


Page = tuple[generic.Reference, generic.DictionaryObject]


def _pages(resolver: HistoricalResolver) -> list[Page]:
    pages: list[Page] = []
    stack = [resolver.root.raw_get("/Pages")]
    seen: set[generic.Reference] = set()
    while stack and len(pages) < MAX_PAGES and len(seen) < 4 * MAX_PAGES:
        node_ref = stack.pop()
        if not isinstance(node_ref, generic.IndirectObject) or node_ref.reference in seen:
            continue
        seen.add(node_ref.reference)
        node = deref(node_ref)
        if not isinstance(node, generic.DictionaryObject):
            continue
        if node.get("/Type") == "/Pages" or "/Kids" in node:
            stack.extend(reversed(list(_get(node, "/Kids", ()))))
        else:
            pages.append((node_ref.reference, node))
    return pages


def _page_nodes(resolver: HistoricalResolver) -> set[generic.Reference]:
    """The intermediate /Pages nodes (bounded, loops cut)."""
    nodes: set[generic.Reference] = set()
    stack = [resolver.root.raw_get("/Pages")]
    while stack and len(nodes) < MAX_PAGES:
        item = stack.pop()
        if isinstance(item, generic.IndirectObject) and item.reference not in nodes:
            node = deref(item)
            if isinstance(node, generic.DictionaryObject) and "/Kids" in node:
                nodes.add(item.reference)
                stack.extend(_get(node, "/Kids", ()))
    return nodes


def _annots(page: generic.DictionaryObject) -> set[generic.Reference]:
    annots = _get(page, "/Annots")
    if not isinstance(annots, generic.ArrayObject):
        return set()
    return {item.reference for item in annots if isinstance(item, generic.IndirectObject)}


def signature_kind(reader: PdfFileReader, ref: generic.Reference,
                   sig: generic.DictionaryObject) -> SignatureKind:
    if sig.get("/Type") == "/DocTimeStamp":
        return SignatureKind.DOCUMENT_TIMESTAMP
    with suppress(Exception):
        if reader.root["/Perms"].raw_get("/DocMDP").reference == ref:
            return SignatureKind.CERTIFICATION
    with suppress(Exception):
        for item in _get(sig, "/Reference", ()):
            if deref(item).get("/TransformMethod") == "/DocMDP":
                return SignatureKind.CERTIFICATION
    return SignatureKind.APPROVAL


def claimed_timestamp(embedded: EmbeddedPdfSignature) -> datetime | None:
    """The time the signature's own timestamp token *claims* (proven only once validated)."""
    with suppress(Exception):
        unsigned = embedded.signer_info["unsigned_attrs"]
        for attribute in unsigned:
            if attribute["type"].native == "signature_time_stamp_token":
                token = attribute["values"][0]["content"]
                info = token["encap_content_info"]["content"].parsed
                moment: datetime = info["gen_time"].native
                return moment
    return None


def read_dss(reader: PdfFileReader) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """Certificates, CRLs and OCSP responses from the document security store (B-LT)."""
    found: tuple[list[bytes], list[bytes], list[bytes]] = ([], [], [])
    try:
        dss = reader.root["/DSS"]
        for key, bucket in zip(("/Certs", "/CRLs", "/OCSPs"), found, strict=True):
            for item in list(_get(dss, key, ()))[:1000]:
                bucket.append(bytes(deref(item).data))
    except KeyError:
        pass
    except (MemoryError, RecursionError):
        raise
    except Exception:  # an unreadable DSS only means less revocation data
        log.info("DSS unreadable", exc_info=True)
    return found


_LOADERS: dict[str, Callable[[bytes], object]] = {
    "cert": x509.load_der_x509_certificate, "crl": x509.load_der_x509_crl,
    "ocsp": ocsp.load_der_ocsp_response}


def well_formed(blobs: Iterable[bytes], kind: str) -> list[bytes]:
    """Only DER that parses: one junk CRL planted in the DSS must not break every check."""
    kept = []
    for blob in blobs:
        with suppress(Exception):
            _LOADERS[kind](blob)
            kept.append(blob)
    return kept


def safe_describe(reader: PdfFileReader, revision: int) -> list[Change]:
    try:
        return describe_revision(reader, revision)
    except MemoryError:
        raise
    except Exception:  # RecursionError included: a deep structure only blocks the description
        log.info("change analysis failed for revision %d", revision, exc_info=True)
        return [Change(revision, "changes could not be analysed", Category.CONTENT)]


# --- rules 5 and 6 on the list of changes --------------------------------------------------------

_LIMITS = {1: Category.LTA, 2: Category.FORM, 3: Category.ANNOTATION}


def changes_problem(changes: list[Change], *, lock: int | None, timestamp: bool, newest: bool,
                    level: ModificationLevel | None) -> str | None:
    """Why the changes after one signature are not permitted, in words (``None``: they are).

    ``lock`` is the DocMDP P of a certification or the /Lock P of the signature's field: P=1
    allows nothing but LTA material, P=2 form filling and signatures in existing fields (no EAA
    annotations, no SSA widgets), P=3 annotations. Without a lock a new visible signature field
    is still fine (an approval workflow); other annotations and content are not. After the
    ``newest`` signature only LTA material may follow (pitfall 1: pyHanko accepts an empty
    visible signature field painting over an approval-signed page), and pyHanko's own ``level``
    for that signature must agree.
    """
    limit = Category.WIDGET if timestamp else _LIMITS.get(lock or 0, Category.WIDGET)
    worse = [change for change in changes if change.category > limit]
    if worse:
        return f"Not permitted after this signature: {worse[0]}."
    late = [change for change in changes if change.category > Category.LTA]
    if newest and (late or (level is not None and level > ModificationLevel.LTA_UPDATES)):
        found = f"; found {late[0]}" if late else ""
        return f"After the newest signature only validation data and document timestamps " \
               f"may follow{found}."
    return None
