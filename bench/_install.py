"""A throwaway econtract installation for the benchmarks, driven through the service layer.

Everything goes through the same services the web app and the API call (``contracts.create``,
``sending.send``, ``parties.sign``, the seal job), on a real database (SQLite in the temporary
data directory unless a PostgreSQL URL is given) with the real blob store and audit trail.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from _common import Timing
from cryptography import x509
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from econtract import bootstrap
from econtract.accounts import service as accounts
from econtract.context import Ctx, utcnow
from econtract.contracts import sending
from econtract.contracts import service as contracts
from econtract.contracts.schemas import ContractCreate
from econtract.credentials import service as credentials
from econtract.credentials.engine import SigningEngine
from econtract.errors import ConfigurationError, EContractError
from econtract.parties import service as parties
from econtract.parties.models import Signer
from econtract.pki import PrivateKey
from econtract.runtime import Runtime
from econtract.settings import Settings
from econtract.signing.verify import TrustSpec

OWNER_EMAIL = "owner@bench.invalid"
OWNER_PASSWORD = "quiet harbour lantern 2026 signing"
BASE_URL = "http://bench.invalid"


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    pin: str


PEOPLE = (Person("张伟", "zhang.wei@example.com", "482915"),
          Person("Bob Lee", "bob.lee@example.com", "739261"),
          Person("王芳", "wang.fang@example.com", "615384"))


@dataclass(frozen=True)
class SignResult:
    """One signing through ``parties.sign``: the time of the call and of the end of the unit."""

    service: Timing
    """From opening the session to the service's return (everything is flushed by then)."""
    end: Timing
    """``COMMIT`` (``commit=True``) or ``ROLLBACK``, and closing the session."""


class Installation:
    """An initialised installation in ``workdir`` (fresh master key, PKI and organisation)."""

    def __init__(self, workdir: Path, database_url: str | None = None) -> None:
        settings = Settings(data_dir=workdir / "data", database_url=database_url or "",
                            base_url=BASE_URL, max_upload_mb=64)
        try:
            bootstrap.initialise(settings, org_name="Bench", admin_email=OWNER_EMAIL,
                                 admin_password=OWNER_PASSWORD)
        except (SQLAlchemyError, EContractError) as exc:
            raise SystemExit(f"could not initialise the benchmark installation in "
                             f"{settings.resolved_database_url}: give an empty database "
                             f"({type(exc).__name__})") from exc
        self.rt = Runtime.open(settings)
        self.engine: SigningEngine = self.rt.signing_engine()
        with self.rt.uow() as session:
            owner = accounts.get_user_by_email(session, OWNER_EMAIL)
            assert owner is not None
            self.owner_ctx = Ctx(actor=accounts.actor_for(owner), base_url=BASE_URL)

    def close(self) -> None:
        self.rt.close()

    @property
    def database(self) -> str:
        return self.rt.engine.dialect.name

    # --- contracts -----------------------------------------------------------------------------

    def send_contract(self, pdf: bytes, people: Sequence[Person], title: str) -> uuid.UUID:
        """Create a contract from ``pdf`` with ``people`` signing in that order, and send it
        (clean rewrite, signature page, platform certification, self-check)."""
        contract_in = ContractCreate.model_validate({
            "title": title,
            "signers": [{"name": p.name, "email": p.email, "order": i + 1}
                        for i, p in enumerate(people)]})
        with self.rt.uow() as session:
            contract = contracts.create(session, self.owner_ctx, blobs=self.rt.blobs,
                                        limits=self.rt.limits, contract_in=contract_in,
                                        document=contracts.Upload("contract.pdf", pdf))
            contract_id = contract.id
        with self.rt.uow() as session:
            sending.send(session, self.owner_ctx, blobs=self.rt.blobs, engine=self.engine,
                         contract_id=contract_id)
        return contract_id

    def current_pdf(self, contract_id: uuid.UUID) -> bytes:
        with self.rt.uow() as session:
            _, data = contracts.download_document(session, self.owner_ctx, blobs=self.rt.blobs,
                                                  contract_id=contract_id, audit_as=None)
        return data

    def field_of(self, contract_id: uuid.UUID, person: Person) -> str:
        with self.rt.uow() as session:
            return self._signer(session, contract_id, person).field_name or ""

    def seal_pending(self) -> int:
        """Run the queued seal jobs (the worker's step after the last signature)."""
        return self.rt.worker().run_once()

    # --- signing -------------------------------------------------------------------------------

    def verify_identity(self, contract_id: uuid.UUID, person: Person) -> None:
        """Stands in for the e-mail code step of the signing journey (identity proven)."""
        with self.rt.uow() as session:
            self._signer(session, contract_id, person).status = "verified"

    def sign(self, contract_id: uuid.UUID, person: Person, *, commit: bool) -> SignResult:
        """``parties.sign`` as the signer, in a unit of work that is committed, or rolled back
        so that the same signature can be made again on the same document."""
        with self.rt.uow() as session:
            signer = self._signer(session, contract_id, person)
        ctx = Ctx(actor=parties.signer_actor(signer), ip="198.51.100.20", user_agent="bench",
                  base_url=BASE_URL)
        start = Timing.start()
        session = self.rt.session_factory()
        try:
            outcome = parties.sign(session, ctx, blobs=self.rt.blobs, engine=self.engine,
                                   keyring=self.rt.keyring, contract_id=contract_id,
                                   signer_id=signer.id, pin=person.pin,
                                   appearance=parties.Appearance(kind="typed"))
            if outcome.error is not None:
                raise outcome.error
            service, called = start.since(), Timing.start()
            if commit:
                session.commit()
            else:
                session.rollback()
        finally:
            session.close()
        return SignResult(service, called.since())

    def signing_material(self, person: Person) -> tuple[PrivateKey, x509.Certificate,
                                                        tuple[x509.Certificate, ...]]:
        """The person's unlocked key, certificate and chain (issuing CA, root), as the platform
        uses them; for the bare-pyHanko comparison cases."""
        with self.rt.uow() as session:
            credential = credentials.active_credential(session, email=person.email)
            if credential is None:
                raise ConfigurationError(f"{person.email} has no signing key yet")
            outcome = credentials.unlock(session, self.owner_ctx, keyring=self.rt.keyring,
                                         credential=credential, pin=person.pin)
            assert outcome.key is not None, outcome.error
            certificate = x509.load_der_x509_certificate(credential.certificate)
        authority = self.engine.authority
        return outcome.key, certificate, (authority.issuing.certificate,
                                          authority.root.certificate)

    def trust(self, now: datetime | None = None) -> TrustSpec:
        """What the platform's own self-check trusts: its root and both current CRLs."""
        with self.rt.uow() as session:
            return self.engine.trust(session, now or utcnow())

    @staticmethod
    def _signer(session: Session, contract_id: uuid.UUID, person: Person) -> Signer:
        return session.scalars(select(Signer).where(Signer.contract_id == contract_id,
                                                    Signer.email == person.email)).one()


@contextmanager
def installation(workdir: Path, database_url: str | None) -> Iterator[Installation]:
    inst = Installation(workdir, database_url)
    try:
        yield inst
    finally:
        inst.close()


def signed_contract(inst: Installation, pdf: bytes, people: Sequence[Person], *,
                    title: str) -> uuid.UUID:
    """A contract sent and signed by every one of ``people`` (committed), not yet sealed."""
    contract_id = inst.send_contract(pdf, people, title)
    for person in people:
        inst.verify_identity(contract_id, person)
        inst.sign(contract_id, person, commit=True)
    return contract_id
