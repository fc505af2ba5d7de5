"""The slow-client benchmark's short variant: its target holds, and nginx runs beside it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


ROOT = Path(__file__).parent.parent.parent


def test_slow_clients_short_variant_meets_its_target(tmp_path: Path) -> None:
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        pytest.fail("nginx is not installed: run scripts/test.sh, or apt-get install nginx-light")
    out = tmp_path / "slow.json"
    r = subprocess.run([sys.executable, str(ROOT / "loadtests" / "bench_slowclients.py"), "--quick", "--json", str(out)],
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PATH": os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin"})
    assert r.returncode == 0, r.stdout + r.stderr
    results = {x["proxy"]: x for x in json.loads(out.read_text())}
    assert set(results) == {"strangler", "nginx"}
    attack = results["strangler"]["attack"]
    assert attack["errors"] == 0 and attack["p99_ms"] < 50 and attack["requests"] > 100
    assert results["strangler"]["attackers"]["slow0"] == 200  # the attack really held its connections
