"""One proxy process's control plane, ticked by the server every ``poll`` seconds.

Every process (the single proxy, each worker, each replica) polls the state store for
runtime changes, flushes what legacy served, and publishes its release windows: its own
traffic per module, tagged with the step it belongs to. The process that may lead (the
single proxy, the workers' parent, the replica holding the advisory lock) also runs the
release controller, which judges each step on the sum of every process's windows, and sends
the webhooks. Every step runs on the control thread (``Background``); none can end the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from strangler_proxy.control.activity import Activity
from strangler_proxy.control.background import Background
from strangler_proxy.control.controller import Controller, Windows
from strangler_proxy.control.traffic import Traffic
from strangler_proxy.control.webhooks import notify
from strangler_proxy.dataplane.runtime import Runtime
from strangler_proxy.model import RouteTable, Webhook
from strangler_proxy.planes import Plane, open_plane
from strangler_proxy.shadow.evidence import module_report
from strangler_proxy.shadow.store import ShadowStore
from strangler_proxy.state import Store

__all__ = ["ControlPlane"]

POLL_STEP = "state store poll"


class ControlPlane:
    def __init__(self, runtime: Runtime, store: Store, background: Background, local_state: str | Path,
                 log: Callable[[str], None], lead: bool) -> None:
        self.runtime = runtime
        self.store = store
        self.background = background
        self.log = log
        self.windows = Windows()
        self.traffic = Traffic()  # every module's traffic per side, published for status and the dashboard
        self.serves = runtime.outages is not None  # a process that serves traffic (not the workers' parent)
        if runtime.outages is not None:
            runtime.outages.watchers.append(self.traffic.breaker)
        self.activity = Activity(local_state)
        self.version = store.version()
        self.controller: Controller | None = None
        # traffic carried by nginx, HAProxy or a mesh (data_plane: in the route file): the
        # leader applies each change there and reads back what the plane carried
        self.external: Plane | None = None
        self._applied: object = None  # the snapshot the external plane last took
        self._releases: tuple[int, bool] = (0, False)  # (id of the table, whether any module has a plan)
        self._tasks: set[asyncio.Task[None]] = set()
        if lead:
            evidence = ShadowStore(local_state)

            def shadow_bound(module: str, min_samples: int) -> tuple[tuple[float, float] | None, int]:
                report = module_report(module, evidence.load(module), min_samples=min_samples)
                return report.interval, report.compared

            spec = runtime.snapshot.table.data_plane
            if spec.kind != "strangler":
                self.external = open_plane(spec, log)
            self.controller = Controller(runtime, store, self.windows, shadow_bound, self.activity.quiet_for,
                                         external=self._apply_external if self.external else None, log=log)

    def _effective(self) -> RouteTable:
        """The table as it runs: the snapshot's modules already carry the overrides."""
        snap = self.runtime.snapshot
        return replace(snap.table, modules=tuple(snap.modules.values()))

    def _apply_external(self) -> bool:
        """The current table (overrides applied) onto the external data plane, once per
        snapshot (a reload or an override makes a new one): not an export every tick."""
        assert self.external is not None
        snap = self.runtime.snapshot
        if snap is self._applied:
            return False
        table = self._effective()
        applied = self.external.apply(table)
        self._applied = snap  # only once the plane took it: a refused one is tried again
        if applied:
            changed = ", ".join(f"{m.name} {m.stage}" + (f" {m.weight:g}%" if m.stage == "canary" else "")
                                for m in table.modules if m.release is not None or m.stage != "legacy")
            self.log(f"data plane {self.external.spec.kind}: configuration applied ({changed or 'every module on legacy'})")
        return applied

    def _lead_and_tick(self) -> None:
        assert self.controller is not None
        if self.store.try_lead():
            self.controller.tick()

    def _has_releases(self) -> bool:
        table = self.runtime.snapshot.table
        if self._releases[0] != id(table):
            self._releases = (id(table), any(m.release is not None for m in table.modules))
        return self._releases[1]

    def _poll(self) -> dict[str, float]:
        """Apply runtime changes made elsewhere; the start of each running release's step."""
        v = self.store.version()
        if v != self.version:
            self.version = v
            overrides = self.store.overrides()
            # the version also moves for writes that change no override (activity, windows):
            # rebuilding a 10,000-module snapshot for those would be wasted work
            if overrides != self.runtime.overrides:
                self.runtime.set_overrides(overrides)
        if not self._has_releases():
            return {}
        return {r.module: r.step_started for r in self.store.releases() if r.status == "running"}

    async def tick(self) -> None:
        step = self.background.step
        self.traffic.tick()  # on the loop, where the app records
        if self.external is not None:  # changes made outside a release (start-up, reload, admin)
            await step("data plane apply", self._apply_external)
            seen = await step("data plane metrics", self.external.read, self.runtime.snapshot.table)
            for o in seen or ():
                self.windows.observe(o.module, o.side, o.seconds, o.error, o.count)
        if self.controller is not None:
            await step("release controller", self._lead_and_tick)
            while self.controller.events:
                hooks, event = self.controller.events.pop(0)
                for hook in hooks:
                    task = asyncio.get_running_loop().create_task(self._webhook(hook, event))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        await step("activity flush", self.activity.flush)
        running = await step(POLL_STEP, self._poll)
        self.runtime.metrics.state_store_up.set(0 if POLL_STEP in self.background.failing else 1)
        if running is not None:
            self.windows.align(running)  # on the loop, where the app records: a new step starts from zero
        breakers = self.runtime.snapshot.breakers
        payload = self.windows.snapshot([m for m in self.windows.keys if m in breakers and breakers[m].state == "open"])
        if payload:
            await step("release windows", self.store.put_windows, self.windows.source, payload)
        if self.serves:
            rows = self.traffic.publish({name: b.state for name, b in breakers.items()})
            if rows:
                await step("traffic", self.store.put_traffic, self.windows.source, rows)

    async def _webhook(self, hook: Webhook, event: dict[str, object]) -> None:
        """Fire and forget: a slow or broken webhook never holds a release back."""
        failure = await notify(hook, event)
        if failure is not None:
            self.log(f"webhook {hook.url}: {failure}")

    def not_ready(self) -> str | None:
        """Why the process is not ready, in words safe for the public data port: no store
        address, no error text (those go to the log)."""
        return "the state store did not answer its last poll" if POLL_STEP in self.background.failing else None

    async def close(self) -> None:
        await self.background.step("activity flush", self.activity.flush)  # what legacy served is not lost
        self.activity.close()
