"""Short variants of every load scenario (a few seconds each), with their thresholds."""

from __future__ import annotations

import re

import subprocess
from pathlib import Path

import pytest

from tests.cli.helpers import strangler


pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')
# the demo estate's processes are counted machine-wide (demo_processes): these tests run in one
# pytest-xdist worker, in turn
pytestmark = [pytestmark, pytest.mark.xdist_group("demo-estate")]


def demo_processes() -> int:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return sum("strangler_cli.demo.apps" in line for line in out.splitlines())


@pytest.mark.parametrize("scenario", ["steady", "release-under-load", "service-fault", "shadow-overhead", "reload-storm"])
def test_scenario_short_variant_passes_its_thresholds(scenario: str, tmp_path: Path) -> None:
    r = strangler("loadtest", scenario, "--users", "8", "--duration", "5s", "--report-dir", str(tmp_path), timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    verdicts = [line for line in r.stdout.splitlines() if "requests" in line and line.startswith("strangler loadtest")]
    assert verdicts and all(line.endswith("PASS") for line in verdicts), r.stdout
    if scenario == "service-fault":  # writes in flight when the service died may fail: reported, not resent
        assert all(re.search(r"failed \(0 of \d+ reads, \d+ of \d+ writes: POST /cases\)", line) for line in verdicts)
        assert "writes:" in r.stdout
    else:
        assert all(" 0 failed" in line for line in verdicts)
    assert list(tmp_path.glob("*_stats.csv")) and list(tmp_path.glob("*.html"))
    if scenario == "service-fault":
        assert "killed cases-service" in r.stdout
    if scenario == "reload-storm":  # 100 writes and SIGHUPs: signals may coalesce, the file watcher may add one
        applied = int(re.search(r"(\d+) reloads applied", r.stdout)[1])  # type: ignore[index]
        assert 50 <= applied <= 201
    if scenario == "shadow-overhead":
        assert "ratio" in r.stdout
    assert demo_processes() == 0


def test_thresholds_fail_the_run(tmp_path: Path) -> None:
    # locust rounds sub-millisecond times down to 0 ms: a negative limit fails whatever the latency
    r = strangler("loadtest", "steady", "--users", "4", "--duration", "3s", "--max-p99-ms=-1",
                  "--report-dir", str(tmp_path), timeout=120)
    assert r.returncode == 1 and "FAIL: p99" in r.stdout


def test_bad_input_names_what_failed(tmp_path: Path) -> None:
    import socket

    r = strangler("loadtest", "nope")
    assert r.returncode == 2 and "unknown scenario 'nope'" in r.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        r = strangler("loadtest", "steady", "--port", str(s.getsockname()[1]), "--duration", "3s", "--report-dir", str(tmp_path))
    assert r.returncode == 1 and "is in use" in r.stderr and "Traceback" not in r.stderr
    assert demo_processes() == 0


def test_several_load_processes(tmp_path: Path) -> None:
    r = strangler("loadtest", "steady", "--users", "8", "--duration", "4s", "--processes", "2", "--report-dir", str(tmp_path),
                  timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    (verdict,) = [line for line in r.stdout.splitlines() if "requests" in line and line.startswith("strangler loadtest")]
    assert verdict.endswith("PASS") and " 0 failed" in verdict
    assert demo_processes() == 0
