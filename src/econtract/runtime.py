"""The runtime: everything a request, job or CLI command needs, built once from ``Settings``.

The web app, the worker and the CLI build the same object (the datasette approach), so they share
one code path for the database, storage, keys and e-mail. Nothing here exists at import time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from econtract.contracts.service import UploadLimits
from econtract.credentials.service import PlatformAuthority
from econtract.db import make_engine, make_session_factory, unit_of_work
from econtract.errors import ConfigurationError
from econtract.jobs import JobRegistry, Worker
from econtract.notifications.email import EmailBackend, email_backend_from_settings
from econtract.notifications.jobs import SEND_EMAIL, make_send_email_handler
from econtract.settings import Settings
from econtract.storage import BlobStore, MasterKeyring, backend_from_url


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
    _authority_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _worker_thread: threading.Thread | None = field(default=None, init=False)
    _worker_stop: threading.Event = field(default_factory=threading.Event, init=False)

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
        registry.register(SEND_EMAIL, make_send_email_handler(email))
        return cls(settings=settings, engine=engine, session_factory=make_session_factory(engine),
                   blobs=BlobStore(backend_from_url(settings.resolved_storage_url), keyring),
                   email=email, registry=registry, keyring=keyring)

    @contextmanager
    def uow(self) -> Iterator[Session]:
        with unit_of_work(self.session_factory) as session:
            yield session

    def authority(self) -> PlatformAuthority:
        """The platform PKI with its keys, decrypted and parsed once per process."""
        with self._authority_lock:
            if self._authority is None:
                with self.uow() as session:
                    self._authority = PlatformAuthority.load(session, self.keyring)
            return self._authority

    @property
    def limits(self) -> UploadLimits:
        s = self.settings
        return UploadLimits(max_bytes=s.max_upload_bytes, max_pages=s.max_pages,
                            max_attachments=s.max_attachments)

    def worker(self, name: str | None = None) -> Worker:
        return Worker(self.session_factory, self.registry, name=name)

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
