"""Organisations, users, login and browser sessions, API keys.

Failed logins are counted per e-mail address (known or not) in ``login_throttle``: after each
failure the next attempt must wait longer (1, 2, 4, 8 s …), and after ``login_max_failures`` in a
row the address is locked for ``login_lock_minutes``. Every refusal reads the same, so the
responses never tell whether an address has an account.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from econtract.accounts import policy, security
from econtract.accounts.models import ApiKey, LoginThrottle, Organisation, User, WebSession
from econtract.accounts.policy import Role
from econtract.audit import service as audit
from econtract.audit.events import EventKind
from econtract.context import Actor, ActorKind, Ctx
from econtract.errors import (
    AccountLocked,
    AuthenticationFailed,
    AuthenticationRequired,
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from econtract.notifications import jobs as notify
from econtract.notifications import messages

GENERIC_LOGIN_ERROR = "The e-mail address or password is wrong."
API_KEY_PREFIX = "ek_"


def normalise_email(email: str) -> str:
    return email.strip().lower()


def actor_for(user: User, *, api_key: ApiKey | None = None) -> Actor:
    return Actor(kind=ActorKind.API_KEY if api_key else ActorKind.USER, id=user.id,
                 org_id=user.org_id, role=user.role, label=user.email,
                 api_key_id=api_key.id if api_key else None)


# --- organisations and users -------------------------------------------------------------

def create_org(session: Session, ctx: Ctx, *, name: str, admin_email: str, admin_password: str,
               admin_name: str = "") -> tuple[Organisation, User]:
    """A new tenant with its first user, an owner."""
    if not policy.is_system(ctx.actor):
        raise PermissionDenied("Only the platform operator can create organisations.")
    name = name.strip()
    if not name or len(name) > 200:
        raise ValidationFailed("Organisation name must be 1–200 characters.", code="invalid_name")
    if session.scalar(select(Organisation).where(Organisation.name == name)):
        raise Conflict(f"An organisation named {name!r} already exists.", code="org_exists")
    org = Organisation(name=name, created_at=ctx.now())
    session.add(org)
    session.flush()
    audit.ensure_chain(session, org.id)
    audit.record(session, ctx, EventKind.ORG_CREATED, org_id=org.id, data={"name": name})
    owner = create_user(session, ctx, org_id=org.id, email=admin_email, password=admin_password,
                        name=admin_name, role=Role.OWNER)
    return org, owner


def create_user(session: Session, ctx: Ctx, *, org_id: uuid.UUID, email: str, password: str,
                name: str = "", role: Role = Role.MEMBER) -> User:
    if not (policy.same_org(ctx.actor, org_id) and policy.can_manage_users(ctx.actor)
            and policy.can_assign_role(ctx.actor, role)):
        raise PermissionDenied(f"You may not create users with the role {role}.")
    email = normalise_email(email)
    if "@" not in email or len(email) > 320:
        raise ValidationFailed("A valid e-mail address is required.", code="invalid_email")
    security.check_password_rules(password, email=email)
    if session.scalar(select(User.id).where(User.email == email)):
        raise Conflict("A user with this e-mail address already exists.", code="user_exists")
    now = ctx.now()
    user = User(org_id=org_id, email=email, name=name.strip() or email.split("@")[0],
                role=str(role), password_hash=security.hash_password(password), created_at=now,
                password_changed_at=now)
    session.add(user)
    session.flush()
    audit.record(session, ctx, EventKind.USER_CREATED, org_id=org_id,
                 data={"user_id": str(user.id), "email": email, "role": str(role)})
    org = session.get_one(Organisation, org_id)
    notify.queue_email(session, now=now, org_id=org_id, message=messages.welcome(
        email=email, name=user.name, org_name=org.name, login_url=f"{ctx.base_url}/login"))
    return user


def set_password(session: Session, ctx: Ctx, *, user_id: uuid.UUID, password: str) -> User:
    user = get_user(session, ctx, user_id)
    if not (ctx.actor.id == user.id or policy.can_manage_users(ctx.actor)):
        raise PermissionDenied("You may not change this user's password.")
    security.check_password_rules(password, email=user.email)
    user.password_hash = security.hash_password(password)
    user.password_changed_at = ctx.now()
    # A new password ends every existing session of the user.
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    audit.record(session, ctx, EventKind.USER_PASSWORD_CHANGED, org_id=user.org_id,
                 data={"user_id": str(user.id)})
    return user


def get_user(session: Session, ctx: Ctx, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id)
    if user is None or not policy.same_org(ctx.actor, user.org_id):
        raise NotFound("No such user.", code="user_not_found")
    return user


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalise_email(email)))


def list_users(session: Session, ctx: Ctx) -> list[User]:
    if ctx.org_id is None or not policy.can_manage_users(ctx.actor):
        raise PermissionDenied("Only administrators can list users.")
    return list(session.scalars(select(User).where(User.org_id == ctx.org_id)
                                .order_by(User.created_at)))


def get_org_by_name(session: Session, name: str) -> Organisation | None:
    return session.scalar(select(Organisation).where(Organisation.name == name))


def first_org(session: Session) -> Organisation | None:
    return session.scalar(select(Organisation).order_by(Organisation.created_at).limit(1))


# --- login, sessions ---------------------------------------------------------------------

@dataclass(frozen=True)
class LoginOutcome:
    """Either a new session (``token`` for the cookie) or a refusal with a retry hint."""

    user: User | None
    token: str | None
    csrf_token: str | None
    error: AuthenticationFailed | AccountLocked | None


def _throttle_delay(failures: int) -> timedelta:
    return timedelta(seconds=min(2 ** max(failures - 1, 0), 60)) if failures else timedelta(0)


def login(session: Session, ctx: Ctx, *, email: str, password: str, max_failures: int,
          lock_minutes: int, absolute_hours: int, old_token: str | None = None) -> LoginOutcome:
    """Check a password; the caller commits either way, so failures are counted and audited."""
    email = normalise_email(email)[:320]
    now = ctx.now()
    throttle = session.get(LoginThrottle, email) or LoginThrottle(email=email, failures=0)
    wait = _locked_for(throttle, now)
    if wait is not None:
        audit.record(session, ctx, EventKind.LOGIN_LOCKED, org_id=None,
                     data={"email": email}, actor_label=email)
        seconds = max(int(wait.total_seconds()) + 1, 1)
        error = AccountLocked(f"Too many failed attempts. Try again in {seconds} seconds.",
                              details={"retry_after": seconds})
        return LoginOutcome(None, None, None, error)
    user = get_user_by_email(session, email)
    ok = security.verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        locked = _count_failure(session, throttle, now, max_failures, lock_minutes)
        audit.record(session, ctx, EventKind.LOGIN_FAILED, org_id=user.org_id if user else None,
                     data={"email": email, "failures": throttle.failures, "locked": locked},
                     actor_label=email)
        if locked and user is not None:  # tell the real owner only; nothing for unknown ones
            notify.queue_email(session, now=now, org_id=user.org_id, message=messages.
                               account_locked(email=email, failures=throttle.failures,
                                              minutes=lock_minutes,
                                              login_url=f"{ctx.base_url}/login"))
        return LoginOutcome(None, None, None, AuthenticationFailed(GENERIC_LOGIN_ERROR))
    if throttle in session:
        session.delete(throttle)
    if security.needs_rehash(user.password_hash):
        user.password_hash = security.hash_password(password)
    if old_token:  # a fresh session id at login: the pre-login one is dropped (fixation)
        logout(session, ctx, token=old_token, audit_it=False)
    token, web_session = _new_session(session, ctx, user, now, absolute_hours)
    user.last_login_at = now
    audit.record(session, ctx.with_actor(actor_for(user)), EventKind.LOGIN_SUCCEEDED,
                 org_id=user.org_id, data={"email": email})
    return LoginOutcome(user, token, web_session.csrf_token, None)


def _locked_for(throttle: LoginThrottle, now: datetime) -> timedelta | None:
    if throttle.locked_until and throttle.locked_until > now:
        return throttle.locked_until - now
    if throttle.last_failure_at and throttle.failures:
        ready = throttle.last_failure_at + _throttle_delay(throttle.failures)
        if ready > now:
            return ready - now
    return None


def _count_failure(session: Session, throttle: LoginThrottle, now: datetime, max_failures: int,
                   lock_minutes: int) -> bool:
    """Count one failure; True when this failure locks the address."""
    if throttle.locked_until and throttle.locked_until <= now:
        throttle.failures, throttle.locked_until = 0, None  # the lock served its time
    throttle.failures += 1
    throttle.last_failure_at = now
    locked = throttle.failures >= max_failures
    if locked:
        throttle.locked_until = now + timedelta(minutes=lock_minutes)
    if throttle not in session:
        session.add(throttle)
    session.flush()
    return locked


def _new_session(session: Session, ctx: Ctx, user: User, now: datetime,
                 absolute_hours: int) -> tuple[str, WebSession]:
    token = security.new_token()
    web_session = WebSession(
        id_hash=security.token_hash(token), user_id=user.id, csrf_token=security.new_token(),
        created_at=now, last_seen_at=now, expires_at=now + timedelta(hours=absolute_hours),
        ip=ctx.ip, user_agent=(ctx.user_agent or "")[:400] or None)
    session.add(web_session)
    session.flush()
    return token, web_session


def resolve_session(session: Session, *, token: str, now: datetime,
                    idle_minutes: int) -> tuple[User, WebSession]:
    """The user behind a session cookie; an idle, expired or unknown session raises."""
    web_session = session.get(WebSession, security.token_hash(token))
    if web_session is None:
        raise AuthenticationRequired("Please sign in.", code="session_invalid")
    idle_limit = web_session.last_seen_at + timedelta(minutes=idle_minutes)
    if now >= web_session.expires_at or now >= idle_limit:
        session.delete(web_session)
        raise AuthenticationRequired("Your session has expired. Please sign in again.",
                                     code="session_expired")
    user = session.get(User, web_session.user_id)
    if user is None or not user.is_active:
        raise AuthenticationRequired("Please sign in.", code="session_invalid")
    web_session.last_seen_at = now
    return user, web_session


def logout(session: Session, ctx: Ctx, *, token: str, audit_it: bool = True) -> None:
    web_session = session.get(WebSession, security.token_hash(token))
    if web_session is None:
        return
    user = session.get(User, web_session.user_id)
    session.delete(web_session)
    session.flush()
    if audit_it and user is not None:
        audit.record(session, ctx, EventKind.LOGOUT, org_id=user.org_id)


def purge_expired_sessions(session: Session, *, now: datetime, idle_minutes: int) -> int:
    result = session.execute(delete(WebSession).where(
        (WebSession.expires_at <= now)
        | (WebSession.last_seen_at <= now - timedelta(minutes=idle_minutes))))
    return int(getattr(result, "rowcount", 0) or 0)


# --- API keys ----------------------------------------------------------------------------

def create_api_key(session: Session, ctx: Ctx, *, user_id: uuid.UUID,
                   name: str = "default") -> tuple[ApiKey, str]:
    """A new key for ``user_id``; the returned secret is shown once and stored only hashed."""
    user = get_user(session, ctx, user_id)
    if not policy.can_manage_api_key(ctx.actor, user.id):
        raise PermissionDenied("You may not create API keys for this user.")
    prefix = security.new_token(6).replace("-", "x").replace("_", "y")[:8]
    secret = security.new_token(32)
    key = ApiKey(org_id=user.org_id, user_id=user.id, name=name.strip()[:100] or "default",
                 prefix=prefix, secret_hash=security.token_hash(secret), created_at=ctx.now())
    session.add(key)
    session.flush()
    audit.record(session, ctx, EventKind.API_KEY_CREATED, org_id=user.org_id,
                 data={"api_key_id": str(key.id), "prefix": prefix, "user_id": str(user.id),
                       "name": key.name})
    return key, f"{API_KEY_PREFIX}{prefix}_{secret}"


def list_api_keys(session: Session, ctx: Ctx) -> list[ApiKey]:
    query = select(ApiKey).where(ApiKey.org_id == ctx.org_id)
    if not policy.can_manage_users(ctx.actor):
        query = query.where(ApiKey.user_id == ctx.actor.id)
    return list(session.scalars(query.order_by(ApiKey.created_at)))


def revoke_api_key(session: Session, ctx: Ctx, *, key_id: uuid.UUID) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None or not policy.same_org(ctx.actor, key.org_id) or not \
            policy.can_manage_api_key(ctx.actor, key.user_id):
        raise NotFound("No such API key.", code="api_key_not_found")
    if key.revoked_at is None:
        key.revoked_at = ctx.now()
        audit.record(session, ctx, EventKind.API_KEY_REVOKED, org_id=key.org_id,
                     data={"api_key_id": str(key.id), "prefix": key.prefix})
    return key


def authenticate_api_key(session: Session, ctx: Ctx, *, raw_key: str,
                         route: str) -> tuple[User, ApiKey]:
    """Resolve a Bearer key, record its use, and return its user; any doubt is a 401."""
    invalid = AuthenticationFailed("The API key is invalid or revoked.", code="invalid_api_key")
    if not raw_key.startswith(API_KEY_PREFIX) or raw_key.count("_") < 2:
        raise invalid
    prefix, _, secret = raw_key[len(API_KEY_PREFIX):].partition("_")
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None or key.revoked_at is not None or \
            not security.tokens_equal(key.secret_hash, security.token_hash(secret)):
        raise invalid
    user = session.get(User, key.user_id)
    if user is None or not user.is_active:
        raise invalid
    key.last_used_at, key.last_used_ip = ctx.now(), ctx.ip
    # Recorded at commit: the head of the audit chain must not be locked before the rows the
    # request's work locks (see ``audit.record_at_commit``).
    audit.record_at_commit(session, ctx.with_actor(actor_for(user, api_key=key)),
                           EventKind.API_KEY_USED, org_id=key.org_id,
                           data={"prefix": key.prefix, "route": route})
    return user, key


def organisation(session: Session, org_id: uuid.UUID) -> Organisation | None:
    """The organisation, loaded at most once per session: the identity map holds objects only
    weakly, so code that asks for it twice in one transaction (an invitation, then its reminder
    schedule) would otherwise query it twice."""
    cache: dict[uuid.UUID, Organisation] = session.info.setdefault("econtract.orgs", {})
    org = cache.get(org_id)
    if org is None:
        org = session.get(Organisation, org_id)
        if org is not None:
            cache[org_id] = org
    return org


def count_users(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(User)) or 0)


# --- organisation settings -----------------------------------------------------------------

REMINDER_INTERVAL_HOURS = range(1, 24 * 30 + 1)
REMINDER_MAX = range(0, 21)
RENEWAL_REMINDER_DAYS = range(0, 366)


def get_org(session: Session, ctx: Ctx, *, org_id: uuid.UUID | None = None) -> Organisation:
    """The actor's organisation (any organisation for the platform operator, by id)."""
    target = org_id or ctx.org_id
    org = session.get(Organisation, target) if target is not None else None
    if org is None or not policy.same_org(ctx.actor, org.id):
        raise NotFound("No such organisation.", code="org_not_found")
    return org


def set_reminder_defaults(session: Session, ctx: Ctx, *, org_id: uuid.UUID | None = None,
                          interval_hours: int | None = None,
                          reminder_max: int | None = None,
                          renewal_days: int | None = None) -> Organisation:
    """Change the reminder defaults of contracts that set none (admins and owners). Contracts
    already out for signing use the new values from their next reminder on."""
    org = get_org(session, ctx, org_id=org_id)
    if not policy.can_manage_org_settings(ctx.actor):
        raise PermissionDenied("Only administrators can change the organisation's settings.")
    if interval_hours is not None and interval_hours not in REMINDER_INTERVAL_HOURS:
        raise ValidationFailed("The reminder interval must be 1 to 720 hours.",
                               code="invalid_reminder_interval")
    if reminder_max is not None and reminder_max not in REMINDER_MAX:
        raise ValidationFailed("At most 20 automatic reminders (0 turns them off).",
                               code="invalid_reminder_max")
    if renewal_days is not None and renewal_days not in RENEWAL_REMINDER_DAYS:
        raise ValidationFailed("Renewal reminders go out 0 to 365 days before the expiry date "
                               "(0 turns them off).", code="invalid_renewal_reminder_days")
    previous = {"reminder_interval_hours": org.reminder_interval_hours,
                "reminder_max": org.reminder_max}
    if renewal_days is not None:
        previous["renewal_reminder_days"] = org.renewal_reminder_days
    if interval_hours is not None:
        org.reminder_interval_hours = interval_hours
    if reminder_max is not None:
        org.reminder_max = reminder_max
    if renewal_days is not None:
        org.renewal_reminder_days = renewal_days
    current = {"reminder_interval_hours": org.reminder_interval_hours,
               "reminder_max": org.reminder_max}
    if renewal_days is not None:
        current["renewal_reminder_days"] = org.renewal_reminder_days
    if current != previous:
        session.flush()
        audit.record(session, ctx, EventKind.ORG_REMINDER_DEFAULTS_CHANGED, org_id=org.id,
                     data={**current, "previous": previous})
    return org
