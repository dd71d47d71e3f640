"""Shared fixtures: real PostgreSQL (started by the suite), SQLite, settings and a runtime.

Tests that need a database take ``db_url``, which runs them once on SQLite and once on
PostgreSQL. PostgreSQL is started from Debian's binaries in a throwaway directory; when the binaries
are missing the tests fail loudly (never skip).
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from econtract import bootstrap, migrate, pki
from econtract.db import make_engine
from econtract.runtime import Runtime
from econtract.settings import Settings

PGBIN = Path(os.environ.get("ECONTRACT_TEST_PGBIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """A throwaway PostgreSQL cluster; one migrated template database, one copy per test."""

    def __init__(self) -> None:
        if not (PGBIN / "initdb").exists():
            raise RuntimeError(
                f"PostgreSQL server binaries not found in {PGBIN}: "
                "install them with `apt-get install -y postgresql-15` (make test does this)")
        self.dir = Path(tempfile.mkdtemp(prefix="econtract-pg-"))
        self.port = free_port()
        self._pre = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._pre:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run([*self._pre, str(PGBIN / "initdb"), "-D", str(self.dir / "data"),
                        "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8",
                        "--no-sync"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([*self._pre, str(PGBIN / "pg_ctl"), "-D", str(self.dir / "data"),
                        "-l", str(self.dir / "log"), "-w", "-s", "-o",
                        f"-k {self.dir} -p {self.port} -c listen_addresses=127.0.0.1 "
                        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                        "-c max_connections=200", "start"], check=True)
        self._counter = itertools.count(1)
        self._admin = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        with self._admin.connect() as conn:
            conn.execute(text("CREATE DATABASE econtract_template"))
        template = make_engine(self.url("econtract_template"))
        migrate.upgrade(template)
        template.dispose()

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def fresh_database(self) -> str:
        name = f"t{os.getpid()}_{next(self._counter)}"
        with self._admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name} TEMPLATE econtract_template"))
        return self.url(name)

    def stop(self) -> None:
        self._admin.dispose()
        subprocess.run([*self._pre, str(PGBIN / "pg_ctl"), "-D", str(self.dir / "data"),
                        "-m", "immediate", "-s", "stop"], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()  # the last connection to close checkpoints the WAL into the file
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated, empty database: the test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        target = tmp_path / "econtract.db"
        shutil.copyfile(sqlite_template, target)
        return f"sqlite:///{target}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.fresh_database()


# --- an initialised installation ----------------------------------------------------------

OWNER_EMAIL = "owner@acme.test"
OWNER_PASSWORD = "correct horse battery staple"


class FakeClock:
    """A controllable aware-UTC clock for services, sessions and jobs."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 28, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=db_url, max_upload_mb=2,
                    max_pages=20, base_url="http://testserver")


@pytest.fixture(scope="session")
def platform_pki() -> pki.PlatformPki:
    """One generated platform PKI for the whole run (RSA key generation is slow)."""
    return pki.create_platform_pki(name="Acme", base_url="http://testserver",
                                   now=datetime.now(UTC) - timedelta(days=1))


@pytest.fixture
def rt(settings: Settings, platform_pki: pki.PlatformPki) -> Iterator[Runtime]:
    """An initialised installation (organisation "Acme", its owner) on the test database."""
    bootstrap.initialise(settings, org_name="Acme", admin_email=OWNER_EMAIL,
                         admin_password=OWNER_PASSWORD, platform=platform_pki)
    runtime = Runtime.open(settings)
    yield runtime
    runtime.close()


@pytest.fixture(scope="session")
def sealed_contract(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path,
                    platform_pki: pki.PlatformPki) -> Iterator[bytes]:
    """One real contract, signed by three people and sealed, made once per run: every test
    installation shares ``platform_pki``, so it verifies on all of them."""
    from tests.parties.test_sign import SIGNERS, current_pdf, sent_contract, sign_as

    root = tmp_path_factory.mktemp("sealed")
    shutil.copyfile(sqlite_template, root / "econtract.db")
    settings = Settings(data_dir=root / "data", database_url=f"sqlite:///{root}/econtract.db",
                        base_url="http://testserver")
    bootstrap.initialise(settings, org_name="Acme", admin_email=OWNER_EMAIL,
                         admin_password=OWNER_PASSWORD, platform=platform_pki)
    rt = Runtime.open(settings)
    try:
        contract = sent_contract(rt)
        for signer in SIGNERS:
            assert sign_as(rt, contract.id, str(signer["email"])).error is None
        assert rt.worker().run_once() >= 1
        version, pdf = current_pdf(rt, contract.id)
        assert version.kind == "sealed"
        yield pdf
    finally:
        rt.close()


@pytest.fixture
def sealed_pdf(sealed_contract: bytes) -> bytes:
    return sealed_contract
