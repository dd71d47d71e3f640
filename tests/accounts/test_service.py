"""Users, passwords, login throttling, sessions and API keys."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from econtract.accounts import service as accounts
from econtract.accounts.models import ApiKey, User
from econtract.accounts.policy import Role
from econtract.audit.models import AuditEvent
from econtract.context import Actor, Ctx
from econtract.errors import (
    AccountLocked,
    AuthenticationFailed,
    AuthenticationRequired,
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from econtract.runtime import Runtime
from tests.conftest import OWNER_EMAIL, OWNER_PASSWORD, FakeClock
from tests.factories import PASSWORD, add_org, add_user, owner, system_ctx, user_ctx


def _login(rt: Runtime, clock: FakeClock, email: str, password: str,
           old_token: str | None = None) -> accounts.LoginOutcome:
    with rt.uow() as session:
        return accounts.login(session, Ctx(actor=Actor.anonymous(), ip="198.51.100.1",
                                           clock=clock),
                              email=email, password=password, max_failures=5, lock_minutes=15,
                              absolute_hours=12, old_token=old_token)


def test_password_is_argon2id_and_rules_apply(rt: Runtime) -> None:
    user = add_user(rt, email="m@acme.test")
    assert user.password_hash.startswith("$argon2id$")
    for weak in ("short", "1234567890", "aaaaaaaaaaaa", "mallory-is-me-123"):
        with pytest.raises(ValidationFailed) as info, rt.uow() as session:
            accounts.create_user(session, system_ctx(), org_id=user.org_id,
                                 email="mallory@acme.test", password=weak)
        assert info.value.code == "weak_password"


def test_duplicate_email_is_a_conflict(rt: Runtime) -> None:
    with pytest.raises(Conflict), rt.uow() as session:
        accounts.create_user(session, system_ctx(), org_id=owner(rt).org_id,
                             email=OWNER_EMAIL.upper(), password=PASSWORD)


def test_roles_limit_who_creates_users(rt: Runtime) -> None:
    admin = add_user(rt, email="admin@acme.test", role=Role.ADMIN)
    manager = add_user(rt, email="manager@acme.test", role=Role.MANAGER)
    with rt.uow() as session:
        accounts.create_user(session, user_ctx(admin), org_id=admin.org_id,
                             email="new@acme.test", password=PASSWORD, role=Role.ADMIN)
    with pytest.raises(PermissionDenied), rt.uow() as session:
        accounts.create_user(session, user_ctx(admin), org_id=admin.org_id,
                             email="boss@acme.test", password=PASSWORD, role=Role.OWNER)
    with pytest.raises(PermissionDenied), rt.uow() as session:
        accounts.create_user(session, user_ctx(manager), org_id=manager.org_id,
                             email="x@acme.test", password=PASSWORD)
    other = add_org(rt, name="Other", email="boss@other.test")
    with pytest.raises(PermissionDenied), rt.uow() as session:
        accounts.create_user(session, user_ctx(other), org_id=admin.org_id,
                             email="spy@acme.test", password=PASSWORD)


def test_login_success_gives_fresh_session(rt: Runtime, clock: FakeClock) -> None:
    first = _login(rt, clock, OWNER_EMAIL, OWNER_PASSWORD)
    assert first.error is None and first.token and first.csrf_token
    second = _login(rt, clock, OWNER_EMAIL, OWNER_PASSWORD, old_token=first.token)
    assert second.token != first.token
    with rt.uow() as session, pytest.raises(AuthenticationRequired):
        accounts.resolve_session(session, token=first.token, now=clock(), idle_minutes=30)


def test_failed_logins_read_the_same_for_unknown_addresses(rt: Runtime, clock: FakeClock) -> None:
    wrong = _login(rt, clock, OWNER_EMAIL, "wrong password here")
    unknown = _login(rt, clock, "nobody@acme.test", "wrong password here")
    assert isinstance(wrong.error, AuthenticationFailed)
    assert isinstance(unknown.error, AuthenticationFailed)
    assert wrong.error.message == unknown.error.message
    with rt.uow() as session:
        kinds = list(session.scalars(select(AuditEvent.kind)
                                     .where(AuditEvent.kind == "auth.login_failed")))
    assert len(kinds) == 2


def test_growing_delays_then_lock(rt: Runtime, clock: FakeClock) -> None:
    delays = []
    for attempt in range(1, 6):
        outcome = _login(rt, clock, OWNER_EMAIL, "wrong password here")
        assert isinstance(outcome.error, AuthenticationFailed), attempt
        early = _login(rt, clock, OWNER_EMAIL, OWNER_PASSWORD)  # too soon: refused unchecked
        assert isinstance(early.error, AccountLocked)
        delays.append(early.error.details["retry_after"])
        clock.advance(seconds=delays[-1])
    assert delays[:4] == sorted(delays[:4]) and delays[0] < delays[3]
    assert delays[-1] >= 14 * 60  # the fifth failure locks for 15 minutes
    clock.advance(minutes=15)
    assert _login(rt, clock, OWNER_EMAIL, OWNER_PASSWORD).error is None


def test_session_idle_and_absolute_timeouts(rt: Runtime, clock: FakeClock) -> None:
    outcome = _login(rt, clock, OWNER_EMAIL, OWNER_PASSWORD)
    assert outcome.token
    for _ in range(3):  # activity keeps it alive ...
        clock.advance(minutes=25)
        with rt.uow() as session:
            accounts.resolve_session(session, token=outcome.token, now=clock(), idle_minutes=30)
    clock.advance(minutes=31)  # ... idleness ends it
    with rt.uow() as session, pytest.raises(AuthenticationRequired) as info:
        accounts.resolve_session(session, token=outcome.token, now=clock(), idle_minutes=30)
    assert info.value.code == "session_expired"
    token = _login(rt, clock, OWNER_EMAIL, OWNER_PASSWORD).token
    assert token
    logged_in_at, ended_at = clock(), None
    for _ in range(30):  # busy all day: the absolute limit still applies
        clock.advance(minutes=29)
        try:
            with rt.uow() as session:
                accounts.resolve_session(session, token=token, now=clock(), idle_minutes=30)
        except AuthenticationRequired:
            ended_at = clock()
            break
    assert ended_at is not None
    assert timedelta(hours=12) <= ended_at - logged_in_at < timedelta(hours=12, minutes=29)


def test_logout_ends_the_session_server_side(rt: Runtime, clock: FakeClock) -> None:
    outcome = _login(rt, clock, OWNER_EMAIL, OWNER_PASSWORD)
    assert outcome.token
    with rt.uow() as session:
        accounts.logout(session, user_ctx(owner(rt), clock), token=outcome.token)
    with rt.uow() as session, pytest.raises(AuthenticationRequired):
        accounts.resolve_session(session, token=outcome.token, now=clock(), idle_minutes=30)


def test_api_key_is_hashed_shown_once_and_revocable(rt: Runtime) -> None:
    user = owner(rt)
    with rt.uow() as session:
        key, secret = accounts.create_api_key(session, user_ctx(user), user_id=user.id,
                                              name="erp")
    assert secret.startswith("ek_") and key.prefix in secret
    with rt.uow() as session:
        stored = session.get_one(ApiKey, key.id)
        assert secret.split("_", 2)[2] not in stored.secret_hash
        found, _ = accounts.authenticate_api_key(session, user_ctx(user), raw_key=secret,
                                                 route="GET /x")
        assert found.id == user.id
    with rt.uow() as session:
        assert session.get_one(ApiKey, key.id).last_used_at is not None
        accounts.revoke_api_key(session, user_ctx(user), key_id=key.id)
    with rt.uow() as session, pytest.raises(AuthenticationFailed):
        accounts.authenticate_api_key(session, user_ctx(user), raw_key=secret, route="GET /x")
    with rt.uow() as session, pytest.raises(AuthenticationFailed):
        accounts.authenticate_api_key(session, user_ctx(user), raw_key=secret[:-2] + "xx",
                                      route="GET /x")


def test_members_cannot_touch_others_keys(rt: Runtime) -> None:
    member = add_user(rt, email="m@acme.test")
    boss = owner(rt)
    with rt.uow() as session:
        key, _ = accounts.create_api_key(session, user_ctx(boss), user_id=boss.id)
    with rt.uow() as session, pytest.raises(NotFound):
        accounts.revoke_api_key(session, user_ctx(member), key_id=key.id)
    with rt.uow() as session, pytest.raises(PermissionDenied):
        accounts.create_api_key(session, user_ctx(member), user_id=boss.id)
    with rt.uow() as session:
        assert accounts.list_api_keys(session, user_ctx(member)) == []
        assert len(accounts.list_api_keys(session, user_ctx(boss))) == 1


def test_set_password_ends_sessions(rt: Runtime, clock: FakeClock) -> None:
    outcome = _login(rt, clock, OWNER_EMAIL, OWNER_PASSWORD)
    user = owner(rt)
    with rt.uow() as session:
        accounts.set_password(session, user_ctx(user, clock), user_id=user.id,
                              password="another good password")
    with rt.uow() as session, pytest.raises(AuthenticationRequired):
        accounts.resolve_session(session, token=outcome.token or "", now=clock(),
                                 idle_minutes=30)
    assert _login(rt, clock, OWNER_EMAIL, "another good password").error is None
    with rt.uow() as session:
        assert session.get_one(User, user.id).password_changed_at is not None


def _queued_mail(rt: Runtime) -> list[dict[str, object]]:
    from econtract.jobs.models import OutboxJob

    with rt.uow() as session:
        return [job.payload for job in session.scalars(
            select(OutboxJob).where(OutboxJob.kind == "email.send").order_by(OutboxJob.id))]


def test_new_users_get_a_welcome_mail_through_the_outbox(rt: Runtime) -> None:
    add_user(rt, email="newcomer@acme.test")
    mail = _queued_mail(rt)[-1]
    assert mail["to"] == ["newcomer@acme.test"] and "Acme" in str(mail["subject"])
    assert "/login" in str(mail["text"]) and PASSWORD not in str(mail["text"])
    assert rt.worker().run_once() >= 1
    files = list(rt.settings.outbox_dir.glob("*.eml"))
    assert any("newcomer@acme.test" in f.read_text() for f in files)


def test_lock_alerts_the_owner_but_not_unknown_addresses(rt: Runtime, clock: FakeClock) -> None:
    before = len(_queued_mail(rt))
    for _ in range(5):
        _login(rt, clock, OWNER_EMAIL, "wrong password here")
        _login(rt, clock, "ghost@acme.test", "wrong password here")
        clock.advance(seconds=61)
    alerts = _queued_mail(rt)[before:]
    assert [m["to"] for m in alerts] == [[OWNER_EMAIL]]
    assert "locked" in str(alerts[0]["subject"])
