"""Two sequential signers sign in a real browser using only what arrives by e-mail.

The app runs under uvicorn with its in-process worker, so invitations, codes and the seal job go
out as they would in production: over SMTP to an aiosmtpd server started here (acceptance 1, on
a desktop with the mouse and on a phone with touch), or as ``.eml`` files in the outbox, the
default backend (acceptance 2). One journey, two mailboxes. The completed PDF must then be valid
for ``econtract verify`` and for poppler's ``pdfsig`` with the platform root trusted.
"""

from __future__ import annotations

import base64
import email.message
import email.policy
import io
import json
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from email.parser import BytesParser
from pathlib import Path
from typing import Protocol

import pytest
from click.testing import CliRunner
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, expect

from econtract.app import create_app
from econtract.cli import main
from econtract.contracts import sending
from econtract.contracts.models import Contract
from econtract.runtime import Runtime
from econtract.settings import Settings
from tests.conftest import free_port
from tests.e2e.conftest import serving
from tests.e2e.test_browser import assert_no_sideways_scroll
from tests.factories import create_contract, owner, user_ctx
from tests.notifications.conftest import SmtpServer, smtp_server  # noqa: F401 (fixture)
from tests.parties.test_sign import current_pdf

pytestmark = pytest.mark.browser

TITLE = "设备采购合同 Equipment purchase 2027"
SIGNERS = [("李雷 Li Lei", "lilei@example.com", "582039"),
           ("Hanna Meyer", "hanna@example.com", "930471")]
LINK = re.compile(r"https?://\S+/s/[A-Za-z0-9_-]{22,}")
CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")
PARSER = BytesParser(policy=email.policy.default)


@dataclass(frozen=True)
class Texts:
    """What the page says, in the browser's language (the page follows Accept-Language)."""

    locale: str
    page_of: str
    attempts_left: str
    key_setup: str
    mismatch: str
    signed: str


ENGLISH = Texts("en-US", "Page {n} of {total}", "4 attempts left", "Key setup", "do not match",
                "Your status: Signed")
CHINESE = Texts("zh-CN", "第 {n} 页，共 {total} 页", "还可尝试 4 次", "密钥设置", "不一致",
                "您的状态：已签署")


# --- mailboxes: where the test reads what a signer would read -----------------------------

class Mailbox(Protocol):
    def messages(self) -> list[email.message.EmailMessage]:
        """Every message delivered so far, oldest first."""


@dataclass
class SmtpMailbox:
    server: SmtpServer

    def messages(self) -> list[email.message.EmailMessage]:
        return [_parse(envelope.content) for envelope in list(self.server.inbox.envelopes)]


@dataclass
class OutboxMailbox:
    """The ``file`` backend: one ``job-<id>.eml`` per message in ``<data dir>/outbox``."""

    directory: Path

    def messages(self) -> list[email.message.EmailMessage]:
        files = sorted(self.directory.glob("job-*.eml"),
                       key=lambda p: int(p.stem.removeprefix("job-")))
        return [_parse(path.read_bytes()) for path in files]


def _parse(raw: bytes | str) -> email.message.EmailMessage:
    message = PARSER.parsebytes(raw if isinstance(raw, bytes) else raw.encode())
    assert isinstance(message, email.message.EmailMessage)
    return message


def text_of(message: email.message.EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def mail_to(mailbox: Mailbox, address: str, subject: str) -> list[email.message.EmailMessage]:
    return [m for m in mailbox.messages()
            if m["To"] == address and subject in str(m["Subject"])]


def wait_for_mail(mailbox: Mailbox, address: str, subject: str, *, seen: int = 0,
                  timeout: float = 30) -> email.message.EmailMessage:
    """The first message to ``address`` about ``subject`` after the ``seen`` earlier ones."""
    deadline = time.monotonic() + timeout
    while True:
        found = mail_to(mailbox, address, subject)
        if len(found) > seen:
            return found[seen]
        if time.monotonic() > deadline:
            pytest.fail(f"no e-mail {subject!r} for {address} within {timeout} s")
        time.sleep(0.1)


# --- the installation: settings for a live server and the chosen mail backend --------------

@pytest.fixture
def mail_backend() -> str:
    return "smtp"  # tests choose with @pytest.mark.parametrize("mail_backend", [...])


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def settings(tmp_path: Path, db_url: str, port: int, mail_backend: str,
             request: pytest.FixtureRequest) -> Settings:
    """Links in the e-mails point at the live server; the worker polls briskly."""
    smtp: dict[str, object] = {}
    if mail_backend == "smtp":
        server: SmtpServer = request.getfixturevalue("smtp_server")
        smtp = {"smtp_host": "127.0.0.1", "smtp_port": server.port, "smtp_timeout": 10}
    return Settings(data_dir=tmp_path / "data", database_url=db_url, max_upload_mb=2,
                    max_pages=20, base_url=f"http://127.0.0.1:{port}",
                    email_backend=mail_backend, worker_poll_seconds=0.2, **smtp)


@pytest.fixture
def mailbox(rt: Runtime, mail_backend: str, request: pytest.FixtureRequest) -> Mailbox:
    if mail_backend == "smtp":
        return SmtpMailbox(request.getfixturevalue("smtp_server"))
    return OutboxMailbox(rt.settings.outbox_dir)


@pytest.fixture
def app_with_worker(rt: Runtime, port: int) -> Iterator[str]:
    """``econtract serve`` as it runs: the web app and the worker thread in one process."""
    with serving(create_app(rt, start_worker=True), port) as url:
        yield url


def send_contract(rt: Runtime) -> uuid.UUID:
    """The owner's part, through the services: a draft with two signers in order, sent."""
    signers = [{"name": name, "email": address, "order": n + 1}
               for n, (name, address, _) in enumerate(SIGNERS)]
    contract = create_contract(rt, owner(rt), title=TITLE, signers=signers)
    ctx = replace(user_ctx(owner(rt)), base_url=rt.settings.base_url)  # as a request's would be
    with rt.uow() as session:
        sending.send(session, ctx, blobs=rt.blobs, engine=rt.signing_engine(),
                     contract_id=contract.id)
    return contract.id


# --- drawing on the signature pad ----------------------------------------------------------

def _stroke_points(box: dict[str, float]) -> list[tuple[float, float]]:
    """A signature-like zigzag across the middle of the pad (viewport coordinates)."""
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    return [(x0 + w * (0.12 + 0.76 * i / 24), y0 + h * (0.5 + (0.22 if i % 4 < 2 else -0.22)))
            for i in range(25)]


def draw_with_mouse(page: Page) -> None:
    canvas = page.locator("#sig-canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None
    points = _stroke_points(box)
    page.mouse.move(*points[0])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x, y, steps=3)
    page.mouse.up()


def draw_with_finger(page: Page) -> None:
    """Real touch input through Chromium's input pipeline (CDP), which turns it into the pointer
    events the pad listens to, with ``pointerType`` ``touch``."""
    canvas = page.locator("#sig-canvas")
    canvas.scroll_into_view_if_needed()
    page.evaluate("""() => {
        window.__pointerTypes = [];
        document.getElementById('sig-canvas').addEventListener('pointerdown',
            e => window.__pointerTypes.push(e.pointerType));
    }""")
    box = canvas.bounding_box()
    assert box is not None
    points = _stroke_points(box)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent",
             {"type": "touchStart", "touchPoints": [{"x": points[0][0], "y": points[0][1]}]})
    for x, y in points[1:]:
        cdp.send("Input.dispatchTouchEvent",
                 {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()
    assert page.evaluate("() => window.__pointerTypes") == ["touch"]


def inked_pixels(data_url: str) -> tuple[int, int]:
    """Pixels with ink in a PNG data URL, and the width of the inked area."""
    image = Image.open(io.BytesIO(base64.b64decode(data_url.partition(",")[2])))
    alpha = image.convert("RGBA").getchannel("A")
    box = alpha.getbbox()
    count = sum(alpha.histogram()[1:])
    return count, (box[2] - box[0]) if box else 0


# --- the journey ---------------------------------------------------------------------------

@dataclass
class Shots:
    directory: Path
    prefix: str
    taken: list[str] = field(default_factory=list)

    def __call__(self, page: Page, step: str) -> None:
        name = f"{self.prefix}-{len(self.taken) + 1:02d}-{step}.png"
        page.screenshot(path=self.directory / name, full_page=True)
        self.taken.append(name)


def read_pages(page: Page, texts: Texts, phone: bool) -> None:
    """Page through the whole document; each page's image must load (they load lazily)."""
    total = page.locator(".doc-page").count()
    assert total >= 3  # two pages, the clauses page, the signature page
    for n in range(1, total + 1):
        if n > 1:
            page.click("#page-next")
        expect(page.locator("#page-pos")).to_have_text(texts.page_of.format(n=n, total=total))
        page.wait_for_function(
            "n => { const i = document.querySelector(`.doc-page[data-page='${n}'] img`);"
            " return i.complete && i.naturalWidth > 0; }", arg=n)
    expect(page.locator("#page-next")).to_be_disabled()
    page.click("#zoom-in")
    expect(page.locator("#zoom-level")).to_have_text("125%")
    expect(page.locator("#page-pos")).to_have_text(texts.page_of.format(n=total, total=total))
    page.click("#page-prev")
    expect(page.locator("#page-pos")).to_have_text(
        texts.page_of.format(n=total - 1, total=total))
    page.click("#zoom-out")
    expect(page.locator("#zoom-level")).to_have_text("100%")
    if phone:
        assert_no_sideways_scroll(page)


def sign_as(context: BrowserContext, mailbox: Mailbox, base_url: str, signer: tuple[str, str, str],
            draw: Callable[[Page], None], shots: Shots, texts: Texts, *, phone: bool) -> None:
    name, address, pin = signer
    page = context.new_page()
    problems: list[str] = []  # script errors and CSP violations (refused requests are expected)
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" and
            not msg.text.startswith("Failed to load resource") else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    invitation = wait_for_mail(mailbox, address, "Please sign")
    found = LINK.search(text_of(invitation))
    assert found is not None, text_of(invitation)
    assert found.group(0).startswith(base_url)
    page.goto(found.group(0))
    expect(page).to_have_url(f"{base_url}/s")  # the token left the address bar
    expect(page.locator("h1.sign-title")).to_have_text(TITLE)
    expect(page.locator("#step-summary")).to_contain_text(name)
    expect(page.locator("#step-summary")).to_contain_text("notes.txt")
    expect(page.locator("#after-identity")).to_be_hidden()
    if phone:
        assert_no_sideways_scroll(page)
    shots(page, "summary")
    if texts is CHINESE:  # the language switch of every page works here too
        page.click('a[lang="en"]')
        expect(page.locator("#send-code")).to_have_text("Send code")
        page.click('a[lang="zh-CN"]')
        expect(page.locator("#send-code")).to_have_text("发送验证码")
        expect(page).to_have_url(f"{base_url}/s")

    codes_before = len(mail_to(mailbox, address, "Verification code"))
    page.click("#send-code")
    expect(page.locator("#code-status")).to_contain_text(address)
    code = CODE.search(text_of(wait_for_mail(mailbox, address, "Verification code",
                                             seen=codes_before)))
    assert code is not None
    wrong = "000000" if code.group(1) != "000000" else "111111"
    page.fill("#otp-code", wrong)
    page.click("#verify-code")
    expect(page.locator("#identity-error")).to_contain_text("otp_incorrect")
    expect(page.locator("#identity-error")).to_contain_text(texts.attempts_left)
    shots(page, "wrong-code")
    page.fill("#otp-code", code.group(1))
    page.click("#verify-code")
    expect(page.locator("#identity-done")).to_be_visible()
    expect(page.locator("#identity-error")).to_be_hidden()

    read_pages(page, texts, phone)
    shots(page, "read")

    draw(page)
    expect(page.locator("#sig-canvas")).to_have_class(re.compile(r"\bhas-ink\b"))
    shots(page, "signature")

    expect(page.locator("#step-confirm")).to_contain_text(texts.key_setup)
    page.check("#consent")
    page.fill("#pin", pin)
    page.fill("#pin2", pin[::-1])
    page.click("#sign-btn")
    expect(page.locator("#sign-error")).to_contain_text(texts.mismatch)  # checked in the page
    page.fill("#pin2", pin)
    with page.expect_request(lambda r: r.url.endswith("/api/v1/signer/sign")) as sent:
        page.click("#sign-btn")
        expect(page.locator("#busy")).to_be_visible()
    body = json.loads(sent.value.post_data or "{}")
    assert body["consent"] is True and body["pin"] == pin
    assert body["appearance"]["type"] == "drawn"
    ink, width = inked_pixels(body["appearance"]["image_png_base64"])
    assert ink > 300 and width > 100, (ink, width)  # the strokes reached the PNG
    expect(page.locator("#done-signed")).to_be_visible(timeout=30_000)
    expect(page.locator("#done-status")).to_contain_text(texts.signed)
    shots(page, "signed")
    page.reload()
    expect(page.locator("#notice")).to_have_attribute("data-state", "signed")
    assert not problems, problems
    page.close()


def wait_until_completed(rt: Runtime, contract_id: uuid.UUID, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with rt.uow() as session:
            status = session.get_one(Contract, contract_id).status
        if status == "completed":
            return
        if time.monotonic() > deadline:
            pytest.fail(f"the contract is {status}, not completed, after {timeout} s")
        time.sleep(0.2)


def check_completed_pdf(rt: Runtime, contract_id: uuid.UUID, tmp_path: Path) -> None:
    version, pdf = current_pdf(rt, contract_id)
    assert version.kind == "sealed"
    path = tmp_path / "completed.pdf"
    path.write_bytes(pdf)
    env = {"ECONTRACT_DATA_DIR": str(rt.settings.data_dir),
           "ECONTRACT_DATABASE_URL": rt.settings.resolved_database_url}
    result = CliRunner().invoke(main, ["verify", str(path), "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["verdict"] == "valid", report
    assert [s["kind"] for s in report["signatures"]].count("approval") == 2
    blocks = pdfsig_signatures(rt.authority().root.cert_der, path, tmp_path / "nss")
    for name, _, _ in SIGNERS:
        block = next((b for b in blocks if f"Signer Certificate Common Name: {name}" in b), "")
        assert "Signature Validation: Signature is Valid." in block, blocks
        assert "Certificate Validation: Certificate is Trusted." in block, block


def pdfsig_signatures(root_der: bytes, pdf: Path, nss: Path) -> list[str]:
    """poppler's report, one block per signature, with only ``root_der`` trusted (NSS db)."""
    for tool in ("pdfsig", "certutil"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: apt-get install -y poppler-utils libnss3-tools")
    nss.mkdir()
    db = f"sql:{nss}"
    subprocess.run(["certutil", "-N", "--empty-password", "-d", db], check=True, timeout=60)
    root = nss / "root.der"
    root.write_bytes(root_der)
    subprocess.run(["certutil", "-A", "-n", "econtract-root", "-t", "CT,C,C", "-i", str(root),
                    "-d", db], check=True, timeout=60)
    out = subprocess.run(["pdfsig", "-nssdir", db, "-no-ocsp", str(pdf)], capture_output=True,
                         text=True, check=False, timeout=120).stdout
    return re.split(r"^Signature #\d+:$", out, flags=re.M)[1:]


def journey(browser: Browser, rt: Runtime, mailbox: Mailbox, base_url: str, tmp_path: Path,
            shots_dir: Path, *, variant: str, phone: bool = False,
            texts: Texts = ENGLISH) -> None:
    """The owner sends; each signer in turn signs from their mailbox; the result verifies."""
    contract_id = send_contract(rt)
    options: dict[str, object] = (
        {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True, "locale": texts.locale} if phone else
        {"viewport": {"width": 1280, "height": 900}, "locale": texts.locale})
    for index, signer in enumerate(SIGNERS, start=1):
        # Each signer is another person: a browser context of their own (no shared cookies).
        context = browser.new_context(**options)
        sign_as(context, mailbox, base_url, signer,
                draw_with_finger if phone else draw_with_mouse,
                Shots(shots_dir, f"signing-{variant}-signer{index}"), texts, phone=phone)
        context.close()
    wait_until_completed(rt, contract_id)
    check_completed_pdf(rt, contract_id, tmp_path)


# --- the tests -----------------------------------------------------------------------------

def test_two_signers_by_smtp_with_the_mouse(browser: Browser, rt: Runtime, mailbox: Mailbox,
                                            app_with_worker: str, tmp_path: Path,
                                            screenshots: Path) -> None:
    assert isinstance(mailbox, SmtpMailbox)
    journey(browser, rt, mailbox, app_with_worker, tmp_path, screenshots, variant="smtp-desktop")


def test_two_signers_by_smtp_on_a_phone_with_touch(browser: Browser, rt: Runtime,
                                                   mailbox: Mailbox, app_with_worker: str,
                                                   tmp_path: Path, screenshots: Path) -> None:
    journey(browser, rt, mailbox, app_with_worker, tmp_path, screenshots, variant="smtp-phone",
            phone=True)


@pytest.mark.parametrize("mail_backend", ["file"])
def test_two_signers_with_the_default_file_backend_in_chinese(browser: Browser, rt: Runtime,
                                                   mailbox: Mailbox, app_with_worker: str,
                                                   tmp_path: Path, screenshots: Path) -> None:
    assert rt.settings.email_backend == "file" and isinstance(mailbox, OutboxMailbox)
    journey(browser, rt, mailbox, app_with_worker, tmp_path, screenshots, variant="outbox-zh",
            texts=CHINESE)
