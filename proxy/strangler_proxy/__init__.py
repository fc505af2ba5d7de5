"""strangler's routing proxy: the data plane in front of the monolith.

Route tables parse (``config.load_routes``) into the immutable values of ``model``; the
decision core (``dispatch.plan``/``after_failure``, over ``Router``, ``decide`` and the cohort
functions) is pure; ``dataplane/`` holds the I/O (the ASGI ``ProxyApp``, upstream pools,
the hardened listener); ``control/`` the release controller and admin API; ``state/`` the
stores; ``shadow/`` the mirror and comparison; ``serve`` wires them for ``strangler proxy``.

>>> from strangler_proxy import bucket, on_new_side
>>> on_new_side(bucket("cases", "cookie:user-1", 10_000), 100, 10_000)
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strangler_common.lazy import lazy_attributes

from strangler_proxy.cohort import bucket, on_new_side
from strangler_proxy.config import load_routes
from strangler_proxy.decision import Decision, decide, may_fall_back
from strangler_proxy.dispatch import Plan, RequestHead, Routes, after_failure, plan
from strangler_proxy.errors import (
    ConnectFailed, ProxyError, RouteConfigError, StateStoreError, UpstreamBroken, UpstreamError, UpstreamTimeout,
)
from strangler_proxy.model import Module, RouteTable, Upstream
from strangler_proxy.routing import Router

__all__ = [
    "ConnectFailed", "Decision", "Module", "Plan", "ProxyError", "RequestHead", "RouteConfigError", "RouteTable",
    "Router", "Routes", "StateStoreError", "Upstream", "UpstreamBroken", "UpstreamError", "UpstreamTimeout",
    "after_failure", "bucket", "decide", "load_routes", "may_fall_back", "on_new_side", "plan",
]

# -- the facade the CLI and the load tests use: one import point, loaded on first use (a
# command pays only for what it touches); the type checker sees the real names
if TYPE_CHECKING:
    from strangler_proxy.control.controller import release_status
    from strangler_proxy.control.status import collect as collect_status, render_text as render_status, serving
    from strangler_proxy.control.activity import leftovers
    from strangler_proxy.control.transition import Refusal, describe, transition
    from strangler_proxy.dataplane.listener import Guard, protocol_classes
    from strangler_proxy.dispatch import cohort_id
    from strangler_proxy.limits import Limits
    from strangler_proxy.model import Override, RELEASE_ACTIONS, with_overrides
    from strangler_proxy.pins import sign_pin
    from strangler_proxy.planes import KubeOptions, export, open_plane
    from strangler_proxy.selfref import check_not_self, is_loopback
    from strangler_proxy.serve import ServeOptions, run as run_proxy
    from strangler_proxy.shadow.compare import Response, compare
    from strangler_proxy.shadow.evidence import Thresholds, module_report
    from strangler_proxy.shadow.report import report_html, report_json, report_text
    from strangler_proxy.shadow.store import ShadowStore
    from strangler_proxy.state import ReleaseState, default_path, open_store, token_path

_LAZY: dict[str, tuple[str, str]] = {
    "release_status": ("strangler_proxy.control.controller", "release_status"),
    "collect_status": ("strangler_proxy.control.status", "collect"),
    "render_status": ("strangler_proxy.control.status", "render_text"),
    "serving": ("strangler_proxy.control.status", "serving"),
    "leftovers": ("strangler_proxy.control.activity", "leftovers"),
    "Refusal": ("strangler_proxy.control.transition", "Refusal"),
    "describe": ("strangler_proxy.control.transition", "describe"),
    "transition": ("strangler_proxy.control.transition", "transition"),
    "Guard": ("strangler_proxy.dataplane.listener", "Guard"),
    "protocol_classes": ("strangler_proxy.dataplane.listener", "protocol_classes"),
    "cohort_id": ("strangler_proxy.dispatch", "cohort_id"),
    "Limits": ("strangler_proxy.limits", "Limits"),
    "Override": ("strangler_proxy.model", "Override"),
    "RELEASE_ACTIONS": ("strangler_proxy.model", "RELEASE_ACTIONS"),
    "with_overrides": ("strangler_proxy.model", "with_overrides"),
    "sign_pin": ("strangler_proxy.pins", "sign_pin"),
    "KubeOptions": ("strangler_proxy.planes", "KubeOptions"),
    "export": ("strangler_proxy.planes", "export"),
    "open_plane": ("strangler_proxy.planes", "open_plane"),
    "check_not_self": ("strangler_proxy.selfref", "check_not_self"),
    "is_loopback": ("strangler_proxy.selfref", "is_loopback"),
    "ServeOptions": ("strangler_proxy.serve", "ServeOptions"),
    "run_proxy": ("strangler_proxy.serve", "run"),
    "Response": ("strangler_proxy.shadow.compare", "Response"),
    "compare": ("strangler_proxy.shadow.compare", "compare"),
    "Thresholds": ("strangler_proxy.shadow.evidence", "Thresholds"),
    "module_report": ("strangler_proxy.shadow.evidence", "module_report"),
    "report_html": ("strangler_proxy.shadow.report", "report_html"),
    "report_json": ("strangler_proxy.shadow.report", "report_json"),
    "report_text": ("strangler_proxy.shadow.report", "report_text"),
    "ShadowStore": ("strangler_proxy.shadow.store", "ShadowStore"),
    "ReleaseState": ("strangler_proxy.state", "ReleaseState"),
    "default_path": ("strangler_proxy.state", "default_path"),
    "open_store": ("strangler_proxy.state", "open_store"),
    "token_path": ("strangler_proxy.state", "token_path"),
}
__all__ += ["Guard", "KubeOptions", "Limits", "Override", "RELEASE_ACTIONS", "Refusal", "ReleaseState", "Response", "ServeOptions", "ShadowStore", "Thresholds", "check_not_self", "cohort_id", "collect_status", "compare", "default_path", "describe", "export", "is_loopback", "leftovers", "module_report", "open_plane", "open_store", "protocol_classes", "release_status", "render_status", "report_html", "report_json", "report_text", "run_proxy", "serving", "sign_pin", "token_path", "transition", "with_overrides"]


__getattr__ = lazy_attributes(__name__, _LAZY)
