"""The built wheel works without the source tree: version, license, and a load scenario
(its locustfile ships inside the package)."""

from __future__ import annotations

import pytest

import os
import shutil
import subprocess
import sys
from pathlib import Path

pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_runs_version_and_a_loadtest_outside_the_checkout(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    source = tmp_path / "source"  # built from a copy: setuptools would leave build/ in the checkout
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "tests", "reports"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(wheels)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("strangler-*.whl")
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=120)
    assert (site / "strangler_cli" / "loadtest_assets" / "locustfile.py").is_file()
    assert not (site / "strangler_cli" / "loadtest_assets" / "locustfile.py").is_symlink()  # a copy, not a link home
    (info,) = site.glob("strangler-*.dist-info")
    assert "Apache License" in next(info.rglob("LICENSE")).read_text()
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = [sys.executable, "-c", "import sys; from strangler_cli.main import main; sys.exit(main())"]
    where = subprocess.run([sys.executable, "-c", "import strangler_cli; print(strangler_cli.__file__)"], env=env,
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(site))  # the installed copy, not the checkout
    version = subprocess.run([*run, "--version"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.strip() == "strangler 0.1.0"
    load = subprocess.run([*run, "loadtest", "steady", "--users", "4", "--duration", "3s", "--report-dir",
                           str(tmp_path / "reports")], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert load.returncode == 0, load.stdout + load.stderr
    assert "PASS" in load.stdout and list((tmp_path / "reports").glob("*_stats.csv"))
