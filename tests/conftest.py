import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


@pytest.fixture
def root() -> Path:
    return ROOT


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: builds wheels or venvs (deselect with -m 'not slow')")
    config.addinivalue_line("markers", "trace: runs the dynamic shape-trace (needs torch)")
