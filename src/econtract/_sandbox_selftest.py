"""Targets for the sandbox's own tests (``tests/test_sandbox.py``); not used by the application.

They live under ``econtract.`` because the child only runs functions from this package.
"""

from __future__ import annotations

import os
import resource
import time
from typing import Any

from econtract.errors import NotFound, UploadRejected


def echo(data: bytes) -> dict[str, Any]:
    """Return what the child saw: input length, environment names and its resource limits."""
    limits = {name: resource.getrlimit(getattr(resource, name))
              for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NOFILE")}
    return {"length": len(data), "head": data[:16].hex(), "env": sorted(os.environ),
            "limits": limits}


def refuse(data: bytes) -> dict[str, Any]:
    """Raise an UploadRejected with an instance code (``data`` is the message)."""
    raise UploadRejected(data.decode(), code="upload_selftest", details={"n": 1})


def not_found(data: bytes) -> dict[str, Any]:
    raise NotFound(data.decode())


def spin(data: bytes) -> dict[str, Any]:
    """Burn CPU for ``data`` seconds (default: an hour), like a parser stuck in a loop."""
    deadline = time.monotonic() + float(data or b"3600")
    while time.monotonic() < deadline:
        pass
    return {}


def hog_memory(data: bytes) -> dict[str, Any]:
    """Allocate ``data`` MiB at a time until the address-space limit stops us, like a bomb."""
    chunks = []
    while True:
        chunks.append(bytearray(int(data or b"32") * 1024 * 1024))


def write_file(data: bytes) -> dict[str, Any]:
    """Try to write to the path in ``data``; the child's RLIMIT_FSIZE=0 must forbid it."""
    try:
        with open(data.decode(), "wb") as fh:
            fh.write(b"x" * 4096)
            fh.flush()
    except OSError as exc:
        return {"written": False, "errno": exc.errno}
    return {"written": True, "errno": 0}


def crash(data: bytes) -> dict[str, Any]:
    """Raise an unexpected (non-EContractError) exception whose text is ``data``."""
    raise KeyError(data.decode())


def not_a_dict(data: bytes) -> Any:
    """Break the protocol: return a list instead of a dict."""
    return [len(data)]
