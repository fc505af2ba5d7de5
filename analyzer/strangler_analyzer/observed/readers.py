"""Readers for observations teams already have, each detected by its content:

- ``observe``: ``strangler observe`` output (JSON Lines, ``schemas/observe.schema.json``);
- ``ss``: ``ss -tnp`` text; ``netstat``: ``netstat -tnp`` text (the host from a ``# host: NAME``
  first line, else the file name);
- ``azure-migrate``: Azure Migrate's agentless dependency export (CSV; header names matched
  case-insensitively);
- ``zipkin``: Zipkin or Jaeger dependency links (``[{"parent", "child", "callCount",
  "errorCount"}]``, or Jaeger's ``{"data": [...]}``);
- ``otel``: the OpenTelemetry collector's service-graph metrics in Prometheus text format
  (``traces_service_graph_request_total{client=..., server=...}``).

A line a reader cannot use is a warning with its file and line, never a crash.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path

import orjson

from strangler_analyzer.model import Warning_
from strangler_analyzer.observed.flows import EPHEMERAL, Flow, Peer

__all__ = ["READERS", "detect", "read_observations"]

OBSERVE_SCHEMA = "strangler.observe/1"
_HOST_LINE = re.compile(r"^#\s*host:\s*(\S+)", re.I)
_SS_USERS = re.compile(r'\("([^"]*)",pid=(\d+)')
_NETSTAT_PROC = re.compile(r"^(\d+)/(.+)$")
_ADDRESS = re.compile(r"^\[?([0-9A-Fa-f:.%a-zA-Z*-]+?)\]?:(\d+|\*)$")
_LOOPBACK = ("127.", "::1", "::ffff:127.")


def detect(head: str) -> str | None:
    """The reader for a file whose text starts with ``head``, or None."""
    text = head.lstrip("\ufeff")
    first = next((line for line in text.splitlines() if line.strip()), "")
    if first.startswith("{") and OBSERVE_SCHEMA in first:
        return "observe"
    if "traces_service_graph_request" in text:
        return "otel"
    stripped = text.lstrip()
    if stripped[:1] in "[{" and '"parent"' in text and '"child"' in text:
        return "zipkin"
    lines = [line for line in text.splitlines()[:5] if not _HOST_LINE.match(line)]
    header = " ".join(lines[:2])
    if "Local Address" in header and "Peer Address" in header:
        return "ss"
    if "Local Address" in header and "Foreign Address" in header:
        return "netstat"
    low = first.lower()
    if "source server name" in low and "destination port" in low:
        return "azure-migrate"
    return None


def _host_of(text: str, path: str) -> str:
    for line in text.splitlines()[:3]:
        m = _HOST_LINE.match(line)
        if m:
            return m.group(1).lower()
    return Path(path).stem.split(".")[0].lower()


def _address(token: str) -> tuple[str, int] | None:
    m = _ADDRESS.match(token)
    if m is None or m.group(2) == "*":
        return None
    ip = m.group(1).split("%")[0]
    if ip.startswith("::ffff:") and "." in ip:
        ip = ip[7:]  # an IPv4 address seen through an IPv6 socket
    return ip, int(m.group(2))


def _sides(local: tuple[str, int], peer: tuple[str, int], process: str | None, pid: int | None, host: str,
           ) -> tuple[Peer, Peer]:
    """Which end serves: the one whose port is not ephemeral (a client's port is), else the
    lower port. The captured host's own process stands at its local end."""
    me = Peer(host=host, ip=local[0], port=local[1], process=process, cmdline=process)
    other = Peer(host=None, ip=peer[0], port=peer[1])
    local_serves = local[1] < EPHEMERAL <= peer[1] or (not (peer[1] < EPHEMERAL <= local[1]) and local[1] < peer[1])
    if local_serves:
        return Peer(other.host, other.ip), me
    return Peer(me.host, me.ip, None, me.process, me.cmdline), other


def _socket_table(kind: str) -> Callable[[str, str, list[Warning_]], list[Flow]]:
    def read(text: str, path: str, warnings: list[Warning_]) -> list[Flow]:
        host = _host_of(text, path)
        out: list[Flow] = []
        for number, line in enumerate(text.splitlines(), 1):
            words = line.split()
            if not words or _HOST_LINE.match(line) or "Address" in line or line.startswith("Active"):
                continue
            addresses = [a for a in (_address(w) for w in words) if a is not None]
            if kind == "netstat" and words[0] not in ("tcp", "tcp6"):
                continue
            state = words[0] if kind == "ss" else (words[5] if len(words) > 5 else "")
            if state.upper() not in ("ESTAB", "ESTABLISHED", "TCP"):
                if kind == "ss" and words[0] in ("tcp", "TCP") and len(words) > 1 and words[1].upper() == "ESTAB":
                    pass  # ss -antp: a Netid column first
                else:
                    continue
            if len(addresses) < 2:
                warnings.append(Warning_(path, number, f"{kind}: no local and peer address:port on this line; skipped"))
                continue
            process = pid = None
            if kind == "ss":
                m = _SS_USERS.search(line)
                if m:
                    process, pid = m.group(1), int(m.group(2))
            else:
                m = _NETSTAT_PROC.match(words[-1])
                if m:
                    pid, process = int(m.group(1)), m.group(2).strip()
            client, server = _sides(addresses[0], addresses[1], process, pid, host)
            out.append(Flow(kind, client, server, 1, None, None, path, number, observer=host))
        return out
    return read


def _read_observe(text: str, path: str, warnings: list[Warning_]) -> list[Flow]:
    """Lines of one (client, server) are folded as they are read: a file of many hosts' and
    hours' lines holds few distinct flows, and a million lines must not be a million objects."""
    host = None
    folded: dict[tuple[object, ...], _Fold] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            warnings.append(Warning_(path, number, f"observe: not a JSON line ({exc}); skipped"))
            continue
        try:
            if doc.get("schema") == OBSERVE_SCHEMA:
                host = str(doc.get("host") or "") or None
                continue
            c, s = doc["client"], doc["server"]
            key = (c.get("host") or host, c.get("ip"), c.get("process"), c.get("cmdline"),
                   s.get("host"), s.get("ip"), int(s["port"]), s.get("process"), s.get("cmdline"), host)
            n, first, last = int(doc.get("snapshots", 1)), doc.get("first_seen"), doc.get("last_seen")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            warnings.append(Warning_(path, number, f"observe: a flow needs client and server with the server's port ({exc}); skipped"))
            continue
        acc = folded.get(key)
        if acc is None:
            folded[key] = _Fold(n, _number(first), _number(last), number)
        else:
            acc.add(n, _number(first), _number(last))
    return [Flow("observe", Peer(k[0], k[1], None, k[2], k[3]), Peer(k[4], k[5], k[6], k[7], k[8]),  # type: ignore[arg-type]
                 a.n, a.first, a.last, path, a.line, observer=k[9])  # type: ignore[arg-type]
            for k, a in folded.items()]


class _Fold:
    __slots__ = ("n", "first", "last", "line")

    def __init__(self, n: int, first: float | None, last: float | None, line: int) -> None:
        self.n, self.first, self.last, self.line = n, first, last, line

    def add(self, n: int, first: float | None, last: float | None) -> None:
        self.n += n
        if first is not None and (self.first is None or first < self.first):
            self.first = first
        if last is not None and (self.last is None or last > self.last):
            self.last = last


def _number(x: object) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


AZURE_COLUMNS = {
    "source server name": "src_host", "source ip": "src_ip", "source application": "src_app", "source process": "src_process",
    "destination server name": "dst_host", "destination ip": "dst_ip", "destination application": "dst_app",
    "destination process": "dst_process", "destination port": "dst_port", "time slot": "slot",
}


def _read_azure(text: str, path: str, warnings: list[Warning_]) -> list[Flow]:
    rows = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = next(rows, [])
    columns = {i: AZURE_COLUMNS[h.strip().lower()] for i, h in enumerate(header) if h.strip().lower() in AZURE_COLUMNS}
    out: list[Flow] = []
    for number, row in enumerate(rows, 2):
        if not any(cell.strip() for cell in row):
            continue
        f = {name: row[i].strip() for i, name in columns.items() if i < len(row)}
        port = f.get("dst_port", "")
        if not port.isdigit():
            warnings.append(Warning_(path, number, f"azure-migrate: destination port {port!r} is not a number; skipped"))
            continue
        out.append(Flow("azure-migrate",
                        Peer((f.get("src_host") or "").lower() or None, f.get("src_ip") or None, None,
                             f.get("src_process") or None, f.get("src_process") or None),
                        Peer((f.get("dst_host") or "").lower() or None, f.get("dst_ip") or None, int(port),
                             f.get("dst_process") or None, f.get("dst_process") or None),
                        1, None, None, path, number))
    return out


def _read_zipkin(text: str, path: str, warnings: list[Warning_]) -> list[Flow]:
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        warnings.append(Warning_(path, None, f"zipkin: not JSON ({exc}); skipped"))
        return []
    links = doc.get("data") if isinstance(doc, dict) else doc
    if not isinstance(links, list):
        warnings.append(Warning_(path, None, "zipkin: expected a list of dependency links; skipped"))
        return []
    out = []
    for i, link in enumerate(links):
        if not isinstance(link, dict) or not isinstance(link.get("parent"), str) or not isinstance(link.get("child"), str):
            warnings.append(Warning_(path, None, f"zipkin: link {i} has no parent and child names; skipped"))
            continue
        out.append(Flow("zipkin", Peer(host=link["parent"].lower()), Peer(host=link["child"].lower()),
                        int(link.get("callCount", 0) or 0), None, None, path, None, int(link.get("errorCount", 0) or 0)))
    return out


def _read_otel(text: str, path: str, warnings: list[Warning_]) -> list[Flow]:
    from prometheus_client.parser import text_string_to_metric_families

    calls: dict[tuple[str, str], list[float]] = {}
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name not in ("traces_service_graph_request_total", "traces_service_graph_request_failed_total"):
                    continue
                client, server = s.labels.get("client"), s.labels.get("server")
                if not client or not server:
                    continue
                got = calls.setdefault((client.lower(), server.lower()), [0.0, 0.0])
                got[0 if s.name.endswith("request_total") else 1] += s.value
    except ValueError as exc:
        warnings.append(Warning_(path, None, f"otel: not Prometheus text format ({exc}); skipped"))
        return []
    return [Flow("otel", Peer(host=c), Peer(host=s), int(n), None, None, path, None, int(failed))
            for (c, s), (n, failed) in sorted(calls.items())]


READERS: dict[str, Callable[[str, str, list[Warning_]], list[Flow]]] = {
    "observe": _read_observe, "ss": _socket_table("ss"), "netstat": _socket_table("netstat"),
    "azure-migrate": _read_azure, "zipkin": _read_zipkin, "otel": _read_otel,
}


def read_observations(path: str, text: str, warnings: list[Warning_]) -> list[Flow]:
    """The flows in one file whose reader ``detect`` finds (none: an empty list)."""
    kind = detect(text[:65536])
    return READERS[kind](text, path, warnings) if kind else []


def is_loopback(ip: str | None) -> bool:
    return bool(ip) and (ip or "").startswith(_LOOPBACK)
