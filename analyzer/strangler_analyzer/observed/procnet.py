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
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = ["Observer", "Socket", "parse_proc_net"]

ESTABLISHED, LISTEN = "01", "0A"
MAX_FLOWS = 100_000
MAX_CMDLINE = 300


class Socket(NamedTuple):
    state: str
    local: tuple[str, int]
    remote: tuple[str, int]
    inode: int


_IPS: dict[str, str] = {}  # hex -> text: a host has few addresses, seen on thousands of sockets


def _ip(hexed: str) -> str:
    found = _IPS.get(hexed)
    if found is None:
        found = _IPS[hexed] = _ip_text(hexed)
    return found


def _ip_text(hexed: str) -> str:
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
        parts = line.split(None, 10)
        if len(parts) < 10 or (parts[3] != ESTABLISHED and parts[3] != LISTEN):
            continue  # TIME_WAIT and the like: no process, nothing to map
        try:
            local_ip, local_port = parts[1].split(":")
            remote_ip, remote_port = parts[2].split(":")
            yield Socket(parts[3], (_ip(local_ip), int(local_port, 16)), (_ip(remote_ip), int(remote_port, 16)), int(parts[9]))
        except ValueError:
            continue


NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, NLMSG_DONE, NLMSG_ERROR = 4, 20, 3, 2
_WANTED = (1 << 1) | (1 << 10)  # TCP_ESTABLISHED, TCP_LISTEN: the kernel filters the rest out
# inet_diag_msg: family, state, timer, retrans, source and destination ports (network order: swapped through
# _SWAP), addresses, interface, cookie, expires, queues, uid, inode
_DIAG = struct.Struct("=BBBBHH16s16sIQIIIII")
_SWAP = [((p & 0xFF) << 8) | (p >> 8) for p in range(65536)] if struct.pack("=H", 1) == b"\x01\x00" else list(range(65536))


def diag_sockets() -> list[tuple[str, tuple[str, int], tuple[str, int], int]] | None:
    """Established and listening TCP sockets from the kernel's sock_diag netlink interface
    (what ``ss`` uses): the kernel filters by state and formats nothing, several times
    cheaper than ``/proc/net/tcp`` on a busy host. None where netlink is not allowed."""
    out: list[tuple[str, tuple[str, int], tuple[str, int], int]] = []
    v4, v6 = _ADDRS[socket.AF_INET], _ADDRS[socket.AF_INET6]
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
            for seq, family in enumerate((socket.AF_INET, socket.AF_INET6), 1):
                req = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, _WANTED) + bytes(48)
                nl.sendto(struct.pack("=IHHII", 16 + len(req), SOCK_DIAG_BY_FAMILY, 0x1 | 0x300, seq, 0) + req, (0, 0))
                done = False
                while not done:
                    data = nl.recv(1 << 20)
                    offset = 0
                    while offset + 16 <= len(data):
                        length, kind = struct.unpack_from("=IH", data, offset)
                        if kind == NLMSG_DONE:
                            done = True
                            break
                        if kind == NLMSG_ERROR or length < 16:
                            return None
                        fam, state, _, _, sport, dport, src, dst, _, _, _, _, _, _, inode = _DIAG.unpack_from(data, offset + 16)
                        known = v4 if fam == socket.AF_INET else v6
                        local, remote = known.get(src) or _addr(fam, src), known.get(dst) or _addr(fam, dst)
                        out.append(("0A" if state == 10 else "01", (local, _SWAP[sport]), (remote, _SWAP[dport]), inode))
                        offset += (length + 3) & ~3
    except OSError:
        return None
    return out


_ADDRS: dict[int, dict[bytes, str]] = {socket.AF_INET: {}, socket.AF_INET6: {}}  # the 16-byte field -> text


def _addr(family: int, raw: bytes) -> str:
    text = socket.inet_ntop(family, raw[:4] if family == socket.AF_INET else raw)
    found = _ADDRS[family][raw] = text[7:] if text.startswith("::ffff:") and "." in text else text
    return found


@dataclass
class _Flow:
    client: dict[str, Any]
    server: dict[str, Any]
    first_seen: float
    last_seen: float
    snapshots: int = 0
    connections: int = 0  # the most seen at once
    counted: int = -1  # the last snapshot that counted it
    now: int = 0  # connections in the current snapshot


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
    owners: dict[int, int] = field(default_factory=dict)  # socket inode -> pid, from the last scan of /proc/*/fd
    processes: dict[int, tuple[str | None, str | None]] = field(default_factory=dict)  # pid -> (name, command line)
    unowned: set[int] = field(default_factory=set)  # inodes the last scan found no readable owner for

    def _owners(self, inodes: set[int]) -> dict[int, int]:
        """Socket inode -> pid, for every process whose descriptors this user may read. The
        scan (a readlink per descriptor of every process) is skipped while every socket is
        one the last scan saw: long-lived connections cost nothing more per snapshot."""
        if inodes <= self.owners.keys() | self.unowned:
            return self.owners
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
        self.owners = owners
        self.unowned = inodes - owners.keys()  # no readable process holds them: not worth a rescan until others come
        gone = set(self.processes) - set(owners.values())
        for pid in gone:  # a pid that no longer holds a socket may be reused: forget its name
            del self.processes[pid]
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
        sockets: list[tuple[str, tuple[str, int], tuple[str, int], int]] | None = diag_sockets() if self.proc == "/proc" else None
        if sockets is None:  # no netlink here (or another /proc): the text tables
            sockets = [s for name in ("tcp", "tcp6") for s in parse_proc_net(self._read(name))]
        owners = self._owners({inode for _, _, _, inode in sockets if inode})
        listeners = [(local, inode) for state, local, _, inode in sockets if state == LISTEN]
        listening = {local for local, _ in listeners}
        any_port = {port for ip, port in listening if ip in ("0.0.0.0", "::")}
        listener_pid = {local[1]: owners.get(inode) for local, inode in listeners}
        local_ips = {ip for ip, _ in listening} | {"127.0.0.1", "::1"}
        cache = self.processes
        process = self._process
        seen: dict[tuple[str, int | None, str, int], int] = {}  # (client ip, client pid, server ip, server port)
        ends: dict[tuple[str, int | None, str, int], tuple[int | None, bool]] = {}  # -> (server pid, local server)
        for state, local, remote, inode in sockets:
            if state != ESTABLISHED:
                continue
            remote_local = remote[0] in local_ips or remote[0].startswith("127.")
            key: tuple[str, int | None, str, int]
            if local in listening or local[1] in any_port:
                if remote_local:
                    continue  # a local client: its own end is read as the client's row
                key = (remote[0], None, local[0], local[1])
                if key not in ends:
                    ends[key] = (owners.get(inode), True)
            else:
                key = (local[0], owners.get(inode), remote[0], remote[1])
                if key not in ends:
                    ends[key] = (listener_pid.get(remote[1]) if remote_local else None, False)
            seen[key] = seen.get(key, 0) + 1
        for key, (server_pid, remote_client) in ends.items():
            client_ip, client_pid, server_ip, port = key
            comm, cmd = process(client_pid, cache)
            flow_key = (client_ip, cmd or comm or "", server_ip, port)  # a process's pids fold into one flow
            flow = self.flows.get(flow_key)
            if flow is None:
                if len(self.flows) >= self.max_flows:
                    self.dropped += 1
                    continue
                scomm, scmd = process(server_pid, cache)
                client = {"ip": client_ip} if remote_client else {"ip": client_ip, "pid": client_pid, "process": comm, "cmdline": cmd}
                server = {"ip": server_ip, "port": port, "pid": server_pid, "process": scomm, "cmdline": scmd}
                flow = self.flows[flow_key] = _Flow(client, server, now, now)
            flow.last_seen = now
            if flow.counted != self.snapshots:  # once per snapshot, however many pids make it
                flow.counted = self.snapshots
                flow.snapshots += 1
                flow.now = 0
            flow.now += seen[key]
            flow.connections = max(flow.connections, flow.now)
        self.snapshots += 1
        return len(ends)

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
