"""What the benchmarks share: timing, machine facts and plain-text tables.

Benchmarks are scripts, not tests: each one measures ctloop and its peer in the same run
on the same machine and prints a table. Nothing here imports ctloop, so a benchmark can
still report its peer half while a ctloop API is missing.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def now() -> float:
    """A monotonic clock in seconds (what every measurement here uses)."""
    return time.perf_counter()


def cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process, all its threads, and the
    children it has waited for (a subprocess's tree once it has exited)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class Stopwatch:
    """Wall and CPU seconds of a block: ``with Stopwatch() as sw: …; sw.wall, sw.cpu``.

    CPU time is reported next to wall time because this machine may be shared: wall time
    then includes waiting for the CPU, while CPU time shows the work a tool itself did.
    """

    wall: float = float("nan")
    cpu: float = float("nan")

    def __enter__(self) -> Stopwatch:
        self._cpu = cpu_seconds()
        self._wall = now()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = now() - self._wall
        self.cpu = cpu_seconds() - self._cpu


@dataclass
class Samples:
    """Wall-clock (and CPU) seconds of the repetitions of one variant."""

    name: str
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    note: str = ""

    def add(self, seconds: float, cpu: float | None = None) -> None:
        self.seconds.append(seconds)
        if cpu is not None:
            self.cpu.append(cpu)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu) if self.cpu else float("nan")

    @property
    def spread(self) -> str:
        """``min–max`` of the repetitions, to show how noisy the median is."""
        if len(self.seconds) < 2:
            return "-"
        return f"{fmt_s(min(self.seconds))}-{fmt_s(max(self.seconds))}"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``fn`` once; return (wall seconds, its result)."""
    start = now()
    result = fn()
    return now() - start, result


def fmt_s(seconds: float) -> str:
    """Seconds with three significant figures (``0.0123``, ``1.23``, ``123``)."""
    if seconds != seconds:  # NaN
        return "n/a"
    if seconds >= 100:
        return f"{seconds:.0f}"
    if seconds >= 10:
        return f"{seconds:.1f}"
    if seconds >= 1:
        return f"{seconds:.2f}"
    return f"{seconds:.3g}"


def fmt_rate(count: float, seconds: float, unit: str = "/s") -> str:
    """``count / seconds`` with a thousands separator (``12,345/s``)."""
    if not seconds or seconds != seconds:
        return "n/a"
    rate = count / seconds
    return f"{rate:,.0f}{unit}" if rate >= 100 else f"{rate:,.1f}{unit}"


def fmt_ratio(ratio: float) -> str:
    if ratio != ratio:
        return "n/a"
    return f"{ratio:.1f}x" if ratio >= 10 else f"{ratio:.2f}x"


def verdict(ok: bool | None) -> str:
    """PASS, FAIL, or n/a where one side was not measured."""
    if ok is None:
        return "n/a"
    return "PASS" if ok else "FAIL"


def print_table(
    title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]], note: str = ""
) -> None:
    """Print an aligned plain-text table (plain so it copies verbatim into reports).

    Numeric-looking cells are right-aligned, text left-aligned.
    """
    cells = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))

    def right(text: str) -> bool:
        t = text.rstrip("x/s%").replace(",", "").replace(".", "").replace("-", "")
        return t.isdigit() or text in ("n/a", "-")

    def line(row: Sequence[str], header: bool = False) -> str:
        parts = []
        for i, c in enumerate(row):
            if not header and right(c):
                parts.append(c.rjust(widths[i]))
            else:
                parts.append(c.ljust(widths[i]))
        return "  ".join(parts).rstrip()

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    print()
    print(title)
    print(rule)
    print(line(list(headers), header=True))
    print(rule)
    for row in cells:
        print(line(row))
    print(rule)
    if note:
        for note_line in note.strip().splitlines():
            print(note_line)
    sys.stdout.flush()


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _filesystem(path: str) -> str:
    """The file system type and device holding ``path`` (from /proc/mounts)."""
    try:
        target = os.path.realpath(path)
        best = ("", "unknown", "unknown")
        for line in Path("/proc/mounts").read_text().splitlines():
            dev, mnt, fstype = line.split()[:3]
            if (target == mnt or target.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(
                best[0]
            ):
                best = (mnt, fstype, dev)
        return f"{best[1]} ({best[2]} on {best[0]})"
    except OSError:
        return "unknown"


def print_machine(packages: Sequence[str], workdir: str | None = None) -> None:
    """Print what the numbers depend on: CPU, memory, OS, Python, package versions."""
    print("machine")
    print(f"  cpu        : {os.cpu_count()} logical CPUs, {_cpu_model()}")
    print(f"  memory     : {_memory_gib()}")
    print(f"  os         : {platform.platform()}")
    print(f"  python     : {platform.python_version()} ({sys.executable})")
    print("  packages   : " + ", ".join(f"{p} {package_version(p)}" for p in packages))
    if workdir is not None:
        usage = shutil.disk_usage(workdir)
        print(
            f"  work folder: {workdir} on {_filesystem(workdir)}, {usage.free / 2**30:.0f} GiB free"
        )
    sys.stdout.flush()


def machine_load() -> str:
    """Load average and CPU pressure now: how busy the machine is besides the benchmark."""
    one, five, fifteen = os.getloadavg()
    text = f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"
    try:
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0].split()
        avg10 = float(some[1].split("=")[1])
        avg60 = float(some[2].split("=")[1])
        text += f"; CPU pressure (time some task waited for a CPU) {avg10:.0f}% over 10 s, "
        text += f"{avg60:.0f}% over 60 s"
    except (OSError, IndexError, ValueError):
        pass
    return text


def print_load(when: str) -> None:
    """Print the machine's load, with a warning when other work competes for the CPUs."""
    print(f"  load {when:<6}: {machine_load()}")
    if os.getloadavg()[0] > 0.5:
        print(
            "               (the machine is not idle: wall times include waiting for a CPU; "
            "compare the CPU-seconds column, or re-run on a quiet machine)"
        )
    sys.stdout.flush()


def _busy_cpu_seconds() -> float | None:
    """CPU seconds all processes of the machine have used since boot (from /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    ticks = [int(x) for x in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    busy = sum(ticks[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


class OtherLoad:
    """How much CPU *other* processes used while the benchmark ran (the machine is shared).

    The machine's busy CPU time minus this process's (and its children's) CPU time.
    """

    def __init__(self) -> None:
        self._busy = _busy_cpu_seconds()
        self._own = cpu_seconds()
        self._wall = now()

    def report(self) -> str:
        busy = _busy_cpu_seconds()
        if busy is None or self._busy is None:
            return "unknown (no /proc/stat)"
        wall = now() - self._wall
        other = max(0.0, (busy - self._busy) - (cpu_seconds() - self._own))
        share = other / wall if wall else 0.0
        verdict_text = "quiet" if share < 0.1 else "BUSY: wall times include waiting for a CPU"
        return (
            f"{other:.0f} CPU-s used by other processes during {wall:.0f} s "
            f"({share:.0%} of one CPU of {os.cpu_count()}) - {verdict_text}"
        )


def ctloop_missing(exc: BaseException) -> str:
    """One line saying which ctloop API is not there yet (so the peer half still runs)."""
    return f"ctloop not measured: {type(exc).__name__}: {exc}"
