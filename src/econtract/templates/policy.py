"""Who may do what with templates and the clause library (roles: ``accounts.policy``)."""

from __future__ import annotations

import uuid

from econtract.accounts.policy import Role, at_least, is_system, same_org
from econtract.context import Actor


def can_view_templates(actor: Actor, org_id: uuid.UUID) -> bool:
    """Everyone in the organisation reads templates; a signer never does."""
    return same_org(actor, org_id) and (is_system(actor) or at_least(actor, Role.VIEWER))


def can_manage_templates(actor: Actor) -> bool:
    """Writing templates and library clauses is for managers and above."""
    return is_system(actor) or at_least(actor, Role.MANAGER)
