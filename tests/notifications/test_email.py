from __future__ import annotations

import json
import stat
from email.message import EmailMessage as MimeMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

import pytest
from pydantic import SecretStr

from econtract.errors import ConfigurationError, UpstreamError, ValidationFailed
from econtract.notifications.email import (
    EmailAttachment,
    EmailMessage,
    FileEmailBackend,
    SmtpEmailBackend,
    build_mime,
    email_backend_from_settings,
)
from econtract.settings import Settings

from .conftest import SMTP_PASSWORD, SMTP_USER, SmtpServer, free_port

# aiosmtpd warns about AUTH without TLS; on 127.0.0.1 in a test that is what we want.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n%%EOF\n"
SENDER = "易签 <no-reply@econtract.example>"


def contract_mail() -> EmailMessage:
    return EmailMessage(
        to=("张三 <zhang@example.cn>", "li@example.com"),
        subject="请签署合同：租赁协议",
        text="您好，\n请查看附件中的合同。\n",
        html="<p>您好，请查看附件中的<b>合同</b>。</p>",
        attachments=(EmailAttachment("合同.pdf", "application/pdf", PDF),),
    )


def parse(data: bytes) -> MimeMessage:
    message = BytesParser(policy=default).parsebytes(data)
    assert isinstance(message, MimeMessage)
    return message


def assert_is_contract_mail(parsed: MimeMessage) -> None:
    assert parsed["Subject"] == "请签署合同：租赁协议"
    assert parsed["From"].addresses[0].display_name == "易签"
    assert [a.addr_spec for a in parsed["To"].addresses] == ["zhang@example.cn", "li@example.com"]
    assert parsed["To"].addresses[0].display_name == "张三"
    text = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    # Text parts travel in canonical CRLF form (RFC 2045); compare the lines.
    assert text is not None
    assert text.get_content().splitlines() == ["您好，", "请查看附件中的合同。"]
    assert html is not None and "<b>合同</b>" in html.get_content()
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_filename() == "合同.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == PDF


def test_payload_round_trips_through_json() -> None:
    message = contract_mail()
    payload = json.loads(json.dumps(message.to_payload()))
    assert EmailMessage.from_payload(payload) == message


@pytest.mark.parametrize("kwargs", [
    {"to": ()},
    {"to": ("not-an-address",)},
    {"subject": "hi\r\nBcc: victim@example.com"},
    {"to": ("a@example.com\nBcc: victim@example.com",)},
])
def test_invalid_messages_are_refused_when_built(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"to": ("a@example.com",), "subject": "s", "text": "t"}
    with pytest.raises(ValidationFailed):
        EmailMessage(**(fields | kwargs))  # type: ignore[arg-type]


def test_malformed_payload_is_a_validation_error() -> None:
    with pytest.raises(ValidationFailed, match="malformed e-mail payload"):
        EmailMessage.from_payload({"to": ["a@example.com"], "subject": "s"})


def test_build_mime() -> None:
    mime = build_mime(contract_mail(), sender=SENDER, message_id="job-7")
    parsed = parse(mime.as_bytes())
    assert_is_contract_mail(parsed)
    assert parsed["Date"].datetime.tzinfo is not None
    message_id = parsed["Message-ID"]
    assert message_id.startswith("<job-7.") and message_id.endswith("@econtract.example>")
    again = build_mime(contract_mail(), sender=SENDER, message_id="job-7")
    assert again["Message-ID"] == message_id  # a retry is recognisably the same message
    other = build_mime(contract_mail(), sender=SENDER, message_id="job-8")
    assert other["Message-ID"] != message_id
    assert b"\r\n" in mime.as_bytes() and all(b < 128 for b in mime.as_bytes())


def test_file_backend_writes_a_parseable_eml(tmp_path: Path) -> None:
    outbox = tmp_path / "data" / "outbox"
    backend = FileEmailBackend(outbox, SENDER)
    backend.send(contract_mail(), message_id="job-1")
    backend.send(contract_mail(), message_id="job-1")  # a retry rewrites the same file
    assert [p.name for p in outbox.iterdir()] == ["job-1.eml"]
    assert stat.S_IMODE(outbox.stat().st_mode) == 0o700
    assert_is_contract_mail(parse((outbox / "job-1.eml").read_bytes()))


def test_file_backend_refuses_unsafe_message_ids(tmp_path: Path) -> None:
    backend = FileEmailBackend(tmp_path, SENDER)
    with pytest.raises(ValueError, match="invalid message id"):
        backend.send(contract_mail(), message_id="../escape")


def test_file_backend_write_failure_is_an_upstream_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(UpstreamError, match="could not write e-mail"):
        FileEmailBackend(blocker / "outbox", SENDER).send(contract_mail(), message_id="job-1")


def test_backend_from_settings(tmp_path: Path) -> None:
    file_backend = email_backend_from_settings(Settings(data_dir=tmp_path))
    assert isinstance(file_backend, FileEmailBackend)
    assert file_backend.outbox_dir == tmp_path / "outbox"
    smtp = email_backend_from_settings(Settings(
        data_dir=tmp_path, email_backend="smtp", smtp_host="mail.example", smtp_port=587,
        smtp_user="u", smtp_password=SecretStr("pw-123"), smtp_starttls=True,
        email_from=SENDER))
    assert isinstance(smtp, SmtpEmailBackend)
    assert (smtp.host, smtp.port, smtp.user, smtp.starttls, smtp.sender) == (
        "mail.example", 587, "u", True, SENDER)
    assert "pw-123" not in repr(smtp)


def test_smtp_backend_delivers(smtp_server: SmtpServer) -> None:
    backend = SmtpEmailBackend("127.0.0.1", smtp_server.port, SENDER, timeout=5)
    backend.send(contract_mail(), message_id="job-3")
    [envelope] = smtp_server.inbox.envelopes
    assert envelope.mail_from == "no-reply@econtract.example"
    assert envelope.rcpt_tos == ["zhang@example.cn", "li@example.com"]
    assert isinstance(envelope.content, bytes)
    parsed = parse(envelope.content)
    assert_is_contract_mail(parsed)
    assert parsed["Message-ID"].startswith("<job-3.")


def test_smtp_backend_logs_in(auth_smtp_server: SmtpServer) -> None:
    backend = SmtpEmailBackend("127.0.0.1", auth_smtp_server.port, SENDER, user=SMTP_USER,
                               password=SMTP_PASSWORD, timeout=5)
    backend.send(contract_mail(), message_id="job-4")
    assert len(auth_smtp_server.inbox.envelopes) == 1


def test_smtp_backend_bad_credentials(auth_smtp_server: SmtpServer) -> None:
    backend = SmtpEmailBackend("127.0.0.1", auth_smtp_server.port, SENDER, user=SMTP_USER,
                               password="wrong-password", timeout=5)
    with pytest.raises(UpstreamError, match="refused the login") as caught:
        backend.send(contract_mail(), message_id="job-5")
    assert "wrong-password" not in str(caught.value)
    assert auth_smtp_server.inbox.envelopes == []


def test_smtp_backend_without_login_on_a_server_that_requires_it(
        auth_smtp_server: SmtpServer) -> None:
    backend = SmtpEmailBackend("127.0.0.1", auth_smtp_server.port, SENDER, timeout=5)
    with pytest.raises(UpstreamError, match="failed"):
        backend.send(contract_mail(), message_id="job-6")
    assert auth_smtp_server.inbox.envelopes == []


def test_smtp_server_down_is_an_upstream_error() -> None:
    port = free_port()  # nothing listens there any more
    backend = SmtpEmailBackend("127.0.0.1", port, SENDER, password="pw-xyz", timeout=5)
    with pytest.raises(UpstreamError, match=f"127.0.0.1:{port} failed") as caught:
        backend.send(contract_mail(), message_id="job-7")
    assert "pw-xyz" not in str(caught.value)


def test_smtp_credentials_must_be_ascii() -> None:
    with pytest.raises(ConfigurationError, match="ASCII"):
        SmtpEmailBackend("127.0.0.1", 25, SENDER, user="u", password="密码")
