"""mypy --strict and ruff over every package, so types and names stay true (settings in pyproject.toml)."""

from __future__ import annotations

import pytest

import subprocess
import sys
from pathlib import Path

pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


ROOT = Path(__file__).parent.parent


def test_mypy_strict_is_clean() -> None:
    r = subprocess.run([sys.executable, "-m", "mypy", "common", "analyzer", "proxy", "cli"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_finds_no_unused_or_undefined_names() -> None:
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "common", "analyzer", "proxy", "cli", "tests", "loadtests"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
