"""Benchmark: version data with ``ctloop data add`` vs ``dvc add`` vs plain ``sha256sum``.

Run from the repository root with the benchmark environment (see bench/README.md)::

    .venv-bench/bin/python bench/data_add.py            # 10,000 small files + a 1 GiB file
    .venv-bench/bin/python bench/data_add.py --quick    # 1,000 small files + 128 MiB

Two cases, each measured ``--repeat`` times (median reported):

* small files: N files of 1-8 KiB of random bytes in nested folders (100 per folder);
* large file: one file of random bytes (written once with ``os.urandom``, not timed).

Per case and repetition, each tool in turn (round robin, so that noise from anything
else on the machine spreads over all tools instead of hitting one):

* references: ``sha256sum FILE`` for the large file (and ``hashlib.sha256`` in process,
  the ceiling for any Python tool); ``find DIR -type f -exec sha256sum {} +`` for the
  small files.
* ``ctloop`` cold add: ``client.datasets.add(path, name=…)`` (Python API, in this process)
  and ``ctloop data add PATH --name N`` (CLI, a subprocess, so it pays interpreter start-up
  and imports exactly as ``dvc add`` does), each into a freshly created empty store (the
  store and its migrations are created before timing); then a re-add of the unchanged
  data into the same store.
* ``dvc add``: in a fresh ``git init`` + ``dvc init`` repository (set up before timing, with
  its own ``core.site_cache_dir`` so DVC's hash state starts empty), then DVC's re-add.
  DVC uses its default cache type (``reflink,copy``: a copy on ext4); ctloop copies the
  content into its blob store too, so both do the same work.

Every tool runs once on a tiny data set before timing (imports, bytecode, first-use
paths). All runs are warm-cache: the data is read once before any timing and every tool
sees the same page cache (dropping it needs root-level games; the memory holds it all).
ctloop's hash cache distrusts files modified within 1 s before hashing (the racy-clean
rule), so the script waits 1.5 s between creating the data and the first add. It checks
after every tool that no tool changed the data's inodes or mtimes. Before every timed
operation it calls ``os.sync()`` (untimed), so the kernel's write-back of one tool's copies
does not land in the next tool's time; neither ctloop nor DVC fsyncs its object copies.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402  (bench/ is not a package; see the sys.path line)
    OtherLoad,
    Samples,
    Stopwatch,
    fmt_rate,
    fmt_ratio,
    fmt_s,
    print_load,
    print_machine,
    print_table,
    verdict,
)

TARGET_VS_DVC = 2.0  # ctloop cold add of the small files: >= 2x faster than dvc add
TARGET_VS_SHA = 1.5  # ctloop cold add of the large file: within 1.5x of sha256sum
TARGET_READD_S = 1.0  # re-add of unchanged data: under 1 s
RACY_WAIT_S = 1.5
FILES_PER_FOLDER = 100
CHUNK = 8 * 2**20


class CheckError(AssertionError):
    """A tool's result does not match the data (a benchmark that doesn't verify is worthless)."""


@dataclass
class Case:
    """One data set: where it is and what an independent reading says it holds."""

    key: str  # small | large
    path: Path
    kind: str  # dir | file
    files: int
    size: int
    sha256: str = ""  # the large file only
    md5: str = ""  # the large file only (to check DVC)

    @property
    def title(self) -> str:
        if self.kind == "dir":
            return f"{self.files:,} small files, {self.size / 2**20:.1f} MiB"
        return f"one {self.size / 2**20:,.0f} MiB file"


# --------------------------------------------------------------------------- data


def make_small_files(root: Path, count: int, seed: int = 42) -> Case:
    """``count`` files of 1-8 KiB random bytes, 100 per folder, two folder levels deep."""
    rng = random.Random(seed)
    total = 0
    for i in range(count):
        leaf = i // FILES_PER_FOLDER
        folder = root / f"d{leaf // 10:03d}" / f"e{leaf % 10}"
        if i % FILES_PER_FOLDER == 0:
            folder.mkdir(parents=True, exist_ok=True)
        size = rng.randint(1024, 8192)
        (folder / f"f{i:06d}.bin").write_bytes(os.urandom(size))
        total += size
    return Case("small", root, "dir", count, total)


def make_large_file(path: Path, mib: int) -> Case:
    """One file of ``mib`` MiB random bytes; its sha256 and md5 computed as it is written."""
    sha, md5 = hashlib.sha256(), hashlib.md5()
    remaining = mib * 2**20
    with open(path, "wb") as f:
        while remaining:
            block = os.urandom(min(CHUNK, remaining))
            f.write(block)
            sha.update(block)
            md5.update(block)
            remaining -= len(block)
    return Case("large", path, "file", 1, mib * 2**20, sha.hexdigest(), md5.hexdigest())


def read_all(case: Case) -> str:
    """Read every byte once (warms the page cache); returns the large file's sha256 again."""
    if case.kind == "file":
        h = hashlib.sha256()
        with open(case.path, "rb") as f:
            while block := f.read(CHUNK):
                h.update(block)
        return h.hexdigest()
    for dirpath, _, names in os.walk(case.path):
        for name in names:
            Path(dirpath, name).read_bytes()
    return ""


def fingerprint(case: Case) -> dict[str, tuple[int, int, int]]:
    """(inode, size, mtime_ns) of every file: proof that no tool rewrote the data."""
    paths = [case.path] if case.kind == "file" else sorted(case.path.rglob("*"))
    out = {}
    for p in paths:
        st = p.stat()
        if p.is_file():
            out[str(p)] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return out


def settle() -> None:
    """Write back dirty pages before timing, so no tool pays for the previous one's writes.

    Neither tool fsyncs the copies it makes, so the kernel would otherwise write them back
    while the next tool is being timed.
    """
    os.sync()


# --------------------------------------------------------------------------- helpers


def run_cmd(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[Stopwatch, str]:
    """Run a command; return its wall/CPU stopwatch and stdout; raise with output if it fails."""
    with Stopwatch() as sw:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    return sw, proc.stdout


def bin_path(name: str) -> str:
    """A console script of this interpreter's environment (``.venv-bench/bin/dvc``)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed next to {sys.executable} nor on PATH")
    return found


def check_ctloop(version: Any, case: Case) -> None:
    if version.file_count != case.files:
        raise CheckError(f"ctloop file_count {version.file_count}, expected {case.files}")
    if version.size != case.size:
        raise CheckError(f"ctloop size {version.size}, expected {case.size}")
    if case.kind == "file" and version.digest.removeprefix("sha256:") != case.sha256:
        raise CheckError(f"ctloop digest {version.digest}, sha256 of the file is {case.sha256}")


def check_stored(store: Path, case: Case) -> None:
    """The store holds a copy of the content (a version is data, not just a digest)."""
    stored = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
    if stored < case.size:
        raise CheckError(f"the store holds {stored:,} bytes, less than the data's {case.size:,}")


def check_dvc(repo: Path, case: Case) -> None:
    meta = yaml.safe_load((repo / f"{case.path.name}.dvc").read_text())
    out = meta["outs"][0]
    if case.kind == "file":
        if out.get("md5") != case.md5 or out.get("size") != case.size:
            raise CheckError(f"dvc recorded {out}, expected md5 {case.md5} size {case.size}")
    elif out.get("nfiles") != case.files or out.get("size") != case.size:
        raise CheckError(f"dvc recorded {out}, expected {case.files} files, {case.size} bytes")


def remove_pointer(case: Case) -> None:
    case.path.with_name(case.path.name + ".ctloop.yaml").unlink(missing_ok=True)


def new_ctloop_store(folder: Path) -> None:
    """Create an empty store (database + migrations) before timing."""
    import ctloop

    shutil.rmtree(folder, ignore_errors=True)
    ctloop.Client(store=str(folder)).close()


# --------------------------------------------------------------------------- tools

Timing = tuple[Stopwatch, Stopwatch | None]  # cold (or the one reference run), re-add


class Tool:
    """One way to hash or version a case; ``run`` does one repetition."""

    label = ""
    reference = False  # a hashing reference, not a versioning tool
    may_touch = False  # allowed to change the data's mtimes (noted, not an error)

    def __init__(self, base: Path, env: dict[str, str]) -> None:
        self.base = base
        self.env = env

    def applies(self, case: Case) -> bool:
        return True

    def run(self, case: Case, i: int) -> Timing:
        raise NotImplementedError

    def discard(self, path: Path, case: Case) -> None:
        """Move a store or cache out of the way, to be deleted at the very end.

        Deleting tens of thousands of files in the middle of the run would slow down every
        file created in the next ~30 s on an ext4 without a journal (as on the benchmark
        VM): its inode allocator then skips over "recently deleted" inodes one by one
        (``find_inode_bit`` -> ``recently_deleted``), and the next tool would pay for it.
        What holds a copy of the large file (a handful of files) is deleted at once.
        """
        if case.kind == "file":
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            trash = self.base / "trash"
            trash.mkdir(exist_ok=True)
            os.rename(path, trash / uuid.uuid4().hex)


class Sha256sum(Tool):
    label = "sha256sum"
    reference = True

    def applies(self, case: Case) -> bool:
        return case.kind == "file"

    def command(self, case: Case) -> list[str]:
        return ["sha256sum", case.path.name]

    def run(self, case: Case, i: int) -> Timing:
        settle()
        sw, out = run_cmd(self.command(case), case.path.parent, self.env)
        lines = out.splitlines()
        if len(lines) != case.files:
            raise CheckError(f"sha256sum printed {len(lines)} lines, not {case.files}")
        if case.kind == "file" and lines[0].split()[0] != case.sha256:
            raise CheckError("sha256sum disagrees with hashlib")
        return sw, None


class FindSha256sum(Sha256sum):
    label = "find | sha256sum"

    def applies(self, case: Case) -> bool:
        return case.kind == "dir"

    def command(self, case: Case) -> list[str]:
        return ["find", case.path.name, "-type", "f", "-exec", "sha256sum", "{}", "+"]


class Hashlib(Tool):
    """OpenSSL's sha256 over the file in this process: the ceiling for any Python tool."""

    label = "hashlib.sha256"
    reference = True

    def applies(self, case: Case) -> bool:
        return case.kind == "file"

    def run(self, case: Case, i: int) -> Timing:
        settle()
        with Stopwatch() as sw:
            digest = read_all(case)
        if digest != case.sha256:
            raise CheckError("hashlib disagrees with itself")
        return sw, None


class CtloopAPI(Tool):
    label = "ctloop (API)"

    def run(self, case: Case, i: int) -> Timing:
        import ctloop

        store = self.base / f"store-api-{case.key}"
        remove_pointer(case)
        new_ctloop_store(store)
        client = ctloop.Client(store=str(store))
        name = f"bench-{case.key}"
        try:
            settle()
            with Stopwatch() as cold:
                first = client.datasets.add(str(case.path), name=name)
            check_ctloop(first, case)
            check_stored(store, case)
            settle()
            with Stopwatch() as readd:
                again = client.datasets.add(str(case.path), name=name)
            check_ctloop(again, case)
            if (again.digest, again.version) != (first.digest, first.version):
                raise CheckError(
                    f"re-add gave {again.ref} {again.digest}, first add {first.ref} {first.digest}"
                )
        finally:
            client.close()
        self.discard(store, case)
        return cold, readd


class CtloopCLI(Tool):
    label = "ctloop (CLI)"

    def run(self, case: Case, i: int) -> Timing:
        import ctloop

        store = self.base / f"store-cli-{case.key}"
        remove_pointer(case)
        new_ctloop_store(store)
        env = {**self.env, "CTLOOP_STORE": str(store)}
        name = f"bench-{case.key}"
        cmd = [bin_path("ctloop"), "data", "add", str(case.path), "--name", name]
        settle()
        cold, _ = run_cmd(cmd, case.path.parent, env)
        settle()
        readd, out = run_cmd(cmd, case.path.parent, env)
        if not out.startswith("unchanged"):
            raise CheckError(f"the CLI re-add did not report 'unchanged': {out[:200]!r}")
        with ctloop.Client(store=str(store)) as client:  # read back what the CLI stored
            versions = client.datasets.versions(name)
            if len(versions) != 1:
                raise CheckError(f"the CLI stored {len(versions)} versions, expected 1")
            check_ctloop(versions[0], case)
        check_stored(store, case)
        self.discard(store, case)
        return cold, readd


class Dvc(Tool):
    label = "dvc add"
    may_touch = True  # dvc re-links an added file from its cache (a new mtime)

    def reset_repo(self, ws: Path, site_cache: Path, case: Case) -> None:
        """A fresh git + DVC repository in the folder holding the data, data left in place."""
        self.clean(ws, case)
        self.discard(site_cache, case)
        dvc = bin_path("dvc")
        run_cmd(["git", "init", "-q"], ws, self.env)
        run_cmd([dvc, "init", "-q"], ws, self.env)
        run_cmd([dvc, "config", "core.analytics", "false"], ws, self.env)
        run_cmd([dvc, "config", "core.site_cache_dir", str(site_cache)], ws, self.env)

    def clean(self, ws: Path, case: Case) -> None:
        for name in (".git", ".dvc"):
            self.discard(ws / name, case)
        for p in [ws / ".dvcignore", ws / ".gitignore", *ws.glob("*.dvc")]:
            p.unlink(missing_ok=True)

    def run(self, case: Case, i: int) -> Timing:
        ws = case.path.parent
        site_cache = self.base / "dvc-site-cache"
        self.reset_repo(ws, site_cache, case)
        cmd = [bin_path("dvc"), "add", "-q", case.path.name]
        try:
            settle()
            cold, _ = run_cmd(cmd, ws, self.env)
            check_dvc(ws, case)
            settle()
            readd, _ = run_cmd(cmd, ws, self.env)
            check_dvc(ws, case)
        finally:
            self.clean(ws, case)  # also moves away DVC's cache copy of the data
            self.discard(site_cache, case)
        return cold, readd


# --------------------------------------------------------------------------- driver


@dataclass
class Result:
    tool: Tool
    cold: Samples
    readd: Samples
    status: str = "verified"
    failed: bool = False
    notes: list[str] = field(default_factory=list)


def warm_up(tools: list[Tool], base: Path) -> None:
    """Run every tool once on a tiny data set, untimed: imports, bytecode, first-use paths."""
    ws = base / "warm"
    ws.mkdir()
    cases = [make_small_files(ws / "small", 20), make_large_file(ws / "large.bin", 1)]
    time.sleep(RACY_WAIT_S)
    for case in cases:
        for tool in tools:
            if tool.applies(case):
                tool.run(case, 0)
    shutil.rmtree(ws, ignore_errors=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke size: 1,000 small files and a 128 MiB file, 1 repetition",
    )
    p.add_argument("--small-files", type=int, help="number of small files (default 10000)")
    p.add_argument("--large-mib", type=int, help="size of the large file in MiB (default 1024)")
    p.add_argument("--repeat", type=int, help="repetitions per tool (default 3; --quick 1)")
    p.add_argument("--cases", default="small,large", help="comma list of small,large")
    p.add_argument(
        "--ctloop",
        choices=["api", "cli", "both"],
        default="both",
        help="measure ctloop through the Python API, the CLI, or both (default)",
    )
    p.add_argument("--no-dvc", action="store_true", help="skip DVC")
    p.add_argument(
        "--workdir",
        default=tempfile.gettempdir(),
        help="folder for the temporary data (default: the system temp folder)",
    )
    p.add_argument("--keep", action="store_true", help="keep the generated data")
    args = p.parse_args(argv)
    args.small_files = args.small_files or (1000 if args.quick else 10_000)
    args.large_mib = args.large_mib or (128 if args.quick else 1024)
    args.repeat = args.repeat or (1 if args.quick else 3)
    return args


def subprocess_env(base: Path) -> dict[str, str]:
    """The environment of the CLI tools: no analytics, no progress bars, bytecode cached.

    ``PYTHONDONTWRITEBYTECODE`` (set on some machines) would make every ``ctloop`` run
    recompile ctloop's editable sources; a user's installed package has its bytecode, so
    bytecode is cached here too, under the temporary folder (``PYTHONPYCACHEPREFIX``).
    """
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "CTLOOP_DATA_PROGRESS": "false",
        "PYTHONPYCACHEPREFIX": str(base / "pycache"),
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("CTLOOP_STORE", None)
    return env


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cases_wanted = {c.strip() for c in args.cases.split(",") if c.strip()}
    base = Path(tempfile.mkdtemp(prefix="ctloop-bench-data-", dir=args.workdir))
    ws = base / "ws"
    ws.mkdir()
    env = subprocess_env(base)
    os.environ.pop("CTLOOP_STORE", None)

    print(
        f"ctloop benchmark: data add — {args.small_files:,} small files and a "
        f"{args.large_mib:,} MiB file, {args.repeat} repetition(s), median reported"
    )
    print_machine(["ctloop", "dvc", "dvc-data"], workdir=str(base))
    sha_version = subprocess.run(["sha256sum", "--version"], capture_output=True, text=True)
    print(f"  sha256sum  : {sha_version.stdout.splitlines()[0]}")
    print_load("before")
    other = OtherLoad()

    tools: list[Tool] = [Sha256sum(base, env), FindSha256sum(base, env), Hashlib(base, env)]
    if args.ctloop in ("api", "both"):
        tools.append(CtloopAPI(base, env))
    if args.ctloop in ("cli", "both"):
        tools.append(CtloopCLI(base, env))
    if not args.no_dvc:
        tools.append(Dvc(base, env))

    results: dict[str, dict[str, Result]] = {}
    cases: list[Case] = []
    try:
        try:
            warm_up(tools, base)
        except Exception as exc:  # a missing ctloop API: measure the peers anyway
            print(f"  warm-up    : failed ({type(exc).__name__}: {exc}); continuing")
        with Stopwatch() as gen:
            if "small" in cases_wanted:
                cases.append(make_small_files(ws / "small", args.small_files))
            if "large" in cases_wanted:
                cases.append(make_large_file(ws / "large.bin", args.large_mib))
        print(f"  data       : generated in {fmt_s(gen.wall)} s (not timed) under {ws}")
        settle()
        time.sleep(RACY_WAIT_S)
        print(
            f"  racy-clean : waited {RACY_WAIT_S} s after writing the data before the first "
            "add (ctloop's hash cache distrusts files modified within 1 s of hashing)"
        )
        for case in cases:
            if read_all(case) != case.sha256 and case.kind == "file":
                raise CheckError("the large file changed after it was written")
        print(
            "  page cache : warm for every run — all data read once before timing; every "
            "tool sees the same cache; os.sync() before every timed operation"
        )
        print("  warm-up    : every tool ran once on a tiny data set before timing")
        print("  order      : round robin — each repetition runs every tool once, in turn")
        print()

        for case in cases:
            before = fingerprint(case)
            res = {
                t.label: Result(t, Samples(t.label), Samples(t.label))
                for t in tools
                if t.applies(case)
            }
            for i in range(args.repeat):
                for r in res.values():
                    if not r.failed:
                        one_repetition(r, case, i, args.repeat, before)
            remove_pointer(case)
            results[case.key] = res
    finally:
        if args.keep:
            print(f"\ndata kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    report(cases, results, args)
    print(f"\nother load : {other.report()}")
    return 0


def one_repetition(
    r: Result, case: Case, i: int, repeat: int, before: dict[str, tuple[int, int, int]]
) -> None:
    """Run one tool once on one case, record it, and check that the data is unchanged.

    A tool that changes the data's fingerprint is INVALID unless it ``may_touch`` it (DVC
    re-links the file it adds, setting a new mtime): then the change is noted, the
    fingerprint updated, and the racy-clean wait repeated so the next tool finds the data
    as settled as the first one did.
    """
    label = r.tool.label
    try:
        cold, readd = r.tool.run(case, i)
        r.cold.add(cold.wall, cold.cpu)
        if readd is not None:
            r.readd.add(readd.wall, readd.cpu)
        after = fingerprint(case)
        if after != before:
            if not r.tool.may_touch:
                raise CheckError(f"{label} changed the data's inodes or mtimes")
            changed = sum(after.get(k) != v for k, v in before.items())
            r.status = f"verified; set a new mtime on {changed:,} file(s)"
            before.clear()
            before.update(after)
            time.sleep(RACY_WAIT_S)
        extra = f", re-add {fmt_s(readd.wall)} s" if readd is not None else ""
        print(
            f"  {case.key:<5} {label:<17} {i + 1}/{repeat}: {fmt_s(cold.wall)} s "
            f"(cpu {fmt_s(cold.cpu)} s){extra}"
        )
    except CheckError as exc:
        r.failed, r.status = True, f"INVALID: {exc}"
        print(f"  {case.key:<5} {label:<17} {r.status}")
    except Exception as exc:
        last = (str(exc).strip().splitlines() or [""])[-1][:160]
        r.failed, r.status = True, f"failed: {type(exc).__name__}: {last}"
        print(f"  {case.key:<5} {label:<17} {r.status}")
    sys.stdout.flush()


def report(cases: list[Case], results: dict[str, dict[str, Result]], args: Any) -> None:
    targets: list[list[str]] = []
    for case in cases:
        res = results[case.key]
        ref = next(
            (r for r in res.values() if r.tool.label in ("sha256sum", "find | sha256sum")), None
        )
        dvc = res.get("dvc add")
        rows = []
        for label, r in res.items():
            ops = (
                [("hash", r.cold)]
                if r.tool.reference
                else [("add (cold)", r.cold), ("re-add", r.readd)]
            )
            for op, samples in ops:
                if r.failed or not samples.seconds:
                    rows.append([label, op, "n/a", "-", "n/a", "n/a", "-", "-", "-", r.status])
                    continue
                med = samples.median
                vs_ref = fmt_ratio(med / ref.cold.median) if ref and not ref.failed else "n/a"
                vs_dvc = "-"
                if dvc and not dvc.failed and label != "dvc add" and not r.tool.reference:
                    peer = dvc.cold if op == "add (cold)" else dvc.readd
                    vs_dvc = fmt_ratio(peer.median / med)
                files_rate = fmt_rate(case.files, med, "/s") if case.kind == "dir" else "-"
                rows.append(
                    [
                        label,
                        op,
                        fmt_s(med),
                        samples.spread,
                        fmt_s(samples.cpu_median),
                        fmt_rate(case.size / 2**20, med, " MiB/s"),
                        files_rate,
                        vs_ref,
                        vs_dvc,
                        r.status,
                    ]
                )
        ref_name = ref.tool.label if ref else "sha256sum"
        print_table(
            f"{case.title}; median of {args.repeat}; warm page cache",
            [
                "tool",
                "operation",
                "median s",
                "min-max s",
                "cpu s",
                "throughput",
                "files/s",
                f"time vs {ref_name}",
                "speed-up vs dvc",
                "check",
            ],
            rows,
            note=f"cpu s = median CPU seconds (user+system, all threads and child processes);\n"
            f"time vs {ref_name} = the tool's median / the reference's (lower is faster);"
            "\nspeed-up vs dvc = dvc's median for the same operation / the tool's",
        )
        targets.extend(target_rows(case, res, ref, dvc))

    size_note = ""
    if args.small_files != 10_000 or args.large_mib != 1024:
        size_note = (
            f"note: the targets are set for 10,000 small files and a 1 GiB file; this "
            f"run used {args.small_files:,} and {args.large_mib:,} MiB"
        )
    print_table(
        "targets (issue 2)", ["target", "required", "measured", "result"], targets, note=size_note
    )


def target_rows(
    case: Case, res: dict[str, Result], ref: Result | None, dvc: Result | None
) -> list[list[str]]:
    rows = []
    for label in ("ctloop (API)", "ctloop (CLI)"):
        r = res.get(label)
        if r is None:
            continue
        ok = not r.failed and bool(r.cold.seconds)
        if case.kind == "dir":
            name = f"{label}: small files >= {TARGET_VS_DVC:g}x faster than dvc add"
            if ok and dvc and not dvc.failed:
                ratio = dvc.cold.median / r.cold.median
                rows.append(
                    [name, f"{TARGET_VS_DVC:g}x", fmt_ratio(ratio), verdict(ratio >= TARGET_VS_DVC)]
                )
            else:
                rows.append([name, f"{TARGET_VS_DVC:g}x", "n/a", "n/a"])
        else:
            name = f"{label}: large file within {TARGET_VS_SHA:g}x of sha256sum"
            if ok and ref and not ref.failed:
                ratio = r.cold.median / ref.cold.median
                rows.append(
                    [
                        name,
                        f"<= {TARGET_VS_SHA:g}x",
                        fmt_ratio(ratio),
                        verdict(ratio <= TARGET_VS_SHA),
                    ]
                )
            else:
                rows.append([name, f"<= {TARGET_VS_SHA:g}x", "n/a", "n/a"])
        what = "small files" if case.kind == "dir" else "large file"
        name = f"{label}: re-add of unchanged {what}"
        if ok and r.readd.seconds:
            rows.append(
                [
                    name,
                    f"< {TARGET_READD_S:g} s",
                    f"{fmt_s(r.readd.median)} s",
                    verdict(r.readd.median < TARGET_READD_S),
                ]
            )
        else:
            rows.append([name, f"< {TARGET_READD_S:g} s", "n/a", "n/a"])
    return rows


if __name__ == "__main__":
    sys.exit(main())
