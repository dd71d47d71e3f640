"""Who may do what with contracts (the role table is in ``econtract.accounts.policy``).

A contract outside the actor's organisation, or one a member may not see, is reported as absent by
the services (404), so neither its existence nor its id leaks.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from econtract.accounts.policy import Role, at_least, is_system, role_of, same_org
from econtract.context import Actor


class OwnedResource(Protocol):
    @property
    def org_id(self) -> uuid.UUID: ...
    @property
    def owner_id(self) -> uuid.UUID: ...


def can_create_contract(actor: Actor) -> bool:
    return is_system(actor) or at_least(actor, Role.MEMBER)


def can_view_contract(actor: Actor, contract: OwnedResource) -> bool:
    if not same_org(actor, contract.org_id):
        return False
    if role_of(actor) is Role.MEMBER:
        return actor.id == contract.owner_id
    return is_system(actor) or role_of(actor) is not None


def can_edit_contract(actor: Actor, contract: OwnedResource) -> bool:
    """Edit, send, void: managers and up on any contract, members on their own."""
    if not same_org(actor, contract.org_id):
        return False
    if role_of(actor) is Role.MEMBER:
        return actor.id == contract.owner_id
    return is_system(actor) or at_least(actor, Role.MANAGER)


def sees_only_own(actor: Actor) -> bool:
    """Members list only the contracts they own."""
    return role_of(actor) is Role.MEMBER
