"""Durable file writes shared by the blob store, the key file and the e-mail outbox."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(target: Path, data: bytes, *, temp_suffix: str = ".tmp") -> None:
    """Replace ``target`` with ``data``: readers see the old file or the new one, never a torn
    write, and the new directory entry survives a crash.

    ``mkstemp`` creates the temporary file ``O_EXCL`` with mode 0600 in the same directory, which
    keeps ``os.replace`` atomic and the content unreadable by others from the first byte.
    """
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                     suffix=temp_suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    fsync_dir(target.parent)


def fsync_dir(directory: Path) -> None:
    """Make a new or renamed directory entry durable (without it a crash can lose the file)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
