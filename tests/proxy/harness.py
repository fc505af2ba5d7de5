"""Run the real ``strangler proxy`` process against real upstreams."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.cli.helpers import BIN
from tests.proxy.upstreams import free_port

TOKEN = "test-token"


class ProxyProcess:
    def __init__(self, routes: Path, workdir: Path, workers: int = 1, access_log: bool = False, state: str | None = None,
                 args: tuple[str, ...] = (), scheme: str = "http", verify: Any = True) -> None:
        self.routes = routes
        self.args = args
        self.scheme = scheme
        self.verify = verify
        self.workdir = workdir
        self.port = free_port()
        self.admin_port = free_port()
        self.workers = workers
        self.access_log = access_log
        self.state = state or str(workdir / "state.sqlite3")
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"proxy-{self.port}.log"
        self.out = workdir / f"proxy-{self.port}.out"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self) -> ProxyProcess:
        assert BIN
        cmd = [BIN, "proxy", "--routes", str(self.routes), "--listen", f"127.0.0.1:{self.port}",
               "--admin", f"127.0.0.1:{self.admin_port}", "--admin-token", TOKEN,
               "--state", self.state, "--workers", str(self.workers)]
        if self.access_log:
            cmd.append("--access-log")
        cmd += self.args
        with self.out.open("ab") as out, self.log.open("ab") as err:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"proxy exited {self.proc.returncode}: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.admin}/healthz", timeout=0.5).status_code == 200:
                    if self._serving():
                        return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"proxy did not come up: {self.log.read_text()}")

    def _serving(self) -> bool:
        try:
            httpx.get(f"{self.url}/__probe__", timeout=0.5, verify=self.verify)
            return True
        except httpx.HTTPError:
            return False

    def admin_call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, f"{self.admin}{path}", headers={"authorization": f"Bearer {TOKEN}"}, timeout=5, **kw)

    def metric(self, name: str, **labels: str) -> float:
        text = self.admin_call("GET", "/metrics").text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                if all(f'{k}="{v}"' in line for k, v in labels.items()):
                    total += float(line.rsplit(" ", 1)[1])
        return total

    def hup(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def routes_file(path: Path, upstreams: dict[str, str], modules: str = "", extra: str = "") -> Path:
    text = "upstreams:\n" + "".join(f"  {k}: {v}\n" for k, v in upstreams.items()) + extra
    if modules:
        text += "modules:\n" + modules
    path.write_text(text)
    return path


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def wait_until(predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


class Receiver:
    """A webhook receiver on loopback: records events, checks signatures when given the
    secret, and answers gate requests with ``gate_answer`` (204 to everything else)."""

    def __init__(self, secret: bytes | None = None) -> None:
        import hashlib
        import hmac
        import http.server
        import json
        import threading

        self.events: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.gate_answer = 204
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if secret is not None:
                    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
                    outer.bad_signatures += not hmac.compare_digest(self.headers.get("x-strangler-signature", ""), expected)
                event = json.loads(body)
                outer.events.append(event)
                self.send_response(outer.gate_answer if event["action"] == "release.gate" else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
