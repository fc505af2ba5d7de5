"""Driving an external data plane (``data_plane:`` in the route file): apply each change, and
read the traffic it carried so the release controller can judge each step.

- **Apply.** nginx and HAProxy: the export is written beside the configured file and moved
  into place, validated with the plane's own check (``nginx -t``, ``haproxy -c``), then
  reloaded; a failed check or reload puts the previous file back (and reloads it), so the
  plane keeps serving its last good configuration. Kubernetes: server-side apply of each
  object (``kube.KubeApply``). An unchanged export is not applied again.
- **Read.** nginx: the JSON access log the export writes, read from where the last read
  stopped (a rotated log is read from its start). HAProxy: the stats socket's per-server
  counters (``show stat``), as differences from the last read. Kubernetes: a Prometheus
  query of the mesh's request counts. Each read yields ``Observation``s the control plane
  records into its release windows, exactly as strangler's own proxy records its traffic:
  a request the new service failed and legacy then served counts as a new-side error and
  a legacy answer.

Every method runs on the control thread (``Background``); none touches the event loop.
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from strangler_proxy.errors import ProxyError
from strangler_proxy.export import KubeOptions, Target, export
from strangler_proxy.external import DataPlane
from strangler_proxy.model import RouteTable

__all__ = ["ExternalPlane", "Observation"]

COMMAND_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Observation:
    module: str
    side: str  # "service" or "legacy"
    seconds: float
    error: bool
    count: int = 1


class ApplyFailed(ProxyError):
    """The data plane refused the new configuration; it still runs the previous one."""


def _run(argv: tuple[str, ...], what: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ApplyFailed(f"{what} ({' '.join(argv)}): {exc}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise ApplyFailed(f"{what} ({' '.join(argv)}) exited {done.returncode}: {' / '.join(tail)}")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.strangler-new")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ExternalPlane:
    def __init__(self, spec: DataPlane, log: Callable[[str], None],
                 kube_apply: Callable[[str], None] | None = None,
                 prometheus: Callable[[RouteTable, float], list[Observation]] | None = None) -> None:
        self.spec = spec
        self.log = log
        self.applied: str | None = None  # the export last applied
        self._log_offset = 0
        self._log_inode: int | None = None
        self._stats: dict[tuple[str, str], dict[str, int]] = {}
        self._kube_apply = kube_apply
        self._last_read: float | None = None
        self._prometheus = prometheus

    # -- apply ---------------------------------------------------------------------------
    def render(self, table: RouteTable) -> str:
        spec = self.spec
        table = replace(table, data_plane=spec)  # the block read at start, whatever a reload says
        if spec.kind == "kubernetes":
            return export(table, spec.target, kube=KubeOptions(namespace=spec.namespace, gateway=spec.gateway)).text
        target: Target = "nginx" if spec.kind == "nginx" else "haproxy"
        return export(table, target).text

    def apply(self, table: RouteTable) -> bool:
        """Make the data plane carry ``table``; ``False`` when it already did. Raises
        ``ApplyFailed`` (the plane keeps its previous configuration) when it refuses."""
        text = self.render(table)
        if self.applied is None and self.spec.config and _read(Path(self.spec.config)) == text:
            self.applied = text  # the plane already runs it (strangler restarted): no reload
        if text == self.applied:
            return False
        if self.spec.kind == "kubernetes":
            if self._kube_apply is None:
                raise ApplyFailed("no Kubernetes client configured")
            self._kube_apply(text)
        else:
            self._apply_file(text)
        self.applied = text
        return True

    def _apply_file(self, text: str) -> None:
        spec = self.spec
        assert spec.config is not None
        path = Path(spec.config)
        previous = _read(path)
        _write(path, text)
        try:
            _run(spec.test, "the data plane's check")
            _run(spec.reload, "the data plane's reload")
        except ApplyFailed:
            if previous is None:
                path.unlink(missing_ok=True)
            else:
                _write(path, previous)
                try:
                    _run(spec.reload, "reloading the previous configuration")
                except ApplyFailed as again:
                    self.log(f"data plane: {again}")
            raise

    # -- read ----------------------------------------------------------------------------
    def read(self, table: RouteTable) -> list[Observation]:
        """What the data plane carried since the last read (``table``: the route file's
        upstreams and modules, to attribute it)."""
        now = time.monotonic()
        interval, self._last_read = now - (self._last_read or now), now
        if self.spec.kind == "nginx" and self.spec.access_log:
            return self._read_nginx_log(table)
        if self.spec.kind == "haproxy" and self.spec.stats_socket:
            return self._read_haproxy_stats(table)
        if self.spec.kind == "kubernetes" and self._prometheus is not None:
            return self._prometheus(table, interval) if interval > 0 else []
        return []

    def _read_nginx_log(self, table: RouteTable) -> list[Observation]:
        assert self.spec.access_log is not None
        try:
            f = open(self.spec.access_log, "rb")
        except FileNotFoundError:
            return []
        with f:
            st = os.fstat(f.fileno())
            if st.st_ino != self._log_inode or st.st_size < self._log_offset:
                self._log_inode, self._log_offset = st.st_ino, 0  # a new or rotated log: from its start
            f.seek(self._log_offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next read
        self._log_offset += end
        legacy_addrs = {f"{table.upstreams[m.legacy].host}:{table.upstreams[m.legacy].port}" for m in table.modules}
        out: list[Observation] = []
        for line in data[:end].splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            module = entry.get("module") or ""
            if not module:
                continue
            seconds = float(entry.get("request_time") or 0.0)
            status = int(entry.get("status") or 0)
            if not str(entry.get("target", "")).endswith("__new"):
                out.append(Observation(module, "legacy", seconds, status >= 500))
                continue
            attempts = [a.strip() for a in str(entry.get("upstream_addr", "")).replace(" : ", ", ").split(",") if a.strip()]
            if len(attempts) > 1:  # the service failed, legacy (the backup) answered
                out.append(Observation(module, "service", 0.0, True))
                out.append(Observation(module, "legacy", seconds, status >= 500))
            elif attempts and attempts[0] in legacy_addrs:  # the service is marked down (the breaker)
                out.append(Observation(module, "service", 0.0, True))
            else:
                out.append(Observation(module, "service", seconds, status >= 500))
        return out

    def _read_haproxy_stats(self, table: RouteTable) -> list[Observation]:
        assert self.spec.stats_socket is not None
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(self.spec.stats_socket)
            s.sendall(b"show stat\n")
            chunks = []
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        text = b"".join(chunks).decode("utf-8", "replace").lstrip("# ")
        modules = {m.name for m in table.modules}
        out: list[Observation] = []
        for row in csv.DictReader(io.StringIO(text)):
            backend, server = row.get("pxname", ""), row.get("svname", "")
            if server in ("FRONTEND", "BACKEND") or not backend.startswith("be_"):
                continue
            name, _, side = backend[3:].rpartition("_")
            if name not in modules or side not in ("new", "legacy"):
                continue
            now = {k: int(row.get(k) or 0) for k in ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx",
                                                    "hrsp_other", "eresp", "econ", "rtime")}
            before = self._stats.get((backend, server))
            self._stats[(backend, server)] = now
            if before is None:
                continue  # the first read sets the baseline
            delta = {k: max(0, now[k] - before[k]) for k in now if k != "rtime"}
            answered = sum(delta[k] for k in ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"))
            failed = delta["econ"] + delta["eresp"]
            seconds = now["rtime"] / 1000
            role = "service" if server == "service" else "legacy"
            ok = answered - delta["hrsp_5xx"]
            if side == "new" and role == "legacy":
                # legacy answered inside the new side's backend: only after the service failed
                # (a retry redispatched, or the service marked down): a new-side error each
                out.append(Observation(name, "service", 0.0, True, answered + failed))
            if ok > 0:
                out.append(Observation(name, role, seconds, False, ok))
            if delta["hrsp_5xx"] + failed > 0:
                out.append(Observation(name, role, seconds, True, delta["hrsp_5xx"] + failed))
        return out
