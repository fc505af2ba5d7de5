"""Locust users for the demo estate behind the strangler proxy.

Run through ``strangler loadtest SCENARIO`` (which starts the estate and the proxy, and
drives the scenario's changes), or by hand against a running proxy:

    locust -f loadtests/locustfile.py --headless -u 20 -r 20 -t 30s --host http://127.0.0.1:8000

Each user logs in once and keeps its ``JSESSIONID`` cookie, so cohorts are sticky. The
thresholds set locust's exit code in an ``events.quitting`` listener, from environment:

    STRANGLER_SCENARIO            steady | release-under-load | service-fault | shadow-overhead | reload-storm
    STRANGLER_MAX_FAILURE_RATIO   failed requests / all (default 0: none may fail)
    STRANGLER_MAX_P99_MS          p99 over all requests (default 2000)
    STRANGLER_CHECK_STICKY        1: a user served by a module's new side must never see legacy again
    STRANGLER_WRITES_MAY_FAIL     1: failed writes are reported, not counted against the run
"""

from __future__ import annotations

import os
import random
import uuid
from typing import Any

from locust import FastHttpUser, between, events, task
from locust.runners import WorkerRunner

SCENARIO = os.environ.get("STRANGLER_SCENARIO", "steady")
MAX_FAILURE_RATIO = float(os.environ.get("STRANGLER_MAX_FAILURE_RATIO", "0"))
MAX_P99_MS = float(os.environ.get("STRANGLER_MAX_P99_MS", "2000"))
CHECK_STICKY = os.environ.get("STRANGLER_CHECK_STICKY") == "1"
WRITES_MAY_FAIL = os.environ.get("STRANGLER_WRITES_MAY_FAIL") == "1"
NEW_SIDES = {"cases": "cases-service", "kb": "kb-service"}


class PortalUser(FastHttpUser):
    wait_time = between(0.02, 0.1)

    def on_start(self) -> None:
        self.user = f"user-{uuid.uuid4().hex[:12]}"
        self.on_new: set[str] = set()
        with self.client.get(f"/login?user={self.user}", name="/login", allow_redirects=False, catch_response=True) as r:
            if r.status_code != 302:
                r.failure(f"login answered {r.status_code}")

    def _get(self, path: str, name: str, module: str | None) -> None:
        with self.client.get(path, name=name, catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"status {r.status_code}")
                return
            if module is None:
                return
            side = r.headers.get("x-served-by", "")
            if side == NEW_SIDES[module]:
                self.on_new.add(module)
            elif CHECK_STICKY and module in self.on_new:
                r.failure(f"sticky: {self.user} saw legacy for {module} after the new side")

    @task(6)
    def case(self) -> None:
        self._get(f"/cases/{random.randint(1, 200)}", "/cases/[id]", "cases")

    @task(2)
    def case_list(self) -> None:
        self._get("/api/cases", "/api/cases", "cases")

    @task(4)
    def article(self) -> None:
        self._get(f"/kb/{random.randint(1, 50)}", "/kb/[id]", "kb")

    @task(2)
    def assets(self) -> None:
        self._get("/static/app.js", "/static/app.js", None)

    @task(1)
    def entitlements(self) -> None:
        self._get(f"/entitlements/{self.user}", "/entitlements/[user]", None)

    @task(1)
    def account(self) -> None:
        self._get(f"/accounts/{random.randint(1, 500)}", "/accounts/[id]", None)

    @task(1)
    def new_case(self) -> None:
        with self.client.post("/cases", data=b"Printer on fire", name="POST /cases", catch_response=True) as r:
            if r.status_code != 201:
                r.failure(f"write answered {r.status_code}")


@events.quitting.add_listener
def _thresholds(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return  # with --processes, the master holds the aggregated stats and decides
    stats = environment.stats
    total = stats.total
    writes = stats.get("POST /cases", "POST")
    reads_failed = total.num_failures - writes.num_failures
    counted_failures = reads_failed if WRITES_MAY_FAIL else total.num_failures
    ratio = counted_failures / total.num_requests if total.num_requests else 1.0
    p99 = total.get_response_time_percentile(0.99) or 0.0
    problems = []
    if total.num_requests == 0:
        problems.append("no requests were made")
    if ratio > MAX_FAILURE_RATIO:
        problems.append(f"failure ratio {ratio:.4f} > {MAX_FAILURE_RATIO:g}")
    if p99 > MAX_P99_MS:
        problems.append(f"p99 {p99:.0f} ms > {MAX_P99_MS:g} ms")
    sticky = sum(e.occurrences for e in stats.errors.values() if "sticky:" in str(e.error))
    print(f"strangler loadtest {SCENARIO}: {total.num_requests} requests, {total.num_failures} failed "
          f"({reads_failed} of {total.num_requests - writes.num_requests} reads, {writes.num_failures} of "
          f"{writes.num_requests} writes: POST /cases), p99 {p99:.0f} ms, "
          f"stickiness violations {sticky}: {'FAIL: ' + '; '.join(problems) if problems else 'PASS'}", flush=True)
    if SCENARIO == "service-fault":
        print(f"strangler loadtest service-fault: writes: {writes.num_requests} sent, {writes.num_failures} failed. A write in "
              "flight on the new service when it died may have been seen, so it is answered 502 and not resent (a POST "
              "with no idempotency key); every later write found the port closed and was resent to legacy.", flush=True)
    environment.process_exit_code = 1 if problems else 0
