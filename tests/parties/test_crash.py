"""Crash safety of signing (issue 3, acceptance point 4): a signing process is killed with
``SIGKILL`` at random points in a loop of signings and seals, restarted, and after every kill each
contract is at its previous version or has the new signature fully recorded — on both databases.

The signing processes are forked by ``tests/parties/crash_worker.py`` (a fork server that imports
the signing stack once). Each one opens the runtime, signs every pending signer of six contracts
(two or three signers each, sequential and parallel groups, four people whose keys are set up at
their first signature) and runs the seal jobs. The test kills it at points drawn from a seeded RNG:
during start-up, part-way through a signature or a seal (a delay between 0 and the measured
duration of one step after the step began), or right after it reports a step. After every kill the
database and the blob storage are checked directly (see ``check_invariants``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sqlalchemy import func, select

from econtract.audit.events import EventKind
from econtract.audit.models import AuditEvent
from econtract.audit.service import verify_chains
from econtract.context import utcnow
from econtract.contracts import sending
from econtract.contracts.models import Contract, DocumentVersion
from econtract.credentials.models import SignerCredential
from econtract.errors import IntegrityError, NotFound
from econtract.jobs.models import OutboxJob
from econtract.parties import routing
from econtract.parties.models import Signer
from econtract.runtime import Runtime
from econtract.settings import Settings
from econtract.signing.report import SignatureKind, Verdict
from econtract.signing.verify import verify_pdf
from econtract.storage import backend_from_url
from tests.factories import create_contract, owner, user_ctx
from tests.parties.crash_worker import PEOPLE

REPO_ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger(__name__)

# Six contracts: (person index, signing order) per signer. Equal orders sign in parallel.
CONTRACTS = [
    ("Crash 1 sequential", [(0, 1), (1, 2)]),
    ("Crash 2 parallel", [(2, 1), (3, 1), (0, 1)]),
    ("Crash 3 sequential", [(1, 1), (2, 2), (3, 3)]),
    ("Crash 4 parallel", [(3, 1), (0, 1)]),
    ("Crash 5 mixed", [(0, 1), (1, 1), (2, 2)]),
    ("Crash 6 sequential", [(2, 1), (1, 2)]),
]
SEED = 20261128
MAX_KILLS = 40
KILL_WINDOW_SECONDS = 55.0
"""No new kill is planned after this long; the last signing process then runs to the end."""
LINE_TIMEOUT_SECONDS = 120.0
END_LINES = ("verified", "signed", "seal-end")
BEGIN_LINES = ("sign-begin", "seal-begin")


# --- the fork server and its output --------------------------------------------------------

class ForkServer:
    """``crash_worker`` running as a fork server; its stdout lines arrive through a queue."""

    def __init__(self, settings: Settings, stderr_path: Path) -> None:
        self.stderr_path = stderr_path
        self._stderr: IO[bytes] = stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.parties.crash_worker", str(settings.data_dir),
             settings.resolved_database_url, settings.base_url],
            cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines: queue.Queue[tuple[float, list[str]] | None] = queue.Queue()
        self.running: int | None = None  # the signing process, while it lives
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put((time.monotonic(), raw.decode().split()))
        self.lines.put(None)

    def stderr_tail(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")[-6000:]

    def next_line(self, timeout: float) -> tuple[float, list[str]] | None:
        """The next line, or None when ``timeout`` passes first; fails if the server died."""
        try:
            item = self.lines.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return None
        assert item is not None, (
            f"the crash_worker fork server exited ({self.proc.poll()}):\n{self.stderr_tail()}")
        return item

    def spawn(self) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(b"spawn\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise AssertionError(f"the crash_worker fork server exited ({self.proc.poll()}):\n"
                                 f"{self.stderr_tail()}") from None

    def close(self) -> None:
        if self.running is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.running, signal.SIGKILL)
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


@dataclass
class Plan:
    """When to kill the next signing process."""

    mode: str  # "start-up" | "mid-step" | "after-step" | "none"
    steps: int = 0  # mid-step: at the n-th begun step; after-step: at the n-th finished step
    delay: float = 0.0  # start-up: after spawn; mid-step: fraction of the step's duration


@dataclass
class Kill:
    number: int
    mode: str
    phase: str  # the signing process's last line before it died
    steps_before: int  # step lines it printed before the kill
    total_steps: int


@dataclass
class Durations:
    sign: list[float] = field(default_factory=lambda: [1.0])
    seal: list[float] = field(default_factory=lambda: [0.6])
    startup: list[float] = field(default_factory=lambda: [0.2])

    def of(self, kind: str) -> float:
        return statistics.median(getattr(self, kind)[-8:])


@dataclass
class Incarnation:
    """What one signing process did, as far as its lines tell."""

    pid: int | None = None
    events: list[str] = field(default_factory=list)
    steps: int = 0
    begun: int = 0
    begin_at: float = 0.0
    exit_status: int | None = None


def run_one(server: ForkServer, plan: Plan, durations: Durations) -> Incarnation:
    """Spawn a signing process and follow its lines; kill it as the plan says."""
    life = Incarnation()
    spawned_at = time.monotonic()
    server.spawn()
    kill_at = spawned_at + plan.delay * durations.of("startup") \
        if plan.mode == "start-up" else None
    killed = False
    while life.exit_status is None:
        now = time.monotonic()
        if kill_at is not None and not killed and life.pid is not None and now >= kill_at:
            with contextlib.suppress(ProcessLookupError):
                os.kill(life.pid, signal.SIGKILL)
            killed = True
            continue
        wait = (kill_at - now) if kill_at is not None and not killed and life.pid is not None \
            else LINE_TIMEOUT_SECONDS
        item = server.next_line(wait)
        if item is None:
            assert kill_at is not None and not killed, (
                f"no line from the signing process for {LINE_TIMEOUT_SECONDS} s:\n"
                f"{server.stderr_tail()}")
            continue
        at, words = item
        if words[0] == "spawned":
            life.pid = server.running = int(words[1])
            continue
        if words[0] == "exit":
            assert life.pid == int(words[1])
            life.exit_status = int(words[2])
            server.running = None
            break
        life.pid = server.running = life.pid or int(words[0])
        event = words[1]
        life.events.append(event)
        if event == "ready":
            durations.startup.append(at - spawned_at)
        elif event in BEGIN_LINES:
            life.begun += 1
            life.begin_at = at
            if plan.mode == "mid-step" and life.begun == plan.steps and not killed:
                kind = "sign" if event == "sign-begin" else "seal"
                kill_at = at + plan.delay * durations.of(kind)
        elif event in END_LINES:
            life.steps += 1
            if event in ("signed", "seal-end") and life.events[-2:-1] == [
                    "sign-begin" if event == "signed" else "seal-begin"]:
                (durations.sign if event == "signed" else durations.seal).append(
                    at - life.begin_at)
            if plan.mode == "after-step" and life.steps == plan.steps and not killed:
                kill_at = at  # right after it reported the step
    return life


def draw_plan(rng: random.Random) -> Plan:
    """Delays are fractions of the measured duration of start-up or of the step."""
    roll = rng.random()
    if roll < 0.1:
        return Plan("start-up", delay=rng.uniform(0.0, 1.3))
    if roll < 0.35:
        return Plan("after-step", steps=rng.randint(1, 3))
    if roll < 0.7:
        return Plan("mid-step", steps=rng.randint(1, 2), delay=rng.uniform(0.0, 1.15))
    # the end of a step: the blob is written, the transaction commits, the line is printed
    return Plan("mid-step", steps=rng.randint(1, 2), delay=rng.uniform(0.8, 1.1))


# --- invariants ----------------------------------------------------------------------------

@dataclass
class Seen:
    """What earlier checks saw: versions only grow, signatures are never lost."""

    versions: dict[uuid.UUID, list[tuple[int, str, str]]] = field(default_factory=dict)
    signed: dict[uuid.UUID, set[uuid.UUID]] = field(default_factory=dict)
    reports: dict[str, tuple[list[tuple[str, int]], int, int]] = field(default_factory=dict)
    orphans: int = 0
    temporaries: int = 0
    verified_pdfs: int = 0


def read_blob(rt: Runtime, where: str, org_id: uuid.UUID, contract_id: uuid.UUID, key: str,
              sha256: str | None) -> bytes:
    try:
        return rt.blobs.get(org_id=org_id, contract_id=contract_id, key=key, sha256=sha256)
    except (IntegrityError, NotFound) as exc:
        raise AssertionError(f"{where}: blob {key} is missing, torn (half-written) or not the "
                             f"recorded content: {exc}") from exc


def check_invariants(rt: Runtime, settings: Settings, seen: Seen, *, final: bool,
                     label: str) -> None:
    """Everything a crash must not break, read straight from the database and the storage."""
    referenced: set[str] = set()
    with rt.uow() as session:
        trust = rt.signing_engine().trust(session, utcnow())
        contracts = list(session.scalars(select(Contract).order_by(Contract.title)))
        assert len(contracts) == len(CONTRACTS), label
        all_signed_ids = set()
        for contract in contracts:
            where = f"{label}, contract {contract.title!r}"
            versions = list(session.scalars(select(DocumentVersion).where(
                DocumentVersion.contract_id == contract.id).order_by(DocumentVersion.number)))
            referenced.update(v.blob_key for v in versions)
            referenced.update(a.blob_key for a in contract.attachments)
            if contract.certificate_blob_key:
                referenced.add(contract.certificate_blob_key)
            signers = routing.signing_parties(contract)
            signed = [s for s in signers if s.status == "signed"]
            if len(signed) == len(signers):
                all_signed_ids.add(contract.id)
            numbers = [v.number for v in versions]
            kinds = [v.kind for v in versions]
            assert numbers == list(range(1, len(versions) + 1)), \
                f"{where}: version numbers have a gap or a duplicate: {numbers}"
            sealed = kinds[-1] == "sealed"
            assert kinds == ["original", "certified"] + ["signed"] * len(signed) \
                + (["sealed"] if sealed else []), (
                f"{where}: versions {kinds} do not match the {len(signed)} signers marked "
                "signed (a signature lost, or recorded twice)")
            expected_status = ("completed" if sealed else "sent" if not signed else "signing")
            assert contract.status == expected_status, \
                f"{where}: status {contract.status} with versions {kinds}"
            for signer in signers:
                recorded = (signer.signed_at is not None, signer.credential_serial is not None)
                assert recorded == ((True, True) if signer.status == "signed" else
                                    (False, False)), f"{where}: signer {signer.email} {recorded}"

            # every version decrypts and matches its SHA-256: no torn or missing blob
            current_pdf = b""
            for version in versions:
                current_pdf = read_blob(rt, f"{where}, version {version.number}",
                                        contract.org_id, contract.id, version.blob_key,
                                        version.sha256)
            current = versions[-1]
            if current.sha256 not in seen.reports:
                report = verify_pdf(current_pdf, trust)
                seen.verified_pdfs += 1
                assert report.verdict is Verdict.VALID, (
                    f"{where}: the current version {current.number} ({current.kind}) does not "
                    f"verify: {report.to_dict()}")
                approvals = [(s.field_name, int(s.signer.serial, 16)) for s in report.signatures
                             if s.kind is SignatureKind.APPROVAL and s.signer is not None]
                certifications = sum(s.kind is SignatureKind.CERTIFICATION
                                     for s in report.signatures)
                timestamps = sum(s.kind is SignatureKind.DOCUMENT_TIMESTAMP
                                 for s in report.signatures)
                seen.reports[current.sha256] = (approvals, certifications, timestamps)
            approvals, certifications, timestamps = seen.reports[current.sha256]
            assert certifications == 1, f"{where}: {certifications} certification signatures"
            assert (timestamps > 0) == sealed, f"{where}: {timestamps} document timestamps"
            fields = [name for name, _ in approvals]
            assert len(fields) == len(set(fields)), f"{where}: a field signed twice: {fields}"
            assert sorted(approvals) == sorted(
                (s.field_name or "", int(s.credential_serial or "0", 16)) for s in signed), (
                f"{where}: the current PDF's approval signatures {approvals} are not those of "
                f"the signers marked signed {[(s.field_name, s.email) for s in signed]}")

            # the audit trail: one signer.signed per signed signer, naming its version
            events = list(session.scalars(select(AuditEvent).where(
                AuditEvent.contract_id == contract.id)))
            signed_events = [e for e in events if e.kind == EventKind.SIGNER_SIGNED.value]
            assert Counter(e.data["signer_id"] for e in signed_events) == Counter(
                str(s.id) for s in signed), f"{where}: signer.signed events do not match"
            by_number = {v.number: v for v in versions}
            for event in signed_events:
                version = by_number.get(event.data["version"])
                assert version is not None and version.kind == "signed" and \
                    version.sha256 == event.data["sha256"], \
                    f"{where}: signer.signed event names no stored signed version: {event.data}"
            kinds_seen = Counter(e.kind for e in events)
            assert kinds_seen[EventKind.DOCUMENT_SEALED.value] == int(sealed), where
            assert kinds_seen[EventKind.CONTRACT_COMPLETED.value] == int(sealed), where

            # nothing seen before has gone or changed
            rows = [(v.number, v.kind, v.sha256) for v in versions]
            before = seen.versions.get(contract.id, [])
            assert rows[:len(before)] == before, f"{where}: earlier versions changed"
            seen.versions[contract.id] = rows
            now_signed = {s.id for s in signed}
            assert seen.signed.get(contract.id, set()) <= now_signed, \
                f"{where}: a recorded signature disappeared"
            seen.signed[contract.id] = now_signed
            if final:
                assert contract.status == "completed" and sealed, where

        # one seal job per fully signed contract (queued with the last signature), none failed
        jobs = list(session.scalars(select(OutboxJob).where(
            OutboxJob.kind == sending.SEAL_JOB)))
        assert {uuid.UUID(j.payload["contract_id"]) for j in jobs} == all_signed_ids, label
        assert len(jobs) == len(all_signed_ids), label
        assert not [j for j in jobs if j.status == "failed"], \
            f"{label}: seal job failed: {[(j.id, j.attempts, j.last_error) for j in jobs]}"
        if final:
            assert all(j.status == "done" for j in jobs), label

        # keys: at most one per person, set up once, and the one each signature names
        credentials = list(session.scalars(select(SignerCredential)))
        per_person = Counter(c.email for c in credentials)
        assert all(n == 1 for n in per_person.values()), f"{label}: keys {per_person}"
        key_events = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.kind == EventKind.SIGNER_KEY_CREATED.value))
        assert key_events == len(credentials), label
        serial_of = {c.email: c.serial for c in credentials}
        for signer in session.scalars(select(Signer).where(Signer.status == "signed")):
            assert serial_of.get(signer.email) == signer.credential_serial, label

        chains = verify_chains(session)
        assert chains.ok, f"{label}: audit chain broken: {chains.broken}"

    # storage: every referenced blob exists; orphans (written before a killed commit) are
    # whole, decryptable blobs that no row references
    backend = backend_from_url(settings.resolved_storage_url)
    stored = set(backend.keys())
    assert referenced <= stored, f"{label}: rows point at missing blobs {referenced - stored}"
    orphans = stored - referenced
    for key in orphans:
        org, contract_id, name = key.split("/")
        assert name.startswith(("document-", "certificate-")), \
            f"{label}: unexpected orphan {key}"
        read_blob(rt, f"{label}, orphan", uuid.UUID(org), uuid.UUID(contract_id), key, None)
    seen.orphans = len(orphans)
    blob_root = Path(settings.resolved_storage_url.removeprefix("file://"))
    seen.temporaries = sum(1 for _ in blob_root.rglob("*.partial~"))


# --- set-up and the test -------------------------------------------------------------------

def send_contracts(rt: Runtime) -> None:
    """Six sent contracts; the first group of each has verified its identity."""
    for title, parties in CONTRACTS:
        signers = [{"name": PEOPLE[person][0], "email": PEOPLE[person][1], "order": order}
                   for person, order in parties]
        contract = create_contract(rt, owner(rt), title=title, signers=signers)
        with rt.uow() as session:
            sending.send(session, user_ctx(owner(rt)), blobs=rt.blobs,
                         engine=rt.signing_engine(), contract_id=contract.id)
        with rt.uow() as session:  # as tests/parties/test_sign.py's verify_identity does
            for signer in session.scalars(select(Signer).where(
                    Signer.contract_id == contract.id, Signer.status == "invited")):
                signer.status = "verified"


def seal_attempts_left(rt: Runtime) -> int:
    """The fewest attempts any unfinished seal job has left."""
    with rt.uow() as session:
        left = [j.max_attempts - j.attempts for j in session.scalars(select(OutboxJob).where(
            OutboxJob.kind == sending.SEAL_JOB, OutboxJob.status != "done"))]
    return min(left, default=99)


def test_kill_9_while_signing(rt: Runtime, settings: Settings, db_url: str, tmp_path: Path,
                              record_property: Callable[[str, object], None]) -> None:
    started = time.monotonic()
    # The fork server imports the signing stack while the contracts are being sent.
    server = ForkServer(settings, tmp_path / "crash_worker.stderr")
    try:
        send_contracts(rt)
        seen = Seen()
        check_invariants(rt, settings, seen, final=False, label="before signing")
        rng = random.Random(f"{SEED}:{db_url.split(':')[0]}")
        durations = Durations()
        kills: list[Kill] = []
        total_steps = 0
        loop_started = time.monotonic()
        while True:
            plan = draw_plan(rng)
            if len(kills) >= MAX_KILLS or time.monotonic() - loop_started > KILL_WINDOW_SECONDS \
                    or seal_attempts_left(rt) <= 2:
                plan = Plan("none")
            life = run_one(server, plan, durations)
            total_steps += life.steps
            if life.exit_status == -signal.SIGKILL:
                kills.append(Kill(len(kills) + 1, plan.mode,
                                  life.events[-1] if life.events else "(before ready)",
                                  life.steps, total_steps))
                check_invariants(rt, settings, seen, final=False,
                                 label=f"after kill {len(kills)} ({plan.mode}, last line "
                                       f"{kills[-1].phase!r})")
                continue
            assert life.exit_status == 0 and life.events[-1:] == ["done"], (
                f"the signing process exited with {life.exit_status}:\n{server.stderr_tail()}")
            break
        check_invariants(rt, settings, seen, final=True, label="at the end")
    finally:
        server.close()

    elapsed = time.monotonic() - started
    phases = Counter(k.phase for k in kills)
    modes = Counter(k.mode for k in kills)
    summary = (f"[{db_url.split(':')[0]}] {len(kills)} kills in {elapsed:.1f} s; "
               f"{total_steps} step lines in all; by plan {dict(modes)}; "
               f"by last line before the kill {dict(phases)}; orphan blobs {seen.orphans}, "
               f"temporary files {seen.temporaries}, PDFs verified {seen.verified_pdfs}; "
               f"median sign {durations.of('sign'):.2f} s, seal {durations.of('seal'):.2f} s, "
               f"start-up {durations.of('startup'):.2f} s")
    record_property("crash_summary", summary)
    log.info("%s\n%s", summary, "\n".join(
        f"  kill {k.number:2d}: {k.mode:10s} last line {k.phase:10s} after {k.steps_before} "
        f"step(s) of this process, {k.total_steps} in all" for k in kills))
    # the test must have exercised the windows it is about
    assert len(kills) >= 10, f"only {len(kills)} kills"
    assert phases["sign-begin"] >= 3, f"too few kills part-way through a signature: {phases}"

