"""``--workers N`` (issue 26, items 2 and 7): the parent supervises its workers as nginx's
master does, and it alone validates a new route table, which every worker then follows."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from strangler_proxy.supervisor import CRASH_LIMIT, backoff
from tests.proxy.harness import routes_file, wait_until
from tests.proxy.upstreams import Upstream


def workers_of(parent: int) -> set[int]:
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == parent and "strangler_proxy.worker" in (entry / "cmdline").read_bytes().decode(errors="replace"):
                out.add(int(entry.name))
    return out


class Users:
    """Kept-alive users that resend a GET when their connection dies under it or is reset as
    it opens (as browsers do, twice at most); anything else that fails is counted."""

    def __init__(self, url: str, n: int = 6) -> None:
        self.url, self.n, self.stop = url, n, threading.Event()
        self.sent = self.failed = self.resent = 0
        self.why: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run) for _ in range(n)]

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as c:
            while not self.stop.is_set():
                ok = False
                for attempt in range(3):
                    try:
                        r = c.get("/echo/x")
                    except httpx.TransportError as exc:
                        # the killed worker's connections, and the ones the kernel had queued on its
                        # listener (reset as it closes; net.ipv4.tcp_migrate_req moves them instead)
                        with self.lock:
                            self.resent += 1
                        if attempt == 2:
                            self.why.append(repr(exc))
                        continue
                    ok = r.status_code == 200
                    if not ok:
                        self.why.append(f"{r.status_code} {r.text[:80]}")
                    break
                with self.lock:
                    self.sent += 1
                    self.failed += not ok

    def __enter__(self) -> Users:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(15)


def test_a_killed_worker_is_replaced_while_the_other_serves_and_sigterm_exits_0(
        tmp_path: Path, legacy: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url}), workers=2)
    assert wait_until(lambda: len(workers_of(p.proc.pid)) == 2, 10)
    with Users(p.url) as users:
        time.sleep(0.5)
        for _ in range(2):
            before = workers_of(p.proc.pid)
            victim = min(before)
            os.kill(victim, signal.SIGKILL)

            def back() -> bool:  # a new worker, and it is listening (it says so once it is)
                new = workers_of(p.proc.pid) - before
                return bool(new) and f"[{new.pop()}]: listening on" in p.log.read_text()

            assert wait_until(back, 10)  # replaced (how fast is the machine's business, not a test's: 1-2.5 s seen)
            time.sleep(0.5)
    assert users.failed == 0 and users.sent > 200, (users.sent, users.failed, users.resent, users.why)
    log = p.log.read_text()
    assert re.search(r"worker \d+ killed by signal 9; starting another", log) and "worker" in log
    assert p.stop() == 0  # asked to stop by a signal: status 0
    assert not workers_of(p.proc.pid)


def test_a_crash_loop_stops_the_proxy_with_a_non_zero_status(tmp_path: Path, legacy: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    assert [backoff(n) for n in (1, 2, 3, 6, 20)] == [0.0, 0.5, 1.0, 8.0, 8.0]
    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url}), workers=2)
    assert p.proc is not None
    killed: set[int] = set()
    deadline = time.monotonic() + 40
    while p.proc.poll() is None and time.monotonic() < deadline:
        for pid in workers_of(p.proc.pid) - killed:
            killed.add(pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    assert p.proc.wait(20) == 1, p.log.read_text()
    assert len(killed) == CRASH_LIMIT + 1
    assert "a crash loop; stopping the proxy" in p.log.read_text()


def test_only_the_parent_validates_a_route_edit_and_every_process_follows_it(
        tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    module = "  cases:\n    match: {path_prefix: /echo/cases}\n    service: service\n    stage: legacy\n    retire_window: 3600\n"
    routes = routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, module)
    p = start_proxy(routes, workers=2)
    with httpx.Client(base_url=p.url) as c:
        for _ in range(20):  # legacy serves the module: retiring it is refused for an hour
            assert c.get("/echo/cases/1").json()["name"] == "legacy"
        time.sleep(1.0)  # the workers' activity reaches the store the parent reads
        routes.write_text(routes.read_text().replace("stage: legacy", "stage: retired"))
        assert wait_until(lambda: "reload rejected" in p.log.read_text(), 10)
        assert p.admin_call("GET", "/modules/cases").json()["stage"] == "legacy"
        assert all(c.get("/echo/cases/1").json()["name"] == "legacy" for _ in range(40))  # no worker took it
        assert p.log.read_text().count("reload rejected") == 1  # refused once, by the one that validates
        routes.write_text(routes.read_text().replace("stage: retired", "stage: released"))
        assert wait_until(lambda: p.admin_call("GET", "/modules/cases").json()["stage"] == "released", 10)
        assert wait_until(lambda: all(c.get("/echo/cases/1").json()["name"] == "service" for _ in range(40)), 5)
