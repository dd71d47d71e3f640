"""Template rendering: sandboxed Jinja2, WeasyPrint with embedded CJK fonts, no outside fetches,
signature anchors; and every shipped starter template renders with its Chinese intact."""

from __future__ import annotations

import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from econtract.errors import ValidationFailed
from econtract.templates import render
from econtract.templates.starters import Starter, starters
from econtract.templates.variables import Party, VarType

SAMPLE = {
    VarType.TEXT: "示例文字 sample", VarType.NUMBER: Decimal(12),
    VarType.MONEY: Decimal("12500.00"), VarType.PARTY: Party(name="上海示例科技有限公司",
                                                             id_number="91310000MA1234567X",
                                                             address="上海市浦东新区世纪大道100号",
                                                             contact="021-12345678"),
}


def _pdftotext(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "out.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout


def _fonts(pdf: bytes, tmp_path: Path) -> list[list[str]]:
    path = tmp_path / "fonts.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdffonts", str(path)], check=True, capture_output=True,
                         text=True).stdout
    return [line.split() for line in out.splitlines()[2:] if line.strip()]


@pytest.mark.parametrize("starter", starters(), ids=lambda s: s.key)
def test_starter_renders_with_text_and_fonts_embedded(starter: Starter, tmp_path: Path) -> None:
    values = {v.name: date(2026, 12, 1) if v.type is VarType.DATE else SAMPLE[v.type]
              for v in starter.variables}
    html = render.render_html(starter.body, values, title=starter.name,
                              clauses=[("补充", "双方另行约定的其他事项。")],
                              locale=starter.locale)
    result = render.render_pdf(html, locale=starter.locale)
    text = " ".join(_pdftotext(result.pdf, tmp_path).split())
    assert starter.name.replace("（", "(")[:2] in text.replace("（", "(")
    assert "上海示例科技有限公司" in text
    if starter.locale == "zh_CN":
        assert "人民币壹万贰仟伍佰元整" in text
        assert "2026年12月1日" in text
    else:
        assert "1 December 2026" in text
    fonts = _fonts(result.pdf, tmp_path)
    assert fonts and all(row[-5] == "yes" and row[-4] == "yes" for row in fonts), fonts
    assert [a.name for a in result.anchors] == ["signer-1", "signer-2"]
    for anchor in result.anchors:
        x1, y1, x2, y2 = anchor.rect
        assert 0 < x1 < x2 < 595.3 and 0 < y1 < y2 < 841.9
        assert anchor.page == result.page_count


def test_values_cannot_inject_markup(tmp_path: Path) -> None:
    html = render.render_html("<p>{{ name }}</p>", {"name": "<b>x</b><script>1</script>"},
                              title="<i>t</i>")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<title>&lt;i&gt;t&lt;/i&gt;</title>" in html


def test_sandbox_refuses_python_internals() -> None:
    with pytest.raises(ValidationFailed) as caught:
        render.render_html("{{ name.__class__.__mro__[1].__subclasses__() }}", {"name": "x"},
                           title="t")
    assert caught.value.code == "template_render_failed"


def test_nothing_is_fetched_from_outside(tmp_path: Path) -> None:
    secret = tmp_path / "secret.css"
    secret.write_text("p { color: red } p::after { content: 'LEAKED-SECRET' }")
    body = (f'<link rel="stylesheet" href="{secret.as_uri()}">'
            f'<img src="http://127.0.0.1:9/x.png"><img src="file:///etc/hostname">'
            "<p>正文</p>")
    result = render.render_pdf(render.render_html(body, {}, title="t"))
    text = _pdftotext(result.pdf, tmp_path)
    assert "正文" in text and "LEAKED-SECRET" not in text


def test_syntax_errors_and_undeclared_variables_are_clear() -> None:
    with pytest.raises(ValidationFailed) as caught:
        render.check_body("<p>{{ name </p>", ["name"])
    assert caught.value.code == "template_invalid" and caught.value.details["line"] == 1
    with pytest.raises(ValidationFailed) as caught:
        render.check_body("<p>{{ name }} {{ other }}</p>", ["name"])
    assert caught.value.details["variables"] == ["other"]
