"""Who may do what with contracts (the role table is in ``econtract.accounts.policy``).

A contract outside the actor's organisation, or one a member may not see, is reported as absent by
the services (404), so neither its existence nor its id leaks.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

from econtract.accounts.policy import Role, at_least, is_system, role_of, same_org
from econtract.context import Actor, ActorKind


class Party(Protocol):
    @property
    def id(self) -> uuid.UUID: ...


class OwnedResource(Protocol):
    @property
    def org_id(self) -> uuid.UUID: ...
    @property
    def owner_id(self) -> uuid.UUID: ...
    @property
    def signers(self) -> Sequence[Party]: ...


def is_party(actor: Actor, contract: OwnedResource) -> bool:
    """A signer acts only on the contract they were invited to, as themselves."""
    return actor.kind is ActorKind.SIGNER and actor.org_id == contract.org_id and any(
        s.id == actor.id for s in contract.signers)


def can_create_contract(actor: Actor) -> bool:
    return is_system(actor) or at_least(actor, Role.MEMBER)


def can_view_contract(actor: Actor, contract: OwnedResource) -> bool:
    if actor.kind is ActorKind.SIGNER:
        return is_party(actor, contract)
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
