"""Run a parser over untrusted bytes in a short-lived child process with hard resource limits.

Why a process: hostile files (decompression bombs, reference loops, millions of objects) attack
the parser's memory and CPU. Inside the web server they would starve every other request; in a
child with ``RLIMIT_AS``/``RLIMIT_CPU`` and a wall-clock timeout they only kill the child, and
the caller gets a :class:`SandboxError` it can turn into a clear refusal.

The child (:mod:`econtract._sandbox_child`) gets the data on stdin, a minimal environment (no
secrets such as database URLs or signing-key passphrases), no inherited descriptors, no right to
write files, and only functions under ``econtract.`` may be run.

Usage::

    result = run_isolated("econtract.contracts.uploads:probe_pdf", data, timeout=15)
"""

from __future__ import annotations

import json
import logging
import math
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

from econtract import errors
from econtract._sandbox_child import EXIT_MEMORY, parse_target

__all__ = ["SandboxError", "run_isolated"]

log = logging.getLogger(__name__)

Reason = Literal["timeout", "memory", "crashed"]

# The directory holding the ``econtract`` package, so the child imports this very code.
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


class SandboxError(Exception):
    """The isolated work did not produce an answer; ``reason`` says why.

    ``"timeout"`` (wall clock or CPU budget), ``"memory"`` (address-space limit) or ``"crashed"``
    (killed by a signal, unexpected exception, unusable output).
    """

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason: Reason = reason


def run_isolated(target: str, data: bytes, *, timeout: float = 15.0,
                 memory_mb: int = 768) -> dict[str, Any]:
    """Run ``target`` (``"econtract.module:function"``, taking bytes, returning a JSON-able dict).

    Returns the function's dict. An :class:`~econtract.errors.EContractError` raised by the
    function is re-raised here as the same class from :mod:`econtract.errors`, with its code,
    message and details. Raises :class:`SandboxError` when no answer came back and
    ``ValueError`` for a target outside ``econtract.``.
    """
    parse_target(target)
    cpu_seconds = max(1, math.ceil(timeout))
    command = [sys.executable, "-P", "-s", "-m", "econtract._sandbox_child",
               target, str(memory_mb), str(cpu_seconds)]
    try:
        completed = subprocess.run(
            command, input=data, capture_output=True, timeout=timeout, check=False,
            env=_child_environment(), cwd=_PACKAGE_ROOT, close_fds=True)
    except subprocess.TimeoutExpired:  # subprocess.run has already killed and reaped the child
        raise SandboxError("timeout", f"{target} exceeded {timeout:g} s") from None
    return _answer(target, completed)


def _child_environment() -> dict[str, str]:
    # Built from scratch, not copied: the server's environment carries secrets.
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONPATH": _PACKAGE_ROOT,
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",  # RLIMIT_FSIZE=0 would make .pyc writes fail anyway
    }


def _answer(target: str, completed: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
    code = completed.returncode
    if code != 0:
        reason = _failure_reason(code)
        log.warning("sandbox %s failed (%s, exit %s): %r", target, reason, code,
                    completed.stderr[-2000:])
        raise SandboxError(reason, f"{target} failed: {reason} (exit {code})")
    try:
        payload = json.loads(completed.stdout)
        ok = payload["ok"]
    except (ValueError, TypeError, KeyError) as exc:
        raise SandboxError("crashed", f"{target} returned unusable output") from exc
    if ok is True and isinstance(payload.get("result"), dict):
        result: dict[str, Any] = payload["result"]
        return result
    if ok is False and isinstance(payload.get("error"), dict):
        raise _rebuild_error(payload["error"])
    raise SandboxError("crashed", f"{target} returned unusable output")


def _failure_reason(returncode: int) -> Reason:
    if returncode == EXIT_MEMORY:
        return "memory"
    if returncode == -signal.SIGXCPU:  # the CPU budget (RLIMIT_CPU soft limit) ran out
        return "timeout"
    # EXIT_CRASHED, usage errors, other signals (SIGSEGV, SIGABRT, SIGKILL from the hard CPU
    # limit or the kernel's OOM killer).
    return "crashed"


def _rebuild_error(error: dict[str, Any]) -> errors.EContractError:
    cls = getattr(errors, str(error.get("class")), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.EContractError)):
        cls = errors.EContractError
    details = error.get("details")
    return cls(str(error.get("message") or ""), code=str(error.get("code") or cls.code),
               details=details if isinstance(details, dict) else None)
