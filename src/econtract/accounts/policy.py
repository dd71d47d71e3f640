"""Who may do what: pure functions of the actor (and the resource), called by the services.

Roles, from most to least powerful (the README's permission table is generated from ``MATRIX``):

========  ==============================================================================
owner     everything, including appointing other owners
admin     users (except owners), everyone's API keys, all contracts, the audit log
manager   create, edit, send and void any contract of the organisation; read everything
member    create contracts; see, edit, send and void only their own
viewer    read every contract and the audit log (auditors), change nothing
========  ==============================================================================

Everything is scoped to the actor's organisation: a resource of another organisation is treated
as absent (404), never as forbidden, so its existence does not leak.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from econtract.context import Actor, ActorKind


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MANAGER = "manager"
    MEMBER = "member"
    VIEWER = "viewer"


RANK = {Role.OWNER: 5, Role.ADMIN: 4, Role.MANAGER: 3, Role.MEMBER: 2, Role.VIEWER: 1}


def role_of(actor: Actor) -> Role | None:
    if actor.kind not in (ActorKind.USER, ActorKind.API_KEY) or actor.role is None:
        return None
    return Role(actor.role)


def at_least(actor: Actor, role: Role) -> bool:
    current = role_of(actor)
    return current is not None and RANK[current] >= RANK[role]


def is_system(actor: Actor) -> bool:
    return actor.kind is ActorKind.SYSTEM


def same_org(actor: Actor, org_id: uuid.UUID) -> bool:
    return is_system(actor) or (actor.org_id is not None and actor.org_id == org_id)


def can_manage_users(actor: Actor) -> bool:
    return is_system(actor) or at_least(actor, Role.ADMIN)


def can_assign_role(actor: Actor, role: Role) -> bool:
    if is_system(actor):
        return True
    if role is Role.OWNER:
        return role_of(actor) is Role.OWNER
    return at_least(actor, Role.ADMIN)


def can_view_org_audit(actor: Actor) -> bool:
    return is_system(actor) or at_least(actor, Role.ADMIN) or role_of(actor) is Role.VIEWER


def can_manage_api_key(actor: Actor, key_user_id: uuid.UUID) -> bool:
    return is_system(actor) or actor.id == key_user_id or at_least(actor, Role.ADMIN)


def can_manage_org_settings(actor: Actor) -> bool:
    """Organisation-wide settings such as the reminder defaults (everyone may read them)."""
    return is_system(actor) or at_least(actor, Role.ADMIN)


MATRIX: dict[str, dict[Role, str]] = {
    "Create contracts": {Role.OWNER: "yes", Role.ADMIN: "yes", Role.MANAGER: "yes",
                         Role.MEMBER: "yes", Role.VIEWER: "no"},
    "See contracts": {Role.OWNER: "all", Role.ADMIN: "all", Role.MANAGER: "all",
                      Role.MEMBER: "own", Role.VIEWER: "all"},
    "Edit, send, void contracts": {Role.OWNER: "all", Role.ADMIN: "all", Role.MANAGER: "all",
                                   Role.MEMBER: "own", Role.VIEWER: "no"},
    "Organisation audit log": {Role.OWNER: "yes", Role.ADMIN: "yes", Role.MANAGER: "no",
                               Role.MEMBER: "no", Role.VIEWER: "yes"},
    "Create users": {Role.OWNER: "any role", Role.ADMIN: "up to admin", Role.MANAGER: "no",
                     Role.MEMBER: "no", Role.VIEWER: "no"},
    "API keys": {Role.OWNER: "everyone's", Role.ADMIN: "everyone's", Role.MANAGER: "own",
                 Role.MEMBER: "own", Role.VIEWER: "own (read-only)"},
    "Organisation settings (reminder defaults)": {
        Role.OWNER: "change", Role.ADMIN: "change", Role.MANAGER: "read", Role.MEMBER: "read",
        Role.VIEWER: "read"},
}
