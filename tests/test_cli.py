"""The command line: exit codes, output formats, bad paths and syntax errors."""
import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from resnetlint.cli import app

from helpers import FIXTURES

runner = CliRunner()
BUGGY = str(FIXTURES / "seeds" / "seed003_block.py")
CLEAN = str(FIXTURES / "seeds" / "seed003_block_corrected.py")


def invoke(*args, env=None, trace=False):
    """The CLI in-process; the trace is off unless a test is about it."""
    extra = [] if trace else ["--no-trace"]
    return runner.invoke(app, list(args) + extra, env=env or {"NO_COLOR": "1"})


def test_exit_codes():
    assert invoke(CLEAN).exit_code == 0
    assert invoke(BUGGY).exit_code == 1
    assert invoke(BUGGY, "--exit-zero").exit_code == 0
    assert invoke("does/not/exist.py").exit_code == 2
    assert invoke(BUGGY, "--select", "NOPE").exit_code == 2


def test_text_output_has_location_frame_help_and_summary():
    result = invoke(BUGGY)
    out = result.output
    assert f"{BUGGY}:44:13: RL102 [residual-overwritten]" in out
    assert "44 |             out = self.skip(x)" in out
    assert "^^^^^^^^^^^^^^^^^^" in out
    assert "= help:" in out
    assert "\033[" not in out  # no colour when not a terminal / NO_COLOR
    summary = out.rstrip().splitlines()[-1]
    assert summary.startswith("Found 7 problems in 1 file.")
    assert "fixable with --fix." not in summary and "6 more fixable with --unsafe-fixes." in summary


def test_concise_output_is_one_line_per_finding():
    result = invoke(BUGGY, "--format", "concise")
    lines = [l for l in result.output.splitlines() if ": RL" in l]
    assert len(lines) == len([l for l in result.output.splitlines() if l.startswith(BUGGY)])
    assert all(" | " not in l for l in result.output.splitlines())


def test_json_contract():
    result = invoke(BUGGY, "--format", "json")
    doc = json.loads(result.output)
    assert doc["version"] == 1
    assert set(doc) == {"version", "findings", "errors", "summary"}
    assert doc["summary"] == {"files": 1, "findings": len(doc["findings"])}
    finding = doc["findings"][0]
    assert set(finding) == {"code", "rule", "severity", "path", "line", "column", "end_line", "end_column",
                            "symbol", "message", "help", "confirmation", "fix"}
    assert finding["symbol"] == "Block"
    assert finding["confirmation"] == {"status": "not-run", "detail": ""}
    assert finding["line"] >= 1 and finding["column"] >= 1


def test_select_and_ignore_prefixes():
    only_rl1 = json.loads(invoke(BUGGY, "--format", "json", "--select", "RL1").output)
    assert {f["code"][:3] for f in only_rl1["findings"]} == {"RL1"}
    no_rl102 = json.loads(invoke(BUGGY, "--format", "json", "--ignore", "RL102").output)
    assert "RL102" not in {f["code"] for f in no_rl102["findings"]}
    specific = json.loads(invoke(BUGGY, "--format", "json", "--ignore", "RL1", "--select", "RL102").output)
    assert {f["code"] for f in specific["findings"]} == {"RL102"}


def test_syntax_error_is_reported_and_the_run_goes_on(tmp_path):
    (tmp_path / "broken.py").write_text("def f(:\n    pass\n")
    (tmp_path / "block.py").write_text(open(BUGGY, encoding="utf-8").read())
    result = invoke(str(tmp_path), "--format", "json")
    doc = json.loads(result.output)
    by_code = {}
    for f in doc["findings"]:
        by_code.setdefault(f["code"], []).append(f)
    assert by_code["RL000"][0]["path"].endswith("broken.py") and by_code["RL000"][0]["line"] == 1
    assert "RL102" in by_code
    assert result.exit_code == 1


def test_directories_skip_virtualenvs_and_caches(tmp_path):
    for sub in (".git", "__pycache__", "build", "node_modules", "venv"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "bad.py").write_text("def f(:\n")
    env = tmp_path / "myenv"
    env.mkdir()
    (env / "pyvenv.cfg").write_text("home = /usr\n")
    (env / "bad.py").write_text("def f(:\n")
    (tmp_path / "ok.py").write_text("x = 1\n")
    result = invoke(str(tmp_path), "--format", "json")
    doc = json.loads(result.output)
    assert doc["summary"]["files"] == 1 and doc["findings"] == []


def test_list_rules_and_explain():
    listed = invoke("--list-rules")
    assert listed.exit_code == 0 and "RL101" in listed.output and "stale-input" in listed.output
    explained = invoke("--explain", "RL201")
    assert explained.exit_code == 0
    assert "What it does" in explained.output and "channel" in explained.output
    assert invoke("--explain", "RL777").exit_code == 2


def test_trace_line_in_the_summary_and_confirmations_in_json(monkeypatch):
    pytest.importorskip("torch")
    text = invoke(BUGGY, trace=True).output
    assert "= trace: confirmed:" in text
    assert text.rstrip().splitlines()[-1].startswith("Trace: 1 class run on cpu")
    doc = json.loads(invoke(BUGGY, "--format", "json", trace=True).output)
    assert doc["summary"]["trace"]["ran"] is True
    assert {f["confirmation"]["status"] for f in doc["findings"]} <= {"confirmed", "not-confirmed"}


def test_no_trace_leaves_findings_not_run():
    doc = json.loads(invoke(BUGGY, "--format", "json").output)
    assert {f["confirmation"]["status"] for f in doc["findings"]} == {"not-run"}
    assert "trace" not in doc["summary"]


def test_console_script_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "resnetlint", CLEAN, "--no-trace"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "All checks passed!" in result.stdout
