import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


@pytest.fixture
def root() -> Path:
    return ROOT


def pytest_configure(config):
    # The CLI caches results by default; never in the repository during tests
    # (subprocesses inherit this too).  Cache tests pass their own directory.
    if not os.environ.get("RESNETLINT_CACHE_DIR"):
        import tempfile

        os.environ["RESNETLINT_CACHE_DIR"] = tempfile.mkdtemp(prefix="resnetlint-test-cache-")
    config.addinivalue_line("markers", "slow: builds wheels or venvs (deselect with -m 'not slow')")
    config.addinivalue_line("markers", "trace: runs the dynamic shape-trace (needs torch)")
