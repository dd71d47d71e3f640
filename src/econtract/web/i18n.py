"""Languages of the web UI: choosing one per request, loading catalogs, labels for stable codes.

English is the source language (msgids are the English strings), so only ``zh_CN`` has a catalog:
``locales/zh_CN/LC_MESSAGES/messages.po``. It is read with Babel and compiled in memory at start-up,
so the repository holds no compiled ``.mo`` files that could drift from the ``.po``.

Status names, event kinds, roles and error titles are stable codes in the domain; their labels live
here, marked with ``N_`` so ``pybabel extract -F src/econtract/web/babel.cfg src/econtract`` finds
them, and are translated when a page is rendered.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from econtract.audit.events import EventKind
from econtract.contracts.states import Status

EN = "en"
ZH_CN = "zh_CN"
SUPPORTED = (EN, ZH_CN)
DEFAULT = EN
LANG_COOKIE = "econtract_lang"
LOCALES_DIR = Path(__file__).parent / "locales"
HTML_LANG = {EN: "en", ZH_CN: "zh-CN"}

# Accept-Language tags read as Simplified Chinese; other Chinese variants fall through to the
# next preference (a Traditional reader may well prefer English to Simplified).
_ZH_HANS = frozenset({"zh", "zh-cn", "zh-hans", "zh-hans-cn", "zh-sg", "zh-hans-sg"})

Gettext = Callable[[str], str]


def N_(message: str) -> str:  # the conventional name that extractors look for
    """Mark a string for extraction; it is translated later, when the locale is known."""
    return message


def normalise(code: str | None) -> str | None:
    """A supported locale for a language tag or cookie value, or ``None``."""
    if not code:
        return None
    tag = code.strip().replace("_", "-").lower()
    if tag in _ZH_HANS:
        return ZH_CN
    if tag == "en" or tag.startswith("en-"):
        return EN
    return None


def _accept_language(header: str) -> list[str]:
    """Language tags of an Accept-Language header, most preferred first (q=0 dropped)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:30]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, index, tag))
    return [tag for _, _, tag in sorted(ranked)]


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The cookie's choice if valid, else the first supported Accept-Language tag, else English."""
    chosen = normalise(cookie)
    if chosen:
        return chosen
    for tag in _accept_language(accept_language or ""):
        found = normalise(tag)
        if found:
            return found
    return DEFAULT


@cache
def translations(locale: str) -> gettext.NullTranslations:
    """The compiled catalog of ``locale`` (English: the identity)."""
    if locale == EN:
        return gettext.NullTranslations()
    if locale not in SUPPORTED:
        raise ValueError(f"unsupported locale {locale!r}")
    path = LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as po_file:
        catalog = read_po(po_file, locale=locale)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def load_all() -> None:
    """Compile every catalog now, so a broken ``.po`` stops start-up instead of a page."""
    for locale in SUPPORTED:
        translations(locale)


def gettext_for(locale: str) -> Gettext:
    return translations(locale).gettext


STATUS_LABELS: dict[str, str] = {
    Status.DRAFT: N_("Draft"),
    Status.PENDING_APPROVAL: N_("Pending approval"),
    Status.APPROVED: N_("Approved"),
    Status.SENT: N_("Sent"),
    Status.SIGNING: N_("Signing"),
    Status.COMPLETED: N_("Completed"),
    Status.DECLINED: N_("Declined"),
    Status.VOIDED: N_("Voided"),
    Status.EXPIRED: N_("Expired"),
    Status.LAPSED: N_("Lapsed"),
}

SIGNER_STATUS_LABELS: dict[str, str] = {
    "waiting": N_("Waiting"),
    "invited": N_("Invited"),
    "viewed": N_("Viewed"),
    "verified": N_("Identity verified"),
    "signed": N_("Signed"),
    "declined": N_("Declined"),
}

APPROVAL_LABELS = {
    "waiting": N_("Waiting"), "pending": N_("Awaiting decision"), "approved": N_("Approved"),
    "rejected": N_("Rejected"), "skipped": N_("Not needed"),
}
"""An approver's decision in an approval round (``contracts.approval``)."""

SIGNER_ROLE_LABELS: dict[str, str] = {
    "signer": N_("Signer"),
    "approver": N_("Approver"),
    "cc": N_("Copy recipient"),
}

EVENT_LABELS: dict[str, str] = {
    EventKind.ORG_CREATED: N_("Organisation created"),
    EventKind.USER_CREATED: N_("User created"),
    EventKind.USER_PASSWORD_CHANGED: N_("Password changed"),
    EventKind.LOGIN_SUCCEEDED: N_("Signed in"),
    EventKind.LOGIN_FAILED: N_("Sign-in failed"),
    EventKind.LOGIN_LOCKED: N_("Sign-in locked"),
    EventKind.LOGOUT: N_("Signed out"),
    EventKind.API_KEY_CREATED: N_("API key created"),
    EventKind.API_KEY_REVOKED: N_("API key revoked"),
    EventKind.API_KEY_USED: N_("API key used"),
    EventKind.CONTRACT_CREATED: N_("Contract created"),
    EventKind.CONTRACT_UPDATED: N_("Contract edited"),
    EventKind.CONTRACT_VIEWED: N_("Contract viewed"),
    EventKind.DOCUMENT_UPLOADED: N_("Document uploaded"),
    EventKind.DOCUMENT_DOWNLOADED: N_("Document downloaded"),
    EventKind.ATTACHMENT_ADDED: N_("Attachment added"),
    EventKind.ATTACHMENT_REMOVED: N_("Attachment removed"),
    EventKind.ATTACHMENT_DOWNLOADED: N_("Attachment downloaded"),
    EventKind.AUDIT_VIEWED: N_("Audit trail viewed"),
    EventKind.SIGNER_KEY_CREATED: N_("Signing key set up"),
    EventKind.SIGNER_KEY_REVOKED: N_("Signing key revoked"),
    EventKind.SIGNER_PIN_FAILED: N_("Wrong signing PIN entered"),
    EventKind.SIGNER_INVITED: N_("Signer invited"),
    EventKind.SIGNER_SIGNED: N_("Signer signed"),
    EventKind.SIGNER_LINK_OPENED: N_("Signing link opened"),
    EventKind.SIGNER_OTP_SENT: N_("Verification code sent"),
    EventKind.SIGNER_OTP_FAILED: N_("Wrong verification code entered"),
    EventKind.SIGNER_IDENTITY_VERIFIED: N_("Signer identity verified"),
    EventKind.SIGNER_CONSENTED: N_("Consent to sign electronically given"),
    EventKind.SIGNER_DECLINED: N_("Signer declined"),
    EventKind.DOCUMENT_SEALED: N_("Document sealed"),
    EventKind.DOCUMENT_VERIFIED: N_("Document verified"),
    EventKind.CONTRACT_SUBMITTED: N_("Submitted for approval"),
    EventKind.CONTRACT_APPROVED: N_("Approved"),
    EventKind.CONTRACT_REJECTED: N_("Rejected"),
    EventKind.CONTRACT_SENT: N_("Sent for signing"),
    EventKind.CONTRACT_SIGNED_PARTIALLY: N_("Signed by a signer"),
    EventKind.CONTRACT_COMPLETED: N_("Completed"),
    EventKind.CONTRACT_DECLINED: N_("Declined"),
    EventKind.CONTRACT_VOIDED: N_("Voided"),
    EventKind.CONTRACT_EXPIRED: N_("Expired"),
    EventKind.CONTRACT_LAPSED: N_("Lapsed"),
    EventKind.CERTIFICATE_ISSUED: N_("Certificate of completion issued"),
    EventKind.CERTIFICATE_DOWNLOADED: N_("Certificate of completion downloaded"),
    EventKind.SIGNER_REMINDED: N_("Signer reminded"),
    EventKind.ORG_REMINDER_DEFAULTS_CHANGED: N_("Reminder defaults changed"),
    EventKind.SIGNER_OTP_RATE_LIMITED: N_("Verification code refused: too many requests"),
    EventKind.SIGNER_ACCESS_GRANTED: N_("Access code entered"),
    EventKind.SIGNER_ACCESS_CODE_FAILED: N_("Wrong access code entered"),
    EventKind.TEMPLATE_CREATED: N_("Template created"),
    EventKind.TEMPLATE_REVISED: N_("Template revised"),
    EventKind.TEMPLATE_ARCHIVED: N_("Template archived"),
    EventKind.TEMPLATE_RESTORED: N_("Template restored"),
    EventKind.CLAUSE_SAVED: N_("Library clause saved"),
    EventKind.CLAUSE_DELETED: N_("Library clause deleted"),
    EventKind.EVIDENCE_EXPORTED: N_("Evidence package downloaded"),
    EventKind.APPROVAL_DECIDED: N_("Approver decided"),
    EventKind.CONTRACT_FROM_TEMPLATE: N_("Created from a template"),
    EventKind.CONTRACT_RENEWAL_REMINDED: N_("Owner reminded of the expiry date"),
    EventKind.CONTRACT_ARCHIVED: N_("Archived"),
    EventKind.CONTRACT_UNARCHIVED: N_("Unarchived"),
    EventKind.CONTRACTS_EXPORTED: N_("Contract list exported"),
    EventKind.BULK_PREPARED: N_("Bulk send checked"),
    EventKind.BULK_STARTED: N_("Bulk send started"),
    EventKind.BULK_FINISHED: N_("Bulk send finished"),
    EventKind.CONTRACT_FIELDS_PLACED: N_("Signature fields placed"),
}

# The titles of ``econtract.errors`` classes, listed so the extractor sees them (a test checks
# that every error class's title is here).
ERROR_TITLES = (
    N_("Internal error"), N_("Configuration error"), N_("Not found"),
    N_("Authentication required"), N_("Invalid credentials"), N_("Too many failed attempts"),
    N_("Form expired or forged"), N_("Permission denied"), N_("Invalid input"),
    N_("File refused"), N_("Conflict"), N_("Not possible in the contract's current state"),
    N_("Contract can no longer be edited"), N_("Stored data failed its integrity check"),
    N_("An external service failed"), N_("Wrong signing PIN"), N_("Signing temporarily locked"),
    N_("The document could not be signed"),
)

# Messages the services raise that a web user commonly meets; others are shown as they are.
KNOWN_MESSAGES = (
    N_("The e-mail address or password is wrong."),
    N_("Please sign in."),
    N_("Your session has expired. Please sign in again."),
    N_("No such contract."),
    N_("No such attachment."),
    N_("The contract has no document."),
    N_("You may not change this contract."),
    N_("You may not create contracts."),
    N_("A reason is required to void a contract."),
    N_("Something went wrong on our side."),
    N_("The request is not valid."),
    N_("expiry_date must not be before effective_date"),
    N_("each signer needs a different e-mail address"),
    N_("at most 20 tags"),
    N_("each tag must be at most 50 characters"),
    N_("This signing link is not valid. Check that you copied the whole address."),
    N_("This signing link can no longer be used."),
    N_("The signers were reminded a few minutes ago; please wait before reminding them again."),
    N_("No signer is waiting for a reminder."),
)


def label(labels: dict[str, str], code: str, translate: Gettext) -> str:
    """The translated label of a stable code; an unknown code is shown as it is."""
    msgid = labels.get(code)
    return translate(msgid) if msgid else code
