"""Hardening: no crash, no lost byte, no surprise.

Every kind of bad input goes through the real command line (a subprocess
running the installed ``resnetlint``): each gets one clear line naming the
file (and the position where there is one), the other files of the same run
are still reported, and the exit code says what happened.  Then: internal
errors are contained (RL999), the trace survives hostile user code and leaves
no process behind, and ``--fix`` interrupted at random moments never leaves a
file truncated or half fixed.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import List, Optional, Sequence

import pytest

from resnetlint.api import Settings, check_paths
from resnetlint.engine import check_text

from helpers import FIXTURES

BUGGY = FIXTURES / "seeds" / "seed003_block.py"
SCRIPT = Path(sys.executable).with_name("resnetlint")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "resnetlint"]
# What seed003_block.py reports, one concise line each (the good file that
# must still be reported next to every bad one).
BUGGY_LINES = (
    ":44:13: RL102 [residual-overwritten] `out` holds the main-path result and is overwritten with the shortcut",
    ":37:35: RL201 [channel-mismatch]",  # no [*]: its fix is unsafe (it changes a weight's shape)
)
REPORT = "please report this at https://github.com/resnetlint/resnetlint/issues"


def run_cli(args: Sequence[str], cwd: Path, *, trace: bool = False, timeout: float = 120,
            command: Optional[List[str]] = None, **popen) -> subprocess.CompletedProcess:
    extra = ["--no-cache"] + ([] if trace else ["--no-trace"])
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    env.pop("FORCE_COLOR", None)
    return subprocess.run((command or COMMAND) + [str(a) for a in args] + extra, cwd=str(cwd), env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **popen)


def lines_of(result: subprocess.CompletedProcess) -> List[str]:
    return result.stdout.splitlines()


def assert_buggy_reported(result, prefix: str) -> None:
    for expected in BUGGY_LINES:
        assert any(line.startswith(prefix) and expected in line for line in lines_of(result)), \
            (expected, result.stdout[-3000:])


# ---------------------------------------------------------------------------
# 1. Bad input: one line each, the run goes on
# ---------------------------------------------------------------------------

def _write_bad_tree(root: Path) -> None:
    shutil.copy(BUGGY, root / "good.py")
    (root / "syntax.py").write_text("def f(:\n    pass\n")
    (root / "py2.py").write_text('print "x"\n')
    (root / "nul.py").write_bytes(b"x = 1\n\0y = 2\n")
    (root / "empty.py").write_bytes(b"")
    (root / "undecodable.py").write_bytes(b'x = "\xff\xfe"\n')
    (root / "badcookie.py").write_bytes(b"# -*- coding: klingon -*-\nx = 1\n")
    (root / "wrongcookie.py").write_bytes(b'# -*- coding: ascii -*-\nx = "\xc3\xa9"\n')
    (root / "bomcookie.py").write_bytes(b"\xef\xbb\xbf# -*- coding: latin-1 -*-\nx = 1\n")
    # A BOM is fine: the file is checked and positions are the same as without it.
    (root / "bom.py").write_bytes(b"\xef\xbb\xbf" + BUGGY.read_bytes())
    (root / "latin.py").write_bytes(b'# -*- coding: latin-1 -*-\nx = "caf\xe9"\n')
    (root / "deep_unary.py").write_text("x = " + "-" * 100_000 + "1\n")
    (root / "deep_sum.py").write_text("x = " + "+".join(["1"] * 5_000) + "\n")
    (root / "deep_parens.py").write_text("x = " + "(" * 5_000 + "1" + ")" * 5_000 + "\n")
    (root / "long_line.py").write_text("x = [" + "1," * 100_000 + "]\n")  # 200 KB on one line: fine
    (root / "long_bad_line.py").write_text("x = [" + "1," * 100_000 + " def]\n")
    (root / "dir.py").mkdir()  # a directory named like a module is walked, not read
    (root / "dir.py" / "inner.py").write_text("def g(:\n")
    os.symlink("loop.py", root / "loop.py")  # a symbolic link loop, and an editor's dangling lock link
    os.symlink("someone@host.1234:1700000000", root / ".#good.py")
    os.mkfifo(root / "fifo.py")  # reading it would block forever
    # 50 MB of generated data: skipped, unread, with the size.
    row = b"    0.123456789, 0.987654321, 0.555555555, 0.111111111,\n"
    size = 50 * 1024 * 1024
    data = b"DATA = [\n" + row * (size // len(row))
    (root / "huge.py").write_bytes(data + b"#" * (size - len(data) - 2) + b"\n]")


EXPECTED_BAD_LINES = [
    "./syntax.py:1:7: RL000 [syntax-error] SyntaxError: invalid syntax",
    "./py2.py:1:1: RL000 [syntax-error] SyntaxError: Missing parentheses in call to 'print'. Did you mean print(...)?",
    "./nul.py:2:1: RL000 [syntax-error] SyntaxError: source code cannot contain null bytes",
    "./deep_unary.py:1:1: RL000 [syntax-error] SyntaxError: too deeply nested for Python's parser "
    "(MemoryError: its parser stack overflowed)",
    "./deep_sum.py:1:1: RL000 [syntax-error] SyntaxError: too deeply nested for Python's parser (RecursionError)",
    "./deep_parens.py:1:205: RL000 [syntax-error] SyntaxError: too many nested parentheses",
    "./long_bad_line.py:1:200007: RL000 [syntax-error] SyntaxError: invalid syntax",
    "./dir.py/inner.py:1:7: RL000 [syntax-error] SyntaxError: invalid syntax",
    "./undecodable.py: error: line 1, column 6: bytes that are not valid utf-8 (invalid start byte); "
    "the file declares no encoding, so it must be utf-8",
    "./badcookie.py: error: line 1: unknown encoding 'klingon' in the coding declaration",
    "./wrongcookie.py: error: line 2, column 6: bytes that are not valid ascii (ordinal not in range(128))",
    "./bomcookie.py: error: line 1: the file starts with a UTF-8 byte order mark but declares the encoding 'latin-1'",
    "./huge.py: error: file is 50.0 MB, larger than the 10 MB resnetlint reads (generated code?); skipped",
]


def test_every_bad_input_gets_one_line_and_the_run_goes_on(tmp_path):
    _write_bad_tree(tmp_path)
    started = time.monotonic()
    result = run_cli([".", "--format", "concise"], tmp_path)
    elapsed = time.monotonic() - started
    out = lines_of(result)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and result.stderr == "", result.stderr
    for expected in EXPECTED_BAD_LINES:
        assert expected in out, (expected, out)
    # the good file and its twin with a BOM (same positions) are fully reported
    assert_buggy_reported(result, "./good.py:")
    assert_buggy_reported(result, "./bom.py:")
    good = [line.split(":", 1)[1] for line in out if line.startswith("./good.py:")]
    assert [line.split(":", 1)[1] for line in out if line.startswith("./bom.py:")] == good
    # quiet about what is fine or not a file: empty, latin-1, the long line, the links, the FIFO
    for name in ("empty.py", "latin.py", "long_line.py", "loop.py", ".#good.py", "fifo.py"):
        assert not any(line.startswith(f"./{name}:") for line in out), name
    # one line per problem: the long line's finding is not followed by 2 MB of frame
    assert len(result.stdout) < 20_000
    assert out[-1].endswith("5 files could not be checked."), out[-1]
    assert elapsed < 60  # the 50 MB file is not read


def test_the_json_document_lists_unreadable_files_as_errors(tmp_path):
    (tmp_path / "undecodable.py").write_bytes(b'x = "\xff"\n')
    shutil.copy(BUGGY, tmp_path / "good.py")
    result = run_cli([".", "--format", "json"], tmp_path)
    doc = json.loads(result.stdout)
    assert result.returncode == 1
    assert doc["errors"] == [{"path": "./undecodable.py", "message": "line 1, column 6: bytes that are not valid "
                              "utf-8 (invalid start byte); the file declares no encoding, so it must be utf-8"}]
    assert doc["summary"]["files"] == 1 and {f["code"] for f in doc["findings"]} >= {"RL102", "RL201"}


def test_a_long_line_is_shown_around_the_span(tmp_path):
    (tmp_path / "long_bad_line.py").write_text("x = [" + "1," * 100_000 + " def]\n")
    result = run_cli(["long_bad_line.py"], tmp_path)
    assert result.returncode == 1
    out = lines_of(result)
    assert out[0] == "long_bad_line.py:1:200007: RL000 [syntax-error] SyntaxError: invalid syntax"
    frame, carets = out[2], out[3]
    assert frame.startswith("1 | …,1,1,") and frame.endswith("1,1, def]") and len(frame) < 200
    assert carets.index("^") == frame.index(" def]") + 1  # under `def`, where Python points


def test_explicit_paths_that_are_not_python_files(tmp_path):
    shutil.copy(BUGGY, tmp_path / "good.py")
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "script").write_text("#!/usr/bin/env python3\ndef f(:\n")  # a Python script without .py is checked
    os.symlink("loop.py", tmp_path / "loop.py")
    os.symlink("gone.py", tmp_path / "dangling.py")
    os.mkfifo(tmp_path / "fifo.py")
    (tmp_path / "pkg.py").mkdir()
    (tmp_path / "pkg.py" / "ok.py").write_text("x = 1\n")
    result = run_cli(["notes.txt", "loop.py", "dangling.py", "fifo.py", "pkg.py", "script", "good.py",
                      "--format", "concise"], tmp_path, timeout=60)
    out = lines_of(result)
    assert result.returncode == 1, result.stderr
    for expected in [
        "notes.txt: error: not a Python source file (expected a .py file); skipped",
        "loop.py: error: a symbolic link loop; skipped",
        "dangling.py: error: a broken symbolic link (to 'gone.py'); skipped",
        "fifo.py: error: not a regular file or directory; skipped",
        "script:2:7: RL000 [syntax-error] SyntaxError: invalid syntax",
    ]:
        assert expected in out, (expected, out)
    assert_buggy_reported(result, "good.py:")
    assert out[-1].endswith("4 files could not be checked.")


def test_a_path_that_does_not_exist_is_a_usage_error(tmp_path):
    shutil.copy(BUGGY, tmp_path / "good.py")
    result = run_cli(["good.py", "nothere.py"], tmp_path)
    assert result.returncode == 2
    assert result.stderr == "resnetlint: error: nothere.py: no such file or directory\n"


def _unprivileged() -> Optional[List[str]]:
    """A command prefix that runs as `nobody` when the tests run as root
    (root reads everything), [] when they do not; None when root cannot drop
    its privileges here."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_permission_denied_files_and_directories(tmp_path):
    prefix = _unprivileged()
    if prefix is None:
        pytest.skip("running as root without setpriv: permissions cannot be tested")
    # `nobody` must be able to reach the tree: not under pytest's private tmp
    base = Path(tempfile.mkdtemp(prefix="resnetlint-perm-")) if prefix else tmp_path
    try:
        os.chmod(base, 0o777)
        shutil.copy(BUGGY, base / "good.py")
        os.chmod(base / "good.py", 0o644)
        (base / "secret.py").write_text("x = 1\n")
        os.chmod(base / "secret.py", 0)
        (base / "closed").mkdir()
        (base / "closed" / "a.py").write_text("x = 1\n")
        os.chmod(base / "closed", 0)
        probe = subprocess.run(prefix + COMMAND + ["--version"], capture_output=True, text=True, cwd=str(base))
        if probe.returncode != 0:
            pytest.skip(f"cannot run resnetlint as an unprivileged user here: {probe.stderr[-300:]!r}")
        result = run_cli([".", "--format", "concise"], base, command=prefix + COMMAND)
        out = lines_of(result)
        assert result.returncode == 1, result.stderr
        assert "./secret.py: error: cannot read: permission denied" in out
        assert "./closed: error: cannot read directory: permission denied" in out
        assert_buggy_reported(result, "./good.py:")
        explicit = run_cli(["secret.py", "good.py", "--format", "concise"], base, command=prefix + COMMAND)
        assert "secret.py: error: cannot read: permission denied" in lines_of(explicit)
        assert_buggy_reported(explicit, "good.py:")
    finally:
        os.chmod(base / "closed", 0o755)
        if prefix:
            shutil.rmtree(base, ignore_errors=True)


PATCHED_CLI = """
import sys
{patch}
from resnetlint.cli import main
sys.argv = ["resnetlint"] + sys.argv[1:]
main()
"""


def patched_cli(patch: str) -> List[str]:
    return [sys.executable, "-c", PATCHED_CLI.format(patch=textwrap.dedent(patch))]


def test_a_file_deleted_during_the_run(tmp_path):
    shutil.copy(BUGGY, tmp_path / "good.py")
    (tmp_path / "vanishing.py").write_text("x = 1\n")
    # Between discovery and reading, the file goes away.
    patch = """
        import os
        import resnetlint.api as api
        found = api.discover
        def discover(*args, **kwargs):
            result = found(*args, **kwargs)
            os.unlink("vanishing.py")
            return result
        api.discover = discover
    """
    result = run_cli([".", "--format", "concise"], tmp_path, command=patched_cli(patch))
    assert result.returncode == 1, result.stderr
    assert "./vanishing.py: error: cannot read: no such file or directory" in lines_of(result)
    assert_buggy_reported(result, "./good.py:")


def test_a_file_deleted_while_it_is_being_fixed(tmp_path, monkeypatch):
    import resnetlint.fixer as fixer

    shutil.copy(BUGGY, tmp_path / "block.py")
    other = tmp_path / "other.py"
    shutil.copy(FIXTURES / "seeds" / "seed001_bottleneck.py", other)
    computed = fixer.fix_file

    def fix_then_delete(path, *args, **kwargs):
        outcome = computed(path, *args, **kwargs)
        if path.endswith("block.py"):
            os.unlink(path)
        return outcome

    monkeypatch.setattr(fixer, "fix_file", fix_then_delete)
    run = check_paths([str(tmp_path)], Settings(fix="fix", unsafe_fixes=True))
    errors = {Path(e.path).name: e.message for e in run.errors}
    assert errors == {"block.py": "not fixed: the file was deleted while it was being fixed; not written"}
    assert not (tmp_path / "block.py").exists()
    assert other.read_bytes() == (FIXTURES / "fixed" / "seeds" / "seed001_bottleneck.py").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.py"]  # no temporary left


def test_a_symbolic_link_stays_a_link_when_its_target_is_fixed(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "block.py"
    shutil.copy(FIXTURES / "seeds" / "seed001_bottleneck.py", target)
    (tmp_path / "src").mkdir()
    os.symlink("../real/block.py", tmp_path / "src" / "block.py")
    result = run_cli(["src", "--fix", "--unsafe-fixes"], tmp_path)
    assert result.returncode == 0, result.stdout
    assert os.readlink(tmp_path / "src" / "block.py") == "../real/block.py"
    assert target.read_bytes() == (FIXTURES / "fixed" / "seeds" / "seed001_bottleneck.py").read_bytes()


# ---------------------------------------------------------------------------
# 2. Internal errors are contained
# ---------------------------------------------------------------------------

FAILING_RULE = """
    from resnetlint.rules import ALL_RULES
    def check(self, block, analysis):
        raise ValueError("boom from the test")
        yield
    next(r for r in ALL_RULES if r.code == "RL204").check = check
"""


def _rl204_file(path: Path) -> None:
    path.write_text(textwrap.dedent("""\
        import torch.nn as nn


        class Block(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.conv = nn.Conv2d(c, c, 3)
                self.extra = nn.Conv2d(c, c, 1)

            def forward(self, x):
                return x + self.conv(x)
    """))


def test_a_failing_rule_is_an_rl999_finding_and_the_rest_still_runs(tmp_path):
    shutil.copy(BUGGY, tmp_path / "good.py")
    _rl204_file(tmp_path / "pad.py")
    plain = run_cli([".", "--format", "concise"], tmp_path, command=patched_cli(FAILING_RULE))
    out = lines_of(plain)
    assert plain.returncode == 2, plain.stdout
    assert "./pad.py:4:1: RL999 [internal-error] internal error in rule RL204: ValueError: boom from the test" in out
    assert any(line.startswith("./pad.py:8:9: RL104") for line in out), out  # the other rules on that file
    assert_buggy_reported(plain, "./good.py:")  # and the other files
    assert "Traceback" not in plain.stderr
    text = run_cli(["pad.py", "--show-traceback"], tmp_path, command=patched_cli(FAILING_RULE))
    assert text.returncode == 2
    assert f"= help: {REPORT}" in text.stdout
    assert "pad.py: internal error in rule RL204 (class Block):\nTraceback (most recent call last):" in text.stderr
    assert "in check\nValueError: boom from the test\n" in text.stderr


def test_internal_errors_in_worker_processes_are_contained(tmp_path):
    for index in range(26):  # enough files for the process pool
        _rl204_file(tmp_path / f"pad{index:02}.py")
    result = run_cli([".", "--format", "json", "-j", "2", "--show-traceback"], tmp_path,
                     command=patched_cli(FAILING_RULE))
    doc = json.loads(result.stdout)
    assert result.returncode == 2
    internal = [f for f in doc["findings"] if f["code"] == "RL999"]
    assert len(internal) == 26 and all(REPORT in f["help"] for f in internal)
    assert len([f for f in doc["findings"] if f["code"] == "RL104"]) == 26
    assert result.stderr.count("ValueError: boom from the test") == 26


def test_failures_anywhere_in_the_engine_are_contained(monkeypatch):
    import resnetlint.engine as engine

    source = BUGGY.read_text()
    rules = Settings().rules()

    class BrokenModel:
        def __init__(self, *args, **kwargs):
            raise KeyError("model")

    monkeypatch.setattr(engine, "FileAnalysis", BrokenModel)
    result = check_text(source, "m.py", rules)
    assert [(f.code, f.message) for f in result.findings] == [
        ("RL999", "internal error in the block model: KeyError: 'model'")]
    assert result.tracebacks[0].startswith("m.py: internal error in the block model:\nTraceback")
    monkeypatch.undo()

    def broken_scan(tree):
        raise AttributeError("scan")

    monkeypatch.setattr(engine, "FileScan", broken_scan)
    result = check_text(source, "s.py", rules)
    assert [(f.code, f.line, f.message) for f in result.findings] == [
        ("RL999", 1, "internal error in resnetlint: AttributeError: scan")]
    assert REPORT in result.findings[0].help


# ---------------------------------------------------------------------------
# 3. Hostile code under the trace
# ---------------------------------------------------------------------------

HOSTILE_TEMPLATE = """\
import os
import signal
import subprocess
import sys
import threading
import time

import torch
import torch.nn as nn

{module}


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3)  # RL204: no padding
{init}

    def forward(self, x):
{forward}
        return x + self.conv(x)
"""


def _hostile(path: Path, module: str = "", init: str = "", forward: str = "") -> None:
    indent = lambda text, n: textwrap.indent(textwrap.dedent(text), " " * n) if text else ""
    path.write_text(HOSTILE_TEMPLATE.format(module=textwrap.dedent(module), init=indent(init, 8),
                                            forward=indent(forward, 8)))


def _processes(needle: bytes, where: str = "cmdline") -> List[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                data = (entry / where).read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if needle in data and state != "Z":
                found.append(int(entry.name))
    return found


def _workers_of(pid: int) -> List[int]:
    return _processes(f"RESNETLINT_TRACE_PARENT={pid}\0".encode(), "environ")


@pytest.mark.trace
def test_hostile_code_is_unverified_within_the_timeout_and_leaves_no_process(tmp_path):
    pytest.importorskip("torch")
    marker = f"resnetlint-stray-{uuid.uuid4().hex}"
    _hostile(tmp_path / "loops_at_import.py", module="while True:\n    pass\n")
    _hostile(tmp_path / "kills_itself.py", module="os.kill(os.getpid(), signal.SIGKILL)\n")
    # The worker's address space is capped: allocating the cap itself fails
    # at once (and the module refuses to run without a cap).
    _hostile(tmp_path / "hogs_memory.py", module="""\
        import resource
        cap = resource.getrlimit(resource.RLIMIT_AS)[0]
        if cap == resource.RLIM_INFINITY:
            raise RuntimeError("no memory cap in the trace worker")
        blob = bytearray(cap)
    """)
    _hostile(tmp_path / "hogs_tensor.py", init="self.table = torch.empty(1 << 40)  # 4 TB\n")
    _hostile(tmp_path / "floods.py", module="""\
        for _ in range(100):
            print("x" * 100_000)
            sys.stderr.write("y" * 100_000)
            os.write(1, b"z" * 100_000)
            os.write(2, b"w" * 100_000)
    """, forward='print("forward" * 100_000, flush=True)\nos.write(2, b"\\n" * 100_000)\n')
    _hostile(tmp_path / "spawns.py", module=f"""\
        threading.Thread(target=time.sleep, args=(3600,)).start()  # not a daemon: never ends
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)", "{marker}"])
    """)
    shutil.copy(BUGGY, tmp_path / "good.py")
    started = time.monotonic()
    process = subprocess.Popen(COMMAND + [".", "--trace", "--trace-timeout", "3", "--format", "json", "--no-cache",
                                          "-j", "1"], cwd=str(tmp_path), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=dict(os.environ, NO_COLOR="1"))
    try:
        stdout, stderr = process.communicate(timeout=150)
    finally:
        if process.poll() is None:
            process.kill()
    elapsed = time.monotonic() - started
    assert process.returncode == 1, stderr[-2000:]
    doc = json.loads(stdout)
    verdicts = {}
    for finding in doc["findings"]:
        verdicts.setdefault(Path(finding["path"]).name, []).append(finding["confirmation"])
    first = lambda name: verdicts[name][0]
    assert first("loops_at_import.py")["status"] == "unverified"
    assert "did not finish within 3 s" in first("loops_at_import.py")["detail"]
    assert first("kills_itself.py")["status"] == "unverified"
    assert "the worker process died" in first("kills_itself.py")["detail"]
    assert "signal 9" in first("kills_itself.py")["detail"]
    assert first("hogs_memory.py")["status"] == "unverified"
    assert "could not import the module" in first("hogs_memory.py")["detail"]
    assert "MemoryError" in first("hogs_memory.py")["detail"]
    assert first("hogs_tensor.py")["status"] == "unverified"
    assert "no configuration could be built" in first("hogs_tensor.py")["detail"]
    assert "can't allocate memory" in first("hogs_tensor.py")["detail"]
    # flooding the output and starting threads and processes does not disturb the trace
    assert first("floods.py")["status"] == "confirmed", first("floods.py")
    assert first("spawns.py")["status"] == "confirmed", first("spawns.py")
    assert sum(c["status"] == "confirmed" for c in verdicts["good.py"]) >= 5
    assert doc["summary"]["trace"]["unverified"] >= 3
    assert elapsed < 120
    time.sleep(0.5)
    assert _workers_of(process.pid) == []
    assert _processes(marker.encode()) == []


@pytest.mark.trace
def test_killing_resnetlint_mid_trace_takes_the_worker_with_it(tmp_path):
    pytest.importorskip("torch")
    started = tmp_path / "started"
    _hostile(tmp_path / "hangs.py", module=f"open({str(started)!r}, 'w').close()\n", forward="while True:\n    pass\n")
    process = subprocess.Popen(COMMAND + ["hangs.py", "--trace", "--trace-timeout", "60", "--no-cache"],
                               cwd=str(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        workers = _workers_of(process.pid)
        assert started.exists() and workers, "the trace worker never imported the module"
        time.sleep(1.0)  # now in the endless forward
        process.send_signal(signal.SIGTERM)  # no handler: resnetlint cannot stop the worker itself
        process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers)
    finally:
        if process.poll() is None:
            process.kill()
        for pid in _workers_of(process.pid):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# ---------------------------------------------------------------------------
# 4. No lost bytes: --fix interrupted at random moments
# ---------------------------------------------------------------------------

def _fixable_tree(root: Path) -> None:
    for folder in ("seeds", "bugs"):
        shutil.copytree(FIXTURES / folder, root / folder, ignore=shutil.ignore_patterns("*.expected"))


def _snapshot(root: Path):
    """Every file but the temporaries of a write (which SIGKILL may leave)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.endswith(".resnetlint")}


def _diff(expected: bytes, actual: bytes) -> str:
    import difflib

    return "".join(difflib.unified_diff(expected.decode(errors="replace").splitlines(True),
                                        actual.decode(errors="replace").splitlines(True), "fixed", "found"))[-3000:]


def test_interrupted_fix_leaves_every_file_old_or_fully_fixed(tmp_path):
    original_root = tmp_path / "original"
    _fixable_tree(original_root)
    original = _snapshot(original_root)
    reference_root = tmp_path / "reference"
    shutil.copytree(original_root, reference_root)
    started = time.monotonic()
    done = run_cli([reference_root, "--fix", "--unsafe-fixes"], tmp_path)
    full = time.monotonic() - started
    assert done.returncode == 0, done.stdout
    reference = _snapshot(reference_root)
    changed = {name for name in original if original[name] != reference[name]}
    assert len(changed) >= 6 and set(reference) == set(original)

    rng = random.Random(8)
    signals = [signal.SIGINT, signal.SIGTERM, signal.SIGINT, signal.SIGTERM, signal.SIGKILL]
    budget = time.monotonic() + 24
    outcomes = {"old": 0, "new": 0}
    kills = partial = 0
    for attempt in range(20):
        if time.monotonic() > budget:
            break
        root = tmp_path / f"run{attempt}"
        shutil.copytree(original_root, root)
        sig = signals[attempt % len(signals)]
        # SIG_DFL in the child: were SIGINT ignored here (a suite started in
        # the background), the child would inherit that and never see Ctrl-C.
        process = subprocess.Popen(COMMAND + [str(root), "--fix", "--unsafe-fixes", "--no-trace", "--no-cache"],
                                   cwd=str(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   env=dict(os.environ, NO_COLOR="1"), text=True,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        time.sleep(rng.uniform(0.05, full * 1.05))
        if process.poll() is None:
            process.send_signal(sig)
            kills += 1
        _, stderr = process.communicate(timeout=60)
        now = _snapshot(root)
        fixed_now = sum(now.get(name) == reference[name] for name in changed)
        partial += 0 < fixed_now < len(changed)
        for name, data in now.items():
            assert name in original, f"{name} left behind after {sig!r}"
        for name in original:
            assert name in now, f"{name} lost after {sig!r}"
            if now[name] == original[name]:
                outcomes["old"] += name in changed
            else:
                assert now[name] == reference[name], \
                    f"{name} is neither old nor fixed after {sig!r}:\n" + _diff(reference[name], now[name])
                outcomes["new"] += 1
        if sig != signal.SIGKILL:
            leftovers = [p.name for p in root.rglob(".*") if p.name.endswith(".resnetlint")]
            assert leftovers == [], (sig, leftovers)
            # Once cli.main runs, an interrupt is one line; only a signal
            # during the interpreter's own start-up (importing the entry
            # point) can still show Python's traceback.
            assert "Traceback" not in stderr or ("in _main" not in stderr and "in execute" not in stderr), \
                stderr[-2000:]
            if "Traceback" not in stderr and sig == signal.SIGINT and stderr.strip():
                assert stderr.strip().endswith("resnetlint: interrupted"), stderr[-2000:]
        if attempt in (3, 9):  # an interrupted run is resumed by running it again
            resumed = run_cli([root, "--fix", "--unsafe-fixes"], tmp_path)
            assert resumed.returncode == 0, resumed.stdout
            assert _snapshot(root) == reference
        shutil.rmtree(root)
    print(f"{kills} kills, {partial} in the middle of fixing, files old/fixed: {outcomes}")
    assert kills >= 5 and partial >= 1, (kills, partial)


def test_an_interrupt_during_the_write_waits_until_the_file_is_replaced(tmp_path, monkeypatch):
    import resnetlint.fixer as fixer

    # Python turns SIGINT into KeyboardInterrupt only if SIGINT was not
    # ignored when it started; a suite started in the background (some CI
    # runners) inherits SIG_IGN.  This test is about that handler: set it.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    path = tmp_path / "block.py"
    shutil.copy(FIXTURES / "seeds" / "seed001_bottleneck.py", path)
    outcome = fixer.fix_file(str(path), Settings().rules(), unsafe=True)
    assert outcome.changed
    synced = os.fsync

    def interrupted_fsync(fd):  # Ctrl-C right in the middle of writing the temporary file
        os.kill(os.getpid(), signal.SIGINT)
        synced(fd)

    monkeypatch.setattr(fixer.os, "fsync", interrupted_fsync)
    try:
        with pytest.raises(KeyboardInterrupt):
            fixer.write_fixed(outcome)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert path.read_bytes() == (FIXTURES / "fixed" / "seeds" / "seed001_bottleneck.py").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["block.py"]


def test_a_failing_fix_costs_that_file_its_fixes_not_the_run(tmp_path, monkeypatch):
    import resnetlint.fixer as fixer

    shutil.copy(FIXTURES / "seeds" / "seed001_bottleneck.py", tmp_path / "broken.py")
    shutil.copy(FIXTURES / "seeds" / "seed001_bottleneck.py", tmp_path / "other.py")
    apply = fixer.apply_edits

    def failing_apply(text, lines, edits):
        if "# poison" in text:
            raise IndexError("edit out of range")
        return apply(text, lines, edits)

    (tmp_path / "broken.py").write_text((tmp_path / "broken.py").read_text() + "# poison\n")
    before = (tmp_path / "broken.py").read_bytes()
    monkeypatch.setattr(fixer, "apply_edits", failing_apply)
    run = check_paths([str(tmp_path)], Settings(fix="fix", unsafe_fixes=True))
    errors = {Path(e.path).name: e.message for e in run.errors}
    assert errors["broken.py"].startswith("not fixed: internal error in the fixer: IndexError: edit out of range; "
                                          + REPORT)
    assert (tmp_path / "broken.py").read_bytes() == before
    assert (tmp_path / "other.py").read_bytes() == (FIXTURES / "fixed" / "seeds" / "seed001_bottleneck.py").read_bytes()
