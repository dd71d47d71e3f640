"""FileBackend: key validation, atomic 0600 writes, listing, and storage URLs."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from econtract.errors import ConfigurationError, NotFound, ValidationFailed
from econtract.storage import backend_from_url
from econtract.storage.backends import BlobBackend, FileBackend, validate_key


@pytest.fixture
def backend(tmp_path: Path) -> FileBackend:
    return FileBackend(tmp_path / "blobs")


def test_round_trip_and_overwrite(backend: FileBackend) -> None:
    backend.put("a/b/c", b"one")
    assert backend.get("a/b/c") == b"one"
    backend.put("a/b/c", b"two")
    assert backend.get("a/b/c") == b"two"
    assert backend.exists("a/b/c")


def test_root_is_created_lazily(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "blobs"
    backend = FileBackend(root)
    assert not root.exists()
    assert list(backend.keys()) == []
    assert not backend.exists("x")
    backend.put("x", b"1")
    assert root.is_dir()


def test_files_are_0600_and_dirs_0700(backend: FileBackend) -> None:
    backend.put("org/contract/file-1", b"data")
    root = backend.root
    for path in (root, root / "org", root / "org" / "contract"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    assert stat.S_IMODE((root / "org" / "contract" / "file-1").stat().st_mode) == 0o600


def test_put_leaves_no_temp_files(backend: FileBackend) -> None:
    for i in range(3):
        backend.put("dir/key", bytes([i]) * 10)
    assert sorted(p.name for p in (backend.root / "dir").iterdir()) == ["key"]


def test_missing_key_is_not_found(backend: FileBackend) -> None:
    with pytest.raises(NotFound) as caught:
        backend.get("nope/nothing")
    assert caught.value.code == "blob_not_found"
    backend.put("dir/file", b"x")
    for key in ("dir", "dir/file/below"):  # a directory, and a "file" under a file
        with pytest.raises(NotFound):
            backend.get(key)
        assert not backend.exists(key)


def test_delete(backend: FileBackend) -> None:
    backend.put("a/b", b"x")
    backend.delete("a/b")
    assert not backend.exists("a/b")
    backend.delete("a/b")  # already gone: no error
    backend.delete("never/was/here")
    with pytest.raises(NotFound):
        backend.get("a/b")


@pytest.mark.parametrize("key", [
    "", "../x", "a/../../x", "..", ".", "a/./b", "/abs", "/etc/passwd", "a//b", "a/", "a\\b",
    "a b", "a/b\0", "ü", "a:b", "~x", "x" * 201, "/".join(["a"] * 600),
])
def test_invalid_keys_are_rejected(backend: FileBackend, key: str) -> None:
    with pytest.raises(ValidationFailed):
        validate_key(key)
    for call in (backend.get, backend.delete, backend.exists):
        with pytest.raises(ValidationFailed):
            call(key)
    with pytest.raises(ValidationFailed):
        backend.put(key, b"x")
    assert not backend.root.exists()  # nothing was written anywhere


@pytest.mark.parametrize("key", ["a", "a/b/c", "A-z_0.9", "x.y/..z", "...", "a/b.c-d_e"])
def test_valid_keys(backend: FileBackend, key: str) -> None:
    backend.put(key, key.encode())
    assert backend.get(key) == key.encode()


def test_keys_lists_sorted_with_prefix(backend: FileBackend) -> None:
    for key in ("b/2", "a/1", "a/2/x", "ab/1", "top"):
        backend.put(key, b"")
    assert list(backend.keys()) == ["a/1", "a/2/x", "ab/1", "b/2", "top"]
    assert list(backend.keys("a")) == ["a/1", "a/2/x", "ab/1"]
    assert list(backend.keys("a/")) == ["a/1", "a/2/x"]
    assert list(backend.keys("a/2/")) == ["a/2/x"]
    assert list(backend.keys("zzz/")) == []
    with pytest.raises(ValidationFailed):
        list(backend.keys("../"))


def test_keys_skips_foreign_and_temp_files(backend: FileBackend) -> None:
    backend.put("a/ok", b"")
    (backend.root / "a" / ".tmpx.partial~").write_bytes(b"half")
    (backend.root / "a" / "with space").write_bytes(b"")
    assert list(backend.keys()) == ["a/ok"]


def test_file_backend_satisfies_protocol(backend: FileBackend) -> None:
    as_protocol: BlobBackend = backend
    assert as_protocol is backend


# --- URLs ----------------------------------------------------------------------------------------

def test_file_url(tmp_path: Path) -> None:
    backend = backend_from_url(f"file://{tmp_path}/blobs")
    assert isinstance(backend, FileBackend)
    assert backend.root == tmp_path / "blobs"
    spaced = backend_from_url("file:///srv/my%20blobs")
    assert isinstance(spaced, FileBackend) and spaced.root == Path("/srv/my blobs")
    local = backend_from_url("file://localhost/srv/blobs")
    assert isinstance(local, FileBackend) and local.root == Path("/srv/blobs")


def test_s3_url_not_available_yet() -> None:
    with pytest.raises(ConfigurationError, match="the s3 storage backend is not available yet"):
        backend_from_url("s3://bucket/prefix")


@pytest.mark.parametrize("url", [
    "file://relative/path", "file:relative", "file:///srv/blobs?x=1", "/srv/blobs", "",
    "http://example.com/blobs", "ftp://host/x",
])
def test_bad_urls(url: str) -> None:
    with pytest.raises(ConfigurationError):
        backend_from_url(url)


def test_bad_url_error_hides_credentials() -> None:
    with pytest.raises(ConfigurationError) as caught:
        backend_from_url("https://user:hunter2@example.com/blobs")
    assert "hunter2" not in str(caught.value)
