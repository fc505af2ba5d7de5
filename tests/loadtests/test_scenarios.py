"""Short variants of every load scenario (a few seconds each), with their thresholds."""

from __future__ import annotations

import re

from pathlib import Path

import pytest

from tests.cli.helpers import strangler


pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


TAG = "STRANGLER_TEST_ESTATE"


def tagged(tmp_path: Path) -> dict[str, str]:
    """The environment that marks the demo estate a test starts as that test's (its
    processes inherit it), so that tests running beside it (pytest-xdist) are not counted."""
    return {TAG: str(tmp_path)}


def demo_processes(tmp_path: Path) -> int:
    """The demo estate's processes still running that the test of ``tmp_path`` started."""
    mine = f"{TAG}={tmp_path}".encode()
    count = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"strangler_cli.demo.apps" in (entry / "cmdline").read_bytes() and mine in (entry / "environ").read_bytes().split(b"\0"):
                count += 1
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return count


@pytest.mark.parametrize("scenario", ["steady", "release-under-load", "service-fault", "shadow-overhead", "reload-storm"])
def test_scenario_short_variant_passes_its_thresholds(scenario: str, tmp_path: Path) -> None:
    r = strangler("loadtest", scenario, "--users", "8", "--duration", "5s", "--report-dir", str(tmp_path), timeout=180,
                  env=tagged(tmp_path))
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
    assert demo_processes(tmp_path) == 0


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
        r = strangler("loadtest", "steady", "--port", str(s.getsockname()[1]), "--duration", "3s", "--report-dir", str(tmp_path),
                      env=tagged(tmp_path))
    assert r.returncode == 1 and "is in use" in r.stderr and "Traceback" not in r.stderr
    assert demo_processes(tmp_path) == 0


def test_several_load_processes(tmp_path: Path) -> None:
    r = strangler("loadtest", "steady", "--users", "8", "--duration", "4s", "--processes", "2", "--report-dir", str(tmp_path),
                  timeout=180, env=tagged(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    (verdict,) = [line for line in r.stdout.splitlines() if "requests" in line and line.startswith("strangler loadtest")]
    assert verdict.endswith("PASS") and " 0 failed" in verdict
    assert demo_processes(tmp_path) == 0
