"""Typed audit event kinds.

The kind strings are stored with each event and hashed into the chain: they are a stable interface
(add freely, never rename). ``data`` carries the kind-specific details as plain JSON values.
"""

from __future__ import annotations

from enum import StrEnum


class EventKind(StrEnum):
    # organisation and accounts
    ORG_CREATED = "org.created"
    USER_CREATED = "user.created"
    USER_PASSWORD_CHANGED = "user.password_changed"
    LOGIN_SUCCEEDED = "auth.login_succeeded"
    LOGIN_FAILED = "auth.login_failed"
    LOGIN_LOCKED = "auth.login_locked"
    LOGOUT = "auth.logout"
    API_KEY_CREATED = "api_key.created"
    API_KEY_REVOKED = "api_key.revoked"
    API_KEY_USED = "api_key.used"
    # contracts
    CONTRACT_CREATED = "contract.created"
    CONTRACT_UPDATED = "contract.updated"
    CONTRACT_VIEWED = "contract.viewed"
    DOCUMENT_UPLOADED = "document.uploaded"
    DOCUMENT_DOWNLOADED = "document.downloaded"
    ATTACHMENT_ADDED = "attachment.added"
    ATTACHMENT_REMOVED = "attachment.removed"
    ATTACHMENT_DOWNLOADED = "attachment.downloaded"
    AUDIT_VIEWED = "audit.viewed"
    # signing keys and signatures
    SIGNER_KEY_CREATED = "signer.key_created"
    SIGNER_KEY_REVOKED = "signer.key_revoked"
    SIGNER_PIN_FAILED = "signer.pin_failed"
    SIGNER_INVITED = "signer.invited"
    SIGNER_SIGNED = "signer.signed"
    SIGNER_LINK_OPENED = "signer.link_opened"
    SIGNER_OTP_SENT = "signer.otp_sent"
    SIGNER_OTP_FAILED = "signer.otp_failed"
    SIGNER_IDENTITY_VERIFIED = "signer.identity_verified"
    SIGNER_CONSENTED = "signer.consented"
    SIGNER_DECLINED = "signer.declined"
    DOCUMENT_SEALED = "document.sealed"
    DOCUMENT_VERIFIED = "document.verified"
    # lifecycle transitions (contracts.states writes these)
    CONTRACT_SUBMITTED = "contract.submitted"
    CONTRACT_APPROVED = "contract.approved"
    CONTRACT_REJECTED = "contract.rejected"
    CONTRACT_SENT = "contract.sent"
    CONTRACT_SIGNED_PARTIALLY = "contract.signed_partially"
    CONTRACT_COMPLETED = "contract.completed"
    CONTRACT_DECLINED = "contract.declined"
    CONTRACT_VOIDED = "contract.voided"
    CONTRACT_EXPIRED = "contract.expired"
    CONTRACT_LAPSED = "contract.lapsed"
    # reminders and organisation settings
    SIGNER_REMINDED = "signer.reminded"
    ORG_REMINDER_DEFAULTS_CHANGED = "org.reminder_defaults_changed"
    # signer identity extras (access code, send limits)
    SIGNER_OTP_RATE_LIMITED = "signer.otp_rate_limited"
    SIGNER_ACCESS_GRANTED = "signer.access_granted"
    SIGNER_ACCESS_CODE_FAILED = "signer.access_code_failed"
    # completion (certificate of completion)
    CERTIFICATE_ISSUED = "contract.certificate_issued"
    CERTIFICATE_DOWNLOADED = "certificate.downloaded"
    # templates and the clause library
    TEMPLATE_CREATED = "template.created"
    TEMPLATE_REVISED = "template.revised"
    TEMPLATE_ARCHIVED = "template.archived"
    TEMPLATE_RESTORED = "template.restored"
    CLAUSE_SAVED = "clause.saved"
    CLAUSE_DELETED = "clause.deleted"
    # contracts made from a template (the template version and a digest of the values)
    CONTRACT_FROM_TEMPLATE = "contract.from_template"
    # evidence package
    EVIDENCE_EXPORTED = "evidence.exported"
    # internal approval
    APPROVAL_DECIDED = "approval.decided"
    # contract management (validity tracking, archive, export)
    CONTRACT_RENEWAL_REMINDED = "contract.renewal_reminded"
    CONTRACT_ARCHIVED = "contract.archived"
    CONTRACT_UNARCHIVED = "contract.unarchived"
    CONTRACTS_EXPORTED = "contracts.exported"
    # bulk send (批量发送); each contract's own events come from create and send
    BULK_PREPARED = "bulk.prepared"
    BULK_STARTED = "bulk.started"
    BULK_FINISHED = "bulk.finished"
    # signature placement (fields on the document's own pages)
    CONTRACT_FIELDS_PLACED = "contract.fields_placed"
