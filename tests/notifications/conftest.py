"""Fixtures for the e-mail tests: a real SMTP server (aiosmtpd) and a database to queue in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from sqlalchemy.orm import Session, sessionmaker

from econtract.db import make_engine, make_session_factory
from tests.conftest import free_port

SMTP_USER = "mailer"
SMTP_PASSWORD = "s3cret-pa55"


class Inbox:
    """aiosmtpd handler that keeps every envelope it receives."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def check_login(server: Any, session: Any, envelope: Any, mechanism: str,
                auth_data: Any) -> AuthResult:
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == SMTP_USER.encode()
          and auth_data.password == SMTP_PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


class SmtpServer:
    def __init__(self, *, port: int | None = None, require_login: bool = False) -> None:
        self.inbox = Inbox()
        self.port = port or free_port()
        extra: dict[str, Any] = ({"authenticator": check_login, "auth_required": True,
                                  "auth_require_tls": False} if require_login else {})
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **extra)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture
def auth_smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(require_login=True)
    yield server
    server.stop()


@pytest.fixture
def session_factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()
