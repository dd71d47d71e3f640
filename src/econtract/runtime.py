"""The runtime: everything a request, job or CLI command needs, built once from ``Settings``.

The web app, the worker and the CLI build the same object (the datasette approach), so they share
one code path for the database, storage, keys and e-mail. Nothing here exists at import time.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from econtract import models  # noqa: F401  (every table: foreign keys across packages resolve)
from econtract.context import Actor, Ctx, utcnow
from econtract.contracts import bulk, completion, sending, validity
from econtract.contracts.service import UploadLimits
from econtract.credentials.engine import SigningEngine
from econtract.credentials.service import PlatformAuthority
from econtract.db import make_engine, make_session_factory, read_only_unit, unit_of_work
from econtract.errors import ConfigurationError
from econtract.jobs import JobContext, JobRegistry, Worker
from econtract.jobs.worker import PeriodicTask
from econtract.notifications.email import EmailBackend, email_backend_from_settings
from econtract.notifications.jobs import SEND_EMAIL, make_send_email_handler
from econtract.notifications.sms import SEND_SMS, make_send_sms_handler, sms_backend_from_settings
from econtract.parties import reminders
from econtract.settings import Settings
from econtract.storage import BlobStore, MasterKeyring, backend_from_url


class _BatchReport(Protocol):
    """What a sweep reports about one batch, and how reports add up."""

    @property
    def full(self) -> bool: ...

    def add(self, other: Any) -> None: ...


_Report = TypeVar("_Report", bound=_BatchReport)

SWEEP_TASK = "reminders.sweep"
VALIDITY_TASK = "validity.sweep"
MAX_SWEEP_BATCHES = 20


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    blobs: BlobStore
    email: EmailBackend
    registry: JobRegistry
    keyring: MasterKeyring
    _authority: PlatformAuthority | None = field(default=None, init=False)
    _engine: SigningEngine | None = field(default=None, init=False)
    _authority_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _worker_thread: threading.Thread | None = field(default=None, init=False)
    _worker_stop: threading.Event = field(default_factory=threading.Event, init=False)
    periodic: list[PeriodicTask] = field(default_factory=list, init=False)
    """What every worker of this process runs on a schedule (besides claiming jobs)."""

    @classmethod
    def open(cls, settings: Settings) -> Runtime:
        """Connect to an initialised installation (``econtract init`` has run)."""
        key_file = settings.resolved_master_key_file
        if not key_file.exists():
            raise ConfigurationError(
                f"no master key at {key_file}: run `econtract init` first "
                f"(or set ECONTRACT_DATA_DIR to an initialised data directory)")
        keyring = MasterKeyring.load(key_file)
        engine = make_engine(settings.resolved_database_url)
        email = email_backend_from_settings(settings)
        registry = JobRegistry()
        registry.register(SEND_SMS, make_send_sms_handler(sms_backend_from_settings(settings)))
        blobs = BlobStore(backend_from_url(settings.resolved_storage_url), keyring)
        registry.register(SEND_EMAIL, make_send_email_handler(email, blobs=blobs))
        runtime = cls(settings=settings, engine=engine,
                      session_factory=make_session_factory(engine), blobs=blobs, email=email,
                      registry=registry, keyring=keyring)
        registry.register(sending.SEAL_JOB, runtime._seal_job)
        registry.register(sending.CERTIFICATE_JOB, runtime._certificate_job)
        registry.register(bulk.BULK_JOB, bulk.Sender(
            uow=runtime.uow, blobs=blobs, engine=runtime.signing_engine, limits=runtime.limits,
            base_url=settings.base_url).handler())
        runtime.periodic.append(PeriodicTask(SWEEP_TASK, settings.sweep_seconds, runtime.sweep))
        runtime.periodic.append(PeriodicTask(VALIDITY_TASK, settings.sweep_seconds,
                                             runtime.validity_sweep))
        return runtime

    def _seal_job(self, job: JobContext, payload: dict[str, Any]) -> None:
        ctx = Ctx(actor=Actor.system("seal job"), base_url=self.settings.base_url)
        sending.ensure_sealed(job.session, ctx, blobs=self.blobs, engine=self.signing_engine(),
                              contract_id=uuid.UUID(payload["contract_id"]))

    def _certificate_job(self, job: JobContext, payload: dict[str, Any]) -> None:
        ctx = Ctx(actor=Actor.system("certificate job"), base_url=self.settings.base_url)
        completion.issue_certificate(job.session, ctx, blobs=self.blobs,
                                     engine=self.signing_engine(),
                                     contract_id=uuid.UUID(payload["contract_id"]))

    def sweep(self, now: datetime | None = None) -> reminders.SweepReport:
        """Expire overdue contracts and send due reminders: one transaction per batch, until
        nothing more is due (at most ``MAX_SWEEP_BATCHES`` batches a call)."""
        return self._in_batches("reminder sweep", reminders.sweep, reminders.SweepReport(), now)

    def validity_sweep(self, now: datetime | None = None) -> validity.ValiditySweepReport:
        """Lapse completed contracts past their expiry date and send due renewal reminders to
        their owners: one transaction per batch, as ``sweep``."""
        return self._in_batches("validity sweep", validity.sweep,
                                validity.ValiditySweepReport(), now)

    def _in_batches(self, label: str, batch: Callable[..., _Report], total: _Report,
                    now: datetime | None) -> _Report:
        now = now or utcnow()
        ctx = Ctx(actor=Actor.system(label), base_url=self.settings.base_url)
        for _ in range(MAX_SWEEP_BATCHES):
            with self.uow() as session:
                report = batch(session, ctx, now=now)
            total.add(report)
            if not report.full:
                break
        return total

    @contextmanager
    def uow(self) -> Iterator[Session]:
        with unit_of_work(self.session_factory) as session:
            yield session

    def authority(self) -> PlatformAuthority:
        """The platform PKI with its keys, decrypted and parsed once per process."""
        with self._authority_lock:
            if self._authority is None:
                with read_only_unit(self.engine) as session:
                    self._authority = PlatformAuthority.load(session, self.keyring)
            return self._authority

    def signing_engine(self) -> SigningEngine:
        """The signing engine (seal key, TSA client), built once per process."""
        authority = self.authority()
        with self._authority_lock:
            if self._engine is None:
                self._engine = SigningEngine.build(authority, tsa_url=self.settings.tsa_url,
                                                   base_url=self.settings.base_url)
            return self._engine

    @property
    def limits(self) -> UploadLimits:
        s = self.settings
        return UploadLimits(max_bytes=s.max_upload_bytes, max_pages=s.max_pages,
                            max_attachments=s.max_attachments)

    def worker(self, name: str | None = None) -> Worker:
        return Worker(self.session_factory, self.registry, name=name, periodic=self.periodic)

    def start_worker_thread(self) -> None:
        """The in-process worker of ``econtract serve`` (one daemon thread)."""
        if self._worker_thread is not None:
            return
        self._worker_stop.clear()
        worker = self.worker()
        thread = threading.Thread(
            target=worker.run_forever, args=(self._worker_stop,),
            kwargs={"poll_seconds": self.settings.worker_poll_seconds},
            name="econtract-worker", daemon=True)
        thread.start()
        self._worker_thread = thread

    def stop_worker_thread(self) -> None:
        if self._worker_thread is None:
            return
        self._worker_stop.set()
        self._worker_thread.join(timeout=10)
        self._worker_thread = None

    def close(self) -> None:
        self.stop_worker_thread()
        self.engine.dispose()
