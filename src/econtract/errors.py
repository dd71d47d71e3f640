"""One error hierarchy with stable codes, mapped once per surface.

The API turns these into RFC 9457 ``application/problem+json`` (``code`` and ``title`` members), the
web UI into an error page, and the CLI into one line on stderr and an exit code. No other exception
type is meant to reach a user; anything else is a bug and shows as ``internal_error``.

Our exception hierarchy::

    EContractError                      500 internal_error
    ├── ConfigurationError              500 configuration_error   (start-up, CLI)
    ├── NotFound                        404 not_found             (and <resource>_not_found codes)
    ├── AuthenticationRequired          401 authentication_required
    ├── AuthenticationFailed            401 invalid_credentials
    │   └── PinIncorrect                401 pin_incorrect
    ├── AccountLocked                   429 account_locked
    │   └── SigningLocked               429 signing_locked        (too many wrong PINs)
    ├── CsrfFailed                      403 csrf_failed
    ├── PermissionDenied                403 permission_denied
    ├── ValidationFailed                422 validation_failed
    │   └── UploadRejected              422 upload_rejected and upload_* (not_pdf, encrypted,
    │                                       javascript, too_large, too_many_pages, unreadable …)
    ├── Conflict                        409 conflict
    │   ├── InvalidTransition           409 invalid_transition
    │   └── ContractNotEditable         409 contract_not_editable
    ├── IntegrityError                  500 integrity_error       (tampered blob, broken key)
    ├── SigningError                    500 signing_failed        (the signing engine refused)
    └── UpstreamError                   502 upstream_error        (SMTP, TSA, storage)

Codes are part of the public interface: add freely, never rename.
"""

from __future__ import annotations

from typing import Any, ClassVar


class EContractError(Exception):
    """Base of every error a user may see."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, message: str | None = None, *, code: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        self.message = message or self.title
        if code is not None:
            self.code = code  # type: ignore[misc]  # per-instance refinement of the class code
        self.details = details or {}
        super().__init__(self.message)


class ConfigurationError(EContractError):
    code = "configuration_error"
    title = "Configuration error"


class NotFound(EContractError):
    code = "not_found"
    status = 404
    title = "Not found"


class AuthenticationRequired(EContractError):
    code = "authentication_required"
    status = 401
    title = "Authentication required"


class AuthenticationFailed(EContractError):
    code = "invalid_credentials"
    status = 401
    title = "Invalid credentials"


class AccountLocked(EContractError):
    code = "account_locked"
    status = 429
    title = "Too many failed attempts"


class PinIncorrect(AuthenticationFailed):
    code = "pin_incorrect"
    title = "Wrong signing PIN"


class SigningLocked(AccountLocked):
    code = "signing_locked"
    title = "Signing temporarily locked"


class CsrfFailed(EContractError):
    code = "csrf_failed"
    status = 403
    title = "Form expired or forged"


class PermissionDenied(EContractError):
    code = "permission_denied"
    status = 403
    title = "Permission denied"


class ValidationFailed(EContractError):
    code = "validation_failed"
    status = 422
    title = "Invalid input"


class UploadRejected(ValidationFailed):
    code = "upload_rejected"
    title = "File refused"


class Conflict(EContractError):
    code = "conflict"
    status = 409
    title = "Conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"
    title = "Not possible in the contract's current state"


class ContractNotEditable(Conflict):
    code = "contract_not_editable"
    title = "Contract can no longer be edited"


class IntegrityError(EContractError):
    code = "integrity_error"
    title = "Stored data failed its integrity check"


class SigningError(EContractError):
    code = "signing_failed"
    title = "The document could not be signed"


class UpstreamError(EContractError):
    code = "upstream_error"
    status = 502
    title = "An external service failed"
