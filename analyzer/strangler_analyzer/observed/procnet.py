"""``strangler observe``: an agentless collector of one host's TCP connections.

Each snapshot reads ``/proc/net/tcp`` and ``/proc/net/tcp6`` (established connections and
listening sockets) and maps each socket to its process through ``/proc/PID/fd``. A
connection whose local port listens is the server's end; the other end is the client. Flows
are kept per (client address, client process, server address, server port): ephemeral
client ports never make a flow of their own, so memory stays bounded by what talks to what
(and by ``max_flows``; more are counted, not kept). Processes whose sockets this user may
not read are counted, never hidden. Pure parsing here; ``Observer.snapshot`` does the I/O.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Observer", "Socket", "parse_proc_net"]

ESTABLISHED, LISTEN = "01", "0A"
MAX_FLOWS = 100_000
MAX_CMDLINE = 300


@dataclass(frozen=True, slots=True)
class Socket:
    state: str
    local: tuple[str, int]
    remote: tuple[str, int]
    inode: int


def _ip(hexed: str) -> str:
    raw = bytes.fromhex(hexed)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    # IPv6: four 32-bit words, each in the host's (little-endian) order
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    text = socket.inet_ntop(socket.AF_INET6, words)
    return text[7:] if text.startswith("::ffff:") and "." in text else text


def parse_proc_net(text: str) -> Iterator[Socket]:
    """The sockets of a ``/proc/net/tcp`` or ``tcp6`` text.

    >>> line = "   0: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 4242 1"
    >>> next(parse_proc_net("header\\n" + line))
    Socket(state='01', local=('127.0.0.1', 8080), remote=('127.0.0.1', 54321), inode=4242)
    """
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 10:
            continue
        try:
            local_ip, local_port = parts[1].split(":")
            remote_ip, remote_port = parts[2].split(":")
            yield Socket(parts[3], (_ip(local_ip), int(local_port, 16)), (_ip(remote_ip), int(remote_port, 16)), int(parts[9]))
        except ValueError:
            continue


@dataclass
class _Flow:
    client: dict[str, Any]
    server: dict[str, Any]
    first_seen: float
    last_seen: float
    snapshots: int = 0
    connections: int = 0  # the most seen at once


@dataclass
class Observer:
    """Snapshots of this host's connections, folded into flows."""

    proc: str = "/proc"
    max_flows: int = MAX_FLOWS
    clock: Callable[[], float] = time.time
    host: str = field(default_factory=socket.gethostname)
    flows: dict[tuple[str, str, str, int], _Flow] = field(default_factory=dict)
    started: float | None = None
    snapshots: int = 0
    dropped: int = 0
    hidden: int = 0  # processes whose sockets this user cannot read (last snapshot)

    def _owners(self) -> dict[int, int]:
        """Socket inode -> pid, for every process whose descriptors this user may read."""
        owners: dict[int, int] = {}
        hidden = 0
        for name in os.listdir(self.proc):
            if not name.isdigit():
                continue
            fd_dir = f"{self.proc}/{name}/fd"
            try:
                fds = os.listdir(fd_dir)
            except PermissionError:
                hidden += 1
                continue
            except OSError:
                continue  # gone meanwhile
            pid = int(name)
            for fd in fds:
                try:
                    target = os.readlink(f"{fd_dir}/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    owners[int(target[8:-1])] = pid
        self.hidden = hidden
        return owners

    def _process(self, pid: int | None, cache: dict[int, tuple[str | None, str | None]]) -> tuple[str | None, str | None]:
        if pid is None:
            return None, None
        if pid not in cache:
            try:
                with open(f"{self.proc}/{pid}/comm", encoding="utf-8", errors="replace") as f:
                    comm: str | None = f.read().strip()
                with open(f"{self.proc}/{pid}/cmdline", "rb") as fb:
                    cmd: str | None = fb.read(4096).replace(b"\0", b" ").decode("utf-8", "replace").strip()[:MAX_CMDLINE]
            except OSError:
                comm = cmd = None
            cache[pid] = (comm, cmd)
        return cache[pid]

    def _read(self, name: str) -> str:
        try:
            with open(f"{self.proc}/net/{name}", encoding="ascii", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def snapshot(self) -> int:
        """Read the connections once; the number of flows seen in this snapshot."""
        now = self.clock()
        if self.started is None:
            self.started = now
        sockets = [s for name in ("tcp", "tcp6") for s in parse_proc_net(self._read(name))]
        owners = self._owners()
        listening = {s.local for s in sockets if s.state == LISTEN}
        any_port = {port for ip, port in listening if ip in ("0.0.0.0", "::")}
        listener_pid = {s.local[1]: owners.get(s.inode) for s in sockets if s.state == LISTEN}
        local_ips = {ip for ip, _ in listening} | {"127.0.0.1", "::1"}
        cache: dict[int, tuple[str | None, str | None]] = {}
        seen: dict[tuple[str, str, str, int], int] = {}
        for s in sockets:
            if s.state != ESTABLISHED:
                continue
            client: dict[str, Any]
            server: dict[str, Any]
            serves = s.local in listening or s.local[1] in any_port
            if serves:
                if s.remote[0] in local_ips or s.remote[0].startswith("127."):
                    continue  # a local client: its own end is read as the client's row
                comm, cmd = self._process(owners.get(s.inode), cache)
                client = {"ip": s.remote[0]}
                server = {"ip": s.local[0], "port": s.local[1], "pid": owners.get(s.inode), "process": comm, "cmdline": cmd}
            else:
                pid = owners.get(s.inode)
                comm, cmd = self._process(pid, cache)
                client = {"ip": s.local[0], "pid": pid, "process": comm, "cmdline": cmd}
                server = {"ip": s.remote[0], "port": s.remote[1]}
                if s.remote[0] in local_ips or s.remote[0].startswith("127."):
                    spid = listener_pid.get(s.remote[1])
                    scomm, scmd = self._process(spid, cache)
                    server.update(pid=spid, process=scomm, cmdline=scmd)
            key = (str(client["ip"]), str(client.get("cmdline") or client.get("process") or ""), str(server["ip"]), int(server["port"]))
            seen[key] = seen.get(key, 0) + 1
            flow = self.flows.get(key)
            if flow is None:
                if len(self.flows) >= self.max_flows:
                    self.dropped += 1
                    continue
                flow = self.flows[key] = _Flow(client, server, now, now)
            flow.last_seen = now
        for key, n in seen.items():
            flow = self.flows.get(key)
            if flow is not None:
                flow.snapshots += 1
                flow.connections = max(flow.connections, n)
        self.snapshots += 1
        return len(seen)

    def lines(self, interval: float) -> Iterator[dict[str, Any]]:
        """The JSON Lines document: a header, then one line per flow."""
        yield {"schema": "strangler.observe/1", "host": self.host, "window": [self.started, self.clock()],
               "interval": interval, "snapshots": self.snapshots, "flows": len(self.flows), "dropped": self.dropped,
               "hidden_processes": self.hidden}
        for flow in self.flows.values():
            yield {"client": {k: v for k, v in flow.client.items() if v is not None},
                   "server": {k: v for k, v in flow.server.items() if v is not None},
                   "first_seen": flow.first_seen, "last_seen": flow.last_seen, "snapshots": flow.snapshots,
                   "connections": flow.connections}
