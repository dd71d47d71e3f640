"""Which handler runs which kind of job.

Handlers are closures bound to their resources (an e-mail backend, a storage client) when the
process starts, so neither the registry nor the worker needs to know about those resources.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy.orm import Session

from econtract.errors import ConfigurationError
from econtract.jobs.models import OutboxJob


@dataclass
class JobContext:
    """What a handler gets besides its payload.

    ``session`` is the handler's own transaction: what it writes commits together with the job
    being marked done, and rolls back if the handler raises. ``attempt`` counts from 1.
    """

    session: Session
    job: OutboxJob
    now: datetime
    attempt: int


JobHandler: TypeAlias = Callable[[JobContext, dict[str, Any]], None]


class JobRegistry:
    def __init__(self) -> None:
        self._handlers: dict[str, JobHandler] = {}

    def register(self, kind: str, handler: JobHandler) -> None:
        # A second registration is a wiring bug; silently replacing the first would hide it.
        if kind in self._handlers:
            raise ConfigurationError(f"a handler for job kind {kind!r} is already registered")
        self._handlers[kind] = handler

    def get(self, kind: str) -> JobHandler | None:
        return self._handlers.get(kind)

    def kinds(self) -> list[str]:
        return sorted(self._handlers)
