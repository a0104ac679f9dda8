"""The editor server's parts without a client: the command, positions in
UTF-16, edits computed from a fix, and the workspace's configuration
(the end-to-end behaviour is in tests/test_server.py)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pygls")

from lsprotocol import types as lsp  # noqa: E402
from pygls.workspace.position_codec import PositionCodec  # noqa: E402

from resnetlint.findings import Finding  # noqa: E402
from resnetlint.server import convert  # noqa: E402
from resnetlint.server.workspace import Workspace  # noqa: E402

SEEDS = Path(__file__).resolve().parent.parent / "fixtures" / "seeds"
UTF16 = PositionCodec(lsp.PositionEncodingKind.Utf16)
UTF32 = PositionCodec(lsp.PositionEncodingKind.Utf32)


def test_server_help_a_bad_argument_and_a_missing_pygls_are_explained():
    done = subprocess.run([sys.executable, "-m", "resnetlint", "server", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "resnetlint server" in done.stdout and "Language Server Protocol" in done.stdout
    assert "  server" in subprocess.run([sys.executable, "-m", "resnetlint", "--help"], capture_output=True,
                                        text=True).stdout  # listed among the commands
    done = subprocess.run([sys.executable, "-m", "resnetlint", "server", "--tcp"], capture_output=True, text=True)
    assert done.returncode == 2 and "--tcp" in done.stderr
    blocked = ("import sys; sys.modules['pygls'] = None; sys.argv = ['resnetlint', 'server'];"
               "from resnetlint.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True)
    assert done.returncode == 2
    assert "pip install 'resnetlint[server]'" in done.stderr and "Traceback" not in done.stderr


def _finding(line, column, end_line, end_column):
    return Finding("RL101", "stale-input", "error", "x.py", line, column, end_line, end_column, "B", "m")


def test_positions_count_utf16_units_after_characters_outside_the_bmp():
    lines = ['s = "\U0001F600"; y = conv(x)\n']
    finding = _finding(1, 14, 1, 21)  # `conv(x)`: character column 14 (1-based)
    assert convert.finding_range(finding, lines, UTF32) == lsp.Range(lsp.Position(0, 13), lsp.Position(0, 20))
    assert convert.finding_range(finding, lines, UTF16) == lsp.Range(lsp.Position(0, 14), lsp.Position(0, 21))
    # and back: the client's UTF-16 position is the finding's character column
    assert convert.server_position(lines, lsp.Position(0, 14), UTF16) == (1, 14)


def test_positions_past_the_text_are_clamped():
    lines = ["a = 1\n", "b = 2"]
    assert convert.position(lines, 9, 1, UTF16) == lsp.Position(1, 0)
    assert convert.position(lines, 2, 99, UTF16) == lsp.Position(1, 5)
    assert convert.position([], 1, 1, UTF16) == lsp.Position(0, 0)


def _apply(text: str, edits) -> str:
    lines = text.splitlines(True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(position):
        return starts[position.line] + position.character if position.line < len(lines) else len(text)

    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        text = text[:offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end):]
    return text


@pytest.mark.parametrize("original, fixed", [
    ("a\nb\nc\n", "a\nB\nc\n"),
    ("a\nb\nc\n", "a\nb\nb2\nc\n"),
    ("a\nb\nc", "a\nb\nc2"),  # no final newline
    ("a\nb", "a\nb\nc"),
    ("a\r\nb\r\nc\r\n", "a\r\nx\r\nc\r\nd\r\n"),
    ("x\n", ""),
    ("", "x\n"),
])
def test_edits_turn_the_original_into_the_fixed_text_and_touch_only_changed_lines(original, fixed):
    edits = convert.text_edits(original, fixed, UTF16)
    assert _apply(original, edits) == fixed
    if original == "a\nb\nc\n" and fixed == "a\nB\nc\n":
        assert [(e.range.start.line, e.range.end.line, e.new_text) for e in edits] == [(1, 2, "B\n")]


def test_the_configuration_is_read_again_when_the_file_changes(tmp_path: Path):
    block = Path(shutil.copy(SEEDS / "seed000_resskip_depthwise.py", tmp_path / "block.py"))
    config = tmp_path / "pyproject.toml"
    config.write_text('[tool.resnetlint]\nignore = ["RL301"]\n')
    workspace = Workspace(str(tmp_path))
    assert workspace.check(str(block), block.read_text()).findings == []
    config.write_text('[tool.resnetlint]\nignore = ["RL302"]\n')  # same size, so the time stamp must tell
    os.utime(config, ns=(1, 1))
    assert [f.code for f in workspace.check(str(block), block.read_text()).findings] == ["RL301"]


def test_excluded_files_get_no_diagnostics(tmp_path: Path):
    (tmp_path / "generated").mkdir()
    block = Path(shutil.copy(SEEDS / "seed000_resskip_depthwise.py", tmp_path / "generated" / "block.py"))
    kept = Path(shutil.copy(SEEDS / "seed000_resskip_depthwise.py", tmp_path / "block.py"))
    (tmp_path / "pyproject.toml").write_text('[tool.resnetlint]\nexclude = ["generated/"]\n')
    workspace = Workspace(str(tmp_path))
    assert workspace.check(str(block), block.read_text()) is None
    assert [f.code for f in workspace.check(str(kept), kept.read_text()).findings] == ["RL301"]


HELPER = """import torch.nn as nn


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)
"""
USER = """import torch.nn as nn

from .layers import conv3x3


class BasicBlock(nn.Module):
    def __init__(self, planes):
        super().__init__()
        self.conv1 = conv3x3(planes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)
"""
WIDENING_HELPER = HELPER.replace("out_planes, kernel_size", "out_planes * 2, kernel_size")


def package_with_a_helper(root: Path):
    """pkg/layers.py (a conv helper), pkg/block.py (uses it), pkg/other.py (does not)."""
    package = root / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "layers.py").write_text(HELPER)
    (package / "block.py").write_text(USER)
    other = Path(shutil.copy(SEEDS / "seed000_resskip_depthwise.py", package / "other.py"))
    return package / "layers.py", package / "block.py", other


def test_dependents_are_the_documents_whose_check_read_the_module(tmp_path: Path):
    helper, block, other = package_with_a_helper(tmp_path)
    workspace = Workspace(str(tmp_path))
    for path in (helper, block, other):
        workspace.check(str(path), path.read_text())
    open_paths = [str(helper), str(block), str(other)]
    assert workspace.dependents(str(helper), open_paths) == [str(block)]
    assert workspace.dependents(str(block), open_paths) == []
    workspace.forget(str(block))
    assert workspace.dependents(str(helper), open_paths) == []


def test_the_model_reads_an_open_helpers_unsaved_buffer(tmp_path: Path):
    helper, block, _ = package_with_a_helper(tmp_path)
    workspace = Workspace(str(tmp_path))
    assert workspace.check(str(block), USER).findings == []
    workspace.edited(str(helper), WIDENING_HELPER)  # typed in the editor, not saved
    codes = [f.code for f in workspace.check(str(block), USER).findings]
    assert "RL201" in codes and "RL202" in codes
    assert helper.read_text() == HELPER
    workspace.forget(str(helper))  # closed without saving: the file on disk again
    assert workspace.check(str(block), USER).findings == []


def test_the_server_is_an_optional_extra_and_a_lint_never_imports_it():
    import re

    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    project = tomllib.loads((SEEDS.parent.parent / "pyproject.toml").read_text())["project"]
    names = {re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower() for requirement in project["dependencies"]}
    assert "libcst" in names and not names & {"pygls", "lsprotocol", "cattrs", "pytest-lsp"}
    assert any(r.startswith("pygls") for r in project["optional-dependencies"]["server"])
    lint = ("import sys; from resnetlint.cli import main\n"
            "try:\n    main(['--no-cache', '--no-trace', sys.argv[1]])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pygls', 'lsprotocol', 'cattrs')))")
    done = subprocess.run([sys.executable, "-c", lint, str(SEEDS / "seed003_block.py")], capture_output=True,
                          text=True)
    assert "RL102" in done.stdout and done.stdout.strip().endswith("[]"), done.stdout + done.stderr
