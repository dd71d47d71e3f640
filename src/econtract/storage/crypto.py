"""Envelope encryption of blobs under versioned master keys.

Every blob gets its own random 256-bit data key (DEK). The payload is sealed with AES-256-GCM under
the DEK; the DEK is sealed ("wrapped") with AES-256-GCM under the active master key. Rotating the
master key therefore only rewrites 48 bytes per blob (``rewrap``), never the payload, and a leaked
DEK exposes one blob only.

Master keys live in a JSON key file, mode 0600::

    {"format": 1, "active": 2, "keys": {"1": "<base64 of 32 bytes>", "2": "..."}}

Blob format (all integers big-endian; 96 bytes of overhead)::

    offset  size  field
    0       4     magic b"ECB1"
    4       4     master key version (uint32)
    8       12    wrap nonce (random)
    20      48    wrapped DEK: AES-256-GCM(master key, wrap nonce, DEK, wrap AAD), 32 + 16-byte tag
    68      12    data nonce (random)
    80      n+16  payload: AES-256-GCM(DEK, data nonce, plaintext, data AAD), n + 16-byte tag

    wrap AAD = b"ECB1|dek|"  + version (uint32) + aad
    data AAD = b"ECB1|data|" + aad

``aad`` is the caller's context (the blob store binds organisation, contract and storage key), so a
blob copied to another place fails to open. The header is authenticated too: the magic is part of
both AADs and the version is part of the wrap AAD, so every byte of a blob is covered by a tag.
The data AAD deliberately leaves out the version so that ``rewrap`` need not touch the payload.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import secrets
import stat
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from econtract.errors import ConfigurationError, IntegrityError
from econtract.fsutil import fsync_dir, write_atomically

MAGIC = b"ECB1"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_FILE_FORMAT = 1

_HEADER = struct.Struct(f">4sI{NONCE_BYTES}s{KEY_BYTES + TAG_BYTES}s{NONCE_BYTES}s")
HEADER_BYTES = _HEADER.size  # 80
MIN_BLOB_BYTES = HEADER_BYTES + TAG_BYTES  # an empty plaintext still carries its tag
_MAX_KEY_FILE_BYTES = 1 << 20  # a sane key file is a few hundred bytes per version
_MAX_VERSION = 2**32 - 1  # stored as uint32 in every blob header


class MasterKeyring:
    """Versioned 256-bit master keys; one is active (used for new blobs), all can unwrap."""

    def __init__(self, keys: Mapping[int, bytes], active: int) -> None:
        if not keys:
            raise ConfigurationError("the master keyring has no keys")
        for version, key in keys.items():
            if not 1 <= version <= _MAX_VERSION:
                raise ConfigurationError(f"master key version {version} is out of range")
            if len(key) != KEY_BYTES:
                raise ConfigurationError(
                    f"master key version {version} is {len(key)} bytes, expected {KEY_BYTES}")
        if active not in keys:
            raise ConfigurationError(f"the active master key version {active} has no key")
        self._keys = dict(keys)
        self._active = active

    def __repr__(self) -> str:
        # Never show key material: keyrings end up in logs and tracebacks.
        return f"MasterKeyring(active={self._active}, versions={self.versions})"

    @property
    def active_version(self) -> int:
        return self._active

    @property
    def versions(self) -> tuple[int, ...]:
        return tuple(sorted(self._keys))

    def key(self, version: int) -> bytes:
        """The raw master key of ``version``; ``KeyError`` when this keyring does not have it."""
        return self._keys[version]

    @classmethod
    def create(cls, path: Path) -> MasterKeyring:
        """Write a new key file with one fresh key (version 1); never overwrites a file."""
        if path.exists() or path.is_symlink():
            raise ConfigurationError(
                f"master key file {path} already exists; refusing to overwrite it "
                "(blobs encrypted under it would become unreadable)")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        keyring = cls({1: os.urandom(KEY_BYTES)}, active=1)
        try:
            _write_new_file(path, keyring._serialize())
        except FileExistsError:  # lost a race with another create: still never overwrite
            raise ConfigurationError(
                f"master key file {path} already exists; refusing to overwrite it") from None
        fsync_dir(path.parent)
        return keyring

    @classmethod
    def load(cls, path: Path) -> MasterKeyring:
        """Read and check a key file; every problem is a ``ConfigurationError`` naming the file."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise ConfigurationError(
                f"master key file {path} not found; create one with MasterKeyring.create "
                "(or point ECONTRACT_MASTER_KEY_FILE at the existing one)") from None
        except OSError as exc:
            raise ConfigurationError(
                f"master key file {path} cannot be opened: {exc.strerror}") from None
        try:
            _check_key_file_mode(path, os.fstat(fd))
        except BaseException:
            os.close(fd)  # fdopen has not taken ownership yet
            raise
        with os.fdopen(fd, "rb") as handle:
            raw = handle.read(_MAX_KEY_FILE_BYTES + 1)
        return cls._parse(raw, path)

    def rotate(self, path: Path) -> int:
        """Add a new key version, make it active and rewrite ``path`` atomically; old keys stay.

        The file is rewritten under an exclusive lock and only if it still holds exactly the
        versions this keyring knows: rewriting from a stale copy could drop a key another process
        added, and every blob wrapped under a dropped key would be lost for good.
        """
        with _locked(path):
            on_disk = MasterKeyring.load(path)
            if on_disk._keys != self._keys or on_disk.active_version != self._active:
                raise ConfigurationError(
                    f"master key file {path} changed since it was loaded; reload it and retry")
            new_version = max(self._keys) + 1
            if new_version > _MAX_VERSION:
                raise ConfigurationError("no master key versions left")
            keys = {**self._keys, new_version: os.urandom(KEY_BYTES)}
            rotated = MasterKeyring(keys, active=new_version)
            _replace_file(path, rotated._serialize())
        # Switch in memory only once the new key is durably on disk: a blob wrapped under a key
        # that never reached the file could never be opened again.
        self._keys, self._active = rotated._keys, rotated._active
        return new_version

    def _serialize(self) -> bytes:
        document = {
            "format": KEY_FILE_FORMAT,
            "active": self._active,
            "keys": {str(version): base64.b64encode(key).decode("ascii")
                     for version, key in sorted(self._keys.items())},
        }
        return (json.dumps(document, indent=2) + "\n").encode("ascii")

    @classmethod
    def _parse(cls, raw: bytes, path: Path) -> MasterKeyring:
        def bad(why: str) -> ConfigurationError:
            # Messages name the file and the problem but never echo its content (key material).
            return ConfigurationError(f"master key file {path} is malformed: {why}")

        if len(raw) > _MAX_KEY_FILE_BYTES:
            raise bad("file is too large")
        try:
            document: Any = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise bad("not valid JSON") from None
        if not isinstance(document, dict) or document.get("format") != KEY_FILE_FORMAT:
            raise bad(f'expected a JSON object with "format": {KEY_FILE_FORMAT}')
        active, entries = document.get("active"), document.get("keys")
        if not isinstance(active, int) or isinstance(active, bool):
            raise bad('"active" must be an integer key version')
        if not isinstance(entries, dict) or not entries:
            raise bad('"keys" must be a non-empty object of version -> base64 key')
        keys: dict[int, bytes] = {}
        for name, encoded in entries.items():
            canonical = name.isascii() and name.isdigit() and str(int(name)) == name
            if not canonical or not isinstance(encoded, str):
                raise bad(f"key entry {name!r} is not version -> base64 string")
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise bad(f"key version {name} is not valid base64") from None
            if len(key) != KEY_BYTES:
                raise bad(f"key version {name} is {len(key)} bytes, expected {KEY_BYTES}")
            keys[int(name)] = key
        if active not in keys:
            raise bad(f"active version {active} has no key")
        return cls(keys, active=active)


def encrypt(keyring: MasterKeyring, plaintext: bytes, aad: bytes) -> bytes:
    """Seal ``plaintext`` under a fresh DEK wrapped by the active master key; see module doc."""
    dek = AESGCM.generate_key(bit_length=256)
    data_nonce = secrets.token_bytes(NONCE_BYTES)
    payload = AESGCM(dek).encrypt(data_nonce, plaintext, _data_aad(aad))
    return _wrap(keyring, dek, data_nonce, aad) + payload


def decrypt(keyring: MasterKeyring, blob: bytes, aad: bytes) -> bytes:
    """Open a blob; any damage, wrong ``aad`` or unknown key is an ``IntegrityError``."""
    dek, data_nonce, payload = _unwrap(keyring, blob, aad)
    return _open_payload(dek, data_nonce, payload, aad)


def rewrap(keyring: MasterKeyring, blob: bytes, aad: bytes) -> bytes:
    """Re-wrap the blob's DEK under the active master key; the payload bytes are kept as they are.

    The payload is verified first, so a rotation never gives a fresh wrap to (and so never
    "blesses") a blob that is already damaged.
    """
    dek, data_nonce, payload = _unwrap(keyring, blob, aad)
    _open_payload(dek, data_nonce, payload, aad)
    return _wrap(keyring, dek, data_nonce, aad) + payload


def key_version(blob: bytes) -> int:
    """The master key version a blob names in its header (unauthenticated until decrypted)."""
    return _split_header(blob)[1]


def _data_aad(aad: bytes) -> bytes:
    return MAGIC + b"|data|" + aad


def _wrap_aad(version: int, aad: bytes) -> bytes:
    # Binding the version means a header edited to name another key cannot unwrap.
    return MAGIC + b"|dek|" + version.to_bytes(4, "big") + aad


def _wrap(keyring: MasterKeyring, dek: bytes, data_nonce: bytes, aad: bytes) -> bytes:
    version = keyring.active_version
    wrap_nonce = secrets.token_bytes(NONCE_BYTES)
    wrapped = AESGCM(keyring.key(version)).encrypt(wrap_nonce, dek, _wrap_aad(version, aad))
    return _HEADER.pack(MAGIC, version, wrap_nonce, wrapped, data_nonce)


def _split_header(blob: bytes) -> tuple[bytes, int, bytes, bytes, bytes, bytes]:
    if len(blob) < MIN_BLOB_BYTES:
        raise IntegrityError("blob failed its integrity check: it is truncated")
    magic, version, wrap_nonce, wrapped, data_nonce = _HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise IntegrityError("blob failed its integrity check: unknown format (bad magic)")
    return magic, version, wrap_nonce, wrapped, data_nonce, blob[HEADER_BYTES:]


def _unwrap(keyring: MasterKeyring, blob: bytes, aad: bytes) -> tuple[bytes, bytes, bytes]:
    """Check the header and unwrap the DEK: (dek, data nonce, payload)."""
    _, version, wrap_nonce, wrapped, data_nonce, payload = _split_header(blob)
    try:
        master = keyring.key(version)
    except KeyError:
        raise IntegrityError(
            f"blob failed its integrity check: master key version {version} is not in the keyring"
        ) from None
    try:
        dek = AESGCM(master).decrypt(wrap_nonce, wrapped, _wrap_aad(version, aad))
    except InvalidTag:
        raise IntegrityError(
            "blob failed its integrity check: its data key does not open "
            "(altered, or the blob belongs elsewhere)") from None
    return dek, data_nonce, payload


def _open_payload(dek: bytes, data_nonce: bytes, payload: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(dek).decrypt(data_nonce, payload, _data_aad(aad))
    except InvalidTag:
        raise IntegrityError(
            "blob failed its integrity check: the content was altered or belongs elsewhere"
        ) from None


# --- key file I/O -------------------------------------------------------------------------------

def _check_key_file_mode(path: Path, info: os.stat_result) -> None:
    # Checked on the opened descriptor (fstat), not the path, so the file checked is the file read.
    if not stat.S_ISREG(info.st_mode):
        raise ConfigurationError(f"master key file {path} is not a regular file")
    if info.st_mode & 0o077:
        # Any other local account that can read the key can decrypt every blob; one that can
        # write it can swap in its own key.
        raise ConfigurationError(
            f"master key file {path} is accessible by group or others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {path}")


def _write_new_file(path: Path, data: bytes) -> None:
    """Create ``path`` 0600 from the first syscall (no window readable by others), write, fsync."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        # A half-written key file would block the next create and hold no usable key.
        with contextlib.suppress(OSError):
            path.unlink()
        raise


def _replace_file(path: Path, data: bytes) -> None:
    """Atomically replace the key file (0600 from the first byte, durable directory entry)."""
    write_atomically(path, data)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise rotations across processes with a lock on a sidecar file.

    The key file itself cannot carry the lock: ``os.replace`` swaps its inode, so a waiter would
    hold a lock on the old, unlinked file.
    """
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
