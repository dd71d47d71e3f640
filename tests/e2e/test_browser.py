"""A person's path through the UI in a real browser: sign in, create, find, open, switch language.

Screenshots of each step go to ``test-artifacts/screenshots/`` for a human to look at.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from econtract.runtime import Runtime
from tests.conftest import OWNER_EMAIL, OWNER_PASSWORD
from tests.factories import create_contract, force_status, make_pdf, owner

pytestmark = pytest.mark.browser

TITLE = "Cloud services agreement 云服务协议"


def seed(rt: Runtime) -> None:
    """A few contracts in several states, so the dashboard has something to show."""
    user = owner(rt)
    for n, status in enumerate(["draft", "sent", "signing", "completed", "completed"]):
        contract = create_contract(rt, user, title=f"Supply contract {n + 1} 供货合同")
        with rt.uow() as session:
            force_status(session, contract.id, status)


def sign_in(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/")
    expect(page).to_have_url(f"{base_url}/login?next=/")
    page.fill('input[name="email"]', OWNER_EMAIL)
    page.fill('input[name="password"]', OWNER_PASSWORD)
    page.click('button[type="submit"]:not(.btn-ghost)')
    expect(page).to_have_url(f"{base_url}/")


def fill_new_contract(page: Page, pdf: Path) -> None:
    page.fill('input[name="title"]', TITLE)
    page.set_input_files('input[name="document"]', str(pdf))
    page.fill('input[name="category"]', "services")
    page.fill('input[name="tags"]', "cloud，2027")
    rows = page.locator(".signer-row")
    expect(rows).to_have_count(3)
    page.click("#add-signer")  # the static JS clones a row
    expect(rows).to_have_count(4)
    expect(rows.nth(3).locator('input[name="signer_order"]')).to_have_value("4")
    for index, (name, email) in enumerate([("李雷", "lilei@example.com"),
                                           ("Hanna Meyer", "hanna@example.com")]):
        rows.nth(index).locator('input[name="signer_name"]').fill(name)
        rows.nth(index).locator('input[name="signer_email"]').fill(email)
    page.fill('input[name="effective_date"]', "2027-01-01")
    page.fill('input[name="expiry_date"]', "2027-12-31")
    page.fill('input[name="sign_deadline"]', "2026-12-31T18:00")
    page.fill('textarea[name="clauses"]', "服务等级：99.9% 可用性。\n\nData stays in the EU.")


def wait_for_previews(page: Page) -> None:
    preview = page.locator(".preview img").first
    preview.scroll_into_view_if_needed()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.preview img')]"
        ".every(img => img.complete && img.naturalWidth > 0)")
    expect(preview).to_be_visible()


def assert_no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")
    viewport = page.viewport_size
    assert viewport is not None and width <= viewport["width"], \
        f"the page scrolls sideways ({width}px)"


def create_and_find(page: Page, base_url: str, pdf: Path, screenshots: Path) -> None:
    page.click("text=New contract")
    expect(page).to_have_url(f"{base_url}/contracts/new")
    fill_new_contract(page, pdf)
    page.screenshot(path=screenshots / "03-new-contract.png", full_page=True)
    page.click('button:has-text("Create contract")')
    expect(page.locator("h1.contract-title")).to_contain_text(TITLE)

    page.goto(f"{base_url}/contracts")
    page.fill('input[name="q"]', "云服务")
    page.click('button:has-text("Search")')
    expect(page).to_have_url(re.compile(r"/contracts\?q=%E4%BA%91%E6%9C%8D%E5%8A%A1&"))
    expect(page.locator(".contracts-table tbody tr")).to_have_count(1)
    page.screenshot(path=screenshots / "04-list.png", full_page=True)


def open_and_switch_language(page: Page, screenshots: Path) -> str:
    page.click(f"text={TITLE}")
    expect(page.locator(".timeline")).to_contain_text("Contract created")
    expect(page.locator(".detail-main")).to_contain_text("李雷")
    expect(page.locator(".detail-main")).to_contain_text("hanna@example.com")
    wait_for_previews(page)
    page.screenshot(path=screenshots / "05-detail.png", full_page=True)
    detail_url = page.url

    page.click('a[lang="zh-CN"]')
    expect(page).to_have_url(detail_url)
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator(".timeline")).to_contain_text("创建合同")
    expect(page.locator("h2", has_text="时间线")).to_be_visible()
    expect(page.locator(".badge").first).to_have_text("草稿")
    wait_for_previews(page)
    page.screenshot(path=screenshots / "06-detail-zh.png", full_page=True)
    return detail_url


def phone_pass(browser: Browser, base_url: str, detail_url: str, screenshots: Path) -> None:
    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                is_mobile=True, has_touch=True, locale="zh-CN")
    page = phone.new_page()
    sign_in(page, base_url)
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")  # from Accept-Language
    assert_no_sideways_scroll(page)
    page.screenshot(path=screenshots / "07-phone-dashboard.png", full_page=True)
    page.goto(detail_url)
    wait_for_previews(page)
    assert_no_sideways_scroll(page)
    page.screenshot(path=screenshots / "08-phone-detail.png", full_page=True)
    page.goto(f"{base_url}/contracts/new")
    assert_no_sideways_scroll(page)
    page.screenshot(path=screenshots / "09-phone-new-contract.png", full_page=True)
    phone.close()


def test_sign_in_create_find_open_and_switch_language(
        browser: Browser, live_server: str, rt: Runtime, tmp_path: Path,
        screenshots: Path) -> None:
    seed(rt)
    pdf = tmp_path / "cloud-agreement.pdf"
    pdf.write_bytes(make_pdf(2, text="Cloud services agreement"))
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    errors: list[str] = []  # CSP violations and script errors show up here
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    page.goto(f"{live_server}/login")
    page.screenshot(path=screenshots / "01-login.png")
    sign_in(page, live_server)
    page.screenshot(path=screenshots / "02-dashboard.png", full_page=True)
    create_and_find(page, live_server, pdf, screenshots)
    detail_url = open_and_switch_language(page, screenshots)
    assert not errors, errors
    context.close()
    phone_pass(browser, live_server, detail_url, screenshots)


def verify_upload(page: Page, base_url: str, pdf: Path) -> None:
    page.goto(f"{base_url}/verify")
    page.set_input_files('input[name="file"]', str(pdf))
    page.click('.verify-upload button[type="submit"]')
    expect(page.locator(".verdict")).to_be_visible()


def test_verify_a_sealed_contract_without_signing_in(
        browser: Browser, live_server: str, sealed_pdf: bytes, tmp_path: Path,
        screenshots: Path) -> None:
    pdf = tmp_path / "租赁合同 lease (signed).pdf"
    pdf.write_bytes(sealed_pdf)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{live_server}/verify")
    expect(page.locator("h1")).to_have_text("Verify a signed PDF")
    expect(page.locator(".mainnav a")).to_have_text(["Verify"])  # nobody is signed in
    expect(page.locator(".checks li")).to_have_count(4)
    page.screenshot(path=screenshots / "10-verify-form.png", full_page=True)

    verify_upload(page, live_server, pdf)
    expect(page.locator(".verdict")).to_have_class(re.compile(r"\bverdict-ok\b"))
    expect(page.locator(".verdict-title")).to_have_text("Valid")
    expect(page.locator(".sig-card")).to_have_count(5)
    for name in ("张三", "Bob Lee", "王五"):
        expect(page.locator(".sig-name", has_text=name)).to_be_visible()
    expect(page.locator(".facts-file")).to_contain_text("租赁合同 lease (signed).pdf")
    assert_no_sideways_scroll(page)
    page.screenshot(path=screenshots / "11-verify-valid.png", full_page=True)
    assert not errors, errors
    context.close()

    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                is_mobile=True, has_touch=True, locale="zh-CN")
    page = phone.new_page()
    verify_upload(page, live_server, pdf)
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator(".verdict-title")).to_have_text("有效")
    expect(page.locator(".sig-kind").first).to_contain_text("认证签名")
    assert_no_sideways_scroll(page)
    page.screenshot(path=screenshots / "12-verify-phone.png", full_page=True)
    phone.close()
