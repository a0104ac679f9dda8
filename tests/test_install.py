"""The built wheel works on its own: a non-editable install into a fresh
virtualenv (without torch) gives a ``resnetlint`` with every rule."""
import json
import subprocess
import sys
import venv

import pytest

from resnetlint.rules import ALL_RULES

from helpers import FIXTURES, ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("install")
    wheel_dir = work / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheel_dir), str(ROOT)],
        capture_output=True, text=True,
    )
    if build.returncode != 0:
        pytest.fail(f"wheel build failed:\n{build.stderr}")
    (wheel,) = wheel_dir.glob("resnetlint-*.whl")
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True)
    if install.returncode != 0:
        pytest.skip(f"cannot install dependencies here (no registry?):\n{install.stderr[-2000:]}")
    return env_dir, wheel


def test_wheel_ships_every_rule_module(installed):
    import zipfile

    _, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for rule in ALL_RULES:
        module = rule.__module__.replace(".", "/") + ".py"
        assert module in names, f"{module} missing from the wheel"


def test_installed_cli_lints_the_fixtures_without_torch(installed):
    env_dir, _ = installed
    python = env_dir / "bin" / "python"
    no_torch = subprocess.run([str(python), "-c", "import torch"], capture_output=True)
    assert no_torch.returncode != 0, "the static install must not pull torch"
    result = subprocess.run(
        [str(env_dir / "bin" / "resnetlint"), str(FIXTURES / "seeds"), "--format", "json"],
        capture_output=True, text=True, cwd=str(env_dir),
    )
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    codes = {f["code"] for f in doc["findings"]}
    assert {"RL101", "RL102", "RL201"} <= codes
    listed = subprocess.run([str(env_dir / "bin" / "resnetlint"), "--list-rules"], capture_output=True, text=True)
    for rule in ALL_RULES:
        assert rule.code in listed.stdout
