"""Recording audit events in the caller's transaction, reading them, and checking the chains.

Each organisation has its own chain (events outside any organisation, such as a failed login for an
unknown address, go to the ``system`` chain). An event's hash covers all its fields and the hash of
the event before it, and ``audit_heads`` keeps the newest (seq, hash) per chain. Appending locks the
head row (``FOR UPDATE`` on PostgreSQL; SQLite transactions are already serialised by
``BEGIN IMMEDIATE``), so concurrent appends cannot fork a chain. Editing, deleting, inserting or
reordering any row, including the newest, breaks a hash, a link, the seq order or the head.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from econtract.audit.events import EventKind
from econtract.audit.models import AuditEvent, AuditHead
from econtract.context import Ctx

GENESIS = "0" * 64
SYSTEM_CHAIN = "system"


def chain_for(org_id: uuid.UUID | None) -> str:
    return str(org_id) if org_id else SYSTEM_CHAIN


def event_fields(event: AuditEvent) -> dict[str, Any]:
    """Every field an event's hash covers, as canonical JSON values (``prev_hash`` included)."""
    return {
        "chain": event.chain, "seq": event.seq,
        "org_id": str(event.org_id) if event.org_id else None,
        "contract_id": str(event.contract_id) if event.contract_id else None,
        "kind": event.kind, "actor_kind": event.actor_kind, "actor_id": event.actor_id,
        "actor_label": event.actor_label, "ip": event.ip, "user_agent": event.user_agent,
        "occurred_at": event.occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "data": event.data, "prev_hash": event.prev_hash,
    }


def hash_fields(fields: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of ``event_fields``: the same function checks a chain
    in the database and one exported in an evidence package."""
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def event_hash(event: AuditEvent) -> str:
    """SHA-256 over the canonical JSON of every field and the previous hash."""
    return hash_fields(event_fields(event))


def ensure_chain(session: Session, org_id: uuid.UUID | None) -> None:
    """Create the head row of a chain (done when an organisation is created)."""
    chain = chain_for(org_id)
    if session.get(AuditHead, chain) is None:
        session.add(AuditHead(chain=chain, seq=0, hash=GENESIS))
        session.flush()


def record(session: Session, ctx: Ctx, kind: EventKind, *, org_id: uuid.UUID | None = None,
           contract_id: uuid.UUID | None = None, data: dict[str, Any] | None = None,
           actor_label: str | None = None) -> AuditEvent:
    """Append one event to its organisation's chain, in the caller's transaction.

    The event row is written at the next flush; the chain's head row is locked at the first
    event of the transaction and written once, just before the commit (see ``_HeadCache``).
    """
    org = org_id if org_id is not None else ctx.org_id
    head = _HeadCache.of(session).locked(session, org)
    actor = ctx.actor
    event = AuditEvent(
        chain=head.chain, seq=head.seq + 1, org_id=org, contract_id=contract_id,
        kind=str(kind), actor_kind=str(actor.kind),
        actor_id=str(actor.id) if actor.id else None,
        actor_label=(actor_label or actor.label)[:320], ip=ctx.ip,
        user_agent=(ctx.user_agent or None), occurred_at=ctx.now().astimezone(UTC),
        data=_jsonable(data or {}), prev_hash=head.hash,
    )
    if actor.api_key_id is not None:
        event.data = {**event.data, "api_key_id": str(actor.api_key_id)}
    event.hash = event_hash(event)
    session.add(event)
    head.seq, head.hash, head.dirty = event.seq, event.hash, True
    return event


def record_at_commit(session: Session, ctx: Ctx, kind: EventKind, *,
                     org_id: uuid.UUID | None = None, data: dict[str, Any] | None = None) -> None:
    """Like ``record``, but appended just before the transaction commits (with the time of this
    call). For events written before the real work of a request, such as an API key's use: the
    chain's head is then locked after, never before, the rows the work locks (a contract), so
    the two lock orders cannot deadlock."""
    at = ctx.now()
    fixed = replace(ctx, clock=lambda: at)
    _HeadCache.of(session).deferred.append(
        lambda: record(session, fixed, kind, org_id=org_id, data=data))


def current_head(session: Session, org_id: uuid.UUID | None) -> tuple[int, str]:
    """The chain's newest (seq, hash) as this transaction sees it, including the events it
    recorded but has not committed yet; locks the head like ``record``."""
    head = _HeadCache.of(session).locked(session, org_id)
    return head.seq, head.hash


@dataclass
class _Head:
    chain: str
    seq: int
    hash: str
    dirty: bool = False


class _HeadCache:
    """The heads a transaction has locked, kept in ``session.info`` for that transaction only.

    A signature writes several events; locking and updating the head row once per transaction
    instead of once per event saves two statements an event. The lock taken at the first event
    (``FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` holds the write lock already)
    still serialises appends, and the head row is written by the ``before_commit`` hook below,
    in the same transaction as the events.
    """

    KEY = "econtract.audit.heads"

    def __init__(self, transaction: object) -> None:
        self.transaction = transaction
        self.heads: dict[str, _Head] = {}
        self.deferred: list[Callable[[], object]] = []

    @classmethod
    def of(cls, session: Session) -> _HeadCache:
        transaction = session.get_transaction() or session.begin()
        cache = session.info.get(cls.KEY)
        if not isinstance(cache, _HeadCache) or cache.transaction is not transaction:
            cache = session.info[cls.KEY] = cls(transaction)
        return cache

    def locked(self, session: Session, org_id: uuid.UUID | None) -> _Head:
        chain = chain_for(org_id)
        head = self.heads.get(chain)
        if head is None:
            row = session.execute(
                select(AuditHead.seq, AuditHead.hash).where(AuditHead.chain == chain)
                .with_for_update()).one_or_none()
            if row is None:
                ensure_chain(session, org_id)
                head = _Head(chain, 0, GENESIS)
            else:
                head = _Head(chain, row.seq, row.hash)
            self.heads[chain] = head
        return head

    def write(self, session: Session) -> None:
        deferred, self.deferred = self.deferred, []
        for append in deferred:
            append()
        for head in self.heads.values():
            if head.dirty:
                session.execute(update(AuditHead).where(AuditHead.chain == head.chain)
                                .values(seq=head.seq, hash=head.hash)
                                .execution_options(synchronize_session=False))
                head.dirty = False


@sa_event.listens_for(Session, "before_commit")
def _write_heads(session: Session) -> None:
    cache = session.info.get(_HeadCache.KEY)
    if isinstance(cache, _HeadCache) and cache.transaction is session.get_transaction():
        cache.write(session)


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    # Round-trip once so what is hashed is exactly what the JSON column gives back.
    result: dict[str, Any] = json.loads(json.dumps(data, default=str, ensure_ascii=False))
    return result


def contract_events(session: Session, *, org_id: uuid.UUID,
                    contract_id: uuid.UUID) -> list[AuditEvent]:
    """The timeline of one contract, oldest first (the caller has checked access)."""
    return list(session.scalars(
        select(AuditEvent)
        .where(AuditEvent.org_id == org_id, AuditEvent.contract_id == contract_id)
        .order_by(AuditEvent.seq)
    ))


def org_events(session: Session, *, org_id: uuid.UUID, limit: int = 100,
               before_seq: int | None = None) -> list[AuditEvent]:
    """Newest first, for the organisation's audit log."""
    query = select(AuditEvent).where(AuditEvent.chain == chain_for(org_id))
    if before_seq is not None:
        query = query.where(AuditEvent.seq < before_seq)
    return list(session.scalars(query.order_by(AuditEvent.seq.desc()).limit(limit)))


@dataclass(frozen=True)
class BrokenEntry:
    chain: str
    event_id: int | None
    seq: int | None
    reason: str


@dataclass(frozen=True)
class ChainReport:
    chains: int
    events: int
    broken: BrokenEntry | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def verify_chains(session: Session) -> ChainReport:
    """Walk every chain and name the first entry that does not check out."""
    heads = {h.chain: h for h in session.scalars(select(AuditHead))}
    chains = sorted(set(heads) | set(session.scalars(select(AuditEvent.chain).distinct())))
    total = 0
    for chain in chains:
        count, broken = _verify_chain(session, chain, heads.get(chain))
        total += count
        if broken is not None:
            return ChainReport(chains=len(chains), events=total, broken=broken)
    return ChainReport(chains=len(chains), events=total, broken=None)


def _iter_chain(session: Session, chain: str) -> Iterator[AuditEvent]:
    query = (select(AuditEvent).where(AuditEvent.chain == chain)
             .order_by(AuditEvent.seq, AuditEvent.id).execution_options(yield_per=1000))
    yield from session.scalars(query)


def _verify_chain(session: Session, chain: str,
                  head: AuditHead | None) -> tuple[int, BrokenEntry | None]:
    prev_hash, prev_id, expected_seq = GENESIS, 0, 1
    for event in _iter_chain(session, chain):
        problem = None
        if event.seq != expected_seq:
            problem = f"sequence gap or duplicate: expected seq {expected_seq}, found {event.seq}"
        elif event.id <= prev_id:
            problem = "out of order: row id does not increase with the sequence"
        elif event.prev_hash != prev_hash:
            problem = "link broken: prev_hash does not match the previous entry"
        elif event_hash(event) != event.hash:
            problem = "content changed: hash does not match the entry's fields"
        if problem:
            return expected_seq - 1, BrokenEntry(chain, event.id, event.seq, problem)
        prev_hash, prev_id, expected_seq = event.hash, event.id, expected_seq + 1
    count = expected_seq - 1
    if head is None:
        return count, BrokenEntry(chain, None, None, "chain has events but no head record")
    if head.seq != count or head.hash != prev_hash:
        return count, BrokenEntry(chain, None, head.seq,
                                  f"head mismatch: head says seq {head.seq}, chain ends at "
                                  f"{count} (entries deleted from the end?)")
    return count, None
