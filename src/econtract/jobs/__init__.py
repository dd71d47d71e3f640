"""Background jobs: the transactional outbox, the handler registry and the worker loop."""

from econtract.jobs.outbox import enqueue
from econtract.jobs.registry import JobContext, JobHandler, JobRegistry
from econtract.jobs.worker import Worker

__all__ = ["JobContext", "JobHandler", "JobRegistry", "Worker", "enqueue"]
