"""Raw byte backends for blobs: a small protocol and the local-filesystem implementation.

Backends store opaque bytes (already encrypted by the blob store) under string keys. The protocol
is deliberately small — put, get, delete, exists, keys — so an object store such as S3 can
implement it later without the rest of the code noticing.

Keys are relative paths such as ``"<org>/<contract>/<kind>-<hex>"``: segments of
``[A-Za-z0-9._-]`` separated by single ``/``. They are validated strictly because they become file
names: a key like ``../x`` or ``/etc/passwd`` must never reach ``open``.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from econtract.errors import ConfigurationError, NotFound, ValidationFailed
from econtract.fsutil import write_atomically

_SEGMENT = re.compile(r"[A-Za-z0-9._-]{1,200}")
_MAX_KEY_CHARS = 1024
# Temporary files end in "~", which no valid key segment contains, so ``keys`` never lists a
# half-written file and a temporary name can never collide with a real key.
_TMP_SUFFIX = ".partial~"


class BlobBackend(Protocol):
    """Where encrypted blobs are kept; every method takes a validated relative key."""

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing any previous value atomically."""

    def get(self, key: str) -> bytes:
        """The bytes under ``key``; ``NotFound`` when there are none."""

    def delete(self, key: str) -> None:
        """Remove ``key``; nothing happens when it is already gone."""

    def exists(self, key: str) -> bool:
        """Whether ``key`` holds a value."""

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every stored key starting with ``prefix`` (a plain string prefix), in sorted order."""


def validate_key(key: str) -> str:
    """Return ``key`` when it is a safe relative key, else raise ``ValidationFailed``."""
    segments = key.split("/")
    if (
        len(key) > _MAX_KEY_CHARS
        or not all(_SEGMENT.fullmatch(segment) for segment in segments)
        or any(segment in (".", "..") for segment in segments)
    ):
        # Covers "", "/abs", "a//b", "a/", "../x" and any character outside the allowed set.
        raise ValidationFailed(
            "invalid storage key: use segments of A-Z a-z 0-9 . _ - separated by single '/'",
            details={"key": key[:200]})
    return key


class FileBackend:
    """Blobs as files under ``root``: files 0600, directories 0700, atomic replacement."""

    def __init__(self, root: Path) -> None:
        # The root is created on the first write, so configuring a backend has no side effects.
        self.root = root

    def __repr__(self) -> str:
        return f"FileBackend({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def put(self, key: str, data: bytes) -> None:
        target = self._path(key)
        self._make_dirs(target.parent)
        write_atomically(target, data, temp_suffix=_TMP_SUFFIX)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound(f"blob {key} not found", code="blob_not_found") from None

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            self._path(key).unlink()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def keys(self, prefix: str = "") -> Iterator[str]:
        # Walk only below the directory part of the prefix; it is validated like a key so a
        # prefix such as "../" cannot make the walk leave the root.
        directory = prefix.rpartition("/")[0]
        start = self._path(directory) if directory else self.root
        yield from self._walk(start, f"{directory}/" if directory else "", prefix)

    def _walk(self, directory: Path, relative: str, prefix: str) -> Iterator[str]:
        """Keys below ``directory`` in plain string order, streaming one directory at a time."""
        try:
            with os.scandir(directory) as scan:
                # A directory "a" sorts as "a/" so its keys land exactly where "a/..." strings
                # belong (after "a-b", before "a0"), which is the order S3 lists in as well.
                entries = sorted(
                    (entry.name + ("/" if entry.is_dir(follow_symlinks=False) else ""), entry)
                    for entry in scan)
        except (FileNotFoundError, NotADirectoryError):
            return
        for sort_name, entry in entries:
            key = relative + sort_name
            if sort_name.endswith("/"):
                if key.startswith(prefix) or prefix.startswith(key):
                    yield from self._walk(Path(entry.path), key, prefix)
            elif key.startswith(prefix) and entry.is_file() and _is_valid_key(key):
                yield key

    def _make_dirs(self, directory: Path) -> None:
        """Create ``directory`` and its missing parents below (and including) root, mode 0700."""
        missing: list[Path] = []
        current = directory
        while not current.is_dir():
            missing.append(current)
            if current == self.root or current.parent == current:
                break
            current = current.parent
        for path in reversed(missing):
            with contextlib.suppress(FileExistsError):  # a concurrent put made it first
                path.mkdir(mode=0o700, parents=path == self.root)


def _is_valid_key(key: str) -> bool:
    try:
        validate_key(key)
    except ValidationFailed:
        return False
    return True


def backend_from_url(url: str) -> BlobBackend:
    """Build the backend named by a storage URL: ``file:///absolute/path`` (``s3://`` later)."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        path = unquote(parts.path)
        if parts.netloc not in ("", "localhost") or not path.startswith("/"):
            raise ConfigurationError(
                f"storage URL {url!r} must be file:///ABSOLUTE/PATH (three slashes)")
        if parts.query or parts.fragment:
            raise ConfigurationError(f"storage URL {url!r} must not have a query or fragment")
        return FileBackend(Path(path))
    if parts.scheme == "s3":
        raise ConfigurationError("the s3 storage backend is not available yet")
    # Only the scheme is echoed: other URLs may carry credentials (user:password@host).
    raise ConfigurationError(
        f"unsupported storage URL scheme {parts.scheme or '(none)'!r}: "
        "expected file:///ABSOLUTE/PATH")
