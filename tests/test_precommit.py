"""The real pre-commit, on a scratch git repository, with this repository's
``.pre-commit-hooks.yaml`` (through ``pre-commit try-repo``, which builds the
hook environment from the working tree: no torch in it)."""
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import ROOT

pytestmark = pytest.mark.slow

PRE_COMMIT = shutil.which("pre-commit", path=os.path.dirname(sys.executable)) or shutil.which("pre-commit")
if PRE_COMMIT is None or shutil.which("git") is None:
    pytest.skip("pre-commit and git are needed (pip install -e '.[dev]')", allow_module_level=True)

# A residual block whose 3x3 conv has no padding: the add fails. RL204's fix
# (padding=1) is safe, so the `resnetlint-fix` hook applies it.
BUGGY = textwrap.dedent("""\
    import torch.nn as nn


    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv2d(c, c, 3, bias=False)
            self.bn = nn.BatchNorm2d(c)

        def forward(self, x):
            return self.bn(self.conv(x)) + x
""")


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory):
    # One hook environment for the module (building it is the slow part).
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory):
    """This working tree as a committed repository: ``try-repo`` only sees
    tracked files, and a new module not yet added must not be missed."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    copy = tmp_path_factory.mktemp("hook-repo")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    _git(copy, "init", "-q")
    _git(copy, "add", "-A")
    _git(copy, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "snapshot")
    return copy


def _git(repo: Path, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def _scratch(tmp_path: Path, files) -> Path:
    repo = tmp_path / "scratch"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    for name, text in files.items():
        (repo / name).write_text(text)
    _git(repo, "add", "-A")
    return repo


def _try_repo(repo: Path, hook: str, home: Path, hooks: Path):
    env = dict(os.environ, PRE_COMMIT_HOME=str(home), NO_COLOR="1", PRE_COMMIT_COLOR="never")
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run([PRE_COMMIT, "try-repo", str(hooks), hook, "--all-files", "--color", "never"], cwd=repo,
                          env=env, capture_output=True, text=True, timeout=600)


def test_check_hook_fails_on_the_bug_and_passes_once_fixed(tmp_path, pre_commit_home, hook_repo):
    repo = _scratch(tmp_path, {"block.py": BUGGY, "clean.py": "x = 1\n"})
    failing = _try_repo(repo, "resnetlint", pre_commit_home, hook_repo)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "block.py:7:37: RL204 [*] [padding-shape-change]" in failing.stdout, failing.stdout
    # No torch in the hook environment: static only, said once, and no advice to install torch.
    assert "trace: not run" not in failing.stdout
    assert "Trace: off in this environment (no torch)." in failing.stdout
    assert "pip install" not in failing.stdout
    (repo / "block.py").write_text(BUGGY.replace("3, bias=False", "3, padding=1, bias=False"))
    _git(repo, "add", "-A")
    passing = _try_repo(repo, "resnetlint", pre_commit_home, hook_repo)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "Passed" in passing.stdout


def test_fix_hook_fixes_the_file_then_passes(tmp_path, pre_commit_home, hook_repo):
    repo = _scratch(tmp_path, {"block.py": BUGGY})
    first = _try_repo(repo, "resnetlint-fix", pre_commit_home, hook_repo)
    assert first.returncode == 1 and "files were modified by this hook" in first.stdout, first.stdout
    assert "self.conv = nn.Conv2d(c, c, 3, bias=False, padding=1)" in (repo / "block.py").read_text()
    _git(repo, "add", "-A")
    second = _try_repo(repo, "resnetlint-fix", pre_commit_home, hook_repo)
    assert second.returncode == 0, second.stdout + second.stderr


def test_hook_with_no_python_files(tmp_path, pre_commit_home, hook_repo):
    repo = _scratch(tmp_path, {"README.md": "# nothing to lint\n"})
    result = _try_repo(repo, "resnetlint", pre_commit_home, hook_repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(no files to check)Skipped" in result.stdout
