"""Starting the demo estate and a proxy in front of it, on free loopback ports."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Collection
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from strangler_proxy import ProxyError

ROLES = ("legacy", "cases-service", "kb-service")


def free_ports(n: int, taken: Collection[int] = ()) -> list[int]:
    """``n`` distinct free loopback ports, none of them in ``taken``. The sockets are held
    bound together while the kernel picks: one bound and closed at a time, the kernel may
    hand the same port out twice (measured: 12 of 20,000 runs of five picks)."""
    ports: list[int] = []
    with ExitStack() as held:
        while len(ports) < n:
            s = held.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
            if port not in taken:
                ports.append(port)
    return ports


def listening_socket() -> socket.socket:
    """A loopback socket already listening, for a demo service to inherit: its port cannot
    be taken by another process between being chosen and being served."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    return s


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def routes_yaml(ports: dict[str, int], cases_stage: str = "legacy", cases_weight: float = 0, kb_stage: str = "legacy",
                release_interval: float | None = None) -> str:
    """The demo's route table; with ``release_interval``, cases has a release plan the
    controller walks (canary 10 %, 50 %, then released; each step at least that long)."""
    release = "" if release_interval is None else (
        f"    release:\n      steps: [10, 50]\n      interval: {release_interval:g}\n"
        # generous p99 terms: the demo's services are small Python apps on a shared machine
        "      analysis: {min_requests: 20, error_rate_margin: 0.02, p99_factor: 3, p99_floor_ms: 250}\n"
        "      failure_limit: 3\n      rollback: legacy\n")
    return f"""# The demo estate's route table (written by strangler demo / loadtest)
upstreams:
  legacy: http://127.0.0.1:{ports['legacy']}
  cases-service: http://127.0.0.1:{ports['cases-service']}
  kb-service: http://127.0.0.1:{ports['kb-service']}
modules:
  cases:
    match: {{path_prefix: [/cases, /api/cases]}}
    service: cases-service
    stage: {cases_stage}
    weight: {cases_weight:g}
    shadow: {{noise: twice, min_samples: 30, compare: {{ignore_headers: [x-served-by]}}}}
{release}  kb:
    match: {{path_prefix: /kb}}
    service: kb-service
    stage: {kb_stage}
    weight: 0
"""


@dataclass
class DemoEstate:
    """The demo's processes; ``stop`` ends them all, proxy first."""

    workdir: Path
    proxy_port: int = 0
    admin_port: int = 0
    ports: dict[str, int] = field(default_factory=dict)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    workers: int = 1
    release_interval: float | None = None  # with it, cases has a release plan (routes_yaml)

    @property
    def routes(self) -> Path:
        return self.workdir / "routes.yaml"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self, **stages: object) -> DemoEstate:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.proxy_port and not port_free(self.proxy_port):
            raise ProxyError(f"port {self.proxy_port} is in use: choose another with --port")
        try:
            for role in ROLES:
                with listening_socket() as sock:
                    self.ports[role] = sock.getsockname()[1]
                    self._spawn(role, [sys.executable, "-m", "strangler_cli.demo.apps", role, f"fd:{sock.fileno()}"],
                                pass_fds=(sock.fileno(),))
            for role in ROLES:
                self._wait(f"http://127.0.0.1:{self.ports[role]}/healthz" if role == "legacy" else
                           f"http://127.0.0.1:{self.ports[role]}{'/cases' if role == 'cases-service' else '/kb'}", role)
            self.routes.write_text(routes_yaml(self.ports, **stages, release_interval=self.release_interval))  # type: ignore[arg-type]
            self._start_proxy()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_proxy(self) -> None:
        """The proxy on the ports asked for and on free ones picked here for the others. The
        proxy binds them itself, so another process may take a picked one first: then it is
        picked again (three tries). A port asked for is never swapped for another."""
        chosen = not self.admin_port, not self.proxy_port
        strangler = str(Path(sys.executable).parent / "strangler")
        for attempt in range(3):
            picked = iter(free_ports(sum(chosen), taken={*self.ports.values(), self.proxy_port, self.admin_port}))
            admin_port = next(picked) if chosen[0] else self.admin_port
            proxy_port = next(picked) if chosen[1] else self.proxy_port
            self.admin_port, self.proxy_port = admin_port, proxy_port
            self._spawn("proxy", [strangler, "proxy", "--routes", str(self.routes), "--listen", f"127.0.0.1:{proxy_port}",
                                  "--admin", f"127.0.0.1:{admin_port}",
                                  "--state", str(self.workdir / "state.sqlite3"), "--workers", str(self.workers)],
                        # the token through the environment: never in the process list, and one starting
                        # with '-' (token_urlsafe makes one in 64) is not read as an option
                        env={**os.environ, "STRANGLER_ADMIN_TOKEN": self.token})
            try:
                self._wait(f"{self.admin}/healthz", "proxy")
            except ProxyError as exc:
                taken = [f"127.0.0.1:{port}: Address already in use" in str(exc)
                         for port, ours in ((admin_port, chosen[0]), (proxy_port, chosen[1])) if ours]
                if attempt == 2 or not any(taken):
                    raise
                continue
            self._wait(f"{self.url}/healthz", "proxy")
            return

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None, pass_fds: tuple[int, ...] = ()) -> None:
        with (self.workdir / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
                                                env=env, pass_fds=pass_fds)

    def _wait(self, url: str, name: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.procs[name]
            if proc.poll() is not None:
                tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-800:]
                raise ProxyError(f"{name} exited with status {proc.returncode} while starting:\n{tail}")
            try:
                httpx.get(url, timeout=0.5)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise ProxyError(f"{name} did not come up within {timeout:g} s (log: {self.workdir / (name + '.log')})")

    def set_module(self, module: str, **change: object) -> dict[str, object]:
        r = httpx.patch(f"{self.admin}/modules/{module}", json=change, headers={"authorization": f"Bearer {self.token}"}, timeout=10)
        r.raise_for_status()
        doc: dict[str, object] = r.json()
        return doc

    def kill(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop(self) -> None:
        for name in ["proxy", *reversed(ROLES)]:
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            os.killpg(proc.pid, signal.SIGTERM)
        for name, proc in self.procs.items():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
