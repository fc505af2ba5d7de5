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
