"""The sandbox: limits really apply in the child, errors round-trip, failures have a reason.

Targets live in ``econtract._sandbox_selftest`` because only ``econtract.`` code may run there.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from econtract.errors import EContractError, NotFound, UploadRejected, ValidationFailed
from econtract.sandbox import SandboxError, run_isolated

SELFTEST = "econtract._sandbox_selftest"


def test_round_trip_with_limits_and_clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECONTRACT_SECRET_KEY", "must-not-leak")
    data = bytes(range(256)) * 4096  # 1 MiB, binary
    result = run_isolated(f"{SELFTEST}:echo", data, timeout=7.5, memory_mb=300)
    assert result["length"] == len(data) and result["head"] == data[:16].hex()
    assert "ECONTRACT_SECRET_KEY" not in result["env"]
    assert set(result["env"]) <= {"PATH", "LANG", "LC_ALL", "PYTHONPATH", "PYTHONNOUSERSITE",
                                  "PYTHONDONTWRITEBYTECODE"}
    limits = result["limits"]
    assert limits["RLIMIT_AS"] == [300 * 2**20, 300 * 2**20]
    assert limits["RLIMIT_CPU"][0] == 8  # ceil(timeout)
    assert limits["RLIMIT_FSIZE"] == [0, 0]
    assert limits["RLIMIT_NOFILE"][1] <= 64


def test_econtract_error_comes_back_as_the_same_class_and_code() -> None:
    with pytest.raises(UploadRejected) as info:
        run_isolated(f"{SELFTEST}:refuse", "文件被拒绝 <b>".encode())
    error = info.value
    assert type(error) is UploadRejected and isinstance(error, ValidationFailed)
    assert error.code == "upload_selftest" and error.message == "文件被拒绝 <b>"
    assert error.details == {"n": 1} and error.status == 422

    with pytest.raises(NotFound) as missing:
        run_isolated(f"{SELFTEST}:not_found", b"no such thing")
    assert missing.value.code == "not_found" and missing.value.message == "no such thing"


def test_timeout_is_reported_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(SandboxError) as info:
        run_isolated(f"{SELFTEST}:spin", b"", timeout=1.0)
    assert info.value.reason == "timeout"
    assert time.monotonic() - started < 5


def test_cpu_limit_kills_the_child_even_without_the_wall_clock() -> None:
    # Run the child by hand with a 1 s CPU budget and a generous wall clock.
    child = subprocess.run(
        [sys.executable, "-m", "econtract._sandbox_child", f"{SELFTEST}:spin", "256", "1"],
        input=b"30", capture_output=True, timeout=25, check=False)
    assert child.returncode == -signal.SIGXCPU


def test_memory_hog_is_stopped_without_hurting_the_parent() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    with pytest.raises(SandboxError) as info:
        run_isolated(f"{SELFTEST}:hog_memory", b"", memory_mb=256)
    assert info.value.reason in {"memory", "crashed"}
    assert time.monotonic() - started < 10
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024


@pytest.mark.parametrize("target", ["crash", "not_a_dict"])
def test_unexpected_failures_are_crashes(target: str) -> None:
    with pytest.raises(SandboxError) as info:
        run_isolated(f"{SELFTEST}:{target}", b"secret <payload>")
    assert info.value.reason == "crashed"
    assert not isinstance(info.value, EContractError)
    assert "payload" not in str(info.value)


def test_child_cannot_write_files(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    result = run_isolated(f"{SELFTEST}:write_file", str(target).encode())
    assert result["written"] is False
    assert not target.exists() or target.stat().st_size == 0


@pytest.mark.parametrize("target", [
    "os:system", "subprocess:run", "econtract", "econtract.errors", "econtractx.errors:foo",
    "econtract.errors:_private", "econtract..errors:x", "econtract.errors:a b",
    "econtract.errors:x; rm -rf /",
])
def test_only_public_functions_under_econtract_may_run(target: str) -> None:
    with pytest.raises(ValueError, match="not allowed"):
        run_isolated(target, b"")


def test_child_refuses_a_bad_target_on_its_own() -> None:
    # Defence in depth: even when started by hand, the child itself checks the target.
    child = subprocess.run(
        [sys.executable, "-m", "econtract._sandbox_child", "os:getcwd", "256", "5"],
        input=b"", capture_output=True, timeout=25, check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert child.returncode != 0 and child.stdout == b""


def test_missing_function_is_a_crash() -> None:
    with pytest.raises(SandboxError) as info:
        run_isolated(f"{SELFTEST}:does_not_exist", b"")
    assert info.value.reason == "crashed"
