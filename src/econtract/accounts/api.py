"""REST: the current user, users of the organisation, API keys."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status

from econtract.accounts import service
from econtract.accounts.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    ReminderDefaults,
    ReminderDefaultsUpdate,
    UserCreate,
    UserRead,
)
from econtract.errors import AuthenticationRequired
from econtract.http import api_unit

router = APIRouter(tags=["accounts"])


def _me(ctx_actor_id: uuid.UUID | None) -> uuid.UUID:
    if ctx_actor_id is None:
        raise AuthenticationRequired()
    return ctx_actor_id


@router.get("/me", response_model=UserRead, summary="The authenticated user")
def read_me(request: Request) -> UserRead:
    with api_unit(request) as (session, ctx):
        return UserRead.model_validate(service.get_user(session, ctx, _me(ctx.actor.id)))


@router.get("/users", response_model=list[UserRead], summary="Users of the organisation")
def list_users(request: Request) -> list[UserRead]:
    with api_unit(request) as (session, ctx):
        return [UserRead.model_validate(u) for u in service.list_users(session, ctx)]


@router.post("/users", response_model=UserRead, status_code=status.HTTP_201_CREATED,
             summary="Add a user to the organisation (admins)")
def create_user(request: Request, user_in: UserCreate) -> UserRead:
    with api_unit(request) as (session, ctx):
        assert ctx.org_id is not None
        user = service.create_user(session, ctx, org_id=ctx.org_id, email=user_in.email,
                                   password=user_in.password, name=user_in.name,
                                   role=user_in.role)
        return UserRead.model_validate(user)


@router.get("/api-keys", response_model=list[ApiKeyRead],
            summary="Your API keys (admins: everyone's)")
def list_api_keys(request: Request) -> list[ApiKeyRead]:
    with api_unit(request) as (session, ctx):
        return [ApiKeyRead.model_validate(k) for k in service.list_api_keys(session, ctx)]


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED,
             summary="Create an API key for yourself; the key is in the response, once")
def create_api_key(request: Request, key_in: ApiKeyCreate) -> ApiKeyCreated:
    with api_unit(request) as (session, ctx):
        key, secret = service.create_api_key(session, ctx, user_id=_me(ctx.actor.id),
                                             name=key_in.name)
        return ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), key=secret)


@router.delete("/api-keys/{key_id}", response_model=ApiKeyRead, summary="Revoke an API key")
def revoke_api_key(request: Request, key_id: uuid.UUID) -> ApiKeyRead:
    with api_unit(request) as (session, ctx):
        return ApiKeyRead.model_validate(service.revoke_api_key(session, ctx, key_id=key_id))


@router.get("/organisation/reminders", response_model=ReminderDefaults,
            summary="The organisation's reminder defaults")
def read_reminder_defaults(request: Request) -> ReminderDefaults:
    with api_unit(request) as (session, ctx):
        return ReminderDefaults.model_validate(service.get_org(session, ctx))


@router.patch("/organisation/reminders", response_model=ReminderDefaults,
              summary="Change the organisation's reminder defaults (admins)")
def update_reminder_defaults(request: Request,
                             patch: ReminderDefaultsUpdate) -> ReminderDefaults:
    with api_unit(request) as (session, ctx):
        org = service.set_reminder_defaults(session, ctx,
                                            interval_hours=patch.reminder_interval_hours,
                                            reminder_max=patch.reminder_max,
                                            renewal_days=patch.renewal_reminder_days)
        return ReminderDefaults.model_validate(org)
