"""Child side of :mod:`econtract.sandbox`: run one allowed function on stdin, answer on stdout.

Started as ``python -m econtract._sandbox_child <module:function> <memory_mb> <cpu_seconds>``.
The limits are applied *before* the target's module is imported, so neither the import nor the
work can take more than its share of the machine. Only stdlib modules are imported here: the
child starts once per upload and its start-up cost is paid on every request.

Protocol (the parent relies on it):

* exit 0 and ``{"ok": true, "result": {...}}`` on stdout when the function returned a dict;
* exit 0 and ``{"ok": false, "error": {"class", "code", "message", "details"}}`` when it raised an
  :class:`econtract.errors.EContractError` (``class`` is the nearest class of ``econtract.errors``);
* exit :data:`EXIT_MEMORY` when the work ran out of memory (``RLIMIT_AS``);
* exit :data:`EXIT_CRASHED` for anything else (bad target, unexpected exception, bad result);
* death by ``SIGXCPU`` when the CPU budget ran out.
"""

from __future__ import annotations

import importlib
import json
import re
import resource
import sys
from collections.abc import Callable
from typing import Any, TextIO

EXIT_MEMORY = 3
EXIT_CRASHED = 4

# Only our own code may run in the child: a target such as ``os:system`` or ``pickle:loads``
# would turn the sandbox into a gadget for whoever controls the target string.
_TARGET = re.compile(r"econtract(?:\.[A-Za-z_][A-Za-z0-9_]*)+:[A-Za-z][A-Za-z0-9_]*")
_ERRORS_MODULE = "econtract.errors"
_MAX_OPEN_FILES = 32  # stdin/stdout/stderr plus the module files opened one at a time by import
_STDERR_CAP = 64 * 1024  # diagnostics only; hostile input can make a parser warn millions of times

Target = Callable[[bytes], Any]


def parse_target(target: str) -> tuple[str, str]:
    """Split ``"econtract.x.y:function"``; ``ValueError`` for anything outside ``econtract.``."""
    if not _TARGET.fullmatch(target):
        raise ValueError(f"sandbox target not allowed: {target!r} "
                         "(expected 'econtract.<module>:<function>')")
    module, _, function = target.partition(":")
    return module, function


def apply_limits(memory_mb: int, cpu_seconds: int) -> None:
    """Cap address space, CPU time, file writes and descriptors (hard limits: no way back up)."""
    _cap(resource.RLIMIT_AS, memory_mb * 1024 * 1024)
    # Soft limit → SIGXCPU (reported as a timeout); the hard limit is a SIGKILL backstop.
    _cap(resource.RLIMIT_CPU, cpu_seconds, hard=cpu_seconds + 1)
    _cap(resource.RLIMIT_FSIZE, 0)  # the work never writes files; an exploit must not either
    _cap(resource.RLIMIT_NOFILE, _MAX_OPEN_FILES)
    _cap(resource.RLIMIT_CORE, 0)  # a crashed parser must not dump hostile memory to disk


def _cap(which: int, soft: int, hard: int | None = None) -> None:
    _, current_hard = resource.getrlimit(which)
    hard = soft if hard is None else hard
    if current_hard != resource.RLIM_INFINITY:  # we may only lower a hard limit, never raise it
        soft, hard = min(soft, current_hard), min(hard, current_hard)
    resource.setrlimit(which, (soft, hard))


def load_target(target: str) -> Target:
    module_name, function_name = parse_target(target)
    function = getattr(importlib.import_module(module_name), function_name, None)
    if not callable(function):
        raise ValueError(f"sandbox target is not a function: {target!r}")
    return function  # type: ignore[no-any-return]


def error_payload(exc: BaseException) -> dict[str, Any]:
    """Serialise an EContractError as its nearest ``econtract.errors`` class, code and message."""
    name = next((cls.__name__ for cls in type(exc).__mro__ if cls.__module__ == _ERRORS_MODULE),
                "EContractError")
    details = getattr(exc, "details", {})
    try:
        json.dumps(details)
    except (TypeError, ValueError):
        details = {}
    return {"class": name, "code": getattr(exc, "code", "internal_error"),
            "message": getattr(exc, "message", str(exc)), "details": details}


class _CappedWriter:
    """A text sink that keeps at most ``cap`` characters and silently drops the rest."""

    def __init__(self, stream: TextIO, cap: int) -> None:
        self._stream, self._left = stream, cap

    def write(self, text: str) -> int:
        if self._left > 0:
            self._stream.write(text[: self._left])
            self._left -= len(text)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding... of the real stream
        return getattr(self._stream, name)


def run(target: str, data: bytes) -> dict[str, Any]:
    """Call the target; return the protocol payload. Raises MemoryError and unexpected errors."""
    from econtract.errors import EContractError  # stdlib-only module, cheap

    try:
        result = load_target(target)(data)
    except EContractError as exc:
        return {"ok": False, "error": error_payload(exc)}
    if not isinstance(result, dict):
        raise TypeError(f"sandbox target returned {type(result).__name__}, expected dict")
    return {"ok": True, "result": result}


def main(argv: list[str]) -> int:
    target, memory_mb, cpu_seconds = argv[0], int(argv[1]), int(argv[2])
    parse_target(target)
    apply_limits(memory_mb, cpu_seconds)
    data = sys.stdin.buffer.read()
    out = sys.stdout.buffer
    capped = _CappedWriter(sys.__stderr__ or sys.stderr, _STDERR_CAP)
    # Stray prints from the work must not corrupt the one JSON document on stdout.
    sys.stdout = sys.stderr = capped
    try:
        payload = json.dumps(run(target, data)).encode()
    except MemoryError:
        return EXIT_MEMORY  # nothing to write: building a message could itself run out of memory
    out.write(payload)
    out.flush()
    return 0


if __name__ == "__main__":
    try:
        code = main(sys.argv[1:])
    except MemoryError:
        code = EXIT_MEMORY
    except Exception as exc:  # any other failure is a crash
        import traceback

        # Where it failed and the exception type help; the message may quote hostile input.
        frames = "".join(traceback.format_tb(exc.__traceback__, limit=-5))
        (sys.__stderr__ or sys.stderr).write(f"{frames}sandbox child: {type(exc).__name__}\n")
        code = EXIT_CRASHED
    sys.exit(code)
