"""The README's promises: CI runs its test command verbatim, and its
examples still hold."""
import re

from resnetlint import check_source

from helpers import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def quick_start_commands():
    block = README.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_quick_start_has_two_commands_fixtures_then_tests():
    commands = quick_start_commands()
    assert len(commands) == 2
    assert commands[0].rstrip().endswith("resnetlint fixtures/")
    assert "pytest" in commands[1]
    for command in commands:
        assert "torch==2.13.0" in command.split("-e")[0], "torch must be pinned before the package install"


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert quick_start_commands()[1] in ci.splitlines()


def _rule_table():
    """(code, name, default, severity, fix) of each row under ## Rules."""
    section = README.split("\n## Rules\n", 1)[1].split("\n#", 1)[0]
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in section.splitlines()
            if re.match(r"^\| RL\d{3} ", line)]
    return [tuple(row[:5]) for row in rows]


def test_rule_table_is_the_rule_registry():
    from resnetlint.registry import ENGINE_CODES
    from resnetlint.rules import ALL_RULES

    expected = [(r.code, r.name, "on" if r.default_enabled else "off", r.severity, r.fix_safety or "-")
                for r in sorted(list(ALL_RULES) + list(ENGINE_CODES), key=lambda r: r.code)]
    assert _rule_table() == expected


def test_every_option_is_in_the_readme():
    from resnetlint.options import OPTIONS

    for option in OPTIONS:
        if option.hidden:
            continue
        for flag in option.flags + ((option.negative,) if option.negative else ()):
            assert f"`{flag}" in README or f"/`{flag}" in README, f"{flag} is not in the README"
        if option.config:
            assert re.search(rf"^{re.escape(option.config)} = ", README, re.MULTILINE), \
                f"`{option.config}` is not in the README's configuration example"


def test_the_pre_commit_rev_is_this_version_and_a_tag_when_tags_are_there():
    import subprocess

    from resnetlint import __version__

    revs = re.findall(r"^\s+rev: (\S+)", README, re.MULTILINE)
    assert revs == [f"v{__version__}"]
    tags = subprocess.run(["git", "tag", "--list"], cwd=ROOT, capture_output=True, text=True)
    if tags.returncode == 0 and tags.stdout.split():  # a checkout with its tags (not a shallow CI clone)
        assert revs[0] in tags.stdout.split(), f"tag {revs[0]} (the README's pre-commit `rev:`) does not exist"


def test_public_api_is_importable_from_the_package():
    findings = check_source("import torch.nn as nn\n", path="empty.py")
    assert findings == []
