#!/usr/bin/env python3
"""Benchmark resnetlint against Ruff, TorchFix and Fixit on a real model zoo.

The corpus is the Python source of five pinned wheels (timm, torchvision,
pytorchcv, segmentation_models_pytorch, mmpretrain: about 2,000 files and
415k lines), fetched once with ``pip download --no-deps`` into a cache
directory and unpacked there.  Every tool runs on the same tree in one run,
each scenario repeated ``--repeat`` times; the report (Markdown, on stdout)
gives medians, extremes, peak memory and ratios, then checks the targets of
the speed issue.  Progress goes to stderr.

    .venv/bin/python bench/bench.py                       # everything
    .venv/bin/python bench/bench.py --repeat 1 --skip-slow-tools
    .venv/bin/python bench/bench.py --json bench/latest.json

Standard library only.  See bench/README.md.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = REPO / ".bench-cache"
SEED_FILE = REPO / "fixtures" / "seeds" / "seed001_bottleneck.py"

# The corpus: (distribution name, pinned version).
CORPUS = (
    ("timm", "1.0.31"),
    ("torchvision", "0.29.1"),
    ("pytorchcv", "0.0.74"),
    ("segmentation_models_pytorch", "0.6.0"),
    ("mmpretrain", "1.2.0"),
)

# What --install-ruff / --install-others put into <cache>/tools/<name>/.
# Each tool is installed with --no-deps, then its own (pure-Python)
# requirements are installed by name, so that nothing can pull torch.
TOOL_PINS = {
    "ruff": ("ruff==0.17.6", []),
    "torchfix": ("TorchFix==0.7.0", ["flake8>=3.8.2", "PyYAML", "libcst>=1.5.0,<1.6.0"]),
    "fixit": ("fixit==2.2.1", ["click>=8.0,<8.2", "libcst>=0.3.18", "moreorless>=0.4.0",
                               "packaging>=21", "trailrunner>=1.2", "tomli>=2.0; python_version < '3.11'"]),
}
SLOW_TOOLS = ("torchfix", "fixit")
RESNETLINT_SCENARIOS = ("cold", "jobs", "cache", "small", "scaling")
WARM_UP_PACKAGE = "segmentation_models_pytorch"  # big enough for the process pool
ALL_SCENARIOS = ("ruff", "cold", "jobs", "cache", "small", "scaling", "torchfix", "fixit")

# Targets of the speed issue (seconds / MB).
MAX_RATIO_TO_RUFF = 2.0
MIN_SPEEDUP_OVER_TORCHFIX = 30.0
MAX_WARM_S = 0.5
MAX_SMALL_FILE_S = 0.3
MAX_PEAK_MB = 300.0
MAX_SUPERLINEAR = 1.15  # t(kx) / (k * t(1x)) above this is not "linear"
MIN_JOBS_EFFICIENCY = 0.7  # speed-up of default jobs over -j 1, per core
MAX_IDLE_BUSY = 0.15  # an idle machine is below this (fraction of all CPUs busy)

# Written at the top of the corpus (and so of every copy of it): the tree is a
# project of its own, so tools that look upward for configuration or a
# .gitignore do not reach the enclosing repository.  Fixit (via trailrunner)
# otherwise applies this repository's .gitignore, which ignores .bench-cache/,
# and checks nothing.
CORPUS_PYPROJECT = """\
# Written by bench/bench.py: this corpus is a project root of its own, with
# every tool on its default settings.
[tool.ruff]

[tool.fixit]
root = true

[tool.resnetlint]
"""

TOUCH_CANDIDATES = ("timm/timm/models/resnet.py", "torchvision/torchvision/models/resnet.py")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Running one command


@dataclass
class Sample:
    wall_s: float
    peak_kb: int  # largest resident set of the process or any descendant it waited for
    rc: int
    cpu_s: float = 0.0  # user + system seconds of the process and its workers
    others_busy: Optional[float] = None  # share of all CPUs that other processes used meanwhile
    stderr_tail: str = ""


class CommandFailed(RuntimeError):
    pass


def run_once(cmd: Sequence[str], cwd: Path, timeout: float, ok_codes: Iterable[int] = (0,)) -> Sample:
    """Run ``cmd`` once, stdout discarded: wall time by perf_counter around
    the child, peak memory from the child's own rusage (``os.wait4``: the
    same kernel figure as getrusage(RUSAGE_CHILDREN) or ``/usr/bin/time -f
    %M``, but for this one child, without a delta)."""
    with tempfile.TemporaryFile() as err:
        busy0 = cpu_busy_seconds()
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=str(cwd), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, env=child_env(), start_new_session=True)
        timer = threading.Timer(timeout, _kill_group, (proc.pid,))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            _kill_group(proc.pid)
            proc.wait()
            raise
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        busy1 = cpu_busy_seconds()
        proc.returncode = rc = os.waitstatus_to_exitcode(status)
        err.seek(max(0, err.seek(0, os.SEEK_END) - 2000))
        tail = err.read().decode("utf-8", "replace")
        if rc not in ok_codes:
            why = "timed out" if wall >= timeout else f"exit code {rc}"
            raise CommandFailed(f"{' '.join(cmd)}: {why}\n{tail}")
    cpu = usage.ru_utime + usage.ru_stime
    others = None
    if busy0 is not None and busy1 is not None:
        others = max(0.0, (busy1 - busy0 - cpu) / (wall * (os.cpu_count() or 1)))
    return Sample(wall, maxrss_kb(usage.ru_maxrss), rc, cpu, others, tail)


def cpu_busy_seconds() -> Optional[float]:
    """Seconds all CPUs together have spent busy since boot (/proc/stat)."""
    try:
        with open("/proc/stat") as fh:
            values = [int(v) for v in fh.readline().split()[1:8]]
    except (OSError, ValueError):
        return None
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / os.sysconf("SC_CLK_TCK")


def run_capture(cmd: Sequence[str], cwd: Path = REPO, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), cwd=str(cwd), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=child_env(), timeout=timeout)


_PYCACHE_PREFIX: Optional[Path] = None


def set_pycache_prefix(path: Path) -> None:
    global _PYCACHE_PREFIX
    _PYCACHE_PREFIX = path


def child_env() -> Dict[str, str]:
    """The environment of every measured command: no colour, and Python
    bytecode cached as in a user's install (even where PYTHONDONTWRITEBYTECODE
    is set), under <cache>/pycache rather than beside the sources."""
    env = dict(os.environ)
    env["NO_COLOR"] = "1"
    env.pop("FORCE_COLOR", None)
    env["COLUMNS"] = "200"  # help text on one line per option
    if _PYCACHE_PREFIX is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(_PYCACHE_PREFIX)
    return env


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def maxrss_kb(value: int) -> int:
    return value // 1024 if sys.platform == "darwin" else value  # bytes on macOS, KiB elsewhere


def tree_memory_peak_mb(cmd: Sequence[str], cwd: Path, timeout: float, interval: float = 0.02) -> Optional[float]:
    """Run ``cmd`` once and sample the summed memory of its whole process
    tree (PSS where readable, so pages shared by forked workers count once;
    else RSS) every ``interval`` seconds.  None where /proc is missing."""
    if not Path("/proc/self/status").exists():
        return None
    proc = subprocess.Popen(list(cmd), cwd=str(cwd), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=child_env(), start_new_session=True)
    deadline = time.monotonic() + timeout
    peak_kb = 0
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            peak_kb = max(peak_kb, sum(_process_kb(pid) for pid in _process_tree(proc.pid)))
            time.sleep(interval)
    finally:
        if proc.poll() is None:
            _kill_group(proc.pid)
        proc.wait()
    return peak_kb / 1024


def _process_tree(root: int) -> List[int]:
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    todo.extend(int(child) for child in fh.read().split())
        except OSError:
            pass
    return pids


def _process_kb(pid: int) -> int:
    for path, key in ((f"/proc/{pid}/smaps_rollup", "Pss:"), (f"/proc/{pid}/status", "VmRSS:")):
        try:
            with open(path) as fh:
                for line in fh:
                    if line.startswith(key):
                        return int(line.split()[1])
        except (OSError, ValueError):
            continue
    return 0


# --------------------------------------------------------------------------
# The corpus


@dataclass
class PackageInfo:
    name: str
    version: str
    wheel: str
    files: int
    lines: int


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def find_wheel(folder: Path, name: str, version: str) -> Optional[Path]:
    if not folder.is_dir():
        return None
    for path in sorted(folder.glob("*.whl")):
        parts = path.name.split("-")
        if len(parts) >= 3 and normalize(parts[0]) == normalize(name) and parts[1] == version:
            return path
    return None


def fetch_wheels(cache: Path, wheelhouse: Optional[Path]) -> Dict[str, Path]:
    """The pinned wheels in ``<cache>/wheels``: taken from ``wheelhouse``
    when it has them, else downloaded with pip (only those missing)."""
    wheels_dir = cache / "wheels"
    wheels_dir.mkdir(parents=True, exist_ok=True)
    missing = []
    for name, version in CORPUS:
        if find_wheel(wheels_dir, name, version):
            continue
        local = find_wheel(wheelhouse, name, version) if wheelhouse else None
        if local:
            shutil.copy2(local, wheels_dir / local.name)
        else:
            missing.append(f"{name}=={version}")
    if missing:
        log(f"downloading {', '.join(missing)} with pip ...")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--disable-pip-version-check", "-q", "-d", str(wheels_dir), *missing]
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"bench: pip download failed:\n{done.stderr[-3000:]}")
    wheels = {}
    for name, version in CORPUS:
        wheel = find_wheel(wheels_dir, name, version)
        if wheel is None:
            sys.exit(f"bench: no wheel for {name}=={version} in {wheels_dir}")
        wheels[name] = wheel
    return wheels


def extract_python_sources(wheel: Path, target: Path) -> None:
    """The wheel's ``*.py`` files under ``target`` (paths that would leave it
    are skipped).  Also used by tests/test_corpus.py."""
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            parts = Path(member).parts
            if not member.endswith(".py") or member.startswith("/") or ".." in parts:
                continue
            destination = target.joinpath(*parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(archive.read(member))


def unpack_corpus(cache: Path, wheels: Dict[str, Path]) -> List[PackageInfo]:
    """Unpack each wheel's ``*.py`` files into ``<cache>/corpus/<package>/``
    (once: a stamp under ``<cache>/stamps`` records what was unpacked)."""
    corpus, stamps, tmp_root = cache / "corpus", cache / "stamps", cache / "tmp"
    for folder in (corpus, stamps, tmp_root):
        folder.mkdir(parents=True, exist_ok=True)
    infos = []
    for name, version in CORPUS:
        wheel, target, stamp = wheels[name], corpus / name, stamps / f"{name}.json"
        if target.is_dir() and stamp.is_file():
            info = PackageInfo(**json.loads(stamp.read_text()))
            if info.wheel == wheel.name:
                infos.append(info)
                continue
        log(f"unpacking {wheel.name} ...")
        tmp = Path(tempfile.mkdtemp(dir=tmp_root))
        extract_python_sources(wheel, tmp)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        files, lines = count_tree(target)
        info = PackageInfo(name, version, wheel.name, files, lines)
        stamp.write_text(json.dumps(asdict(info)))
        infos.append(info)
    marker = corpus / "pyproject.toml"
    if not marker.is_file() or marker.read_text() != CORPUS_PYPROJECT:
        marker.write_text(CORPUS_PYPROJECT)
    return infos


def python_files(tree: Path) -> List[Path]:
    return sorted(p for p in tree.rglob("*.py") if p.is_file())


def count_lines(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def count_tree(tree: Path) -> Tuple[int, int]:
    paths = python_files(tree)
    return len(paths), sum(count_lines(p.read_bytes()) for p in paths)


def prime_page_cache(tree: Path) -> None:
    """Read every file once, so that no tool pays for the first disk read."""
    for path in python_files(tree):
        path.read_bytes()


def copy_tree(source: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)


def scaled_copies(cache: Path, corpus: Path, signature: str, count: int) -> List[Path]:
    """``<cache>/scaled/copy1..copyN``, each a full copy of the corpus
    (rebuilt when the corpus changed); k copies together are the k-x tree."""
    root, stamp = cache / "scaled", cache / "stamps" / "scaled.json"
    copies = [root / f"copy{i}" for i in range(1, count + 1)]
    stamped = json.loads(stamp.read_text()) if stamp.is_file() else {}
    if stamped.get("signature") != signature or stamped.get("count", 0) < count or not all(c.is_dir() for c in copies):
        log(f"copying the corpus {count}x into {root} ...")
        for copy in copies:
            copy_tree(corpus, copy)
        stamp.write_text(json.dumps({"signature": signature, "count": count}))
    return copies


def pick_small_file(corpus: Path, target_lines: int = 100) -> Optional[Path]:
    """The corpus module defining an ``nn.Module`` whose length is closest to
    ``target_lines`` (ties: the first path)."""
    best = None
    for path in python_files(corpus):
        text = path.read_text("utf-8", "replace")
        if "nn.Module" not in text or "def forward" not in text:
            continue
        key = (abs(count_lines(text.encode()) - target_lines), str(path))
        if best is None or key < best[0]:
            best = (key, path)
    return best[1] if best else None


# --------------------------------------------------------------------------
# The tools


@dataclass
class Tool:
    name: str
    path: Optional[str]
    version: str = ""
    note: str = ""  # why it is missing, or how it was found


def resnetlint_tool(explicit: Optional[str]) -> Tool:
    sibling = Path(os.path.dirname(sys.executable)) / "resnetlint"
    path = explicit or (str(sibling) if sibling.exists() else shutil.which("resnetlint"))
    if not path:
        sys.exit("bench: resnetlint not found (install the project, or pass --resnetlint PATH)")
    return Tool("resnetlint", path, first_line(run_capture([path, "--version"]).stdout))


def resnetlint_flags(path: str) -> Dict[str, bool]:
    """Which optional flags this resnetlint has, read from its --help, so the
    bench runs both before and after they exist."""
    done = run_capture([path, "--help"])
    text = done.stdout + done.stderr
    def has(flag: str) -> bool:
        return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None
    return {flag: has(flag) for flag in ("--no-cache", "--no-trace", "--cache-dir", "--jobs")}


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def tool_version(path: str) -> str:
    try:
        done = run_capture([path, "--version"], timeout=60)
        return first_line(done.stdout or done.stderr)
    except (OSError, subprocess.TimeoutExpired):
        return ""


def find_tool(name: str, explicit: Optional[str], cache: Path, install: bool, executable: Optional[str] = None) -> Tool:
    """An explicit path, else PATH, else beside this Python, else a venv this
    script made under ``<cache>/tools``; with ``install``, make that venv."""
    executable = executable or name
    venv_bin = cache / "tools" / name / "bin" / executable
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            sys.exit(f"bench: --{name} {explicit}: not an executable file")
        path, how = explicit, "given"
    else:
        sibling = Path(os.path.dirname(sys.executable)) / executable
        candidates = (shutil.which(executable), str(sibling) if sibling.exists() else None,
                      str(venv_bin) if venv_bin.exists() else None)
        path, how = next((c for c in candidates if c), None), "found"
        if path is None and install:
            path, how = install_tool(name, cache, executable), "installed"
    if path is None:
        flag = "--install-ruff" if name == "ruff" else "--install-others"
        return Tool(name, None, note=f"not installed (pass --{name} PATH, put it on PATH, or use {flag} "
                                     f"to pip-install {TOOL_PINS[name][0]} into {venv_bin.parent.parent})")
    return Tool(name, path, tool_version(path), note=how)


def install_tool(name: str, cache: Path, executable: str) -> Optional[str]:
    """A venv ``<cache>/tools/<name>`` with the pinned tool (``--no-deps``)
    and its pure-Python requirements; refuses to keep one with torch in it."""
    spec, requirements = TOOL_PINS[name]
    venv = cache / "tools" / name
    log(f"installing {spec} into {venv} ...")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    steps = [[sys.executable, "-m", "venv", "--clear", str(venv)], pip + ["--no-deps", spec]]
    if requirements:
        steps.append(pip + requirements)
    for step in steps:
        done = subprocess.run(step, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if done.returncode != 0:
            log(f"bench: installing {name} failed: {done.stderr[-1500:]}")
            return None
    listed = run_capture([str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "freeze"]).stdout
    if re.search(r"(?im)^(torch|nvidia-[\w-]+)==", listed):
        log(f"bench: {name}'s venv pulled torch/CUDA packages; removing it")
        shutil.rmtree(venv, ignore_errors=True)
        return None
    path = venv / "bin" / executable
    return str(path) if path.exists() else None


# --------------------------------------------------------------------------
# Scenarios


@dataclass
class Result:
    key: str
    label: str
    cmd: List[str] = field(default_factory=list)
    samples: List[Sample] = field(default_factory=list)
    on_corpus: bool = False  # ran on the whole 1x corpus: comparable with Ruff and TorchFix
    note: str = ""

    @property
    def walls(self) -> List[float]:
        return [s.wall_s for s in self.samples]

    @property
    def median(self) -> Optional[float]:
        return statistics.median(self.walls) if self.samples else None

    @property
    def peak_mb(self) -> Optional[float]:
        return max(s.peak_kb for s in self.samples) / 1024 if self.samples else None

    def to_json(self) -> dict:
        return {"key": self.key, "label": self.label, "cmd": self.cmd, "on_corpus": self.on_corpus,
                "note": self.note, "median_s": self.median,
                "min_s": min(self.walls) if self.samples else None,
                "max_s": max(self.walls) if self.samples else None, "peak_mb": self.peak_mb,
                "samples": [asdict(s) for s in self.samples]}


class Bench:
    def __init__(self, args: argparse.Namespace, cache: Path, corpus: Path, resnetlint: Tool, flags: Dict[str, bool]):
        self.args, self.cache, self.corpus = args, cache, corpus
        self.resnetlint, self.flags = resnetlint, flags
        self.results: List[Result] = []
        self.extra: Dict[str, object] = {}
        self.notes: List[str] = []
        self.resnetlint_ready = False
        self.busy_rows = 0
        self.small_file = pick_small_file(corpus) or SEED_FILE
        self.extra["small_corpus_file"] = str(self.small_file)

    # -- helpers

    def measure(self, key: str, label: str, cmd: List[str], cwd: Path, repeat: Optional[int] = None,
                ok_codes: Iterable[int] = (0,), on_corpus: bool = False, before_each=None) -> Result:
        result = Result(key, label, cmd, on_corpus=on_corpus)
        repeat = repeat or self.args.repeat
        for i in range(repeat):
            if before_each:
                before_each(i)
            log(f"  {label}: run {i + 1}/{repeat} ...")
            try:
                result.samples.append(run_once(cmd, cwd, self.args.timeout, ok_codes))
            except CommandFailed as exc:
                result.note = f"failed: {str(exc).splitlines()[0]}"
                self.notes.append(f"{label} failed:\n{exc}")
                log(f"  {label}: FAILED\n{exc}")
                break
            log(f"    {result.samples[-1].wall_s:.3f} s, {result.samples[-1].peak_kb / 1024:.0f} MB")
        busy = max((s.others_busy for s in result.samples if s.others_busy is not None), default=0.0)
        if busy > MAX_IDLE_BUSY:
            result.note = (result.note + "; " if result.note else "") + f"other processes used {busy:.0%} of the CPUs"
            self.busy_rows += 1
        self.results.append(result)
        return result

    def skipped(self, key: str, label: str, why: str) -> None:
        self.results.append(Result(key, label, note=why))

    def lint_cmd(self, paths: Sequence[Path], cold: bool = True, jobs: Optional[int] = None,
                 output: str = "concise") -> List[str]:
        cmd = [self.resnetlint.path, *map(str, paths), "--format", output, "--exit-zero"]
        if cold and self.flags["--no-cache"]:
            cmd.append("--no-cache")
        if self.flags["--no-trace"]:
            cmd.append("--no-trace")
        if jobs is not None:
            cmd += ["-j", str(jobs)]
        return cmd

    def warm_up(self, cmd: List[str], cwd: Path, ok_codes: Iterable[int] = (0,)) -> None:
        """An untimed run, so that no timed run compiles bytecode first."""
        try:
            run_once(cmd, cwd, self.args.timeout, ok_codes)
        except CommandFailed as exc:
            self.notes.append(f"warm-up failed: {str(exc).splitlines()[0]}")

    def warm_up_resnetlint(self) -> None:
        if self.resnetlint_ready:
            return
        log("resnetlint: warm-up runs (one file, one package) ...")
        self.resnetlint_ready = True
        self.warm_up(self.lint_cmd([self.small_file]), self.cache)
        self.warm_up(self.lint_cmd([self.corpus / WARM_UP_PACKAGE]), self.cache)

    def result(self, key: str) -> Optional[Result]:
        return next((r for r in self.results if r.key == key and r.samples), None)

    # -- the scenarios

    def ruff(self, tool: Tool) -> None:
        label = "Ruff (--select ALL)"
        if not tool.path:
            return self.skipped("ruff", label, tool.note)
        cmd = [tool.path, "check", "--no-cache", "--select", "ALL", "--exit-zero", str(self.corpus)]
        # Ruff honours .gitignore files; make sure it really sees the corpus.
        shown = run_capture([tool.path, "check", "--no-cache", "--select", "ALL", "--show-files", str(self.corpus)])
        seen = sum(1 for line in shown.stdout.splitlines() if line.strip().endswith(".py"))
        self.extra["ruff_files_seen"] = seen
        if seen != self.extra["corpus_files"]:
            self.notes.append(f"Ruff sees {seen} files, the corpus has {self.extra['corpus_files']}")
        self.measure("ruff", label, cmd, self.corpus.parent, on_corpus=True)

    def cold(self) -> None:
        jobs = default_jobs()
        # An untimed run first: checks the tree is really seen, records findings.
        log("resnetlint: checking the corpus once (json) ...")
        done = run_capture(self.lint_cmd([self.corpus], output="json"), cwd=self.cache, timeout=self.args.timeout)
        try:
            summary = json.loads(done.stdout)["summary"]
        except (ValueError, KeyError):
            sys.exit(f"bench: resnetlint --format json failed on the corpus:\n{done.stderr[-3000:]}")
        self.extra["resnetlint_summary"] = summary
        if summary.get("files") != self.extra["corpus_files"]:
            self.notes.append(f"resnetlint checked {summary.get('files')} files, the corpus has "
                              f"{self.extra['corpus_files']}")
        self.measure("cold", f"resnetlint cold (default -j = {jobs})", self.lint_cmd([self.corpus]), self.cache,
                     on_corpus=True)
        log("  resnetlint cold: sampling the memory of all its processes ...")
        self.extra["cold_tree_peak_mb"] = tree_memory_peak_mb(self.lint_cmd([self.corpus]), self.cache,
                                                              self.args.timeout)

    def jobs(self) -> None:
        if not self.flags["--jobs"]:
            return self.skipped("cold-j1", "resnetlint cold, -j 1", "n/a: no -j/--jobs in resnetlint --help")
        self.measure("cold-j1", "resnetlint cold, -j 1", self.lint_cmd([self.corpus], jobs=1), self.cache,
                     on_corpus=True)

    def cache_reruns(self) -> None:
        labels = {"warm": "resnetlint warm rerun (nothing changed)",
                  "touch-mtime": "resnetlint rerun, one file's mtime touched",
                  "edit-one": "resnetlint rerun, one file edited",
                  "edit-one-alone": "resnetlint cold, that file alone"}
        if not self.flags["--no-cache"]:
            for key, label in labels.items():
                self.skipped(key, label, "n/a: resnetlint has no cache (no --no-cache in --help)")
            return
        scratch = self.cache / "scratch"
        shutil.rmtree(scratch, ignore_errors=True)
        tree = scratch / "corpus"
        copy_tree(self.corpus, tree)
        touched = next((tree / c for c in TOUCH_CANDIDATES if (tree / c).is_file()), None) or python_files(tree)[0]
        self.extra["touched_file"] = str(touched.relative_to(tree))
        warm = self.lint_cmd([tree], cold=False)
        if self.flags["--cache-dir"]:
            warm += ["--cache-dir", str(scratch / ".resnetlint_cache")]
        log("resnetlint: filling the cache ...")
        self.warm_up(warm, scratch)
        self.measure("warm", labels["warm"], warm, scratch, on_corpus=True)

        def touch(_: int) -> None:
            now = time.time()
            os.utime(touched, (now, now))

        def edit(_: int) -> None:
            with open(touched, "a", encoding="utf-8") as fh:
                fh.write(f"# bench edit {time.time_ns()}\n")  # new content every time, never in a cache

        self.measure("touch-mtime", labels["touch-mtime"], warm, scratch, on_corpus=True, before_each=touch)
        self.measure("edit-one", labels["edit-one"], warm, scratch, on_corpus=True, before_each=edit)
        self.measure("edit-one-alone", labels["edit-one-alone"], self.lint_cmd([touched]), scratch)

    def small(self) -> None:
        self.measure("startup", "resnetlint --version (start-up only)", [self.resnetlint.path, "--version"], self.cache)
        if SEED_FILE.is_file():
            self.measure("small-seed", f"resnetlint one small file ({SEED_FILE.name}, "
                                       f"{count_lines(SEED_FILE.read_bytes())} lines)",
                         self.lint_cmd([SEED_FILE]), self.cache)
        if self.small_file != SEED_FILE:
            small = self.small_file
            self.measure("small-corpus", f"resnetlint one small file ({small.name}, "
                                         f"{count_lines(small.read_bytes())} lines)",
                         self.lint_cmd([small]), self.cache)

    def scaling(self) -> None:
        copies = scaled_copies(self.cache, self.corpus, self.extra["corpus_signature"], 4)
        for k in (1, 2, 4):
            for copy in copies[:k]:
                prime_page_cache(copy)
            self.measure(f"scale-{k}x", f"resnetlint cold, corpus x{k}", self.lint_cmd(copies[:k]), self.cache)

    def slow_tool(self, tool: Tool, cmd_tail: List[str], ok_codes: Iterable[int]) -> None:
        label = {"torchfix": "TorchFix", "fixit": "Fixit"}[tool.name]
        if not tool.path:
            return self.skipped(tool.name, label, tool.note)
        prime_page_cache(self.corpus)
        self.warm_up([tool.path, *cmd_tail, str(self.small_file)], self.corpus.parent, ok_codes)
        result = self.measure(tool.name, label, [tool.path, *cmd_tail, str(self.corpus)], self.corpus.parent,
                              repeat=self.args.slow_repeat or self.args.repeat, ok_codes=ok_codes, on_corpus=True)
        # Both say on stderr how many files they checked (TorchFix only those
        # that mention "torch").
        counted = re.search(r"(?:Finished checking |\s)(\d+) files", result.samples[-1].stderr_tail) \
            if result.samples else None
        if counted:
            self.extra[f"{tool.name}_files_checked"] = int(counted.group(1))
            result.label += f" ({counted.group(1)} files checked)"


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------
# Targets


@dataclass
class Target:
    name: str
    measured: str
    met: Optional[bool]  # None: not measured


def evaluate_targets(bench: Bench) -> List[Target]:
    r = {res.key: res.median for res in bench.results if res.samples}
    targets = []

    def add(name: str, keys: Sequence[str], check) -> None:
        if all(k in r for k in keys):
            measured, met = check(*(r[k] for k in keys))
            targets.append(Target(name, measured, met))
        else:
            missing = [res for res in bench.results if res.key in keys and not res.samples]
            why = missing[0].note if missing and missing[0].note else "not run"
            targets.append(Target(name, f"not measured: {why}", None))

    add(f"cold corpus <= {MAX_RATIO_TO_RUFF:g}x Ruff", ["cold", "ruff"],
        lambda c, f: (f"{c:.2f} s vs {f:.2f} s = {c / f:.2f}x", c / f <= MAX_RATIO_TO_RUFF))
    add(f">= {MIN_SPEEDUP_OVER_TORCHFIX:g}x faster than TorchFix", ["cold", "torchfix"],
        lambda c, t: (f"{t:.1f} s vs {c:.2f} s = {t / c:.1f}x", t / c >= MIN_SPEEDUP_OVER_TORCHFIX))
    add(f"warm rerun < {MAX_WARM_S:g} s", ["warm"], lambda w: (f"{w:.3f} s", w < MAX_WARM_S))
    add("one edited file re-analyses only that file", ["edit-one", "warm", "edit-one-alone"],
        lambda e, w, a: (f"{e:.3f} s; extra over warm {e - w:.3f} s vs {a:.3f} s for that file alone",
                         e - w <= a))
    smalls = [k for k in ("small-seed", "small-corpus") if k in r]
    add(f"one small file < {MAX_SMALL_FILE_S:g} s", smalls or ["small-seed"],
        lambda *ts: (", ".join(f"{t:.3f} s" for t in ts), max(ts) < MAX_SMALL_FILE_S))
    targets.append(memory_target(bench))
    add("linear growth (1x, 2x, 4x)", ["scale-1x", "scale-2x", "scale-4x"],
        lambda a, b, c: (f"{a:.2f} / {b:.2f} / {c:.2f} s; per copy x{b / (2 * a):.2f}, x{c / (4 * a):.2f} of 1x",
                         max(b / (2 * a), c / (4 * a)) <= MAX_SUPERLINEAR))
    jobs = default_jobs()
    if jobs > 1:
        add(f"-j scaling ({jobs} cores)", ["cold-j1", "cold"],
            lambda one, many: (f"-j 1 {one:.2f} s, -j {jobs} {many:.2f} s: speed-up {one / many:.2f}x "
                               f"({one / many / jobs:.0%} per core)", one / many / jobs >= MIN_JOBS_EFFICIENCY))
    else:
        targets.append(Target("-j scaling", "n/a on a 1-core machine", None))
    return targets


def memory_target(bench: Bench) -> Target:
    name = f"peak memory < {MAX_PEAK_MB:g} MB"
    peaks = {}
    for key in ("cold", "cold-j1"):
        res = bench.result(key)
        if res:
            peaks[key] = res.peak_mb
    tree = bench.extra.get("cold_tree_peak_mb")
    if not peaks and tree is None:
        return Target(name, "not measured", None)
    parts = [f"largest process {v:.0f} MB ({k})" for k, v in peaks.items()]
    if tree is not None:
        parts.append(f"all processes together {tree:.0f} MB (PSS, cold)")
    worst = max(list(peaks.values()) + ([tree] if tree is not None else []))
    return Target(name, "; ".join(parts), worst < MAX_PEAK_MB)


# --------------------------------------------------------------------------
# Report


def fmt(value: Optional[float], digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def ratio(a: Optional[float], b: Optional[float]) -> str:
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    def line(row):
        return "| " + " | ".join(str(cell).ljust(width) for cell, width in zip(row, widths)) + " |"
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def results_table(bench: Bench, baseline: Optional[dict]) -> str:
    ruff = bench.result("ruff")
    torchfix = bench.result("torchfix")
    header = ["tool / scenario", "median s", "min s", "max s", "peak MB", "vs Ruff", "TorchFix / this", "note"]
    if baseline:
        header += ["baseline median s", "change"]
        old = {r["key"]: r.get("median_s") for r in baseline.get("results", [])}
    rows = []
    for res in bench.results:
        if not res.samples:
            row = [res.label, "—", "—", "—", "—", "—", "—", res.note or "not run"]
        else:
            comparable = res.on_corpus
            row = [res.label, fmt(res.median), fmt(min(res.walls)), fmt(max(res.walls)), fmt(res.peak_mb, 0),
                   ratio(res.median, ruff.median) if comparable and ruff else "—",
                   ratio(torchfix.median, res.median) if comparable and torchfix else "—", res.note]
        if baseline:
            before = old.get(res.key)
            row += [fmt(before), ratio(res.median, before) if res.samples else "—"]
        rows.append(row)
    return markdown_table(header, rows)


def targets_table(targets: Sequence[Target]) -> str:
    mark = {True: "yes", False: "**no**", None: "not measured"}
    return markdown_table(["target", "measured", "met"], [[t.name, t.measured, mark[t.met]] for t in targets])


def cpu_busy(interval: float = 1.0) -> Optional[float]:
    """The share of all CPUs busy over the next ``interval`` seconds."""
    before = cpu_busy_seconds()
    time.sleep(interval)
    after = cpu_busy_seconds()
    if before is None or after is None:
        return None
    return (after - before) / (interval * (os.cpu_count() or 1))


def source_fingerprint() -> str:
    """A digest of this checkout's Python sources (paths, sizes, mtimes):
    resnetlint is usually installed editable, so an edit during the bench
    changes what is measured."""
    digest = hashlib.sha1()
    for folder in ("resnetlint", "rules"):
        for path in sorted((REPO / folder).rglob("*.py")):
            stat = path.stat()
            digest.update(f"{path.relative_to(REPO)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def machine_info(resnetlint: Tool) -> Dict[str, object]:
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "")
    except OSError:
        model = platform.processor()
    memory = ""
    try:
        with open("/proc/meminfo") as fh:
            kb = int(next(line for line in fh if line.startswith("MemTotal")).split()[1])
            memory = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    commit = run_capture(["git", "rev-parse", "--short", "HEAD"]).stdout.strip()
    dirty = run_capture(["git", "status", "--porcelain", "--untracked-files=no"]).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(), "usable_cpus": default_jobs(), "cpu_model": model, "memory": memory,
        "platform": platform.platform(), "python": platform.python_version(),
        "resnetlint": resnetlint.version, "resnetlint_path": resnetlint.path,
        "git_commit": commit + ("+dirty" if commit and dirty else ""),
    }


def tool_line(tool: Tool) -> str:
    if not tool.path:
        return f"{tool.name} {tool.note}"
    version = tool.version if tool.name.lower() in tool.version.lower() else f"{tool.name} {tool.version}"
    return f"{version.strip()} ({tool.path})"


def report(bench: Bench, machine: dict, tools: Dict[str, Tool], packages: List[PackageInfo],
           targets: List[Target], baseline: Optional[dict]) -> str:
    files, lines = bench.extra["corpus_files"], bench.extra["corpus_lines"]
    out = ["# resnetlint benchmark", "",
           f"{machine['date']} · {machine['cpu_model']} · {machine['usable_cpus']} of {machine['cpu_count']} CPUs · "
           f"{machine['memory']} · Python {machine['python']} · {machine['resnetlint']} ({machine['git_commit']})", "",
           f"Corpus: {files:,} files, {lines:,} lines ("
           + ", ".join(f"{p.name} {p.version}: {p.files} files" for p in packages) + ")", "",
           "Tools: " + "; ".join(tool_line(t) for t in tools.values()), "",
           f"Repeats: {bench.args.repeat}"
           + (f" (TorchFix/Fixit: {bench.args.slow_repeat})" if bench.args.slow_repeat else "")
           + ". Wall seconds; peak MB is the largest single process (workers included).", "",
           results_table(bench, baseline), "", "## Targets", "", targets_table(targets)]
    summary = bench.extra.get("resnetlint_summary")
    if summary:
        out += ["", f"resnetlint on the corpus: {summary.get('files')} files, {summary.get('findings')} findings."]
    if bench.notes:
        out += ["", "## Notes", ""] + [f"- {n.splitlines()[0]}" for n in bench.notes]
    return "\n".join(out)


# --------------------------------------------------------------------------
# Main


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Benchmark resnetlint against Ruff, TorchFix and Fixit on a model zoo "
                                            "(see bench/README.md).")
    p.add_argument("--cache", metavar="DIR", type=Path, default=DEFAULT_CACHE,
                   help="where wheels, corpus, copies and tool venvs are kept (default: <repo>/.bench-cache)")
    p.add_argument("--wheelhouse", metavar="DIR", type=Path,
                   help="take the pinned wheels from this folder when they are there (offline)")
    p.add_argument("--repeat", metavar="N", type=int, default=3, help="runs per scenario (default: 3)")
    p.add_argument("--slow-repeat", metavar="N", type=int, help="runs for TorchFix and Fixit (default: --repeat)")
    p.add_argument("--timeout", metavar="S", type=float, default=1800, help="seconds allowed per run (default: 1800)")
    p.add_argument("--json", metavar="FILE", type=Path, help="also write every raw number to FILE")
    p.add_argument("--baseline", metavar="FILE", type=Path,
                   help="a --json FILE of an earlier run: adds before/after columns")
    p.add_argument("--resnetlint", metavar="PATH", help="resnetlint to measure (default: beside this Python, else PATH)")
    for tool in ("ruff", "torchfix", "fixit"):
        p.add_argument(f"--{tool}", metavar="PATH",
                       help=f"{tool} executable (default: on PATH, beside this Python, or <cache>/tools/{tool})")
    p.add_argument("--install-ruff", action="store_true",
                   help=f"if Ruff is not found, pip-install {TOOL_PINS['ruff'][0]} into <cache>/tools")
    p.add_argument("--install-others", action="store_true",
                   help="if TorchFix/Fixit are not found, pip-install them into <cache>/tools (never torch)")
    p.add_argument("--skip-slow-tools", action="store_true", help="do not run TorchFix and Fixit (minutes each)")
    p.add_argument("--only", metavar="A,B", help=f"scenarios to run, of: {', '.join(ALL_SCENARIOS)} (default: all)")
    p.add_argument("--skip", metavar="A,B", help="scenarios not to run")
    args = p.parse_args(argv)
    chosen = set(args.only.split(",")) if args.only else set(ALL_SCENARIOS)
    chosen -= set(args.skip.split(",")) if args.skip else set()
    if args.skip_slow_tools:
        chosen -= set(SLOW_TOOLS)
    unknown = chosen - set(ALL_SCENARIOS)
    if unknown:
        p.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if args.repeat < 1 or (args.slow_repeat is not None and args.slow_repeat < 1):
        p.error("--repeat and --slow-repeat must be at least 1")
    args.scenarios = chosen
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    cache = args.cache.resolve()
    set_pycache_prefix(cache / "pycache")
    busy_before = cpu_busy()
    sources_before = source_fingerprint()
    baseline = json.loads(args.baseline.read_text()) if args.baseline else None

    packages = unpack_corpus(cache, fetch_wheels(cache, args.wheelhouse))
    corpus = cache / "corpus"
    files, lines = count_tree(corpus)
    log(f"corpus: {files:,} files, {lines:,} lines in {corpus}")
    prime_page_cache(corpus)

    resnetlint = resnetlint_tool(args.resnetlint)
    flags = resnetlint_flags(resnetlint.path)
    log(f"{resnetlint.version} at {resnetlint.path}; flags: " + ", ".join(f"{k} {'yes' if v else 'no'}"
                                                                         for k, v in flags.items()))
    scenarios = args.scenarios
    tools = {
        "resnetlint": resnetlint,
        "ruff": find_tool("ruff", args.ruff, cache, args.install_ruff and "ruff" in scenarios),
        "torchfix": find_tool("torchfix", args.torchfix, cache, args.install_others and "torchfix" in scenarios),
        "fixit": find_tool("fixit", args.fixit, cache, args.install_others and "fixit" in scenarios),
    }

    bench = Bench(args, cache, corpus, resnetlint, flags)
    bench.extra.update(corpus_files=files, corpus_lines=lines, resnetlint_flags=flags,
                       corpus_signature=",".join(p.wheel for p in packages) + f":{files}:{lines}")
    steps = [("ruff", lambda: bench.ruff(tools["ruff"])), ("cold", bench.cold), ("jobs", bench.jobs),
             ("cache", bench.cache_reruns), ("small", bench.small), ("scaling", bench.scaling),
             ("torchfix", lambda: bench.slow_tool(tools["torchfix"], [], (0, 1))),
             ("fixit", lambda: bench.slow_tool(tools["fixit"], ["lint"], (0, 1)))]
    for key, step in steps:
        if key in scenarios:
            log(f"== {key}")
            if key in RESNETLINT_SCENARIOS:
                bench.warm_up_resnetlint()
            step()
        elif key in SLOW_TOOLS:
            bench.skipped(key, {"torchfix": "TorchFix", "fixit": "Fixit"}[key],
                          "skipped (--skip-slow-tools)" if args.skip_slow_tools else "skipped")

    targets = evaluate_targets(bench)
    machine = machine_info(resnetlint)
    machine["cpu_busy_before"], machine["cpu_busy_after"] = busy_before, cpu_busy()
    add_reliability_notes(bench, machine, sources_before)
    print(report(bench, machine, tools, packages, targets, baseline))
    if args.json:
        args.json.write_text(json.dumps({
            "machine": machine,
            "corpus": {"path": str(corpus), "files": files, "lines": lines, "packages": [asdict(p) for p in packages]},
            "tools": {name: asdict(tool) for name, tool in tools.items()},
            "settings": {"repeat": args.repeat, "slow_repeat": args.slow_repeat, "scenarios": sorted(scenarios)},
            "extra": bench.extra,
            "results": [res.to_json() for res in bench.results],
            "targets": [asdict(t) for t in targets],
            "notes": bench.notes,
        }, indent=2) + "\n")
        log(f"raw numbers written to {args.json}")
    return 0


def add_reliability_notes(bench: Bench, machine: dict, sources_before: str) -> None:
    """Say when the figures cannot be trusted: other work on the machine, or
    resnetlint's sources edited while the bench ran."""
    if bench.busy_rows:
        bench.notes.insert(0, f"{bench.busy_rows} row(s) ran while other processes used more than "
                              f"{MAX_IDLE_BUSY:.0%} of the CPUs (see their notes): those figures are noisy; "
                              "run again on an idle machine")
    for when in ("before", "after"):
        busy = machine[f"cpu_busy_{when}"]
        if busy is not None and busy > MAX_IDLE_BUSY:
            bench.notes.append(f"other work kept the CPUs {busy:.0%} busy just {when} the bench")
    if source_fingerprint() != sources_before:
        bench.notes.append("resnetlint's sources in this checkout changed while the bench ran: "
                           "the figures may mix two versions")


if __name__ == "__main__":
    sys.exit(main())
