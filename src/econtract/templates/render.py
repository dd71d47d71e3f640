"""Contract templates to PDF: a sandboxed Jinja2 body rendered to HTML, laid out by WeasyPrint.

Template bodies are HTML with Jinja2 expressions, written by an organisation's administrators and
filled with values a sender (or a CSV row) gives, so both are treated as untrusted:

- Jinja2 runs in its sandbox with autoescaping: a value can never inject markup, and a body can
  reach no Python internals;
- WeasyPrint fetches nothing from the network or the file system: the only URLs it may load are
  the two bundled fonts and ``data:`` images (no SSRF, no reading ``file:///etc/…``);
- sizes are bounded (body, rendered HTML, pages).

All text is set in Noto Serif SC / Noto Sans SC (OFL, from ``pylopdf_fonts_zh_cn``), embedded and
subset by WeasyPrint (HarfBuzz's subsetter: ``libharfbuzz-subset0``), so ``pdftotext`` gives the
Chinese back. ``{{ signature_anchor("signer-1") }}`` marks where a signer's field goes; the
rendered result reports each anchor's page and rectangle in PDF points.

Pure: no database, no web.
"""

from __future__ import annotations

import importlib.resources
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import weasyprint
from jinja2 import meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse, URLFetchingError

from econtract.errors import ValidationFailed
from econtract.templates.variables import money_in_capitals

MAX_BODY_CHARS = 200_000
MAX_HTML_CHARS = 2_000_000
MAX_PAGES = 200
PX_TO_PT = 0.75
"""WeasyPrint lays out in CSS pixels (1/96 in); PDF user space is in points (1/72 in)."""
ANCHOR_ATTRIBUTE = "data-ec-sign-anchor"
ANCHOR_SIZE_MM = (60, 24)

_FONTS = {"EContract Serif SC": "NotoSerifSC-Regular.otf",
          "EContract Sans SC": "NotoSansSC-Regular.otf"}
"""Private family names: a system font with the same name can never be picked instead."""


@dataclass(frozen=True)
class Anchor:
    """Where a signature field goes: ``page`` is 1-based; the rectangle is in PDF points,
    origin at the bottom left of the page (x1, y1, x2, y2)."""

    name: str
    page: int
    rect: tuple[float, float, float, float]


@dataclass(frozen=True)
class RenderedPdf:
    pdf: bytes
    page_count: int
    anchors: tuple[Anchor, ...]


# --- Jinja2 ------------------------------------------------------------------------------------

def _money(value: Any) -> str:
    if value is None:
        return ""
    amount = Decimal(value)
    return f"¥{amount:,.2f}"


def _money_cn(value: Any) -> str:
    return "" if value is None else money_in_capitals(Decimal(value))


def _date_cn(value: Any) -> str:
    if not isinstance(value, date):
        return "" if value is None else str(value)
    return f"{value.year}年{value.month}月{value.day}日"


def _date_en(value: Any) -> str:
    if not isinstance(value, date):
        return "" if value is None else str(value)
    return f"{value.day} {value.strftime('%B')} {value.year}"


def _signature_anchor(name: str, width_mm: int = ANCHOR_SIZE_MM[0],
                      height_mm: int = ANCHOR_SIZE_MM[1]) -> Markup:
    width_mm = max(30, min(int(width_mm), 120))
    height_mm = max(12, min(int(height_mm), 60))
    return Markup(
        '<span class="ec-sign-anchor" {attr}="{name}" style="width:{w}mm;height:{h}mm">'
        '</span>').format(attr=Markup(ANCHOR_ATTRIBUTE), name=str(name)[:64], w=width_mm,
                          h=height_mm)


@cache
def _environment() -> SandboxedEnvironment:
    # An optional variable left empty is None: it prints as nothing, not as "None".
    env = SandboxedEnvironment(autoescape=True, undefined=jinja2.StrictUndefined,
                               trim_blocks=True, lstrip_blocks=True,
                               finalize=lambda value: "" if value is None else value)
    env.filters.update(money=_money, money_cn=_money_cn, date_cn=_date_cn, date_en=_date_en)
    env.globals.update(signature_anchor=_signature_anchor)
    return env


def _compile(body: str) -> jinja2.Template:
    if len(body) > MAX_BODY_CHARS:
        raise ValidationFailed(f"A template body may be at most {MAX_BODY_CHARS:,} characters.",
                               code="template_invalid")
    try:
        return _environment().from_string(body)
    except jinja2.TemplateSyntaxError as exc:
        raise ValidationFailed(f"Template syntax error on line {exc.lineno}: {exc.message}",
                               code="template_invalid",
                               details={"line": exc.lineno}) from None


def referenced_names(body: str) -> set[str]:
    """The variable names a body uses (besides the built-in helpers)."""
    _compile(body)
    names = meta.find_undeclared_variables(_environment().parse(body))
    return names - set(_environment().globals) - {"clauses", "title"}


def check_body(body: str, declared: Sequence[str]) -> None:
    """A body that compiles and uses only declared variables."""
    unknown = sorted(referenced_names(body) - set(declared))
    if unknown:
        raise ValidationFailed(
            f"The template uses variables it does not declare: {', '.join(unknown)}.",
            code="template_invalid", details={"variables": unknown})


def render_html(body: str, values: Mapping[str, Any], *, title: str,
                clauses: Sequence[tuple[str, str]] = (), locale: str = "zh_CN") -> str:
    """The body filled with typed ``values`` (see ``variables.resolve``), as a full HTML page."""
    template = _compile(body)
    context = {**values, "title": title,
               "clauses": [{"title": t, "body": b} for t, b in clauses]}
    try:
        content = template.render(context)
    except jinja2.UndefinedError as exc:
        raise ValidationFailed(f"The template refers to something undefined: {exc.message}",
                               code="template_render_failed") from None
    except SecurityError as exc:
        raise ValidationFailed(f"The template did something not allowed: {exc}",
                               code="template_render_failed") from None
    except (jinja2.TemplateError, ArithmeticError, ValueError, TypeError) as exc:
        raise ValidationFailed(f"The template could not be filled: {exc}",
                               code="template_render_failed") from None
    lang = "en" if locale == "en" else "zh-CN"
    page = (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            f"<title>{escape(title)}</title></head><body>{content}</body></html>")
    if len(page) > MAX_HTML_CHARS:
        raise ValidationFailed("The filled template is too large.", code="template_too_large")
    return page


# --- WeasyPrint ----------------------------------------------------------------------------------

def font_path(file_name: str) -> Path:
    return Path(str(importlib.resources.files("pylopdf_fonts_zh_cn") / file_name))


def _font_urls() -> dict[str, str]:
    return {font_path(file).as_uri(): file for file in _FONTS.values()}


_EN_FOOTER = '@page { @bottom-center { content: "Page " counter(page) " of " counter(pages); } }'


def base_css(locale: str = "zh_CN") -> str:
    # Each family is declared for both weights with the same regular face, so a bold heading
    # never falls back to whatever system font happens to be installed.
    faces = "".join(
        f'@font-face {{ font-family: "{family}"; font-weight: {weight}; '
        f'src: url("{font_path(file).as_uri()}"); }}\n'
        for family, file in _FONTS.items() for weight in (400, 700))
    return faces + """
@page {
  size: A4; margin: 22mm 20mm 24mm 20mm;
  @bottom-center { content: "第 " counter(page) " 页 / 共 " counter(pages) " 页";
                   font-family: "EContract Sans SC"; font-size: 8.5pt; color: #666; }
}
html { font-family: "EContract Serif SC", serif; font-size: 10.5pt; line-height: 1.65;
       color: #111; }
h1 { font-family: "EContract Sans SC", sans-serif; font-size: 17pt; text-align: center;
     margin: 0 0 14pt; letter-spacing: 0.5pt; }
h2 { font-family: "EContract Sans SC", sans-serif; font-size: 12pt; margin: 14pt 0 6pt; }
p { margin: 0 0 6pt; text-align: justify; }
table { border-collapse: collapse; width: 100%; margin: 6pt 0; }
td, th { border: 0.6pt solid #888; padding: 3pt 5pt; vertical-align: top; }
.parties td { border: none; padding: 1pt 0; }
.ec-sign-anchor { display: inline-block; vertical-align: bottom; }
.signatures { margin-top: 18pt; page-break-inside: avoid; }
.signatures td { border: none; width: 50%; padding: 4pt 8pt 4pt 0; }
""" + (_EN_FOOTER if locale == "en" else "")


def render_pdf(html: str, *, locale: str = "zh_CN", extra_css: str = "") -> RenderedPdf:
    """Lay out ``html`` (from ``render_html``) as an A4 PDF with the fonts embedded."""
    fonts = FontConfiguration()
    stylesheets = [weasyprint.CSS(string=base_css(locale) + extra_css, font_config=fonts,
                                  url_fetcher=_Fetcher())]
    document = weasyprint.HTML(string=html, url_fetcher=_Fetcher()).render(
        stylesheets=stylesheets, font_config=fonts)
    if len(document.pages) > MAX_PAGES:
        raise ValidationFailed(f"The document would have {len(document.pages)} pages; at most "
                               f"{MAX_PAGES} are allowed.", code="template_too_large")
    anchors = tuple(_anchors(document))
    names = [a.name for a in anchors]
    if len(names) != len(set(names)):
        raise ValidationFailed("Each signature anchor may appear once.",
                               code="template_invalid")
    out = io.BytesIO()
    document.write_pdf(out)
    return RenderedPdf(pdf=out.getvalue(), page_count=len(document.pages), anchors=anchors)


def _anchors(document: Any) -> Iterator[Anchor]:
    for number, page in enumerate(document.pages, start=1):
        height_pt = page.height * PX_TO_PT
        for box in page._page_box.descendants():
            element = getattr(box, "element", None)
            name = element.get(ANCHOR_ATTRIBUTE) if element is not None else None
            if not name or getattr(box, "element_tag", "") != "span":
                continue
            x, y = box.border_box_x(), box.border_box_y()
            w, h = box.border_width(), box.border_height()
            if w <= 0 or h <= 0:
                continue
            yield Anchor(name=name, page=number, rect=(
                round(x * PX_TO_PT, 2), round(height_pt - (y + h) * PX_TO_PT, 2),
                round((x + w) * PX_TO_PT, 2), round(height_pt - y * PX_TO_PT, 2)))


class _Fetcher(URLFetcher):  # type: ignore[misc]
    """Serves the bundled fonts and ``data:`` URLs; refuses everything else."""

    def fetch(self, url: str, headers: Any = None) -> Any:
        fonts = _font_urls()
        if url in fonts:
            return URLFetcherResponse(url, body=font_path(fonts[url]).read_bytes(),
                                      headers={"Content-Type": "font/otf"})
        if url.startswith("data:"):
            return super().fetch(url, headers)
        raise URLFetchingError(f"external resources are not loaded: {url[:80]}")
