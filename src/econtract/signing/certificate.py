"""The certificate of completion (完成证书): a bilingual A4 PDF, then certified by the platform.

:func:`render_certificate` lays out a :class:`CertificateData` (plain values gathered by
``econtract.contracts.completion``) with fpdf2 in Noto Sans SC, embedded as a subset so that every
word — Chinese included — stays extractable (``pdftotext``) and searchable::

    完成证书 / Certificate of completion
    1 合同 / Contract            id, title, organisation, sent and completed times
    2 文件哈希 / Document SHA-256  the certified version (at send), the sealed one (at completion)
    3 签署方 / Signers            one table per signer: identity method and time, the signing
                                 time a timestamp proves, IP address, user agent, certificate
    4 审批记录 / Approvals         the internal approval events, or "无 / none"
    5 审计链 / Audit chain         the organisation chain's head (seq, hash) when it was issued
    footer                       generated-at time, "第 x 页，共 y 页 / Page x of y"

Hashes, ids and serials are set in the font's half-width forms (the OpenType ``hwid`` feature,
shaped with HarfBuzz): every character is exactly half an em wide, so they wrap into fixed-width
lines a reader can compare column by column, and they still extract as the plain hex characters.

:func:`seal_certificate` certifies the rendered PDF with the platform seal and a timestamp,
DocMDP P=1: no change at all is permitted afterwards, so any edit makes the certificate fail
verification (the contract itself uses P=2 because its signers still have to sign).

Times are printed in ``display_tz`` (UTC+8 unless the caller chooses) with the offset spelt out.
Every string that came from users (names, titles, user agents) is cleaned of control and
bidirectional-override characters before it is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from pyhanko.sign.fields import MDPPerm, SigSeedSubFilter
from pyhanko.sign.signers import PdfSignatureMetadata

from econtract.errors import SigningError, ValidationFailed
from econtract.signing.pages import cjk_font_path
from econtract.signing.report import clean_text
from econtract.signing.sign import field_states, open_for_update, run_signer
from econtract.signing.specs import CERTIFICATION_FIELD, CHINA_STANDARD_TIME, SigningKey
from econtract.signing.timestamps import TsaClient

__all__ = [
    "CertificateApproval",
    "CertificateData",
    "CertificateSigner",
    "render_certificate",
    "seal_certificate",
]

_FONT = "noto-sans-sc"
_MARGIN = 50.0
_LABEL_W = 150.0
_PAD = 4.0
_SIZE = 9.0
_LEADING = 13.0
_GRAY, _RULE, _SHADE = 110, 190, 244
_HEX = frozenset("0123456789abcdef")

IDENTITY_METHODS = {
    "email_otp": "邮箱验证码 / E-mail one-time code",
    "sms_otp": "短信验证码 / SMS one-time code",
    "access_code": "访问码 / Access code",
}
APPROVAL_ACTIONS = {
    "contract.submitted": "提交审批 / Submitted for approval",
    "contract.approved": "批准 / Approved",
    "contract.rejected": "驳回 / Rejected",
}


@dataclass(frozen=True)
class CertificateSigner:
    """One signing party, as the certificate states it."""

    name: str
    email: str
    identity_method: str | None
    """How the identity was proven (``email_otp`` …); ``None`` if no method was recorded."""
    verified_at: datetime | None
    """When the identity was proven."""
    signed_at: datetime | None
    """The signing time: the one the signature's RFC 3161 timestamp proves, when it does."""
    signed_at_proven: bool
    """``True`` when ``signed_at`` comes from a valid timestamp (else it is the claimed time)."""
    ip: str | None
    """The address the signature was given from (the audit event of the signature)."""
    user_agent: str | None
    """The browser or client the signature was given from."""
    certificate_serial: str | None = None
    """The serial (hex) of the signer's own certificate."""
    field_name: str | None = None
    """The signature field in the contract PDF."""
    timestamp_authority: str | None = None
    """Who issued the timestamp (the TSA certificate's subject)."""


@dataclass(frozen=True)
class CertificateApproval:
    """One event of the internal approval before sending."""

    action: str
    """The audit event kind: ``contract.submitted``, ``contract.approved`` or ``…rejected``."""
    actor: str
    at: datetime
    comment: str | None = None


@dataclass(frozen=True)
class CertificateData:
    """Everything the certificate of completion states; plain values only."""

    contract_id: str
    title: str
    organisation: str
    sha256_at_send: str
    """SHA-256 (hex) of the certified document as sent to the signers."""
    sha256_at_completion: str
    """SHA-256 (hex) of the sealed, final document."""
    completed_at: datetime
    generated_at: datetime
    audit_chain: str
    """The audit chain (the organisation's id) whose head is printed."""
    audit_head_seq: int
    audit_head_hash: str
    """Hash of the chain's newest event when the certificate was issued."""
    signers: Sequence[CertificateSigner] = ()
    approvals: Sequence[CertificateApproval] = ()
    sent_at: datetime | None = None
    version_at_send: int | None = None
    version_at_completion: int | None = None
    verify_url: str | None = None
    """Where anyone can verify the final PDF and this certificate."""
    display_tz: tzinfo = field(default=CHINA_STANDARD_TIME)

    def __post_init__(self) -> None:
        object.__setattr__(self, "signers", tuple(self.signers))
        object.__setattr__(self, "approvals", tuple(self.approvals))
        for name in ("sha256_at_send", "sha256_at_completion", "audit_head_hash"):
            value = getattr(self, name)
            if len(value) != 64 or not set(value) <= _HEX:
                raise ValidationFailed(f"{name} must be 64 lower-case hex digits")
        moments = [self.completed_at, self.generated_at, self.sent_at,
                   *(a.at for a in self.approvals),
                   *(t for s in self.signers for t in (s.verified_at, s.signed_at))]
        if any(m is not None and m.utcoffset() is None for m in moments):
            raise ValidationFailed("certificate times must be timezone-aware")


def render_certificate(data: CertificateData) -> bytes:
    """Render the certificate of completion (not yet signed: see :func:`seal_certificate`).

    :param data: what to state.
    :return: a PDF (A4, fonts embedded as subsets, one revision).
    """
    pdf = _CertificatePdf(data)
    pdf.add_page()
    _heading(pdf, data)
    _section(pdf, "1  合同 / Contract")
    _contract(pdf, data)
    _section(pdf, "2  文件哈希 / Document SHA-256")
    _hashes(pdf, data)
    _section(pdf, "3  签署方 / Signers")
    for number, signer in enumerate(data.signers, start=1):
        _signer(pdf, data, number, signer)
    _section(pdf, "4  审批记录 / Approvals")
    _approvals(pdf, data)
    _section(pdf, "5  审计链 / Audit chain")
    _audit(pdf, data)
    return bytes(pdf.output())


def seal_certificate(pdf: bytes, *, key: SigningKey, tsa: TsaClient | None, signing_time: datetime,
                     location: str) -> bytes:
    """Certify a rendered certificate: platform seal, RFC 3161 timestamp, DocMDP P=1.

    :param pdf: the output of :func:`render_certificate`.
    :param key: the platform seal key.
    :param tsa: the time-stamping authority (``None``: no timestamp).
    :param signing_time: the claimed signing time, timezone-aware.
    :param location: ``/Location`` of the signature (the platform's address).
    :return: the certified PDF (an incremental update of ``pdf``).
    :raises SigningError: the document is already signed, or pyHanko refused.
    """
    writer = open_for_update(pdf)
    if any(field_states(writer.prev).values()):
        raise SigningError("The certificate of completion is already signed")
    meta = PdfSignatureMetadata(
        field_name=CERTIFICATION_FIELD, md_algorithm="sha256", certify=True,
        docmdp_permissions=MDPPerm.NO_CHANGES, subfilter=SigSeedSubFilter.PADES,
        reason="econtract 完成证书 / Certificate of completion", location=location)
    return run_signer(pdf, meta, key=key, tsa=tsa, signing_time=signing_time,
                      existing_fields_only=False, writer=writer)


# --- layout ------------------------------------------------------------------------------------


class _CertificatePdf(FPDF):
    def __init__(self, data: CertificateData) -> None:
        super().__init__(unit="pt", format="A4")
        self.data = data
        self.set_margins(_MARGIN, _MARGIN, _MARGIN)
        self.set_auto_page_break(True, margin=_MARGIN + 10)
        self.add_font(_FONT, fname=str(cjk_font_path()))
        self.set_title(_text(f"完成证书 / Certificate of completion: {data.title}"))
        self.set_subject(f"contract {data.contract_id}")
        self.set_producer("econtract")
        self.set_creator("econtract")
        self.set_lang("zh-CN")
        self.set_creation_date(data.generated_at)

    def footer(self) -> None:
        self.set_y(-_MARGIN + 8)
        self.set_font(_FONT, size=7.5)
        self.set_text_color(_GRAY)
        generated = _time(self.data.generated_at, self.data.display_tz)
        self.cell(self.epw / 2, 10, f"生成时间 / Generated at {generated}")
        self.cell(self.epw / 2, 10, f"第 {self.page_no()} 页，共 {{nb}} 页 / "
                                    f"Page {self.page_no()} of {{nb}}", align="R")


def _heading(pdf: _CertificatePdf, data: CertificateData) -> None:
    _para(pdf, "完成证书 / Certificate of completion", 20, height=28)
    _para(pdf, _text(data.title), 12, gray=60, height=18)
    _para(pdf, "本证书由 econtract 平台在合同全部签署并封存（PAdES B-LTA）后签发，"
               "并以平台印章认证；对本文件的任何修改都会使其验证失败。", 8.5, gray=_GRAY,
          height=12)
    _para(pdf, "Issued by the econtract platform once every party had signed and the contract "
               "was sealed (PAdES B-LTA); certified with the platform seal, so any change to this "
               "file makes it fail verification.", 8.5, gray=_GRAY, height=12)


def _contract(pdf: _CertificatePdf, data: CertificateData) -> None:
    tz = data.display_tz
    _row(pdf, "合同编号 / Contract ID", data.contract_id, mono=True)
    _row(pdf, "标题 / Title", _text(data.title))
    _row(pdf, "组织 / Organisation", _text(data.organisation))
    _row(pdf, "状态 / Status", "已完成 / completed")
    _row(pdf, "发送时间 / Sent at", _time(data.sent_at, tz))
    _row(pdf, "完成时间 / Completed at", _time(data.completed_at, tz))


def _hashes(pdf: _CertificatePdf, data: CertificateData) -> None:
    send = "发送时（平台认证版本）/ At send (certified)"
    done = "完成时（封存版本）/ At completion (sealed)"
    if data.version_at_send is not None:
        send += f" · v{data.version_at_send}"
    if data.version_at_completion is not None:
        done += f" · v{data.version_at_completion}"
    _row(pdf, send, data.sha256_at_send, mono=True)
    _row(pdf, done, data.sha256_at_completion, mono=True)


def _signer(pdf: _CertificatePdf, data: CertificateData, number: int,
            signer: CertificateSigner) -> None:
    tz = data.display_tz
    if pdf.get_y() + 9 * _LEADING * 1.6 > pdf.page_break_trigger:
        pdf.add_page()  # keep a signer's heading with (most of) their table
    pdf.ln(2)
    _para(pdf, _text(f"签署方 {number} / Signer {number}: {signer.name}"), 10.5, height=16)
    method = signer.identity_method
    signed = _time(signer.signed_at, tz)
    if signer.signed_at is not None:
        signed += ("（时间戳证明 / proven by timestamp）" if signer.signed_at_proven
                   else "（声称时间，无时间戳证明 / claimed, not proven by a timestamp）")
    _row(pdf, "姓名 / Name", _text(signer.name))
    _row(pdf, "电子邮箱 / E-mail", _text(signer.email))
    _row(pdf, "身份验证方式 / Identity method",
         IDENTITY_METHODS.get(method, _text(method)) if method else "—")
    _row(pdf, "身份验证时间 / Identity verified at", _time(signer.verified_at, tz))
    _row(pdf, "签署时间 / Signing time", signed)
    if signer.timestamp_authority:
        _row(pdf, "时间戳机构 / Timestamp authority", _text(signer.timestamp_authority))
    _row(pdf, "IP 地址 / IP address", _text(signer.ip or "—"))
    _row(pdf, "用户代理 / User agent", _text(signer.user_agent or "—"))
    _row(pdf, "证书序列号 / Certificate serial", signer.certificate_serial or "—",
         mono=bool(signer.certificate_serial))
    if signer.field_name:
        _row(pdf, "签名域 / Signature field", _text(signer.field_name))


def _approvals(pdf: _CertificatePdf, data: CertificateData) -> None:
    if not data.approvals:
        _row(pdf, "审批 / Approval", "无 / none")
        return
    for approval in data.approvals:
        text = f"{_time(approval.at, data.display_tz)} · {_text(approval.actor)}"
        if approval.comment:
            text += f" · {_text(approval.comment)}"
        _row(pdf, APPROVAL_ACTIONS.get(approval.action, _text(approval.action)), text)


def _audit(pdf: _CertificatePdf, data: CertificateData) -> None:
    _row(pdf, "审计链 / Chain", data.audit_chain, mono=True)
    _row(pdf, "链头序号 / Head seq", str(data.audit_head_seq))
    _row(pdf, "链头哈希 / Head hash", data.audit_head_hash, mono=True)
    if data.verify_url:
        _row(pdf, "验证 / Verify", data.verify_url)
    note = ("签发本证书时该组织审计链的最新记录；签发事件 contract.certificate_issued 紧随其后，"
            "其 prev_hash 即为上述哈希。可用 `econtract audit verify` 校验整条链。/ The newest "
            "entry of the organisation's audit chain when this certificate was issued; the "
            "contract.certificate_issued event follows it, with this hash as its prev_hash. "
            "`econtract audit verify` checks the whole chain.")
    pdf.ln(4)
    _para(pdf, note, 8, gray=_GRAY, height=11)


# --- drawing helpers ---------------------------------------------------------------------------


def _section(pdf: FPDF, title: str) -> None:
    if pdf.get_y() + 60 > pdf.page_break_trigger:
        pdf.add_page()
    pdf.ln(8)
    _para(pdf, title, 13, height=20)
    pdf.set_draw_color(_RULE)
    pdf.set_line_width(0.6)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + pdf.epw, pdf.get_y())
    pdf.ln(5)


def _para(pdf: FPDF, text: str, size: float, *, gray: int = 0, height: float) -> None:
    pdf.set_font(_FONT, size=size)
    pdf.set_text_color(gray)
    pdf.multi_cell(0, height, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _row(pdf: FPDF, label: str, value: str, *, mono: bool = False) -> None:
    """A two-column table row (shaded label, value); kept whole on one page."""
    value_w = pdf.epw - _LABEL_W
    pdf.set_font(_FONT, size=_SIZE - 1)
    labels = _wrap(pdf, label, _LABEL_W - 2 * _PAD)
    pdf.set_font(_FONT, size=_SIZE)
    values = _mono_lines(value, value_w - 2 * _PAD) if mono else \
        _wrap(pdf, value, value_w - 2 * _PAD)
    height = max(len(labels), len(values)) * _LEADING + 2 * _PAD
    if pdf.get_y() + height > pdf.page_break_trigger:
        pdf.add_page()
    x, y = pdf.l_margin, pdf.get_y()
    pdf.set_draw_color(_RULE)
    pdf.set_line_width(0.5)
    pdf.set_fill_color(_SHADE)
    pdf.rect(x, y, _LABEL_W, height, style="DF")
    pdf.rect(x + _LABEL_W, y, value_w, height, style="D")
    pdf.set_text_color(_GRAY)
    pdf.set_font(_FONT, size=_SIZE - 1)
    _lines_at(pdf, labels, x + _PAD, y + _PAD, _LABEL_W - 2 * _PAD)
    pdf.set_text_color(0)
    pdf.set_font(_FONT, size=_SIZE)
    if mono:
        pdf.set_text_shaping(use_shaping_engine=True, features={"hwid": True})
    _lines_at(pdf, values, x + _LABEL_W + _PAD, y + _PAD, value_w - 2 * _PAD)
    if mono:
        pdf.set_text_shaping(False)
    pdf.set_xy(x, y + height)


def _wrap(pdf: FPDF, text: str, width: float) -> list[str]:
    lines: list[str] = []
    for paragraph in text.split("\n"):
        wrapped = pdf.multi_cell(width, _LEADING, paragraph, dry_run=True, output="LINES")
        lines += wrapped if isinstance(wrapped, list) and wrapped else [""]
    return lines


def _mono_lines(text: str, width: float) -> list[str]:
    """Fixed-width lines: the half-width forms are exactly half an em wide."""
    per_line = max(1, int(width // (_SIZE * 0.5)))
    return [text[i:i + per_line] for i in range(0, len(text), per_line)] or [""]


def _lines_at(pdf: FPDF, lines: list[str], x: float, y: float, width: float) -> None:
    for index, line in enumerate(lines):
        pdf.set_xy(x, y + index * _LEADING)
        pdf.cell(width, _LEADING, line)


def _text(value: str | None) -> str:
    """User-supplied text without control or bidi characters; line breaks become spaces."""
    return clean_text(value or "", 1000)


def _time(moment: datetime | None, zone: tzinfo) -> str:
    """``2026-11-28 17:00:05 UTC+8`` (seconds, the zone's offset spelt out), or ``—``."""
    if moment is None:
        return "—"
    local = moment.astimezone(zone)
    minutes = int((local.utcoffset() or timedelta(0)).total_seconds()) // 60
    hours, mins = divmod(abs(minutes), 60)
    label = "UTC" if not minutes else \
        f"UTC{'+' if minutes > 0 else '-'}{hours}" + (f":{mins:02d}" if mins else "")
    return f"{local:%Y-%m-%d %H:%M:%S} {label}"
