"""Envelope encryption and the master key file: round trips, tamper evidence, rotation, modes."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from econtract.errors import ConfigurationError, IntegrityError
from econtract.storage import crypto
from econtract.storage.crypto import HEADER_BYTES, MIN_BLOB_BYTES, MasterKeyring

AAD = b"org|contract|key"


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "secrets" / "master.key"


@pytest.fixture
def keyring(key_path: Path) -> MasterKeyring:
    return MasterKeyring.create(key_path)


def write_key_file(path: Path, document: object, mode: int = 0o600) -> None:
    path.write_text(json.dumps(document))
    path.chmod(mode)


def b64key(n: int = 32) -> str:
    return base64.b64encode(os.urandom(n)).decode()


# --- round trips and format ----------------------------------------------------------------------

@pytest.mark.parametrize("plaintext", [b"", b"x", b"%PDF-1.7\n" + os.urandom(100_000)])
def test_round_trip(keyring: MasterKeyring, plaintext: bytes) -> None:
    blob = crypto.encrypt(keyring, plaintext, AAD)
    assert blob.startswith(b"ECB1")
    assert len(blob) == MIN_BLOB_BYTES + len(plaintext)
    assert crypto.decrypt(keyring, blob, AAD) == plaintext


def test_same_plaintext_encrypts_differently(keyring: MasterKeyring) -> None:
    # Fresh DEK and nonces per blob: equal files must not be recognisable as equal at rest.
    assert crypto.encrypt(keyring, b"same", AAD) != crypto.encrypt(keyring, b"same", AAD)


def test_header_names_active_version(keyring: MasterKeyring, key_path: Path) -> None:
    assert crypto.key_version(crypto.encrypt(keyring, b"a", AAD)) == 1
    keyring.rotate(key_path)
    assert crypto.key_version(crypto.encrypt(keyring, b"a", AAD)) == 2


# --- tamper evidence -----------------------------------------------------------------------------

def test_flipping_any_byte_fails(keyring: MasterKeyring) -> None:
    blob = crypto.encrypt(keyring, b"signed contract " * 4, AAD)
    # Every byte: magic, version, wrap nonce, wrapped DEK, data nonce, ciphertext and tag.
    for position in range(len(blob)):
        for mask in (0x01, 0x80):
            damaged = bytearray(blob)
            damaged[position] ^= mask
            with pytest.raises(IntegrityError):
                crypto.decrypt(keyring, bytes(damaged), AAD)


@pytest.mark.parametrize("length", [0, 3, 4, HEADER_BYTES, MIN_BLOB_BYTES - 1])
def test_truncated_blob_fails(keyring: MasterKeyring, length: int) -> None:
    blob = crypto.encrypt(keyring, b"", AAD)
    with pytest.raises(IntegrityError, match="truncated"):
        crypto.decrypt(keyring, blob[:length], AAD)


def test_cut_or_extended_payload_fails(keyring: MasterKeyring) -> None:
    blob = crypto.encrypt(keyring, b"0123456789", AAD)
    for damaged in (blob[:-1], blob + b"\0", blob[:MIN_BLOB_BYTES]):
        with pytest.raises(IntegrityError):
            crypto.decrypt(keyring, damaged, AAD)


def test_bad_magic_fails(keyring: MasterKeyring) -> None:
    blob = crypto.encrypt(keyring, b"data", AAD)
    with pytest.raises(IntegrityError, match="magic"):
        crypto.decrypt(keyring, b"ECB2" + blob[4:], AAD)


def test_wrong_aad_fails(keyring: MasterKeyring) -> None:
    blob = crypto.encrypt(keyring, b"data", AAD)
    for other in (b"", AAD + b"x", AAD[:-1], b"org|contract|other"):
        with pytest.raises(IntegrityError):
            crypto.decrypt(keyring, blob, other)


def test_unknown_key_version_fails(keyring: MasterKeyring) -> None:
    blob = crypto.encrypt(keyring, b"data", AAD)
    other = MasterKeyring({7: os.urandom(32)}, active=7)
    with pytest.raises(IntegrityError, match="version 1 is not in the keyring"):
        crypto.decrypt(other, blob, AAD)


def test_wrong_master_key_same_version_fails(keyring: MasterKeyring) -> None:
    blob = crypto.encrypt(keyring, b"data", AAD)
    with pytest.raises(IntegrityError):
        crypto.decrypt(MasterKeyring({1: os.urandom(32)}, active=1), blob, AAD)


def test_integrity_error_carries_no_cause(keyring: MasterKeyring) -> None:
    # The message is what users see; the cryptography exception chain must not ride along.
    blob = bytearray(crypto.encrypt(keyring, b"data", AAD))
    blob[-1] ^= 1
    with pytest.raises(IntegrityError) as caught:
        crypto.decrypt(keyring, bytes(blob), AAD)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    assert caught.value.code == "integrity_error"


# --- rotation and rewrap -------------------------------------------------------------------------

def test_rotate_twice_keeps_old_blobs_readable(keyring: MasterKeyring, key_path: Path) -> None:
    blobs = {b"v1": crypto.encrypt(keyring, b"v1", AAD)}
    assert keyring.rotate(key_path) == 2
    blobs[b"v2"] = crypto.encrypt(keyring, b"v2", AAD)
    assert keyring.rotate(key_path) == 3
    blobs[b"v3"] = crypto.encrypt(keyring, b"v3", AAD)
    reloaded = MasterKeyring.load(key_path)
    assert (reloaded.active_version, reloaded.versions) == (3, (1, 2, 3))
    for expected, blob in blobs.items():
        assert crypto.decrypt(keyring, blob, AAD) == expected
        assert crypto.decrypt(reloaded, blob, AAD) == expected
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


def test_rewrap_keeps_payload_and_moves_to_active_key(
        keyring: MasterKeyring, key_path: Path) -> None:
    blob = crypto.encrypt(keyring, b"payload", AAD)
    keyring.rotate(key_path)
    rewrapped = crypto.rewrap(keyring, blob, AAD)
    assert crypto.key_version(rewrapped) == 2
    assert rewrapped[HEADER_BYTES - 12:] == blob[HEADER_BYTES - 12:]  # data nonce + payload
    newest_only = MasterKeyring({2: keyring.key(2)}, active=2)
    assert crypto.decrypt(newest_only, rewrapped, AAD) == b"payload"
    with pytest.raises(IntegrityError):
        crypto.decrypt(newest_only, blob, AAD)


def test_rewrap_refuses_damaged_blob(keyring: MasterKeyring, key_path: Path) -> None:
    blob = bytearray(crypto.encrypt(keyring, b"payload", AAD))
    blob[-5] ^= 1
    keyring.rotate(key_path)
    with pytest.raises(IntegrityError):
        crypto.rewrap(keyring, bytes(blob), AAD)
    with pytest.raises(IntegrityError):
        crypto.rewrap(keyring, crypto.encrypt(keyring, b"x", AAD), b"other aad")


def test_rotate_refuses_stale_keyring(keyring: MasterKeyring, key_path: Path) -> None:
    # A second process rotated meanwhile: rewriting from our copy would drop its new key.
    MasterKeyring.load(key_path).rotate(key_path)
    with pytest.raises(ConfigurationError, match="changed since it was loaded"):
        keyring.rotate(key_path)
    assert MasterKeyring.load(key_path).versions == (1, 2)
    assert keyring.versions == (1,)


def test_rotate_leaves_no_temp_files(keyring: MasterKeyring, key_path: Path) -> None:
    keyring.rotate(key_path)
    leftovers = {p.name for p in key_path.parent.iterdir()} - {"master.key", "master.key.lock"}
    assert leftovers == set()


# --- key file ------------------------------------------------------------------------------------

def test_create_writes_0600_and_loads(keyring: MasterKeyring, key_path: Path) -> None:
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    document = json.loads(key_path.read_text())
    assert document["format"] == 1 and document["active"] == 1
    assert len(base64.b64decode(document["keys"]["1"])) == 32
    loaded = MasterKeyring.load(key_path)
    assert (loaded.active_version, loaded.versions) == (1, (1,))
    assert crypto.decrypt(loaded, crypto.encrypt(keyring, b"x", AAD), AAD) == b"x"


def test_create_is_0600_even_with_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        MasterKeyring.create(tmp_path / "master.key")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "master.key").stat().st_mode) == 0o600


def test_create_refuses_to_overwrite(keyring: MasterKeyring, key_path: Path) -> None:
    before = key_path.read_bytes()
    with pytest.raises(ConfigurationError, match="already exists"):
        MasterKeyring.create(key_path)
    assert key_path.read_bytes() == before


def test_repr_hides_key_material(keyring: MasterKeyring) -> None:
    assert repr(keyring) == "MasterKeyring(active=1, versions=(1,))"
    assert base64.b64encode(keyring.key(1)).decode() not in repr(keyring)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602])
def test_load_refuses_group_or_other_access(
        keyring: MasterKeyring, key_path: Path, mode: int) -> None:
    key_path.chmod(mode)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        MasterKeyring.load(key_path)


def test_load_accepts_0400(keyring: MasterKeyring, key_path: Path) -> None:
    key_path.chmod(0o400)
    assert MasterKeyring.load(key_path).versions == (1,)


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        MasterKeyring.load(tmp_path / "nope.key")


@pytest.mark.parametrize(("document", "message"), [
    ("not json", "not valid JSON"),
    ([1, 2], "format"),
    ({"format": 2, "active": 1, "keys": {"1": "AA=="}}, "format"),
    ({"format": 1, "active": "1", "keys": {"1": b64key()}}, "active"),
    ({"format": 1, "active": True, "keys": {"1": b64key()}}, "active"),
    ({"format": 1, "active": 1, "keys": {}}, "keys"),
    ({"format": 1, "active": 1, "keys": {"1": b64key(16)}}, "16 bytes"),
    ({"format": 1, "active": 1, "keys": {"1": b64key(33)}}, "33 bytes"),
    ({"format": 1, "active": 1, "keys": {"1": "!!not base64!!"}}, "base64"),
    ({"format": 1, "active": 1, "keys": {"one": b64key()}}, "version"),
    ({"format": 1, "active": 1, "keys": {"1": 5}}, "version"),
    ({"format": 1, "active": 2, "keys": {"1": b64key()}}, "active version 2"),
    ({"format": 1, "active": 0, "keys": {"0": b64key()}}, "out of range"),
])
def test_load_rejects_malformed_files(tmp_path: Path, document: object, message: str) -> None:
    path = tmp_path / "master.key"
    if isinstance(document, str):
        path.write_text(document)
        path.chmod(0o600)
    else:
        write_key_file(path, document)
    with pytest.raises(ConfigurationError, match=message):
        MasterKeyring.load(path)


def test_malformed_key_error_does_not_echo_key_material(tmp_path: Path) -> None:
    secret = b64key(31)
    path = tmp_path / "master.key"
    write_key_file(path, {"format": 1, "active": 1, "keys": {"1": secret}})
    with pytest.raises(ConfigurationError) as caught:
        MasterKeyring.load(path)
    assert secret not in str(caught.value)


def test_load_refuses_directory(tmp_path: Path) -> None:
    (tmp_path / "dir.key").mkdir(mode=0o700)
    with pytest.raises(ConfigurationError):
        MasterKeyring.load(tmp_path / "dir.key")
