"""Shared helpers of the benchmarks: round-robin timing, statistics, machine facts, fixture PDFs.

Method (the same as the baseline in ``performance.md``): after warm-up, every round runs every
case once, in the same order, so drift in machine speed (a noisy neighbour, frequency scaling)
hits all cases alike; each case is timed with ``time.perf_counter_ns`` after a ``gc.collect()``
(and with ``time.thread_time_ns`` beside it, see :class:`Timing`); we quote medians (with
p10-p90) and take ratios only between cases of the same run.
"""

from __future__ import annotations

import gc
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

VERSIONED_PACKAGES = ("pyhanko", "pyhanko-certvalidator", "cryptography", "asn1crypto",
                      "argon2-cffi", "SQLAlchemy", "psycopg", "fpdf2", "pypdf")


# --- timing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """Elapsed wall time (``perf_counter_ns``) and CPU time of this thread (``thread_time_ns``).

    Wall time is the figure we quote. CPU time is shown beside it because this machine is shared:
    other processes stretch wall time but hardly CPU time. CPU time leaves out waiting (fsync,
    the database server, a child process).
    """

    wall_ns: int
    cpu_ns: int

    @classmethod
    def start(cls) -> Timing:
        return cls(time.perf_counter_ns(), time.thread_time_ns())

    def since(self) -> Timing:
        """The time elapsed since this reading (``self`` is a reading from :meth:`start`)."""
        return Timing(time.perf_counter_ns() - self.wall_ns, time.thread_time_ns() - self.cpu_ns)

    def __add__(self, other: Timing) -> Timing:
        return Timing(self.wall_ns + other.wall_ns, self.cpu_ns + other.cpu_ns)

    def __sub__(self, other: Timing) -> Timing:
        return Timing(self.wall_ns - other.wall_ns, self.cpu_ns - other.cpu_ns)


ZERO = Timing(0, 0)

#: A benchmark case: runs once; may return extra named timings measured inside it (e.g. a
#: sub-step timed by a wrapper). They are recorded as samples under those names.
Case = Callable[[], Mapping[str, Timing] | None]


def run_rounds(cases: Mapping[str, Case], *, rounds: int, warmup: int,
               progress: bool = True) -> dict[str, list[Timing]]:
    """Round-robin: ``warmup`` untimed rounds, then ``rounds`` rounds of every case once.

    :return: samples per name (each case's name, plus the extra names its calls returned).
    """
    for _ in range(warmup):
        for case in cases.values():
            case()
    samples: dict[str, list[Timing]] = {name: [] for name in cases}
    for number in range(rounds):
        for name, case in cases.items():
            gc.collect()
            start = Timing.start()
            extra = case()
            samples[name].append(start.since())
            for sub, value in (extra or {}).items():
                samples.setdefault(sub, []).append(value)
        if progress:
            print(f"\r  round {number + 1}/{rounds}", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    return samples


def quiet(fn: Callable[[], object]) -> Case:
    """A case that times ``fn`` and reports nothing from inside it."""
    def case() -> None:
        fn()
    return case


class StepTimer:
    """Times calls of selected functions while installed: wraps ``owner.name`` in place.

    Used to take a deliberate sub-step (the Argon2id derivation, the self-check verification)
    out of a service call measured as a whole. Only the benchmark process is patched.
    """

    def __init__(self) -> None:
        self.elapsed: dict[str, Timing] = {}
        self._originals: list[tuple[object, str, object]] = []

    def wrap(self, owner: object, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = Timing.start()
            try:
                return original(*args, **kwargs)
            finally:
                self.elapsed[label] = self.elapsed.get(label, ZERO) + start.since()

        self._originals.append((owner, name, original))
        setattr(owner, name, timed)

    def take(self) -> dict[str, Timing]:
        """The time spent in each wrapped step since the last ``take``; resets the counters."""
        taken, self.elapsed = self.elapsed, {}
        return taken

    def restore(self) -> None:
        for owner, name, original in reversed(self._originals):
            setattr(owner, name, original)
        self._originals.clear()


# --- statistics --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    """Summary of one case, in milliseconds: wall time, and the median CPU time."""

    n: int
    median: float
    p10: float
    p90: float
    min: float
    cpu_median: float

    @classmethod
    def of(cls, samples: Iterable[Timing]) -> Stats:
        timings = list(samples)
        if not timings:
            raise ValueError("no samples")
        wall = sorted(t.wall_ns / 1e6 for t in timings)
        n = len(wall)
        return cls(n=n, median=statistics.median(wall), p10=wall[int(n * 0.1)],
                   p90=wall[min(n - 1, int(n * 0.9))], min=wall[0],
                   cpu_median=statistics.median(t.cpu_ns / 1e6 for t in timings))

    def plus(self, ms_value: float) -> Stats:
        """These figures shifted by a constant (a step measured elsewhere, e.g. the commit)."""
        return Stats(self.n, self.median + ms_value, self.p10 + ms_value, self.p90 + ms_value,
                     self.min + ms_value, self.cpu_median + ms_value)


def summarise(samples: Mapping[str, list[Timing]]) -> dict[str, Stats]:
    return {name: Stats.of(values) for name, values in samples.items() if values}


def difference(minuend: list[Timing], *subtrahends: list[Timing]) -> list[Timing]:
    """Per-call differences (sample i minus the sub-steps measured inside call i)."""
    return [value - sum((sub[i] for sub in subtrahends), ZERO)
            for i, value in enumerate(minuend)]


def ms(value: float) -> str:
    return f"{value:,.2f}"


def stats_table(stats: Mapping[str, Stats], labels: Mapping[str, str]) -> str:
    """A Markdown table of ``labels`` (name -> description), in that order."""
    lines = ["| case | n | median ms | p10-p90 ms | CPU median ms |",
             "|---|---:|---:|---:|---:|"]
    for name, label in labels.items():
        if name in stats:
            s = stats[name]
            lines.append(f"| {label} | {s.n} | {ms(s.median)} | {ms(s.p10)}-{ms(s.p90)} | "
                         f"{ms(s.cpu_median)} |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Target:
    """A target on a figure of this run, e.g. platform / bare <= 1.5."""

    label: str
    value: float
    limit: float
    at_most: bool = True  # False: the value must be at least ``limit``
    cpu_value: float | None = None  # the same figure from CPU times, for information

    @property
    def met(self) -> bool:
        return self.value <= self.limit if self.at_most else self.value >= self.limit

    def line(self) -> str:
        sense = "<=" if self.at_most else ">="
        cpu = "" if self.cpu_value is None else f"; from CPU times {self.cpu_value:.2f}"
        return (f"{'PASS' if self.met else 'MISS'}  {self.label}: {self.value:.2f} "
                f"(target {sense} {self.limit:g}{cpu})")


def ratio_target(label: str, numerator: Stats, denominator: Stats, limit: float, *,
                 at_most: bool = True) -> Target:
    """A target on the ratio of two medians of the same run (wall; CPU for information)."""
    return Target(label, numerator.median / denominator.median, limit, at_most,
                  numerator.cpu_median / denominator.cpu_median)


# --- machine and versions ----------------------------------------------------------------------


def machine_info() -> dict[str, str]:
    """What the numbers were measured on: CPU, cores, memory, OS, Python and library versions."""
    info = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": f"{os.cpu_count()} logical, {len(os.sched_getaffinity(0))} usable",
        "memory": _memory(),
        "os": f"{_os_name()}, kernel {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "openssl (cryptography)": _openssl(),
    }
    for package in VERSIONED_PACKAGES:
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = "not installed"
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _os_name() -> str:
    try:
        return platform.freedesktop_os_release()["PRETTY_NAME"]
    except OSError:
        return platform.system()


def _openssl() -> str:
    from cryptography.hazmat.backends.openssl.backend import backend

    return str(backend.openssl_version_text())


def print_header(title: str, settings: Mapping[str, object]) -> dict[str, str]:
    info = machine_info()
    print(f"# {title}\n")
    for key, value in {**info, **{k: str(v) for k, v in settings.items()}}.items():
        print(f"- {key}: {value}")
    print()
    return info


def finish(path: str | None, *, machine: Mapping[str, str], stats: Mapping[str, Stats],
           targets: list[Any]) -> int:
    """Print PASS/MISS per target, write the JSON file if asked; benchmarks always exit 0."""
    print("\n## Targets\n")
    for target in targets:
        print(target.line())
    write_json(path, machine=machine, stats=stats, targets=targets)
    return 0


def write_json(path: str | None, **content: Any) -> None:
    """Write the run's figures (``Stats`` become dicts) to ``path``, if given."""
    if not path:
        return

    def plain(value: Any) -> Any:
        if isinstance(value, Stats | Target):
            return {**asdict(value), **({"met": value.met} if isinstance(value, Target) else {})}
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    Path(path).write_text(json.dumps(plain(content), indent=1, ensure_ascii=False) + "\n",
                          encoding="utf-8")


# --- fixture documents -------------------------------------------------------------------------

_CLAUSE = (
    "{n}. The Supplier shall deliver the Services described in Annex {annex} in accordance with "
    "the service levels agreed by the Parties. Each Party shall keep confidential all "
    "information received from the other Party, save where disclosure is required by law. "
    "Liability for indirect or consequential loss is excluded to the extent permitted by law. "
    "Payment is due within {days} days of a valid invoice; late payment bears interest at the "
    "statutory rate."
)


def contract_pdf(pages: int) -> bytes:
    """A contract-like PDF made now with fpdf2: ``pages`` A4 pages of dense clause text (about
    2,800 characters each, core Helvetica), like an uploaded word-processor export."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_title("Service Agreement (benchmark fixture)")
    clause = 0
    for page in range(1, pages + 1):
        pdf.add_page()
        pdf.set_font("Helvetica", style="B", size=14)
        pdf.cell(0, 10, f"SERVICE AGREEMENT No. 2026/{page:03d} - page {page} of {pages}",
                 new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=10)
        while pdf.get_y() < 255:
            clause += 1
            pdf.multi_cell(0, 5, _CLAUSE.format(n=clause, annex=clause % 7 + 1,
                                                days=14 + clause % 30))
            pdf.ln(2)
    return bytes(pdf.output())
