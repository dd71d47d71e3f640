"""The blob store services use: encrypted, tamper-evident, bound to organisation and contract.

Each blob is stored under ``<org_id>/<contract_id>/<kind>-<random hex>`` and encrypted (see
``crypto``) with associated data naming that organisation, contract and key. Moving or copying a
blob file to another contract, organisation or key therefore makes it fail to decrypt. The
database row keeps the plaintext SHA-256 as a second, independent check: it ties the content to
the row even against someone who holds the master key, or a bug that stored the wrong bytes.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass

from econtract.errors import IntegrityError, NotFound, ValidationFailed
from econtract.storage import crypto
from econtract.storage.backends import BlobBackend
from econtract.storage.crypto import MasterKeyring

_AAD_PREFIX = b"econtract-blob-v1|"
_KIND = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class StoredBlob:
    """Where a blob went, plus the SHA-256 (hex) and size of its plaintext, for the database."""

    key: str
    sha256: str
    size: int


def _aad(org_id: uuid.UUID, contract_id: uuid.UUID, key: str) -> bytes:
    """The context every blob is bound to: its organisation, contract and storage key."""
    return _AAD_PREFIX + f"{org_id}|{contract_id}|{key}".encode()


class BlobStore:
    """Encrypts on the way in, verifies and decrypts on the way out."""

    def __init__(self, backend: BlobBackend, keyring: MasterKeyring) -> None:
        self._backend = backend
        self._keyring = keyring

    def put(self, *, org_id: uuid.UUID, contract_id: uuid.UUID, data: bytes,
            kind: str) -> StoredBlob:
        """Encrypt and store ``data``; the key is fresh, so a blob is never overwritten."""
        if not _KIND.fullmatch(kind):
            raise ValidationFailed("invalid blob kind: use 1-64 of A-Z a-z 0-9 _ -",
                                   details={"kind": kind[:64]})
        key = f"{org_id}/{contract_id}/{kind}-{uuid.uuid4().hex}"
        blob = crypto.encrypt(self._keyring, data, _aad(org_id, contract_id, key))
        self._backend.put(key, blob)
        return StoredBlob(key=key, sha256=hashlib.sha256(data).hexdigest(), size=len(data))

    def get(self, *, org_id: uuid.UUID, contract_id: uuid.UUID, key: str,
            sha256: str | None = None) -> bytes:
        """Read, verify and decrypt; ``sha256`` (from the database) is checked when given."""
        # Refuse before touching storage: a key of another tenant must not even be fetched. The
        # AAD would catch it anyway; this gives the clearer error and avoids the I/O.
        if not key.startswith(f"{org_id}/{contract_id}/"):
            raise IntegrityError("blob key does not belong to this organisation and contract")
        plaintext = crypto.decrypt(self._keyring, self._backend.get(key),
                                   _aad(org_id, contract_id, key))
        if sha256 is not None and hashlib.sha256(plaintext).hexdigest() != sha256.lower():
            # Authentic under our keys but not what the database recorded: only a master key
            # holder or a bug can produce this, and the signed documents must not silently change.
            raise IntegrityError("blob content does not match its recorded SHA-256")
        return plaintext

    def delete(self, *, key: str) -> None:
        self._backend.delete(key)

    def rewrap_all(self) -> int:
        """Re-wrap every blob not yet under the active master key; returns how many were.

        Idempotent and restartable: blobs already under the active key are skipped, and each
        rewrite is atomic, so an interrupted run is finished by running it again. Blobs that fail
        verification are left untouched and reported together at the end, so one damaged blob
        does not stop the rotation of the rest.
        """
        rewrapped = 0
        failed: list[str] = []
        for key in list(self._backend.keys()):  # snapshot: the loop rewrites what it lists
            try:
                rewrapped += self._rewrap_one(key)
            except NotFound:
                continue  # deleted while we ran: nothing left to re-wrap
            except IntegrityError:
                failed.append(key)
        if failed:
            raise IntegrityError(
                f"{len(failed)} blob(s) could not be re-wrapped (damaged, foreign or under an "
                f"unknown master key); {rewrapped} other(s) were re-wrapped",
                details={"failed_keys": failed, "rewrapped": rewrapped})
        return rewrapped

    def _rewrap_one(self, key: str) -> bool:
        org_id, contract_id = _owner_of(key)
        blob = self._backend.get(key)
        if crypto.key_version(blob) == self._keyring.active_version:
            return False
        self._backend.put(key, crypto.rewrap(self._keyring, blob, _aad(org_id, contract_id, key)))
        return True


def _owner_of(key: str) -> tuple[uuid.UUID, uuid.UUID]:
    """Organisation and contract from ``<org>/<contract>/<name>``; IntegrityError otherwise."""
    parts = key.split("/")
    try:
        if len(parts) != 3:
            raise ValueError
        org_id, contract_id = uuid.UUID(parts[0]), uuid.UUID(parts[1])
    except ValueError:
        raise IntegrityError(f"blob key {key!r} is not <org>/<contract>/<name>") from None
    # Only the canonical spelling reproduces the AAD the blob was written with.
    if (str(org_id), str(contract_id)) != (parts[0], parts[1]):
        raise IntegrityError(f"blob key {key!r} does not use canonical UUIDs")
    return org_id, contract_id
