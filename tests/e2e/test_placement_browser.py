"""The placement editor in a real browser: drag a signer onto page 1 with the mouse, resize the box
by its corner, save, and find the rectangle stored in PDF points; then move it with a finger on a
phone-sized window (touch through Chromium's input pipeline). Screenshots in
``test-artifacts/screenshots/``."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from econtract.parties.models import Signer
from econtract.runtime import Runtime
from tests.e2e.test_browser import sign_in
from tests.factories import create_contract, owner

pytestmark = pytest.mark.browser

PAGE_W, PAGE_H = 595, 842  # tests.factories.make_pdf pages, in points


def stored(rt: Runtime, contract_id: uuid.UUID) -> list[tuple[int | None, list[float] | None]]:
    with rt.uow() as session:
        signers = session.scalars(select(Signer).where(Signer.contract_id == contract_id)
                                  .order_by(Signer.order)).all()
        return [(s.field_page, (s.field_rect or {}).get("rect")) for s in signers]


def open_editor(page: Page, base_url: str, contract_id: uuid.UUID) -> None:
    page.goto(f"{base_url}/contracts/{contract_id}")
    page.click("#placement-link")
    expect(page).to_have_url(f"{base_url}/contracts/{contract_id}/fields")
    page.wait_for_function(
        "() => document.getElementById('placement').dataset.ready === 'true' && "
        "[...document.querySelectorAll('.pl-sheet img')]"
        ".every(img => img.complete && img.naturalWidth > 0)")


def box_of(page: Page, selector: str) -> dict[str, float]:
    found = page.locator(selector).bounding_box()
    assert found is not None, selector
    return found


def save(page: Page, times: int) -> None:
    page.click("#placement-save")
    page.wait_for_function(f"() => document.getElementById('placement').dataset.saved === "
                           f"'{times}'")


def test_drag_resize_and_save_with_the_mouse(browser: Browser, live_server: str, rt: Runtime,
                                             screenshots: Path) -> None:
    contract = create_contract(rt, owner(rt))
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    sign_in(page, live_server)
    open_editor(page, live_server, contract.id)
    page.screenshot(path=str(screenshots / "placement-empty.png"))

    chip = box_of(page, ".ps-row >> nth=0 >> .ps-chip")
    sheet = box_of(page, '.pl-page[data-page="1"] .pl-sheet')
    scale = sheet["width"] / PAGE_W  # pixels per point
    target = (sheet["x"] + 200, sheet["y"] + 300)  # where the box's centre lands
    page.mouse.move(chip["x"] + chip["width"] / 2, chip["y"] + chip["height"] / 2)
    page.mouse.down()
    page.mouse.move(*target, steps=12)
    page.mouse.up()
    placed = page.locator('.pl-page[data-page="1"] .pl-box')
    expect(placed).to_have_count(1)
    expect(page.locator(".ps-row >> nth=0 >> .ps-where")).to_have_text("第 1 页")

    handle = box_of(page, '.pl-page[data-page="1"] .pl-box .pl-handle')
    grab = (handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.move(*grab)
    page.mouse.down()
    page.mouse.move(grab[0] + 40 * scale, grab[1] + 20 * scale, steps=8)
    page.mouse.up()
    save(page, 1)
    expect(page.locator("#placement-status")).to_have_text("已保存。")
    page.screenshot(path=str(screenshots / "placement-desktop.png"))

    (first_page, rect), second = stored(rt, contract.id)
    assert first_page == 1 and second == (None, None)
    assert rect is not None
    left = 200 / scale - 80  # default 160 × 64 pt, centred under the pointer
    top = PAGE_H - (300 / scale - 32)
    expected = [left, top - 84, left + 200, top]  # resized by 40 × 20 pt, top-left kept
    assert all(abs(a - b) <= 2 for a, b in zip(rect, expected, strict=True)), (rect, expected)
    assert page.locator(".pl-box").get_attribute("data-rect") == ",".join(
        f"{v:g}" for v in rect)
    context.close()


def test_touch_drag_on_a_phone(browser: Browser, live_server: str, rt: Runtime,
                               screenshots: Path) -> None:
    contract = create_contract(rt, owner(rt))
    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                is_mobile=True, has_touch=True, locale="en-US")
    page = phone.new_page()
    sign_in(page, live_server)
    open_editor(page, live_server, contract.id)
    page.locator(".ps-row >> nth=1 >> .ps-place").click()  # a default box on the page in view
    box = page.locator(".pl-box")
    expect(box).to_have_count(1)
    box.scroll_into_view_if_needed()
    before = [float(v) for v in (box.get_attribute("data-rect") or "").split(",")]
    start = box_of(page, ".pl-box")
    sheet = box_of(page, f'.pl-page[data-page="{box.get_attribute("data-page")}"] .pl-sheet')
    scale = sheet["width"] / PAGE_W
    x, y = start["x"] + start["width"] / 3, start["y"] + start["height"] / 2
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart",
                                          "touchPoints": [{"x": x, "y": y}]})
    for step in range(1, 11):
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [
            {"x": x - 3 * step * scale, "y": y + 4 * step * scale}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()
    save(page, 1)
    expect(page.locator("#placement-status")).to_have_text("Saved.")
    # The editor itself fits the phone (the top bar's nav is checked by test_browser.py).
    assert box_of(page, "#placement")["x"] + box_of(page, "#placement")["width"] <= 390
    page.screenshot(path=str(screenshots / "placement-phone.png"), full_page=True)
    first, (page_number, rect) = stored(rt, contract.id)
    assert first == (None, None) and page_number is not None and rect is not None
    moved = [b - a for a, b in zip(before, rect, strict=True)]
    assert all(abs(m - e) <= 2 for m, e in zip(moved, [-30, -40, -30, -40], strict=True)), moved
    phone.close()
