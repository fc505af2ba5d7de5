from __future__ import annotations

import pytest

from pathlib import Path

from tests.cli.helpers import strangler
from tests.loadtests.test_scenarios import demo_processes


pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


def test_demo_walks_cases_from_legacy_to_released(tmp_path: Path) -> None:
    r = strangler("demo", "--once", "--step-seconds", "1", "--workdir", str(tmp_path), timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    for title in ("cases: legacy", "cases: shadow", "cases: canary 10 %", "cases: canary 50 %", "cases: released"):
        assert f"== {title} ==" in out
    assert "% match" in out  # the shadow report, on the way
    released = out.split("== cases: released ==")[1]
    row = next(line.split() for line in released.splitlines() if line.strip().startswith("cases"))
    assert row[1] == "released" and int(row[4]) > 0  # the new service served requests
    assert (tmp_path / "routes.yaml").exists() and demo_processes() == 0


def test_the_demo_leaves_no_folder_of_its_own_behind(tmp_path: Path) -> None:
    """Issue 23, item 6: without --workdir the demo's temporary folder is removed."""
    import os

    r = strangler("demo", "--once", "--step-seconds", "1", timeout=180, env={"TMPDIR": str(tmp_path)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "removed when the demo ends" in r.stdout and os.listdir(tmp_path) == []


def test_sigterm_stops_the_demo_with_status_0_after_cleanup(tmp_path: Path) -> None:
    """Issue 23, item 9: SIGTERM is a request to stop, not a failure."""
    import os
    import signal
    import subprocess
    import time

    from tests.cli.helpers import BIN

    assert BIN
    proc = subprocess.Popen([BIN, "demo", "--step-seconds", "30"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env={**os.environ, "TMPDIR": str(tmp_path)}, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while "== cases: legacy ==" not in proc.stdout.readline() and time.monotonic() < deadline:
            pass
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()  # type: ignore[union-attr]
    assert os.listdir(tmp_path) == []
    deadline = time.monotonic() + 15
    while demo_processes() and time.monotonic() < deadline:  # the estate's processes finish their own stop
        time.sleep(0.2)
    assert demo_processes() == 0
