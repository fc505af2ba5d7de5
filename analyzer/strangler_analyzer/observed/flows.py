"""One observed dependency: a client calling a server, how often, and when."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

EPHEMERAL = 32768  # Linux's default ip_local_port_range starts here: a client's port, never a service's


class Peer(NamedTuple):
    """One end of a flow, as much as the reader knows of it: a host name (or a traced
    service's name), an address, the server's port, the process and its command line.
    A tuple: hashed and compared in C, as a million flows' ends must be."""

    host: str | None = None
    ip: str | None = None
    port: int | None = None
    process: str | None = None
    cmdline: str | None = None

    def label(self) -> str:
        where = self.host or self.ip or "?"
        return f"{where}:{self.port}" if self.port is not None else where


@dataclass(frozen=True, slots=True)
class Flow:
    """``client`` called ``server`` ``count`` times (connections seen, or calls traced)
    between ``first_seen`` and ``last_seen`` (Unix seconds, when the reader knows)."""

    reader: str  # observe, ss, netstat, azure-migrate, zipkin, otel, proxy
    client: Peer
    server: Peer
    count: int
    first_seen: float | None
    last_seen: float | None
    source: str
    line: int | None
    errors: int = 0
    observer: str | None = None  # the host whose sockets were read (loopback addresses are its own)
