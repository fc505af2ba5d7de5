"""Observed flows onto the estate's components: which component is each end, which edges
the flows make, and which endpoints match no component.

A client is matched by its process (an inventory component's ``process:`` pattern searched
in the command line), else by its host name or address (``host``, ``addresses``, a Compose
or Kubernetes service name); a server by its host and port first, then its host alone when
one component lives there. A loopback address is the observing host's own. A server
endpoint that matches no component becomes an external component (listed in a warning); a
client that matches none is counted in a warning, never made a component (its port is
ephemeral). Each (client, server, reader) gives one soft edge with evidence
``observed.<reader>``: counts and first/last seen; it orders start-up only when asked
(``--observed-orders``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from strangler_analyzer.model import Component, Edge, Evidence, Warning_
from strangler_analyzer.observed.flows import EPHEMERAL, Flow, Peer
from strangler_analyzer.observed.readers import is_loopback

__all__ = ["Observed", "map_flows"]

SOCKET_READERS = ("observe", "ss", "netstat", "azure-migrate")
UNITS = {"observe": "snapshots", "ss": "connections", "netstat": "connections", "azure-migrate": "rows",
         "zipkin": "calls", "otel": "calls", "proxy": "requests"}


@dataclass
class Observed:
    edges: list[Edge] = field(default_factory=list)
    externals: list[Component] = field(default_factory=list)
    warnings: list[Warning_] = field(default_factory=list)
    covered: set[str] = field(default_factory=set)  # components whose calls were watched
    window: tuple[float | None, float | None] = (None, None)
    sources: list[str] = field(default_factory=list)

    def window_text(self) -> str:
        first, last = self.window
        if first is None or last is None:
            return f"the observations in {', '.join(self.sources[:3])}{' ...' if len(self.sources) > 3 else ''}"
        fmt = "%Y-%m-%d %H:%M:%S"
        return f"{time.strftime(fmt, time.gmtime(first))} to {time.strftime(fmt, time.gmtime(last))} UTC"


class _Edge:
    """What the flows of one (client, server, reader) add up to."""

    __slots__ = ("count", "errors", "first", "last", "source", "line")

    def __init__(self, f: Flow) -> None:
        self.count, self.errors, self.first, self.last = f.count, f.errors, f.first_seen, f.last_seen
        self.source, self.line = f.source, f.line

    def add(self, f: Flow) -> None:
        self.count += f.count
        self.errors += f.errors
        if f.first_seen is not None and (self.first is None or f.first_seen < self.first):
            self.first = f.first_seen
        if f.last_seen is not None and (self.last is None or f.last_seen > self.last):
            self.last = f.last_seen


class _Index:
    def __init__(self, components: Sequence[Component]) -> None:
        self.by_key: dict[str, list[str]] = {}
        self.by_key_port: dict[tuple[str, int], list[str]] = {}
        self.patterns: list[tuple[re.Pattern[str], str]] = []
        for c in components:
            if c.external:
                continue
            keys = {c.name.lower(), *c.aliases, *(a.lower() for a in c.addresses), *((c.host,) if c.host else ())}
            for k in keys:
                self.by_key.setdefault(k, []).append(c.name)
                if c.port:
                    self.by_key_port.setdefault((k, c.port), []).append(c.name)
            if c.process:
                self.patterns.append((re.compile(c.process), c.name))
        self.hosts = {c.name: {k for k in (c.host, *c.addresses) if k} for c in components}
        self.memo: dict[tuple[Peer, str | None, bool], str | None] = {}

    def keys(self, peer: Peer, observer: str | None) -> list[str]:
        keys = [k.lower() for k in (peer.host, peer.ip) if k]
        if is_loopback(peer.ip) and observer:
            keys.append(observer.lower())
        short = [k.split(".")[0] for k in keys if "." in k and not k.replace(".", "").isdigit()]
        return keys + short

    def resolve(self, peer: Peer, observer: str | None, server: bool) -> str | None:
        """The component at this end of a flow (memoised: a million flows have few distinct ends)."""
        key = (peer, observer, server)
        if key not in self.memo:
            self.memo[key] = self._resolve(peer, observer, server)
        return self.memo[key]

    def _resolve(self, peer: Peer, observer: str | None, server: bool) -> str | None:
        command = peer.cmdline or peer.process
        if command:
            for pattern, name in self.patterns:
                if pattern.search(command):
                    return name
        keys = self.keys(peer, observer)
        if server and peer.port is not None:
            for k in keys:
                found = self.by_key_port.get((k, peer.port))
                if found and len(found) == 1:
                    return found[0]
        for k in keys:
            found = self.by_key.get(k)
            if found and len(found) == 1:
                return found[0]
        return None


def map_flows(flows: Sequence[Flow], components: Sequence[Component], observed_orders: bool = False) -> Observed:
    index = _Index(components)
    out = Observed()
    edges: dict[tuple[str, str, str], _Edge] = {}
    external: dict[str, Flow] = {}  # name -> the first flow that reached it
    covered: set[str] = set()
    strangers: dict[str, int] = {}
    firsts = [f.first_seen for f in flows if f.first_seen is not None]
    lasts = [f.last_seen for f in flows if f.last_seen is not None]
    out.window = (min(firsts) if firsts else None, max(lasts) if lasts else None)
    out.sources = sorted({f.source for f in flows})
    observers = {f.observer.lower() for f in flows if f.observer and f.reader in SOCKET_READERS}
    for c in components:
        if not c.external and ({c.name.lower(), *(h.lower() for h in index.hosts.get(c.name, ()))} & observers):
            out.covered.add(c.name)
    resolve = index.resolve
    for f in flows:
        client = resolve(f.client, f.observer, False)
        server = resolve(f.server, f.observer, True)
        if server is None:
            port = f.server.port
            if port is not None and port >= EPHEMERAL:
                who = f"{f.server.label()} (an ephemeral port: a client's end read as a server's)"
                strangers[who] = strangers.get(who, 0) + 1
                continue
            name = f.server.label() if not is_loopback(f.server.ip) or not f.observer else f"{f.observer}:{port}"
            if name not in external:
                external[name] = f
            server = name
        if client is None:
            who = f.client.label() + (f" ({f.client.process})" if f.client.process else "")
            strangers[who] = strangers.get(who, 0) + 1
            continue
        covered.add(client)
        if client != server:
            key = (client, server, f.reader)
            acc = edges.get(key)
            if acc is None:
                edges[key] = _Edge(f)
            else:
                acc.add(f)
    out.covered |= covered
    for name, f in sorted(external.items()):
        out.externals.append(Component(name=name, tier="external", external=True, startup_seconds=0.0,
                                       evidence=(Evidence(f.source, f.line, f"observed.{f.reader}", "an endpoint no component matches"),)))
    if external:
        listed = ", ".join(sorted(external)[:10]) + (f" and {len(external) - 10} more" if len(external) > 10 else "")
        first = next(iter(sorted(external.items())))[1]
        out.warnings.append(Warning_(first.source, first.line, f"observed connections to {len(external)} endpoint(s) no "
                                     f"component matches, added as external components: {listed}"))
    if strangers:
        top = sorted(strangers.items(), key=lambda kv: (-kv[1], kv[0]))
        listed = ", ".join(f"{who} x{n}" for who, n in top[:8]) + (f" and {len(top) - 8} more" if len(top) > 8 else "")
        out.warnings.append(Warning_(out.sources[0] if out.sources else "observations", None,
                                     f"observed flows from {len(top)} client(s) no component matches (give the inventory "
                                     f"'addresses:' or 'process:'), left out: {listed}"))
    for (client, server, reader), acc in sorted(edges.items()):
        when = (f", {time.strftime('%Y-%m-%d %H:%M', time.gmtime(acc.first))} to "
                f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(acc.last))} UTC") if acc.first is not None and acc.last is not None else ""
        detail = f"{acc.count} {UNITS.get(reader, 'times')}" + (f", {acc.errors} failed" if acc.errors else "") + when
        out.edges.append(Edge(client, server, "soft", observed_orders,
                              (Evidence(acc.source, acc.line, f"observed.{reader}", detail),), declared=False))
    return out
