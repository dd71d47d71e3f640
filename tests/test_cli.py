"""The command line, as a user runs it (settings from the environment)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import delete, select, update

from econtract.audit.models import AuditEvent
from econtract.cli import main
from econtract.db import make_engine, make_session_factory, unit_of_work


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> dict[str, str]:
    return {"ECONTRACT_DATA_DIR": str(tmp_path / "data"), "ECONTRACT_DATABASE_URL": db_url}


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_init_and_accounts(env: dict[str, str]) -> None:
    result = run(env, "init", "--admin-email", "root@acme.test", "--org-name", "Acme")
    assert result.exit_code == 0, result.output
    assert "root@acme.test" in result.output and "Password:" in result.output
    data = Path(env["ECONTRACT_DATA_DIR"])
    for name in ("master.key", "initial-admin.txt"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    again = run(env, "init")
    assert again.exit_code == 1 and "already initialised" in again.output
    quiet = run(env, "init", "--if-missing")
    assert quiet.exit_code == 0 and "root@acme.test" in quiet.output

    assert run(env, "org", "create", "--name", "Globex", "--admin-email", "boss@globex.test",
               "--admin-password", "globex password 1").exit_code == 0
    created = run(env, "user", "create", "--email", "m@globex.test", "--password",
                  "member password 1", "--role", "manager", "--org", "Globex")
    assert created.exit_code == 0 and "manager m@globex.test in 'Globex'" in created.output
    duplicate = run(env, "user", "create", "--email", "m@globex.test", "--password",
                    "member password 1")
    assert duplicate.exit_code == 1 and "error[user_exists]" in duplicate.output
    weak = run(env, "user", "create", "--email", "w@acme.test", "--password", "short")
    assert weak.exit_code == 1 and "error[weak_password]" in weak.output
    key = run(env, "apikey", "create", "--email", "m@globex.test")
    assert key.exit_code == 0 and key.output.strip().startswith("ek_")
    missing = run(env, "apikey", "create", "--email", "ghost@globex.test")
    assert missing.exit_code == 1 and "user_not_found" in missing.output


def test_commands_before_init_fail_cleanly(env: dict[str, str]) -> None:
    result = run(env, "apikey", "create", "--email", "x@y.z")
    assert result.exit_code == 2 and "econtract init" in result.output
    bad = CliRunner().invoke(main, ["db", "upgrade"],
                             env={**env, "ECONTRACT_BASE_URL": "not a url"})
    assert bad.exit_code == 2 and "ECONTRACT_BASE_URL" in bad.output


def _tamper(db_url: str, how: str) -> int:
    """Edit, delete or reorder one audit row directly in the database; returns its id."""
    engine = make_engine(db_url)
    with unit_of_work(make_session_factory(engine)) as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.chain != "system")
                               .order_by(AuditEvent.seq)).all()
        victim, neighbour = rows[2], rows[3]
        victim_seq, neighbour_seq = victim.seq, neighbour.seq
        if how == "edit":
            session.execute(update(AuditEvent).where(AuditEvent.id == victim.id)
                            .values(kind="user.deleted"))
        elif how == "delete":
            session.execute(delete(AuditEvent).where(AuditEvent.id == victim.id))
        else:  # swap two neighbours' places in the sequence
            session.execute(update(AuditEvent).where(AuditEvent.id == victim.id).values(seq=-1))
            session.execute(update(AuditEvent).where(AuditEvent.id == neighbour.id)
                            .values(seq=victim_seq))
            session.execute(update(AuditEvent).where(AuditEvent.id == victim.id)
                            .values(seq=neighbour_seq))
    engine.dispose()
    return neighbour.id if how in ("delete", "reorder") else victim.id


@pytest.mark.parametrize("how", ["edit", "delete", "reorder"])
def test_audit_verify_names_the_tampered_entry(env: dict[str, str], db_url: str,
                                               how: str) -> None:
    assert run(env, "init", "--admin-password", "a fine root passphrase").exit_code == 0
    run(env, "user", "create", "--email", "a@example.com", "--password", "member password 1")
    run(env, "user", "create", "--email", "b@example.com", "--password", "member password 1")
    ok = run(env, "audit", "verify")
    assert ok.exit_code == 0 and "audit chain OK" in ok.output
    named = _tamper(db_url, how)
    broken = run(env, "audit", "verify")
    assert broken.exit_code == 1, broken.output
    assert f"event id {named}" in broken.output and "BROKEN" in broken.output


def test_db_upgrade_is_idempotent(env: dict[str, str]) -> None:
    first = run(env, "db", "upgrade")
    assert first.exit_code == 0 and "database at revision" in first.output
    assert run(env, "db", "upgrade").exit_code == 0


def test_keys_rotate_keeps_every_blob_readable(rt: object, settings: object) -> None:
    from econtract.runtime import Runtime
    from econtract.settings import Settings
    from econtract.storage import MasterKeyring
    from tests.factories import create_contract, owner, user_ctx

    assert isinstance(rt, Runtime) and isinstance(settings, Settings)
    contract = create_contract(rt, owner(rt))
    env = {"ECONTRACT_DATA_DIR": str(settings.data_dir),
           "ECONTRACT_DATABASE_URL": settings.resolved_database_url}
    for expected in (2, 3):
        result = run(env, "keys", "rotate")
        assert result.exit_code == 0, result.output
        assert f"version {expected} is now active; 2 blobs re-wrapped" in result.output
    from econtract.contracts import service as contracts
    from econtract.runtime import Runtime as Fresh

    fresh = Fresh.open(settings)
    try:
        assert MasterKeyring.load(settings.resolved_master_key_file).active_version == 3
        with fresh.uow() as session:
            _, data = contracts.download_document(session, user_ctx(owner(fresh)),
                                                  blobs=fresh.blobs, contract_id=contract.id)
        assert data.startswith(b"%PDF-")
    finally:
        fresh.close()


def test_access_log_hides_signer_tokens() -> None:
    import logging

    from econtract.cli import RedactSignerLinks

    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/s/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_x", "1.1", 303),
        None)
    assert RedactSignerLinks().filter(record)
    assert "AbCdEf" not in record.getMessage() and "/s/[redacted]" in record.getMessage()
