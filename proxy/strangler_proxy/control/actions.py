"""The changes an operator may ask for, checked and applied in one place: the admin API's
``PATCH /modules/NAME`` and ``POST /releases/NAME``, and the dashboard's buttons, all go
through ``Actions`` (the ledger's actor is always the caller's operator, never a field)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from strangler_proxy.control.controller import Controller
from strangler_proxy.errors import ProxyError
from strangler_proxy.dataplane.runtime import Runtime
from strangler_proxy.model import STAGES, Module
from strangler_proxy.state import Store

__all__ = ["Actions", "NO_ACTOR_FIELD"]

NO_ACTOR_FIELD = "the ledger's actor is the operator whose token made the call: drop 'actor'"
Offload = Callable[..., Awaitable[Any]]
Result = tuple[int, dict[str, Any]]  # an HTTP status and its JSON body


class Actions:
    def __init__(self, runtime: Runtime, store: Store, controller: Controller | None, offload: Offload,
                 describe: Callable[[Module], dict[str, Any]]) -> None:
        self.runtime = runtime
        self.store = store
        self.controller = controller
        self.offload = offload
        self.describe = describe  # a module as the API shows it

    async def set_module(self, m: Module, body: object, actor: str) -> Result:
        """A stage and/or weight by hand: ``{"stage": "canary", "weight": 10, "reason": "..."}``."""
        if isinstance(body, dict) and "actor" in body:
            return 400, {"error": NO_ACTOR_FIELD}
        if not isinstance(body, dict) or not body.keys() <= {"stage", "weight", "reason"} or not ({"stage", "weight"} & body.keys()):
            return 400, {"error": "expected a JSON object with 'stage' and/or 'weight' (and optional 'reason')"}
        stage = body.get("stage")
        weight = body.get("weight")
        if stage is not None and stage not in STAGES:
            return 400, {"error": f"stage: expected one of {', '.join(STAGES)}, found {stage!r}"}
        if weight is not None and (isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 100):
            return 400, {"error": f"weight: expected a number from 0 to 100, found {weight!r}"}
        if weight is not None and (stage or m.stage) != "canary":
            # a weight means something in canary only: said, not stored to surprise later
            return 409, {"error": f"module {m.name} is {stage or m.stage}: a weight applies to the canary stage; "
                                  f"send {{\"stage\": \"canary\", \"weight\": {weight}}} to start a canary"}
        if stage == "retired" and m.stage != "retired" and self.controller is not None:
            refusal = await self.offload(self.controller.retire_refusal, m)
            if refusal:
                return 409, {"error": refusal}
        reason = body.get("reason", "")
        if not isinstance(reason, str):
            return 400, {"error": f"reason: expected a string, found {reason!r}"}

        def change() -> None:
            self.store.set(m.name, stage, None if weight is None else float(weight), actor, reason)
            self.runtime.set_overrides(self.store.overrides())

        try:
            await self.offload(change)
        except ProxyError as exc:
            return 503, {"error": str(exc)}
        return 200, self.describe(self.runtime.snapshot.modules[m.name])

    async def release(self, name: str, body: object, actor: str) -> Result:
        """``{"action": "start|pause|resume|promote|abort|undo|retire", "skip_analysis": false}``."""
        controller = self.controller
        if controller is None:
            return 501, {"error": "no release controller in this process"}
        if isinstance(body, dict) and "actor" in body:
            return 400, {"error": NO_ACTOR_FIELD}
        if not isinstance(body, dict) or not isinstance(body.get("action"), str):
            return 400, {"error": "expected {\"action\": \"start|pause|resume|promote|abort|undo\"}"}
        if name not in self.runtime.snapshot.modules:
            return 404, {"error": f"unknown module {name!r}"}
        try:
            r = await self.offload(controller.act, name, body["action"], actor, bool(body.get("skip_analysis")))
        except ProxyError as exc:
            return 409, {"error": str(exc)}
        m = self.runtime.snapshot.modules[name]
        return 200, {**asdict(r), "stage": m.stage, "weight": m.weight, "summary": controller.describe(name)}
