"""The proxy's current state: an immutable snapshot swapped atomically on every change.

A request takes the snapshot once when it starts and uses it to the end, so a reload or
an admin change never moves a request in flight. Snapshots are built on the control thread
(``background``) and installed by one attribute assignment; connection pools are only ever
touched on the event loop's thread. Connection pools and circuit breakers
outlive snapshots: pools are kept for upstreams whose address did not change, breakers
for modules that still exist.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from strangler_proxy.dataplane.outages import Outages
from strangler_proxy.dataplane.breaker import CircuitBreaker
from strangler_proxy.model import Module, Override, RouteTable, Upstream, effective_modules
from strangler_proxy.dispatch import Routes
from strangler_proxy.dataplane.forwarding import upstream_origins
from strangler_proxy.metrics import Metrics
from strangler_proxy.routing import Router
from strangler_proxy.upstream import Pool, Transport

__all__ = ["Runtime"]  # public (the CLI's and loadtests' imports are checked against it)


@dataclass(frozen=True, slots=True)
class Snapshot:
    routes: Routes  # what the decision core reads: the table, effective modules, the router
    table: RouteTable  # routes.table, at hand for the hot path
    pools: Mapping[str, Transport]
    origins: Mapping[str, tuple[bytes, ...]]
    breakers: Mapping[str, CircuitBreaker]
    loaded_at: float

    @property
    def modules(self) -> Mapping[str, Module]:
        return self.routes.modules


class Runtime:
    """Owns the current snapshot and the long-lived pools and breakers."""

    def __init__(self, table: RouteTable, metrics: Metrics, overrides: Mapping[str, Override] | None = None,
                 loop: asyncio.AbstractEventLoop | None = None,
                 transport: Callable[[Upstream, asyncio.AbstractEventLoop | None], Transport] = Pool,
                 outages: Outages | None = None) -> None:
        self.metrics = metrics
        self.outages = outages  # where outages and breaker changes are told (the process's log)
        self.loop = loop or _loop()
        self.overrides: dict[str, Override] = dict(overrides or {})
        self.transport = transport  # how an upstream is reached: the pool, or a fake in tests
        self._pools: dict[str, Transport] = {}
        self._breakers: dict[str, CircuitBreaker] = {}
        self.snapshot = self._build(table)

    def _pool(self, name: str, table: RouteTable) -> Transport:
        up = table.upstreams[name]
        pool = self._pools.get(name)
        if pool is None or pool.upstream != up:
            if pool is not None:
                self._close(pool)
            pool = self._pools[name] = self.transport(up, self.loop)
        pool.max_head = table.limits.max_header_bytes
        return pool

    def _breaker(self, module: Module, table: RouteTable) -> CircuitBreaker:
        b = self._breakers.get(module.name)
        cfg = table.breaker
        if b is None or (b.failures, b.cooldown) != (cfg.failures, cfg.cooldown):
            name = module.name
            cooldown = cfg.cooldown

            def changed(old: str, new: str) -> None:
                self.metrics.breaker_changed(name, new)
                if self.outages is not None:
                    self.outages.breaker(name, old, new, cooldown)

            b = self._breakers[name] = CircuitBreaker(cfg.failures, cfg.cooldown, on_change=changed)
        return b

    def _build(self, table: RouteTable) -> Snapshot:
        modules = effective_modules(table, self.overrides)
        pools = {name: self._pool(name, table) for name in table.upstreams}
        for gone in set(self._pools) - set(pools):
            self._close(self._pools.pop(gone))
        breakers = {m.name: self._breaker(m, table) for m in modules}
        for gone in set(self._breakers) - set(breakers):
            del self._breakers[gone]
        origins = {n: upstream_origins(u.scheme, u.host, u.port) for n, u in table.upstreams.items()}
        return Snapshot(
            routes=Routes(table, MappingProxyType({m.name: m for m in modules}), Router(modules)),
            table=table,
            pools=MappingProxyType(pools),
            origins=MappingProxyType(origins),
            breakers=MappingProxyType(breakers),
            loaded_at=time.time(),
        )

    def swap_table(self, table: RouteTable) -> None:
        """Install a new, already validated table."""
        self.overrides = {k: v for k, v in self.overrides.items() if table.module(k) is not None}
        self.snapshot = self._build(table)

    def set_overrides(self, overrides: Mapping[str, Override]) -> None:
        self.overrides = dict(overrides)
        self.snapshot = self._build(self.snapshot.table)

    def _close(self, pool: Transport) -> None:
        """Close a pool on the loop's thread, whichever thread replaced it."""
        loop = self.loop
        if loop is not None and loop.is_running() and _loop() is not loop:
            loop.call_soon_threadsafe(pool.close)
        else:
            pool.close()

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()


def _loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
