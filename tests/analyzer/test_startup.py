"""``strangler up | down | wait | export-startup`` with real processes on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from strangler_analyzer import load_estate
from strangler_analyzer.analysis import analyze
from strangler_analyzer.startup.checks import json_path
from tests.cli.helpers import BIN, strangler
from tests.proxy.upstreams import free_port

pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


FAKE = Path(__file__).parent.parent.parent / "loadtests" / "fake_service.py"


def component(name: str, port: int, delay: float, needs: list[str], flags: str = "", seconds: float | None = None) -> str:
    deps = "".join(f"      {d}: hard\n" for d in needs)
    text = (f"  {name}:\n    start: {sys.executable} {FAKE} {name} {port} {delay} {flags}\n"
            f"    check: {{http: 'http://127.0.0.1:{port}/health', json_path: $.status, equals: UP, timeout: 1}}\n"
            f"    startup_seconds: {seconds if seconds is not None else delay}\n")
    return text + (f"    depends_on:\n{deps}" if needs else "")


def estate(tmp_path: Path, parts: list[str]) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text("components:\n" + "".join(parts))
    return path


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def test_up_starts_in_order_then_down_stops_in_reverse(tmp_path: Path) -> None:
    db, app, web = free_port(), free_port(), free_port()
    inv = estate(tmp_path, [component("db", db, 0.6, []), component("app", app, 0.3, ["db"]), component("web", web, 0.1, ["app"])])
    env = {**os.environ, "STOP_LOG": str(tmp_path / "stops.log")}
    r = subprocess.run([BIN, "up", str(inv), "--state-dir", str(tmp_path / "st"), "--timeline", str(tmp_path / "t.json")],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "t.json").read_text())
    ready = {c["name"]: c for c in doc["components"]}
    assert ready["db"]["ready_at"] <= ready["app"]["started_at"] <= ready["app"]["ready_at"] <= ready["web"]["started_at"]
    assert doc["critical_path"]["components"] == ["db", "app", "web"]
    state = json.loads((tmp_path / "st" / "up-state.json").read_text())
    pids = [e["pid"] for e in state["started"]]
    assert all(alive(p) for p in pids)
    r = subprocess.run([BIN, "down", "--state-dir", str(tmp_path / "st")], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "stops.log").read_text().split("\n")[:3] == ["stopped web", "stopped app", "stopped db"]
    assert not any(alive(p) for p in pids)


def test_fail_fast_names_the_blocked_chain_and_stops_what_started(tmp_path: Path) -> None:
    mq, esb, app = free_port(), free_port(), free_port()
    inv = estate(tmp_path, [component("activemq", mq, 0.1, [], "--never"), component("esb", esb, 0.1, ["activemq"]),
                            component("portal-app", app, 0.1, ["esb"]), component("ldap", free_port(), 0.0, [])])
    env = {**os.environ, "STOP_LOG": str(tmp_path / "stops.log")}
    r = subprocess.run([BIN, "up", str(inv), "--state-dir", str(tmp_path / "st"), "--component-timeout", "1.5"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1
    assert (f"portal-app waits on esb, esb waits on activemq: activemq's check http://127.0.0.1:{mq}/health timed out "
            f"after 1.5 s; last error: connection refused") in r.stderr
    stops = (tmp_path / "stops.log").read_text().split()
    assert set(stops[1::2]) == {"activemq", "ldap"}
    assert not (tmp_path / "st" / "up-state.json").exists()


def test_a_crashing_component_fails_with_its_exit_status(tmp_path: Path) -> None:
    a, b = free_port(), free_port()
    inv = estate(tmp_path, [component("db", a, 0.2, [], "--crash"), component("app", b, 0.1, ["db"])])
    r = strangler("up", str(inv), "--state-dir", str(tmp_path / "st"), timeout=60)
    assert r.returncode == 1
    assert "app waits on db: db exited with status 3 before its check" in r.stderr


def test_deadline(tmp_path: Path) -> None:
    inv = estate(tmp_path, [component("slow", free_port(), 30, [])])
    start = time.monotonic()
    r = strangler("up", str(inv), "--state-dir", str(tmp_path / "st"), "--deadline", "1", timeout=60)
    assert r.returncode == 1 and "deadline of 1 s passed while slow was not ready" in r.stderr
    assert time.monotonic() - start < 15


def test_sigint_stops_everything_and_leaves_no_orphans(tmp_path: Path) -> None:
    inv = estate(tmp_path, [component("db", free_port(), 0.1, []), component("app", free_port(), 60, ["db"])])
    proc = subprocess.Popen([BIN, "up", str(inv), "--state-dir", str(tmp_path / "st")], stderr=subprocess.PIPE, text=True)
    state = tmp_path / "st" / "up-state.json"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not state.exists() or len(json.loads(state.read_text())["started"]) < 2):
        time.sleep(0.05)
    pids = [e["pid"] for e in json.loads(state.read_text())["started"]]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert not any(alive(p) for p in pids)


def test_bad_input_is_refused_before_anything_starts(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text("components:\n  a:\n    start: no-such-binary --flag\n")
    r = strangler("up", str(inv), "--state-dir", str(tmp_path / "st"))
    assert r.returncode == 1 and "start command 'no-such-binary' not found" in r.stderr
    assert not (tmp_path / "st").exists()
    inv.write_text("components:\n  a:\n    check: {tcp: 'nohostport'}\n")
    assert "expected host:port" in strangler("up", str(inv), "--state-dir", str(tmp_path / "st")).stderr
    inv.write_text("components:\n  a:\n    check: {ping: 'x'}\n")
    r = strangler("up", str(inv))
    assert r.returncode == 1 and "unknown key 'ping'" in r.stderr
    inv.write_text("components:\n  a: {depends_on: [b]}\n  b: {depends_on: [a]}\n")
    r = strangler("up", str(inv))
    assert r.returncode == 1 and "form a cycle" in r.stderr


def test_wait_exit_codes_and_exec(tmp_path: Path) -> None:
    port = free_port()
    late = subprocess.Popen([sys.executable, str(FAKE), "late", str(port), "0.5"])
    try:
        r = strangler("wait", f"tcp://127.0.0.1:{port}", f"http://127.0.0.1:{port}/", "--json-path", "$.status",
                      "--equals", "UP", "--timeout", "10", "--", "sh", "-c", "echo executed")
        assert r.returncode == 0 and r.stdout.strip() == "executed", r.stderr
    finally:
        late.terminate()
        late.wait()
    start = time.monotonic()
    r = strangler("wait", f"tcp://127.0.0.1:{free_port()}", "--timeout", "0.5")
    assert r.returncode == 124 and "not ready after 0.5 s; last error: connection refused" in r.stderr
    assert time.monotonic() - start < 5
    (tmp_path / "flag").write_text("")
    r = strangler("wait", f"tcp://127.0.0.1:{free_port()}", f"file://{tmp_path / 'flag'}", "--any", "--timeout", "2")
    assert r.returncode == 0
    r = strangler("wait", "ftp://x")
    assert r.returncode == 1 and "cannot wait for 'ftp://x'" in r.stderr
    r = strangler("wait", f"file://{tmp_path / 'flag'}", "--", "no-such-command")
    assert r.returncode == 1 and "not found" in r.stderr


def write_export(kind: str, text: str, folder: Path) -> None:
    """An export as files the analyzer reads: one unit file per ``# file:`` part for systemd."""
    if kind == "systemd":
        for chunk in text.split("# file: ")[1:]:
            name, _, body = chunk.partition("\n")
            (folder / name).write_text(body)
    else:
        (folder / ("compose.yaml" if kind == "compose" else "manifests.yaml")).write_text(text)


@pytest.mark.parametrize("kind", ["compose", "systemd", "kubernetes"])
def test_exports_round_trip_to_the_same_waves(tmp_path: Path, kind: str) -> None:
    inv = estate(tmp_path, [component("db", 15432, 1, []), component("app", 18080, 1, ["db"]),
                            component("web", 18081, 1, ["app"]), component("batch", 18082, 1, ["db"])])
    before = analyze(load_estate([inv])).waves.waves
    out = tmp_path / "export"
    out.mkdir()
    r = strangler("export-startup", str(inv), "--to", kind)
    assert r.returncode == 0, r.stderr
    write_export(kind, r.stdout, out)
    after = analyze(load_estate([out])).waves.waves
    assert after == before


def test_json_path() -> None:
    assert json_path({"a": [{"b": 1}]}, "$.a[0].b") == 1
    assert json_path({"status": "UP"}, "status") == "UP"


@pytest.mark.parametrize("status", [0, 3])
def test_up_waits_for_a_one_shot_job_to_complete_successfully(tmp_path: Path, status: int) -> None:
    """Compose's service_completed_successfully: the job must exit 0 before its dependents start."""
    port = free_port()
    (tmp_path / "compose.yaml").write_text(
        "services:\n  migrate: {image: example/migrate}\n"
        "  app:\n    image: example/app\n    depends_on: {migrate: {condition: service_completed_successfully}}\n")
    marker = tmp_path / "migrated"
    (tmp_path / "inventory.yaml").write_text(
        "components:\n"
        f"  migrate:\n    start: sh -c 'sleep 0.5; touch {marker}; exit {status}'\n    startup_seconds: 0.5\n"
        f"  app:\n    start: {sys.executable} {FAKE} app {port} 0\n"
        f"    check: {{http: 'http://127.0.0.1:{port}/health'}}\n")
    plan = strangler("up", str(tmp_path / "compose.yaml"), str(tmp_path / "inventory.yaml"), "--dry-run")
    assert "exits 0 (a one-shot job" in plan.stdout, plan.stdout + plan.stderr
    timeline = tmp_path / "timeline.json"
    r = strangler("up", str(tmp_path / "compose.yaml"), str(tmp_path / "inventory.yaml"), "--state-dir", str(tmp_path / "st"),
                  "--timeline", str(timeline), timeout=60)
    try:
        if status == 0:
            assert r.returncode == 0, r.stderr[-2000:]
            comps = {c["name"]: c for c in json.loads(timeline.read_text())["components"]}
            assert comps["app"]["started_at"] >= comps["migrate"]["ready_at"] >= 0.5
        else:
            assert r.returncode == 1 and "migrate exited with status 3" in r.stderr and marker.exists()
            comps = {c["name"]: c for c in json.loads(timeline.read_text())["components"]}
            assert comps["app"]["started_at"] is None  # never started after a failed job
    finally:
        strangler("down", "--state-dir", str(tmp_path / "st"))


def test_up_reads_compose_durations_and_says_what_it_does_not_start(tmp_path: Path) -> None:
    """Issue 22, items 21-22: 'interval: 1s', 'timeout: 3s', 'start_period: 1m' parse as
    Compose parses them (up crashed on them), and up says that it starts no Compose service
    and runs their healthchecks on this host."""
    from strangler_analyzer import load_estate
    from tests.cli.helpers import strangler

    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  db:\n    image: postgres:16\n    healthcheck: {test: [CMD, 'true'], interval: 1s, "
                       "timeout: 1m30s, start_period: 500ms, retries: 3}\n  app:\n    image: shop/app\n"
                       "    depends_on: {db: {condition: service_healthy}}\n")
    (db,) = [c for c in load_estate([compose]).components if c.name == "db"]
    assert db.check is not None and db.check.options == {"interval": "1", "timeout": "90", "start_period": "0.5", "retries": "3"}
    r = strangler("up", str(compose), "--state-dir", str(tmp_path / "state"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "they are waited for, not started" in r.stderr and "the healthchecks of db run on this host" in r.stderr
    compose.write_text(compose.read_text().replace("interval: 1s", "interval: soon"))
    r = strangler("analyze", str(compose))
    assert r.returncode == 1 and "compose.yaml:4" in r.stderr and "expected a duration such as 5s" in r.stderr


@pytest.mark.parametrize("kind", ["compose", "systemd", "kubernetes"])
def test_every_example_round_trips_its_waves_and_keeps_images(tmp_path: Path, kind: str) -> None:
    """Issue 22, item 23: the bundled examples exported and read back start in the same waves;
    images are kept; the portal's hard cycle is refused with the cut that breaks it."""
    from strangler_analyzer import example_path
    from tests.cli.helpers import strangler

    before = analyze(load_estate([example_path("shop-compose")])).waves.waves
    r = strangler("export-startup", "--example", "shop-compose", "--to", kind)
    assert r.returncode == 0, r.stderr
    write_export(kind, r.stdout, tmp_path)
    if kind != "systemd":
        assert "image: nginx:1.27" in r.stdout and ":latest" not in r.stdout.replace("shop/storefront:latest", "")
    assert analyze(load_estate([tmp_path])).waves.waves == before
    if kind == "kubernetes":
        assert "image: busybox:1.36" in r.stdout and "strangler:latest" not in r.stdout
    r = strangler("export-startup", "--example", "portal", "--to", kind)
    assert r.returncode == 1 and "hard dependencies form a cycle" in r.stderr


def test_a_dependency_an_export_cannot_carry_is_a_warning(tmp_path: Path) -> None:
    from tests.cli.helpers import strangler

    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  app: {image: shop/app, depends_on: [worker]}\n  worker: {image: shop/worker}\n")
    r = strangler("export-startup", str(compose), "--to", "kubernetes")
    assert r.returncode == 0 and "app -> worker: worker has no port in the input" in r.stderr
    assert "# warning: app -> worker" in r.stdout


def test_up_and_analyze_agree_on_waves_and_the_critical_path() -> None:
    """Issue 22, item 22: one computation for both (an optional dependency ordered in one and
    not the other; ties on the critical path broken two ways)."""
    from strangler_analyzer import example_path, start_plan

    for profiles in ([], ["search", "debug"]):
        e = load_estate([example_path("shop-compose")], profiles=profiles)
        a, p = analyze(e), start_plan(e)
        assert (a.waves.waves, a.critical_path.components, a.critical_path.seconds) == \
            (p.waves, p.critical_path, p.critical_seconds)
