"""Several proxy replicas on one real PostgreSQL state store agree on stage, weight and sides."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.proxy.harness import ProxyProcess, routes_file
from tests.proxy.test_release import PLAN, Traffic, wait_for
from tests.proxy.upstreams import Upstream

pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


MODULE = "  cases:\n    match: {path_prefix: /echo/cases}\n    service: service\n    stage: canary\n    weight: 0\n"


def two(tmp_path: Path, routes: Path, pg_url: str, start_proxy) -> tuple[ProxyProcess, ProxyProcess]:  # type: ignore[no-untyped-def]
    return start_proxy(routes, state=pg_url), start_proxy(routes, state=pg_url)


def test_a_change_on_one_replica_reaches_the_other_within_a_second(tmp_path: Path, legacy: Upstream, service: Upstream,
                                                                   pg_url: str, start_proxy) -> None:  # type: ignore[no-untyped-def]
    routes = routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, MODULE)
    a, b = two(tmp_path, routes, pg_url, start_proxy)
    assert a.admin_call("PATCH", "/modules/cases", json={"weight": 50}).status_code == 200
    start = time.monotonic()
    wait_for(lambda: b.admin_call("GET", "/modules/cases").json()["weight"] == 50, 1.0)
    seen_after = time.monotonic() - start
    assert seen_after < 1.0
    # the same cohort key goes to the same side through either replica
    for i in range(60):
        cookie = {"cookie": f"JSESSIONID=user{i}"}
        assert httpx.get(f"{a.url}/echo/cases/1", headers=cookie).json()["name"] == \
               httpx.get(f"{b.url}/echo/cases/1", headers=cookie).json()["name"]
    assert b.admin_call("PATCH", "/modules/cases", json={"stage": "legacy"}).status_code == 200
    wait_for(lambda: a.admin_call("GET", "/modules/cases").json()["stage"] == "legacy", 1.0)
    ledger_a = a.admin_call("GET", "/ledger").json()
    assert ledger_a == b.admin_call("GET", "/ledger").json() and len(ledger_a) == 2
    # the ledger cannot be rewritten, even from SQL
    with psycopg.connect(pg_url, autocommit=True) as db, pytest.raises(psycopg.errors.RaiseException):
        db.execute("DELETE FROM strangler_ledger")


def test_one_controller_drives_a_release_across_replicas(tmp_path: Path, legacy: Upstream, service: Upstream,
                                                         pg_url: str, start_proxy) -> None:  # type: ignore[no-untyped-def]
    routes = routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, PLAN)
    a, b = two(tmp_path, routes, pg_url, start_proxy)
    assert b.admin_call("POST", "/releases/cases", json={"action": "start"}).status_code == 200
    with Traffic(a), Traffic(b):
        wait_for(lambda: a.admin_call("GET", "/modules/cases").json()["stage"] == "released", 40)
    steps = [e for e in a.admin_call("GET", "/ledger").json() if e["action"] == "release.step"]
    assert [e["detail"]["weight"] for e in reversed(steps)] == [25, 50, 100]  # each once: one leader
    wait_for(lambda: b.admin_call("GET", "/modules/cases").json()["stage"] == "released", 1.0)


def test_an_unreachable_store_is_a_clear_error(tmp_path: Path) -> None:
    from tests.cli.helpers import strangler
    from tests.servers import free_port

    routes = routes_file(tmp_path / "r.yaml", {"legacy": "http://127.0.0.1:1"}, "")
    r = strangler("proxy", "--routes", str(routes), "--listen", f"127.0.0.1:{free_port()}", "--admin", "off",
                  "--state", f"postgresql://postgres@127.0.0.1:{free_port()}/none", timeout=60)
    assert r.returncode == 1 and "state store postgresql://" in r.stderr and "cannot open" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_database_restart_under_load_fails_no_request_and_the_replicas_agree_again(
        tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    from tests.servers import Postgres

    pg = Postgres().start()
    try:
        url = f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"
        routes = routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, PLAN)
        a, b = two(tmp_path, routes, url, start_proxy)
        with Traffic(a) as ta, Traffic(b) as tb:
            time.sleep(1)
            pg.stop()
            wait_for(lambda: a.metric("strangler_state_store_up") == 0 and b.metric("strangler_state_store_up") == 0, 10)
            assert httpx.get(f"{a.url}/_strangler/readyz").status_code == 503  # a balancer may prefer another replica
            time.sleep(2)  # an outage of a few seconds: traffic flows all along
            pg.start()
            restarted = time.monotonic()
            wait_for(lambda: a.admin_call("PATCH", "/modules/cases", json={"stage": "canary", "weight": 30}).status_code == 200, 10)
            wait_for(lambda: b.admin_call("GET", "/modules/cases").json()["weight"] == 30, 5)
            assert time.monotonic() - restarted < 5  # the replicas agree again within 5 s
            assert a.metric("strangler_state_store_up") == 1 and httpx.get(f"{a.url}/_strangler/readyz").status_code == 200
            # a leader again: the lock went with the old session; a release runs to its end
            assert b.admin_call("POST", "/releases/cases", json={"action": "start"}).status_code == 200
            wait_for(lambda: a.admin_call("GET", "/modules/cases").json()["stage"] == "released", 40)
        assert ta.failed == 0 and tb.failed == 0  # not one client request failed
        for p in (a, b):  # the outage and the recovery: one line each, not one per poll
            log = p.log.read_text()
            assert log.count("state store poll failed") == 1 and log.count("state store poll works again") == 1, log
    finally:
        pg.remove()


def test_two_replicas_roll_a_failing_service_back_on_both_replicas_traffic(
        tmp_path: Path, legacy: Upstream, service: Upstream, pg_url: str, start_proxy) -> None:  # type: ignore[no-untyped-def]
    from tests.proxy.test_release import SpreadTraffic, sources_with_traffic, status

    service.fail = True
    # breakers that never open: the new side keeps its share, and the judge its evidence
    routes = routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, PLAN, "breaker: {failures: 100000}\n")
    a, b = two(tmp_path, routes, pg_url, start_proxy)
    assert a.admin_call("POST", "/releases/cases", json={"action": "start"}).status_code == 200
    def both_published() -> bool:  # the leader judges with the other replica's traffic too
        with psycopg.connect(pg_url) as db:
            rows = db.execute("SELECT source, step_key, data FROM strangler_release_windows WHERE module = 'cases'").fetchall()
        return len(rows) == 2 and rows[0][1] == rows[1][1] and len(sources_with_traffic([(r[0], r[2]) for r in rows])) == 2

    with SpreadTraffic(a) as ta, SpreadTraffic(b) as tb:
        wait_for(both_published, 20)
        wait_for(lambda: status(a)["status"] == "rolled_back", 40)
    assert ta.failed == 0 and tb.failed == 0
