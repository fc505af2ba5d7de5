from __future__ import annotations

import pytest

from pathlib import Path

from tests.cli.helpers import strangler
from tests.loadtests.test_scenarios import demo_processes, tagged


pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


def _rows(section: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in section.splitlines() if line.strip().startswith(("cases ", "kb "))}


def test_demo_walks_cases_from_legacy_to_released(tmp_path: Path) -> None:
    """Issue 23, item 9: per-stage counts, new traffic at canary 10 %, the shadow gate explained,
    the canary steps taken by the real release controller with its checks on screen, and the
    released row showing what runs (not a weight left from the canary)."""
    r = strangler("demo", "--once", "--step-seconds", "1", "--workdir", str(tmp_path), timeout=240, env=tagged(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    sections = out.split("\n== ")
    titles = [s.split(" ==")[0] for s in sections[1:]]
    assert titles[:2] == ["cases: legacy (set by hand through the admin API)", "cases: shadow (set by hand through the admin API)"]
    assert titles[2].startswith("cases: running at canary 10 %, step 1 of 2 (release start")
    assert titles[3] == "cases: running at canary 50 %, step 2 of 2 (by the release controller)"
    assert titles[4] == "cases: released: all 2 steps done (by the release controller)"
    legacy, shadow, canary10, canary50, released = (_rows(s) for s in sections[1:6])
    # columns: module, stage, new side (N %), legacy, new, fallbacks
    assert int(legacy["cases"][4]) > 0 and legacy["cases"][5] == "0"
    assert "too few to be sure" in sections[2] and "% match" in sections[2]  # the gate failing on 100 % says why
    # per-stage counts: each stage's own, and the new side serves at canary 10 % already
    assert canary10["cases"][1:3] == ["canary", "10"] and int(canary10["cases"][5]) > 0
    assert "check: pass: error rate" in sections[3] and "check: pass: error rate" in sections[4]
    assert canary50["cases"][1:3] == ["canary", "50"] and int(canary50["cases"][5]) > 0
    assert int(canary50["cases"][4]) < int(legacy["cases"][4]) + int(shadow["cases"][4]) + int(canary10["cases"][4])
    assert released["cases"][1:3] == ["released", "100"] and int(released["cases"][5]) > 0
    assert int(released["cases"][4]) == 0  # released: legacy serves none of it (no fallbacks either)
    assert (tmp_path / "routes.yaml").exists() and demo_processes(tmp_path) == 0


def test_the_demo_leaves_no_folder_of_its_own_behind(tmp_path: Path) -> None:
    """Issue 23, item 6: without --workdir the demo's temporary folder is removed."""
    import os

    r = strangler("demo", "--once", "--step-seconds", "1", timeout=180, env={"TMPDIR": str(tmp_path), **tagged(tmp_path)})
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
                            env={**os.environ, "TMPDIR": str(tmp_path), **tagged(tmp_path)}, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        seen = ""
        while "== cases: legacy" not in seen and time.monotonic() < deadline and proc.poll() is None:
            seen = proc.stdout.readline()
        assert "== cases: legacy" in seen, "the demo never reached its first stage"  # stopped mid-walk, not after it
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()  # type: ignore[union-attr]
    assert os.listdir(tmp_path) == []
    deadline = time.monotonic() + 15
    while demo_processes(tmp_path) and time.monotonic() < deadline:  # the estate's processes finish their own stop
        time.sleep(0.2)
    assert demo_processes(tmp_path) == 0
