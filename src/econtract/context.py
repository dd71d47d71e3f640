"""Ctx: who is acting, for which organisation, from where, and what time it is.

Every service takes ``ctx`` explicitly. The clock lives here so tests can control time without
patching, and jobs and the CLI build a ``Ctx`` of their own (actor ``system`` or a named user).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum


def utcnow() -> datetime:
    return datetime.now(UTC)


class ActorKind(StrEnum):
    USER = "user"
    API_KEY = "api_key"
    SYSTEM = "system"
    ANONYMOUS = "anonymous"
    SIGNER = "signer"


@dataclass(frozen=True, slots=True)
class Actor:
    """The principal behind an action; ``role`` is the organisation role for users and API keys."""

    kind: ActorKind
    id: uuid.UUID | None = None
    org_id: uuid.UUID | None = None
    role: str | None = None
    label: str = ""
    api_key_id: uuid.UUID | None = None

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(kind=ActorKind.SYSTEM, label=label)

    @classmethod
    def anonymous(cls) -> Actor:
        return cls(kind=ActorKind.ANONYMOUS, label="anonymous")


@dataclass(frozen=True, slots=True)
class Ctx:
    actor: Actor
    ip: str | None = None
    user_agent: str | None = None
    clock: Callable[[], datetime] = field(default=utcnow)
    locale: str = "en"
    base_url: str = "http://127.0.0.1:8000"
    """The installation's public address (``ECONTRACT_BASE_URL``), for links in messages."""

    @property
    def org_id(self) -> uuid.UUID | None:
        return self.actor.org_id

    def now(self) -> datetime:
        return self.clock()

    def with_actor(self, actor: Actor) -> Ctx:
        return replace(self, actor=actor)
