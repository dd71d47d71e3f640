"""Password hashing (Argon2id), random tokens, and the password rules."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from econtract.errors import ValidationFailed

# argon2-cffi's defaults are the RFC 9106 "low memory" profile: Argon2id, t=3, m=64 MiB, p=4.
_HASHER = PasswordHasher()
# Verified against when the e-mail is unknown, so both paths cost one Argon2id verification and
# response timing does not reveal which addresses have accounts.
_DUMMY_HASH = _HASHER.hash("not-a-real-password-timing-equaliser")

MIN_PASSWORD_LENGTH = 10
# The most common passwords of the public breach corpora that pass the length rule.
_COMMON = frozenset({
    "1234567890", "12345678910", "qwertyuiop", "password12", "password123", "password1234",
    "1q2w3e4r5t", "iloveyou12", "0123456789", "1111111111", "abcdefghij", "qwerty1234",
    "qwerty123456", "changeme123", "letmein1234", "admin12345", "administrator", "welcome123",
    "passw0rd12", "zaq12wsxcde", "a123456789", "aa12345678", "woaini1314", "5201314520",
})


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-work check: an unknown user (``None``) costs the same as a wrong password."""
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _HASHER.check_needs_rehash(password_hash)


def check_password_rules(password: str, *, email: str = "") -> None:
    """Raise ``ValidationFailed`` (code ``weak_password``) for a password nobody should use."""
    problem = None
    if len(password) < MIN_PASSWORD_LENGTH:
        problem = f"must be at least {MIN_PASSWORD_LENGTH} characters long"
    elif len(password) > 1024:
        problem = "must be at most 1024 characters long"
    elif password.lower() in _COMMON or len(set(password)) < 4:
        problem = "is too common or too simple"
    elif len(local := email.split("@")[0].lower()) >= 4 and local in password.lower():
        problem = "must not contain the e-mail address"
    if problem:
        raise ValidationFailed(f"Password {problem}.", code="weak_password")


def new_token(nbytes: int = 32) -> str:
    """A URL-safe random token with ``nbytes`` bytes (256 bits by default) from the OS CSPRNG."""
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    """Tokens are stored as SHA-256: they are high-entropy, so no slow hash is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
