"""The ``econtract`` command line: a thin layer over the same runtime and services as the web app.

Every command maps ``EContractError`` to one line on stderr (``error[code]: message``) and exit
code 1 (2 where a command documents "could not run"); no stack trace reaches the user.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from econtract import bootstrap, migrate
from econtract.accounts import service as accounts
from econtract.accounts.policy import Role
from econtract.audit import service as audit
from econtract.context import Actor, Ctx
from econtract.db import make_engine
from econtract.errors import ConfigurationError, EContractError, NotFound
from econtract.runtime import Runtime
from econtract.settings import Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])


def _fail(exc: EContractError, exit_code: int = 1) -> NoReturn:
    click.echo(f"error[{exc.code}]: {exc.message}", err=True)
    sys.exit(exit_code)


@contextmanager
def errors_to_exit(exit_code: int = 1) -> Iterator[None]:
    try:
        yield
    except EContractError as exc:
        _fail(exc, exit_code)


def _settings() -> Settings:
    with errors_to_exit(2):
        return load_settings()


@contextmanager
def _runtime() -> Iterator[Runtime]:
    settings = _settings()
    with errors_to_exit(2):
        rt = Runtime.open(settings)
    try:
        yield rt
    finally:
        rt.close()


class RedactSignerLinks(logging.Filter):
    """Keeps invitation tokens (``/s/<token>``) out of the access log."""

    _TOKEN = re.compile(r"(/s/)[A-Za-z0-9_-]{16,}")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._TOKEN.sub(r"\1[redacted]", a) if isinstance(a, str) else a
                                for a in record.args)
        return True


def _upgrade_schema(settings: Settings) -> tuple[str | None, str | None]:
    """Apply pending migrations; the revisions before and after."""
    engine = make_engine(settings.resolved_database_url)
    try:
        before = migrate.current_revision(engine)
        migrate.upgrade(engine)
        return before, migrate.current_revision(engine)
    finally:
        engine.dispose()


def _cli_ctx(settings: Settings) -> Ctx:
    return Ctx(actor=Actor.system("econtract cli"), base_url=settings.base_url)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="econtract")
def main() -> None:
    """econtract — self-hostable electronic contracts (电子合同平台).

    Settings come from ECONTRACT_* environment variables (see the README).
    """


@main.command()
@click.option("--admin-email", default="admin@example.com", show_default=True)
@click.option("--admin-password", default=None, help="Generated and printed when omitted.")
@click.option("--org-name", default="My organisation", show_default=True)
@click.option("--if-missing", is_flag=True, help="Do nothing (exit 0) if already initialised.")
def init(admin_email: str, admin_password: str | None, org_name: str, if_missing: bool) -> None:
    """Create the data dir, database schema, master key and the first administrator."""
    settings = _settings()
    if if_missing and bootstrap.is_initialised(settings):
        hint = bootstrap.initial_admin_hint(settings)
        click.echo(f"econtract: using the existing data dir {settings.data_dir.resolve()}")
        # An updated checkout may bring new migrations: `make run` applies them here.
        before, after = _upgrade_schema(settings)
        if before != after:
            click.echo(f"econtract: database schema upgraded from {before} to {after}")
        if hint:
            click.echo(f"Initial admin login:\n{hint}")
        return
    with errors_to_exit():
        result = bootstrap.initialise(settings, org_name=org_name, admin_email=admin_email,
                                      admin_password=admin_password)
    click.echo(f"Initialised {result.data_dir.resolve()} (organisation {result.org_name!r}).")
    click.echo(f"Admin login: {result.admin_email}")
    if result.admin_password:
        click.echo(f"Password:    {result.admin_password}   (shown once; also saved to "
                   f"{bootstrap.INITIAL_ADMIN_FILE} in the data dir, mode 0600)")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--no-worker", is_flag=True, help="Do not run the background worker in-process.")
def serve(host: str, port: int, no_worker: bool) -> None:
    """Serve the web UI and the API (and the background worker unless --no-worker)."""
    import uvicorn

    from econtract.app import create_app

    with _runtime() as rt:
        app = create_app(rt, start_worker=not no_worker)
        click.echo(f"econtract serving on http://{host}:{port}  (public URL "
                   f"{rt.settings.base_url}; worker {'off' if no_worker else 'in-process'})")
        config = uvicorn.Config(app, host=host, port=port,
                                log_level=rt.settings.log_level.lower(), proxy_headers=False)
        # After Config(), which sets up uvicorn's loggers: signer links carry a bearer token.
        logging.getLogger("uvicorn.access").addFilter(RedactSignerLinks())
        uvicorn.Server(config).run()


@main.command()
def worker() -> None:
    """Run the background worker alone (for scale-out); stop with Ctrl-C."""
    import signal
    import threading

    with _runtime() as rt:
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        w = rt.worker()
        click.echo(f"econtract worker {w.name} started")
        w.run_forever(stop, poll_seconds=rt.settings.worker_poll_seconds)
        click.echo("econtract worker stopped")


@main.group()
def org() -> None:
    """Organisations (tenants)."""


@org.command("create")
@click.option("--name", required=True)
@click.option("--admin-email", required=True)
@click.option("--admin-password", required=True)
def org_create(name: str, admin_email: str, admin_password: str) -> None:
    """Add an organisation with its first administrator (an owner)."""
    with _runtime() as rt, errors_to_exit(), rt.uow() as session:
        organisation, owner = accounts.create_org(
            session, _cli_ctx(rt.settings), name=name, admin_email=admin_email,
            admin_password=admin_password)
        click.echo(f"Created organisation {organisation.name!r} ({organisation.id}); "
                   f"owner {owner.email}")


@main.group()
def user() -> None:
    """Users."""


@user.command("create")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--name", default="")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.MEMBER.value,
              show_default=True)
@click.option("--org", "org_name", default=None, help="Organisation name (default: the first).")
def user_create(email: str, password: str, name: str, role: str, org_name: str | None) -> None:
    """Add a user to an organisation."""
    with _runtime() as rt, errors_to_exit(), rt.uow() as session:
        found = accounts.get_org_by_name(session, org_name) if org_name else \
            accounts.first_org(session)
        if found is None:
            raise NotFound(f"No organisation named {org_name!r}.", code="org_not_found")
        created = accounts.create_user(session, _cli_ctx(rt.settings), org_id=found.id,
                                       email=email,
                                       password=password, name=name, role=Role(role))
        click.echo(f"Created {created.role} {created.email} in {found.name!r}")


@user.command("set-password")
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def user_set_password(email: str, password: str) -> None:
    """Set a user's password (ends their sessions)."""
    with _runtime() as rt, errors_to_exit(), rt.uow() as session:
        found = accounts.get_user_by_email(session, email)
        if found is None:
            raise NotFound("No such user.", code="user_not_found")
        accounts.set_password(session, _cli_ctx(rt.settings), user_id=found.id,
                              password=password)
        click.echo(f"Password changed for {found.email}")


@main.group()
def apikey() -> None:
    """API keys."""


@apikey.command("create")
@click.option("--email", required=True, help="The user the key acts as.")
@click.option("--name", default="cli", show_default=True)
def apikey_create(email: str, name: str) -> None:
    """Print a new API key for a user (shown once)."""
    with _runtime() as rt, errors_to_exit(), rt.uow() as session:
        found = accounts.get_user_by_email(session, email)
        if found is None:
            raise NotFound("No such user.", code="user_not_found")
        _, secret = accounts.create_api_key(session, _cli_ctx(rt.settings), user_id=found.id,
                                            name=name)
        click.echo(secret)


@main.group("audit")
def audit_group() -> None:
    """The audit trail."""


@audit_group.command("verify")
def audit_verify() -> None:
    """Check every audit hash chain; exit 1 naming the first broken entry, 2 if it cannot run.

    On success each chain's head is printed (``chain <id>: head seq N hash H``): the chain id is
    the organisation's id (or ``system``), and a certificate of completion names the head it was
    issued at, so the two can be compared.
    """
    from sqlalchemy import select

    from econtract.audit.models import AuditHead

    with _runtime() as rt, errors_to_exit(2), rt.uow() as session:
        report = audit.verify_chains(session)
        # Read in the same transaction as the walk: the heads it just checked.
        heads = [(h.chain, h.seq, h.hash) for h in session.scalars(
            select(AuditHead).order_by(AuditHead.chain))] if report.broken is None else []
    if report.broken is None:
        click.echo(f"audit chain OK: {report.events} events in {report.chains} chains")
        for chain, seq, digest in heads:
            click.echo(f"chain {chain}: head seq {seq} hash {digest}")
        return
    b = report.broken
    where = f"event id {b.event_id} (chain {b.chain}, seq {b.seq})" if b.event_id is not None \
        else f"chain {b.chain}"
    click.echo(f"audit chain BROKEN at {where}: {b.reason}", err=True)
    sys.exit(1)


@main.group("search")
def search_group() -> None:
    """The keyword-search index."""


@search_group.command("rebuild")
def search_rebuild() -> None:
    """Rebuild every contract's keyword-search rows from the stored texts, in one transaction
    (searches keep the old index until it commits; on SQLite, writes wait for it). On SQLite
    this also reclaims the rows that edits of contracts leave behind."""
    from econtract.contracts import search

    with _runtime() as rt, errors_to_exit(2), rt.uow() as session:
        total = search.indexed_contracts(session)
        with click.progressbar(length=total, label="Rebuilding the search index",
                               file=sys.stderr) as bar:
            done = search.rebuild(session, progress=bar.update)
    click.echo(f"search index rebuilt: {done} contracts")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--trust", "trust_files", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A trusted root certificate (PEM or DER); repeatable.")
@click.option("--crl", "crl_files", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A CRL (DER or PEM) to check revocation with; repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def verify(file: Path, trust_files: tuple[Path, ...], crl_files: tuple[Path, ...],
           as_json: bool) -> None:
    """Verify a signed PDF; exit 0 valid, 1 not valid, 2 could not run.

    Trusted: the roots given with --trust, plus the platform root (and its current CRLs) when
    ECONTRACT_DATA_DIR is an initialised installation.
    """
    from econtract.cli_verify import load_certificates, load_crls, print_report, run_verify

    with errors_to_exit(2):
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read {file}: {exc.strerror}") from exc
        roots, crls = load_certificates(trust_files), load_crls(crl_files)
        report = run_verify(_settings(), data, roots=roots, crls=crls, filename=file.name)
    if as_json:
        click.echo(report.to_json())
    else:
        print_report(report, file.name)
    sys.exit(0 if report.valid else 1)


@main.command("verify-evidence")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def verify_evidence(file: Path, as_json: bool) -> None:
    """Check an evidence package (证据包) offline; exit 0 intact, 1 not, 2 could not run.

    Needs nothing but the zip: the manifest signature, every file's hash, the PDF signatures,
    the audit chain and the document hashes it records.
    """
    from econtract.cli_verify import print_evidence_report

    with errors_to_exit(2):
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read {file}: {exc.strerror}") from exc
    from econtract.audit.evidence_check import verify_package

    report = verify_package(data)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print_evidence_report(report, file.name)
    sys.exit(0 if report.ok else 1)


@main.group()
def keys() -> None:
    """The master key that wraps every blob's data key."""


@keys.command("rotate")
def keys_rotate() -> None:
    """Add a new master key version and re-wrap every stored blob under it.

    Old versions stay in the key file, so blobs not yet re-wrapped remain readable; restart
    running servers and workers afterwards so they load the new key.
    """
    from econtract.storage import BlobStore, MasterKeyring, backend_from_url

    settings = _settings()
    with errors_to_exit():
        path = settings.resolved_master_key_file
        keyring = MasterKeyring.load(path)
        version = keyring.rotate(path)
        store = BlobStore(backend_from_url(settings.resolved_storage_url), keyring)
        count = store.rewrap_all()
    click.echo(f"master key version {version} is now active; {count} blobs re-wrapped")


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations."""
    with errors_to_exit(2):
        before, after = _upgrade_schema(_settings())
    click.echo(f"database at revision {after}" + ("" if before == after else
                                                    f" (was {before or 'empty'})"))


@org.command("set-reminders")
@click.option("--org", "org_name", default=None, help="Organisation name (default: the first).")
@click.option("--interval-hours", type=int, default=None,
              help="Hours between automatic reminders (1–720).")
@click.option("--max", "reminder_max", type=int, default=None,
              help="Most automatic reminders per signing group (0 turns them off).")
def org_set_reminders(org_name: str | None, interval_hours: int | None,
                      reminder_max: int | None) -> None:
    """Set (or, without options, show) the reminder defaults of contracts that set none."""
    with _runtime() as rt, errors_to_exit(), rt.uow() as session:
        found = accounts.get_org_by_name(session, org_name) if org_name else \
            accounts.first_org(session)
        if found is None:
            raise NotFound(f"No organisation named {org_name!r}.", code="org_not_found")
        updated = accounts.set_reminder_defaults(
            session, _cli_ctx(rt.settings), org_id=found.id, interval_hours=interval_hours,
            reminder_max=reminder_max)
        click.echo(f"{updated.name!r}: a reminder every {updated.reminder_interval_hours} "
                   f"hours, at most {updated.reminder_max}")


@main.command()
def sweep() -> None:
    """Expire contracts past their sign deadline and send the reminders that are due, once;
    then lapse completed contracts past their expiry date and send due renewal reminders.

    The worker does this every ECONTRACT_SWEEP_SECONDS; this command is for cron, or to catch
    up by hand. It is safe to run while workers run.
    """
    with _runtime() as rt, errors_to_exit():
        report = rt.sweep()
        validity = rt.validity_sweep()
    click.echo(f"expired {len(report.expired)} contract(s); reminded "
               f"{report.signers_reminded} signer(s) on {len(report.reminded)} contract(s)")
    for contract_id in report.expired:
        click.echo(f"expired {contract_id}")
    for contract_id, count in report.reminded.items():
        click.echo(f"reminded {count} signer(s) of {contract_id}")
    click.echo(f"lapsed {len(validity.lapsed)} contract(s); renewal reminders for "
               f"{len(validity.renewal_reminded)} contract(s)")
    for contract_id in validity.lapsed:
        click.echo(f"lapsed {contract_id}")
    for contract_id in validity.renewal_reminded:
        click.echo(f"renewal reminder for {contract_id}")
    failed = report.failed + validity.failed
    if failed:
        click.echo(f"{len(failed)} contract(s) failed (see the log): "
                   + ", ".join(str(c) for c in failed), err=True)
        sys.exit(1)
