"""``strangler routes export`` as a user runs it: the store's live weights, atomic output,
JSON warnings, and clear errors that leave the previous output in place."""

from __future__ import annotations

import pytest

import json
from pathlib import Path

import yaml

from strangler_proxy.state import default_path, open_store
from tests.cli.helpers import strangler

pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


ROUTES = """upstreams:
  legacy: http://portal.shop:8080
  cases-svc: http://cases.shop:8000
cohort: {cookie: true}
modules:
  cases:
    match: {path_prefix: /cases}
    service: cases-svc
    stage: canary
    weight: 10
"""


def _new_share(vs_text: str) -> int:
    (vs,) = [d for d in yaml.safe_load_all(vs_text) if d["kind"] == "VirtualService"]
    (draw,) = [r for r in vs["spec"]["http"] if r["name"].endswith("-draw")]
    return sum(d["weight"] for d in draw["route"] if d["destination"]["host"].startswith("cases."))


def test_export_takes_the_live_weight_from_the_state_store(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES)
    r = strangler("routes", "export", str(routes), "--to", "istio")
    assert r.returncode == 0, r.stderr
    assert _new_share(r.stdout) == 1000  # the file's 10 %, in basis points
    default_path(routes).parent.mkdir()
    store = open_store(default_path(routes))
    store.set("cases", "canary", 40, actor="test")
    store.close()
    r = strangler("routes", "export", str(routes), "--to", "istio")  # the default store beside the file
    assert _new_share(r.stdout) == 4000
    r = strangler("routes", "export", str(routes), "--to", "istio", "--state", "none")
    assert _new_share(r.stdout) == 1000


def test_json_lists_what_the_target_cannot_express(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES)
    out = tmp_path / "strangler.conf"
    r = strangler("routes", "export", str(routes), "--to", "nginx", "-o", str(out), "--format", "json", "--listen", "127.0.0.1:9")
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert data["target"] == "nginx" and "listen 127.0.0.1:9;" in data["config"]
    assert any("retries DELETE, PUT, TRACE" in w for w in data["warnings"])
    assert all(f"#   - {w}" in data["config"] for w in data["warnings"])


def test_errors_name_the_problem_and_keep_the_last_output(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES)
    out = tmp_path / "haproxy.cfg"
    assert strangler("routes", "export", str(routes), "--to", "haproxy", "-o", str(out)).returncode == 0
    good = out.read_text()
    routes.write_text(ROUTES.replace("weight: 10", "weight: 250"))
    r = strangler("routes", "export", str(routes), "--to", "haproxy", "-o", str(out))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"{routes}:" in r.stderr and "weight" in r.stderr
    assert out.read_text() == good
    routes.write_text(ROUTES)
    r = strangler("routes", "export", str(routes), "--to", "haproxy", "--state", str(tmp_path / "nope.sqlite3"))
    assert r.returncode == 1 and "no state store there" in r.stderr
    routes.write_text(ROUTES.replace("cases-svc", "cases svc"))
    r = strangler("routes", "export", str(routes), "--to", "nginx")
    assert r.returncode == 1 and "Traceback" not in r.stderr and "this name cannot be carried" in r.stderr
    routes.write_text(ROUTES.replace("  cases-svc: http://cases.shop:8000\n", "  cases-svc: http://cases.shop:8000\n  cases_svc: http://c:1\n"))
    r = strangler("routes", "export", str(routes), "--to", "nginx")
    assert r.returncode == 1 and f"{routes}:4: upstreams.cases_svc: reads the same as 'cases-svc'" in r.stderr


def test_the_bundled_example_exports_configurations_nginx_and_haproxy_accept(tmp_path: Path) -> None:
    import subprocess

    from tests.servers import NGINX_MAIN, haproxy_binary, nginx_binary

    example = Path(__file__).parent.parent.parent / "routes" / "example.yaml"
    include, cfg = tmp_path / "strangler.conf", tmp_path / "haproxy.cfg"
    for target, out in (("nginx", include), ("haproxy", cfg)):  # the default listen: port 8000
        r = strangler("routes", "export", str(example), "--to", target, "--state", "none", "-o", str(out))
        assert r.returncode == 0, r.stderr
    (tmp_path / "nginx.conf").write_text(NGINX_MAIN.format(dir=tmp_path, include=include, access="off"))
    checks = [[nginx_binary(), "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-t"], [haproxy_binary(), "-c", "-f", str(cfg)]]
    for argv in checks:
        done = subprocess.run(argv, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_apply_dry_run_shows_the_diff_and_changes_nothing_then_apply_checks_and_reloads(tmp_path: Path) -> None:
    """``routes apply`` with a file plane: the dry run prints a diff and leaves the file alone;
    the apply writes it, runs the check and the reload; a refused check keeps the old file."""
    conf = tmp_path / "strangler.conf"
    marks = tmp_path / "marks"
    routes = tmp_path / "routes.yaml"
    plane = (f"data_plane:\n  nginx:\n    config: {conf}\n    test: sh -c 'echo test >> {marks}'\n"
             f"    reload: sh -c 'echo reload >> {marks}'\n")
    routes.write_text(plane + ROUTES)
    r = strangler("routes", "apply", str(routes), "--dry-run", "--state", "none")
    assert r.returncode == 0, r.stderr
    assert f"create  {conf}" in r.stdout and "+    listen 8000;" in r.stdout and "dry run: nothing was changed" in r.stdout
    assert not conf.exists() and not marks.exists()
    r = strangler("routes", "apply", str(routes), "--state", "none")
    assert r.returncode == 0 and "applied" in r.stdout, r.stderr
    assert "listen 8000;" in conf.read_text() and marks.read_text().split() == ["test", "reload"]
    r = strangler("routes", "apply", str(routes), "--dry-run", "--state", "none")
    assert "nothing to change" in r.stdout
    good = conf.read_text()
    routes.write_text(plane.replace("echo test >>", "exit 1; echo test >>") + ROUTES.replace("weight: 10", "weight: 30"))
    r = strangler("routes", "apply", str(routes), "--state", "none")
    assert r.returncode == 1 and "the data plane's check" in r.stderr and "Traceback" not in r.stderr
    assert conf.read_text() == good  # the last good configuration stays
    routes.write_text(ROUTES)
    r = strangler("routes", "apply", str(routes))
    assert r.returncode == 1 and "no data_plane: block" in r.stderr
