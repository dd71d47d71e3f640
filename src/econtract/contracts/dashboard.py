"""The dashboard's numbers: contracts per status, the signing funnel, contracts expiring soon.

Every number covers only what the actor may see (``service._visible`` through
``service.filtered``/``status_counts``), archived contracts included: the dashboard describes the
whole portfolio. The charts are drawn on the server as SVG (``Bar`` rows), so the page needs no
script (the CSP forbids inline ones) and the numbers are text a screen reader can read.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from econtract.context import Ctx
from econtract.contracts import service
from econtract.contracts.models import Contract
from econtract.contracts.schemas import ContractFilter
from econtract.parties.models import Signer

EXPIRING_WINDOWS = (30, 60, 90)
"""Days ahead for the "expiring soon" counts and the list's tabs."""
FUNNEL_STEPS: dict[str, frozenset[str]] = {
    "invited": frozenset({"invited", "viewed", "verified", "signed", "declined"}),
    "viewed": frozenset({"viewed", "verified", "signed", "declined"}),
    "verified": frozenset({"verified", "signed"}),
    "signed": frozenset({"signed"}),
}
"""Each step counts the signers who got at least that far (a signer's status only moves
forward; one who declined had opened the link)."""
BAR_SPAN = 260
"""The width of a full bar, in viewBox units."""
ROW = 30


@dataclass(frozen=True)
class Bar:
    """One row of a server-drawn SVG bar chart."""

    key: str
    count: int
    width: int
    y: int


def bars(counts: dict[str, int]) -> list[Bar]:
    """Chart rows, the longest bar for the largest count (widths in viewBox units)."""
    most = max(counts.values(), default=0) or 1
    return [Bar(key=key, count=n, width=round(BAR_SPAN * n / most) if n else 0, y=i * ROW)
            for i, (key, n) in enumerate(counts.items())]


def signing_funnel(session: Session, ctx: Ctx) -> dict[str, int]:
    """Signers invited → opened their link → proved their identity → signed."""
    visible = service.filtered(session, ctx, filters=ContractFilter(archived=None))
    rows = session.execute(
        select(Signer.status, func.count())
        .where(Signer.contract_id.in_(visible.with_only_columns(Contract.id)))
        .group_by(Signer.status))
    by_status = {status: int(n) for status, n in rows}
    return {step: sum(n for status, n in by_status.items() if status in statuses)
            for step, statuses in FUNNEL_STEPS.items()}


def expiring_counts(session: Session, ctx: Ctx) -> dict[int, int]:
    """Completed contracts whose expiry date falls within 30, 60, 90 days (cumulative)."""
    counts: dict[int, int] = {}
    for days in EXPIRING_WINDOWS:
        query = service.filtered(session, ctx, filters=ContractFilter(
            archived=None, expiring_within_days=days))
        counts[days] = int(session.scalar(
            select(func.count()).select_from(query.subquery())) or 0)
    return counts
