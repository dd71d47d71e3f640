"""BlobStore: what services see — encryption at rest, binding to org/contract/key, rotation."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from econtract.errors import IntegrityError, NotFound, ValidationFailed
from econtract.storage import BlobStore, MasterKeyring, StoredBlob, backend_from_url
from econtract.storage.backends import FileBackend
from econtract.storage.blobstore import _aad
from econtract.storage.crypto import HEADER_BYTES, key_version

# A distinctive marker inside a fake PDF: if it shows up in any stored byte, encryption failed.
MARKER = b"ECONTRACT-PLAINTEXT-MARKER-7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c2e4b6d8"
assert len(MARKER) == 64
FAKE_PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n" + MARKER + b"\n%%EOF\n"


@dataclass
class Env:
    root: Path
    key_file: Path
    keyring: MasterKeyring
    store: BlobStore
    org: uuid.UUID
    contract: uuid.UUID

    def path_of(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    def put(self, data: bytes = FAKE_PDF, kind: str = "pdf") -> StoredBlob:
        return self.store.put(org_id=self.org, contract_id=self.contract, data=data, kind=kind)

    def get(self, blob: StoredBlob, sha256: str | None = None) -> bytes:
        return self.store.get(org_id=self.org, contract_id=self.contract, key=blob.key,
                              sha256=sha256)


@pytest.fixture
def env(tmp_path: Path) -> Env:
    root = tmp_path / "blobs"
    key_file = tmp_path / "master.key"
    keyring = MasterKeyring.create(key_file)
    store = BlobStore(backend_from_url(f"file://{root}"), keyring)
    return Env(root, key_file, keyring, store, uuid.uuid4(), uuid.uuid4())


def test_round_trip(env: Env) -> None:
    stored = env.put()
    assert stored.size == len(FAKE_PDF)
    assert stored.sha256 == hashlib.sha256(FAKE_PDF).hexdigest()
    assert stored.key.startswith(f"{env.org}/{env.contract}/pdf-")
    assert env.get(stored) == FAKE_PDF
    assert env.get(stored, sha256=stored.sha256) == FAKE_PDF
    assert env.get(stored, sha256=stored.sha256.upper()) == FAKE_PDF


def test_empty_and_large_blobs(env: Env) -> None:
    for data in (b"", os.urandom(3 * 1024 * 1024)):
        stored = env.put(data, kind="attachment")
        assert env.get(stored, sha256=stored.sha256) == data


def test_every_put_gets_a_fresh_key(env: Env) -> None:
    assert env.put().key != env.put().key


def test_plaintext_appears_nowhere_under_root(env: Env) -> None:
    for kind in ("pdf", "signed_pdf", "attachment"):
        env.put(kind=kind)
    files = [p for p in env.root.rglob("*") if p.is_file()]
    assert len(files) == 3
    for path in files:
        content = path.read_bytes()
        assert MARKER not in content
        assert MARKER[:16] not in content
        assert b"%PDF" not in content


def test_stored_file_is_0600(env: Env) -> None:
    stored = env.put()
    assert env.path_of(stored.key).stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("kind", ["", "a/b", "../x", "pdf.x", "k" * 65, "ü"])
def test_bad_kind_is_rejected(env: Env, kind: str) -> None:
    with pytest.raises(ValidationFailed):
        env.put(kind=kind)


# --- tamper evidence ----------------------------------------------------------------------------

# Named positions in the stored file: magic, version, wrap nonce, wrapped DEK (key and its tag),
# data nonce, first ciphertext byte, middle of the ciphertext, and the payload's tag.
POSITIONS = {
    "magic": 0, "version": 7, "wrap_nonce": 10, "wrapped_key": 30, "wrapped_key_tag": 67,
    "data_nonce": 75, "ciphertext_start": HEADER_BYTES, "ciphertext_mid": HEADER_BYTES + 50,
    "tag_first": -16, "tag_last": -1,
}


@pytest.mark.parametrize("position", POSITIONS.values(), ids=POSITIONS.keys())
def test_flipped_byte_in_stored_file_is_detected(env: Env, position: int) -> None:
    stored = env.put()
    path = env.path_of(stored.key)
    content = bytearray(path.read_bytes())
    content[position] ^= 0x01
    path.write_bytes(bytes(content))
    with pytest.raises(IntegrityError):
        env.get(stored)


def test_truncated_or_replaced_file_is_detected(env: Env) -> None:
    stored = env.put()
    path = env.path_of(stored.key)
    original = path.read_bytes()
    for content in (b"", original[:50], original[:-1], FAKE_PDF):
        path.write_bytes(content)
        with pytest.raises(IntegrityError):
            env.get(stored)


def test_copy_to_another_contract_is_detected(env: Env) -> None:
    stored = env.put()
    other_contract = uuid.uuid4()
    moved_key = f"{env.org}/{other_contract}/{stored.key.rsplit('/', 1)[1]}"
    target = env.path_of(moved_key)
    target.parent.mkdir(parents=True)
    shutil.copyfile(env.path_of(stored.key), target)
    with pytest.raises(IntegrityError):
        env.store.get(org_id=env.org, contract_id=other_contract, key=moved_key)


def test_copy_to_another_org_is_detected(env: Env) -> None:
    stored = env.put()
    other_org = uuid.uuid4()
    moved_key = f"{other_org}/{env.contract}/{stored.key.rsplit('/', 1)[1]}"
    target = env.path_of(moved_key)
    target.parent.mkdir(parents=True)
    shutil.copyfile(env.path_of(stored.key), target)
    with pytest.raises(IntegrityError):
        env.store.get(org_id=other_org, contract_id=env.contract, key=moved_key)


def test_copy_to_another_key_of_same_contract_is_detected(env: Env) -> None:
    first, second = env.put(b"first"), env.put(b"second")
    shutil.copyfile(env.path_of(first.key), env.path_of(second.key))
    with pytest.raises(IntegrityError):
        env.get(second)


def test_key_of_another_contract_or_org_is_refused(env: Env) -> None:
    stored = env.put()
    # The blob is intact, but asking for it on behalf of another tenant must not return it.
    with pytest.raises(IntegrityError, match="does not belong"):
        env.store.get(org_id=uuid.uuid4(), contract_id=env.contract, key=stored.key)
    with pytest.raises(IntegrityError, match="does not belong"):
        env.store.get(org_id=env.org, contract_id=uuid.uuid4(), key=stored.key)


def test_wrong_sha256_is_detected(env: Env) -> None:
    stored = env.put()
    with pytest.raises(IntegrityError, match="SHA-256"):
        env.get(stored, sha256=hashlib.sha256(b"something else").hexdigest())


def test_missing_blob_is_not_found(env: Env) -> None:
    with pytest.raises(NotFound):
        env.store.get(org_id=env.org, contract_id=env.contract,
                      key=f"{env.org}/{env.contract}/pdf-{uuid.uuid4().hex}")


def test_delete(env: Env) -> None:
    stored = env.put()
    env.store.delete(key=stored.key)
    with pytest.raises(NotFound):
        env.get(stored)
    env.store.delete(key=stored.key)  # idempotent


def test_aad_binds_org_contract_and_key() -> None:
    org, contract = uuid.uuid4(), uuid.uuid4()
    aad = _aad(org, contract, "k")
    assert aad == b"econtract-blob-v1|" + f"{org}|{contract}|k".encode()
    assert aad != _aad(uuid.uuid4(), contract, "k") != _aad(org, uuid.uuid4(), "k")
    assert aad != _aad(org, contract, "k2")


# --- rotation -----------------------------------------------------------------------------------

def newest_only(env: Env) -> MasterKeyring:
    """A keyring loaded from a key file holding only the newest version (old keys destroyed)."""
    document = json.loads(env.key_file.read_text())
    active = str(document["active"])
    document["keys"] = {active: document["keys"][active]}
    path = env.key_file.with_name("newest-only.key")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle)
    return MasterKeyring.load(path)


def test_rotate_twice_and_all_blobs_still_decrypt(env: Env) -> None:
    blobs = [env.put(b"under v1")]
    env.keyring.rotate(env.key_file)
    blobs.append(env.put(b"under v2"))
    env.keyring.rotate(env.key_file)
    blobs.append(env.put(b"under v3"))
    reloaded = BlobStore(FileBackend(env.root), MasterKeyring.load(env.key_file))
    for blob, expected in zip(blobs, [b"under v1", b"under v2", b"under v3"], strict=True):
        assert env.get(blob, sha256=blob.sha256) == expected
        assert reloaded.get(org_id=env.org, contract_id=env.contract, key=blob.key) == expected


def test_rewrap_all_makes_blobs_readable_with_only_the_newest_key(env: Env) -> None:
    blobs = [env.put(b"a"), env.put(b"b")]
    env.keyring.rotate(env.key_file)
    blobs.append(env.put(b"c"))
    other = env.store.put(org_id=uuid.uuid4(), contract_id=uuid.uuid4(), data=b"d", kind="pdf")
    env.keyring.rotate(env.key_file)
    newest = env.put(b"e")  # already under v3: left alone

    only_v3 = BlobStore(FileBackend(env.root), newest_only(env))
    with pytest.raises(IntegrityError, match="version 1"):
        only_v3.get(org_id=env.org, contract_id=env.contract, key=blobs[0].key)

    assert env.store.rewrap_all() == 4
    assert {key_version(env.path_of(b.key).read_bytes()) for b in [*blobs, other]} == {3}
    for blob, expected in zip([*blobs, newest], [b"a", b"b", b"c", b"e"], strict=True):
        assert only_v3.get(org_id=env.org, contract_id=env.contract, key=blob.key,
                           sha256=blob.sha256) == expected
    org, contract = other.key.split("/")[:2]
    assert only_v3.get(org_id=uuid.UUID(org), contract_id=uuid.UUID(contract),
                       key=other.key) == b"d"


def test_rewrap_all_is_safe_to_run_twice(env: Env) -> None:
    stored = env.put()
    assert env.store.rewrap_all() == 0  # already under the active key: untouched
    env.keyring.rotate(env.key_file)
    assert env.store.rewrap_all() == 1
    after_first = env.path_of(stored.key).read_bytes()
    assert env.store.rewrap_all() == 0
    assert env.path_of(stored.key).read_bytes() == after_first
    assert env.get(stored, sha256=stored.sha256) == FAKE_PDF


def test_rewrap_all_keeps_payload_bytes(env: Env) -> None:
    stored = env.put()
    before = env.path_of(stored.key).read_bytes()
    env.keyring.rotate(env.key_file)
    env.store.rewrap_all()
    after = env.path_of(stored.key).read_bytes()
    assert after[HEADER_BYTES - 12:] == before[HEADER_BYTES - 12:]  # data nonce + payload
    assert after[:HEADER_BYTES - 12] != before[:HEADER_BYTES - 12]


def test_rewrap_all_reports_damaged_and_foreign_blobs_but_rotates_the_rest(env: Env) -> None:
    good, bad = env.put(b"good"), env.put(b"bad")
    path = env.path_of(bad.key)
    damaged = bytearray(path.read_bytes())
    damaged[-1] ^= 1
    path.write_bytes(bytes(damaged))
    FileBackend(env.root).put("stray/file", b"not ours")
    env.keyring.rotate(env.key_file)

    with pytest.raises(IntegrityError) as caught:
        env.store.rewrap_all()
    assert sorted(caught.value.details["failed_keys"]) == sorted([bad.key, "stray/file"])
    assert caught.value.details["rewrapped"] == 1
    assert bytes(damaged) == path.read_bytes()  # a damaged blob is left exactly as it was
    assert key_version(env.path_of(good.key).read_bytes()) == 2
