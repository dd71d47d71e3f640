"""Approval signatures: PAdES B-T in a pre-created field, with a visible appearance.

The appearance (drawn inside the field's box: on the signature page, or where it was placed)::

    ┌──────────────────────────────────────────┐
    │        signature image, or the typed  ▒▒▒│   ▒ company seal, semi-transparent,
    │        name in large CJK type         ▒▒▒│     multiplied over the right part
    │──────────────────────────────────────────│
    │ 张伟 <zhang.wei@example.cn>               │   caption, 2 lines
    │ 签署时间 / Signed at 2026-11-28 10:00 UTC+8│
    └──────────────────────────────────────────┘

The caption shows ``signing_time`` (the claimed time, also ``/M``) in ``AppearanceSpec.display_tz``
— UTC+8 unless the caller chooses — always with its offset, so it is unambiguous anywhere. The
time that counts legally is the RFC 3161 timestamp embedded in the signature, seconds later.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from io import BytesIO
from typing import Any, TypeVar

from PIL import Image
from pyhanko.pdf_utils import content, layout
from pyhanko.pdf_utils.generic import DictionaryObject, FloatObject, pdf_name
from pyhanko.pdf_utils.images import pil_image
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.sign import DEFAULT_MD
from pyhanko.sign.fields import SigSeedSubFilter, enumerate_sig_fields
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner
from pyhanko.sign.signers.pdf_signer import PdfSigningSession
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.stamp.base import BaseStamp, BaseStampStyle

from econtract.errors import SigningError, UpstreamError, ValidationFailed
from econtract.signing._aio import run_sync
from econtract.signing.keys import pyhanko_signer, reserve_for
from econtract.signing.pages import outline_text, text_width
from econtract.signing.specs import AppearanceSpec, SigningKey
from econtract.signing.timestamps import ClientTimeStamper, TsaClient, timestamper_for

_T = TypeVar("_T")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_MAX_PIXELS = 25_000_000  # refuse before decoding: a PNG header can announce gigapixels
_INK = b"0.05 0.16 0.42 rg"  # typed name: dark blue, like a pen
_CAPTION = b"0.25 g"


def sign_field(pdf: bytes, *, field_name: str, key: SigningKey, appearance: AppearanceSpec,
               tsa: TsaClient, signing_time: datetime, reason: str | None = None,
               location: str | None = None) -> bytes:
    """Sign the existing, empty field ``field_name``: PAdES B-T, as an incremental update.

    The CMS is CAdES-detached (``/ETSI.CAdES.detached``) with the signed signing-certificate-v2
    attribute and an RFC 3161 signature timestamp from ``tsa``.

    :param pdf: the document (certified, possibly already signed by earlier signers).
    :param field_name: the signer's field, created by ``prepare_document``.
    :param key: the signer's own key, certificate and chain.
    :param appearance: what to draw in the field.
    :param tsa: the time-stamping authority.
    :param signing_time: the claimed signing time (``/M`` and caption), timezone-aware.
    :param reason: optional ``/Reason``.
    :param location: optional ``/Location``.
    :return: the signed PDF: ``pdf`` plus one revision.
    :raises SigningError: the field does not exist or is already signed.
    :raises ValidationFailed: an image is not an acceptable PNG.
    :raises UpstreamError: the TSA failed.
    """
    writer = open_for_update(pdf)
    states = field_states(writer.prev)
    if field_name not in states:
        raise SigningError(f"No signature field named {field_name!r}", code="signing_no_field")
    if states[field_name]:
        raise SigningError(f"Field {field_name!r} is already signed", code="signing_field_signed")
    style = SignatureStampStyle(appearance=appearance, signing_time=signing_time)
    meta = PdfSignatureMetadata(field_name=field_name, md_algorithm="sha256",
                                subfilter=SigSeedSubFilter.PADES, reason=reason,
                                location=location)
    return run_signer(pdf, meta, key=key, tsa=tsa, signing_time=signing_time, style=style,
                      writer=writer)


def open_for_update(pdf: bytes) -> IncrementalPdfFileWriter:
    """Open ``pdf`` (strict parsing) for an incremental update.

    :raises ValidationFailed: not a PDF pyHanko can read strictly.
    """
    try:
        return IncrementalPdfFileWriter(BytesIO(pdf), strict=True)
    except (PdfError, ValueError, KeyError, TypeError) as exc:
        raise ValidationFailed("The PDF could not be read") from exc


def field_states(reader: PdfFileReader) -> dict[str, bool]:
    """Every signature field of ``reader``, mapped to whether it is signed.

    :param reader: the document.
    :return: ``{field name: signed?}``.
    """
    return {name: value is not None for name, value, _ in enumerate_sig_fields(reader)}


class _TimedPdfSigner(PdfSigner):
    """``PdfSigner`` whose session uses the caller's signing time instead of the system clock."""

    def __init__(self, *args: Any, signing_time: datetime, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._signing_time = signing_time

    def init_signing_session(self, pdf_out: BasePdfFileWriter,
                             existing_fields_only: bool = False) -> PdfSigningSession:
        session = super().init_signing_session(pdf_out, existing_fields_only)
        session.system_time = self._signing_time
        return session


def run_signer(pdf: bytes, meta: PdfSignatureMetadata, *, key: SigningKey,
               tsa: TsaClient | None, signing_time: datetime,
               style: BaseStampStyle | None = None, existing_fields_only: bool = True,
               writer: IncrementalPdfFileWriter | None = None) -> bytes:
    """Sign with pyHanko using the cached key and a fixed reserve; map pyHanko's errors.

    Runs pyHanko's async pipeline to completion (on a worker thread when a loop is running).

    :param pdf: the document.
    :param meta: pyHanko's signature metadata (field, subfilter, certification …).
    :param key: the signing key.
    :param tsa: source of the signature timestamp, or ``None``.
    :param signing_time: the claimed time, timezone-aware.
    :param style: the appearance of a visible field.
    :param existing_fields_only: refuse to create a new field.
    :param writer: ``pdf`` already opened with :func:`open_for_update` (saves a parse).
    :return: the signed PDF.
    """
    if signing_time.utcoffset() is None:
        raise ValidationFailed("signing_time must be timezone-aware")
    signer = pyhanko_signer(key)
    stamper = timestamper_for(tsa) if tsa else None

    def attempt(out: IncrementalPdfFileWriter, reserve: int) -> Coroutine[Any, Any, BytesIO]:
        pdf_signer = _TimedPdfSigner(meta, signer, signing_time=signing_time,
                                     timestamper=stamper, stamp_style=style)
        return pdf_signer.async_sign_pdf(out, existing_fields_only=existing_fields_only,
                                         bytes_reserved=reserve, output=BytesIO())

    return run_with_reserve(pdf, writer, attempt, signer.certificates_size, stamper)


#: Builds one signing attempt: a pyHanko coroutine for a writer and a ``/Contents`` reserve.
Attempt = Callable[[IncrementalPdfFileWriter, int], Coroutine[Any, Any, BytesIO]]


def run_with_reserve(pdf: bytes, writer: IncrementalPdfFileWriter | None, attempt: Attempt,
                     certificates_size: int, stamper: ClientTimeStamper | None) -> bytes:
    """Run one pyHanko signing coroutine with a tight reserve, retrying once with a generous one.

    A TSA never used before in this process is asked for one token first (pyHanko's cached
    "dummy" response), so that even the first signature — usually the certification, whose
    ``/Contents`` every later signer reads — gets a tight reserve.

    :param pdf: the document (reopened for the retry).
    :param writer: ``pdf`` opened for update, or ``None``.
    :param attempt: builds the signing coroutine for a writer and a reserve.
    :param certificates_size: DER size of the certificates in the CMS.
    :param stamper: the timestamper whose token goes into the CMS, or ``None``.
    :return: the signed PDF.
    """
    if stamper is not None and stamper.token_size is None:
        _run(stamper.async_dummy_response(DEFAULT_MD))
    tight = reserve_for(certificates_size, stamper.token_size if stamper else 0)
    try:
        return _run(attempt(writer or open_for_update(pdf), tight)).getvalue()
    except _ReserveTooSmall:
        pass  # retry below, outside the handler (see econtract.signing._aio.run_sync)
    generous = reserve_for(certificates_size, None)
    if tight >= generous:
        raise SigningError("The signature does not fit its reserved space")
    return _run(attempt(open_for_update(pdf), generous)).getvalue()


class _ReserveTooSmall(Exception):
    """The timestamp token outgrew the tight reserve: retry with the generous one."""


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    try:
        return run_sync(coro)
    except TimestampRequestError as exc:
        raise UpstreamError("The time-stamping authority failed", code="tsa_failed") from exc
    except (PyHankoSigningError, PdfError) as exc:
        if "larger than expected" in str(exc):  # the token outgrew the estimate (pdf_byterange)
            raise _ReserveTooSmall from exc
        raise SigningError(f"pyHanko refused to sign: {exc}") from exc


# --- appearance --------------------------------------------------------------------------


def format_signing_time(moment: datetime, zone: tzinfo) -> str:
    """``2026-11-28 10:00 UTC+8``: minutes precision, the zone's offset spelt out.

    :param moment: an aware datetime.
    :param zone: the display zone.
    :return: the caption text for the time.
    """
    local = moment.astimezone(zone)
    offset = local.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    label = "UTC" if not minutes else f"UTC{sign}{hours}" + (f":{mins:02d}" if mins else "")
    return f"{local:%Y-%m-%d %H:%M} {label}"


def load_png(data: bytes, what: str, max_size: tuple[int, int]) -> Image.Image:
    """Decode a PNG safely (size checked before decoding), as RGBA, shrunk to ``max_size``.

    :raises ValidationFailed: not a PNG, too large, or corrupt.
    """
    if not data.startswith(_PNG_MAGIC):
        raise ValidationFailed(f"The {what} must be a PNG image", code="image_not_png")
    try:
        with Image.open(BytesIO(data), formats=["PNG"]) as img:
            if img.width * img.height > _MAX_PIXELS:
                raise ValidationFailed(f"The {what} is too large", code="image_too_large")
            rgba = img.convert("RGBA")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValidationFailed(f"The {what} could not be decoded", code="image_invalid") from exc
    rgba.thumbnail(max_size)
    return rgba


@dataclass(frozen=True)
class SignatureStampStyle(BaseStampStyle):
    """pyHanko stamp style drawing an :class:`AppearanceSpec` (see the module docstring)."""

    appearance: AppearanceSpec | None = None
    """What to draw."""
    signing_time: datetime | None = None
    """The time printed in the caption."""
    border_width: int = 0  # the signature page already frames the box

    def create_stamp(self, writer: BasePdfFileWriter, box: layout.BoxConstraints,
                     text_params: dict[str, Any]) -> SignatureStamp:
        """Create the stamp for one field box (``text_params`` are not used)."""
        return SignatureStamp(writer, self, box)


def _multiply_state(opacity: float) -> DictionaryObject:
    """ExtGState: fill opacity ``opacity``, blend mode Multiply."""
    return DictionaryObject({  # type: ignore[no-untyped-call]  # pyHanko: untyped
        pdf_name("/ca"): FloatObject(opacity),  # type: ignore[no-untyped-call]
        pdf_name("/BM"): pdf_name("/Multiply")})


def _n(value: float) -> bytes:
    return b"%.2f" % value


def _fitted(text: str, size: float, width: float, minimum: float) -> tuple[str, float]:
    """Shrink ``size`` (not below ``minimum``), then cut ``text``, until it fits ``width``."""
    natural = text_width(text, size)
    if natural > width:
        size = max(minimum, size * width / natural)
    while text_width(text, size) > width and len(text) > 1:
        text = text[:-2] + "…"
    return text, size


class SignatureStamp(BaseStamp):
    """The rendered appearance of one signature."""

    style: SignatureStampStyle

    def _render_inner_content(self) -> list[bytes]:
        spec, moment = self.style.appearance, self.style.signing_time
        assert spec is not None and moment is not None
        # The box is the field's own /Rect: a cell on the signature page, or wherever the
        # sender placed the field (down to 60×24 pt): short boxes keep only the time caption,
        # the shortest none (the time is in the signature dictionary and its timestamp).
        width, height = float(self.box.width), float(self.box.height)
        pad = min(5.0, height / 10)
        ops = [_CAPTION]
        when = f"签署时间 / Signed at {format_signing_time(moment, spec.display_tz)}"
        baseline = pad + 1.5
        lines = ((when, f"{spec.name} <{spec.email}>") if height >= 48 else
                 (when,) if height >= 36 else ())
        for line in lines:
            text, size = _fitted(line, 6.5, width - 2 * pad, 4.5)
            ops.append(outline_text(text, size, pad, baseline))
            baseline += size * 1.35
        rule = baseline + 1.0 if lines else pad - 3
        if lines:
            ops.append(b"0.7 G 0.4 w %s %s m %s %s l S" % (_n(pad), _n(rule), _n(width - pad),
                                                           _n(rule)))
        area = (pad, rule + 3, width - 2 * pad, height - rule - 3 - pad)
        if spec.image_png is not None:
            ops.append(self._image(spec.image_png, "signature image", area, None))
        else:
            ops.append(self._typed(spec.typed_name or spec.name, area))
        if spec.seal_png is not None:
            side = min(height - 2 * pad, width * 0.42)
            seal_area = (width - pad - side, (height - side) / 2, side, side)
            ops.append(self._image(spec.seal_png, "seal image", seal_area, "/EcSealGS"))
        return ops

    def _typed(self, name: str, area: tuple[float, float, float, float]) -> bytes:
        x, y, w, h = area
        text, size = _fitted(name, min(h * 0.6, 28.0), w, 8.0)
        left = x + (w - text_width(text, size)) / 2
        baseline = y + (h - size * 0.76) / 2  # CJK ink spans about 0.12–0.88 em
        return _INK + b"\n" + outline_text(text, size, left, baseline)

    def _image(self, png: bytes, what: str, area: tuple[float, float, float, float],
               gstate: str | None) -> bytes:
        x, y, w, h = area
        img = load_png(png, what, (max(1, int(w * 3)), max(1, int(h * 3))))  # ~216 dpi
        name = "/EcSeal" if gstate else "/EcSig"
        self.set_resource(content.ResourceType.XOBJECT, pdf_name(name),
                          pil_image(img, self._ensure_writer))
        scale = min(w / img.width, h / img.height)
        dw, dh = img.width * scale, img.height * scale
        gs = b""
        if gstate:  # seal ink over the signature: multiply, like a real stamp, 70 % opaque
            self.set_resource(content.ResourceType.EXT_G_STATE, pdf_name(gstate),
                              _multiply_state(0.7))
            gs = gstate.encode() + b" gs "
        return b"q %s%s 0 0 %s %s %s cm %s Do Q" % (
            gs, _n(dw), _n(dh), _n(x + (w - dw) / 2), _n(y + (h - dh) / 2), name.encode())
