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


def test_rule_table_lists_every_rule():
    from resnetlint.rules import ALL_RULES

    for rule in ALL_RULES:
        assert re.search(rf"\| {rule.code} \| {re.escape(rule.name)} ", README), f"{rule.code} missing from README"


def test_public_api_is_importable_from_the_package():
    findings = check_source("import torch.nn as nn\n", path="empty.py")
    assert findings == []
