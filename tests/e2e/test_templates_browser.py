"""Templates in a real browser: install the starters, edit variables with the static JS, fill a
contract from the employment template (amounts in Chinese capitals while typing), preview, create
— on a desktop and a phone-sized window, with screenshots in ``test-artifacts/screenshots/``."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.test_browser import assert_no_sideways_scroll, sign_in

pytestmark = pytest.mark.browser

EMPLOYMENT = "劳动合同（固定期限）"


def fill_values(page: Page) -> None:
    page.fill('input[name="title"]', "劳动合同 — 王小明")
    for name, value in {"v_employer.name": "上海示例科技有限公司",
                        "v_legal_representative": "李四", "v_employee.name": "王小明",
                        "v_position": "软件工程师", "v_work_location": "上海市",
                        "v_start_date": "2027-01-01", "v_end_date": "2029-12-31",
                        "v_probation_salary": "16000"}.items():
        page.fill(f'[name="{name}"]', value)
    rows = page.locator(".signer-row")
    rows.nth(0).locator('input[name="signer_name"]').fill("张三")
    rows.nth(0).locator('input[name="signer_email"]').fill("zhang@example.com")
    rows.nth(1).locator('input[name="signer_name"]').fill("王小明")
    rows.nth(1).locator('input[name="signer_email"]').fill("wang@example.com")


def test_templates_in_the_browser(browser: Browser, live_server: str,
                                  screenshots: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    sign_in(page, live_server)
    page.click("nav.mainnav >> text=模板")
    page.click("#install-starters")
    expect(page.locator(".alert-info")).to_contain_text("4")
    page.screenshot(path=str(screenshots / "templates-list.png"), full_page=True)

    page.click(f"text={EMPLOYMENT}")
    rows = page.locator("#var-rows .var-row")
    count = rows.count()
    page.click("#add-variable")
    expect(rows).to_have_count(count + 1)
    expect(rows.nth(count).locator('input[name="var_required"]')).to_be_checked()
    rows.nth(count).locator(".var-remove").click()
    expect(rows).to_have_count(count)
    page.screenshot(path=str(screenshots / "template-editor.png"), full_page=True)

    page.click("text=用此模板新建合同")
    salary = page.locator('input[name="v_monthly_salary"]')
    salary.fill("1004.5")
    expect(page.locator("#cap-monthly_salary")).to_have_text("人民币壹仟零肆元伍角整")
    salary.fill("20000")
    expect(page.locator("#cap-monthly_salary")).to_have_text("人民币贰万元整")
    fill_values(page)
    page.click('button[value="preview"]')
    expect(page.locator("#preview img")).to_have_count(2)
    page.screenshot(path=str(screenshots / "template-use-preview.png"), full_page=True)
    page.click('button[value="create"]')
    expect(page.locator("#template-origin")).to_be_visible()
    expect(page.locator("h1.contract-title")).to_contain_text("劳动合同 — 王小明")

    phone = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")
    sign_in(phone, live_server)
    phone.goto(f"{live_server}/templates")
    phone.click(f"text={EMPLOYMENT}")
    assert_no_sideways_scroll(phone)
    phone.click("text=用此模板新建合同")
    assert_no_sideways_scroll(phone)
    phone.screenshot(path=str(screenshots / "template-use-phone.png"), full_page=True)
    phone.close()
    page.close()
