"""strangler's routing proxy: the data plane in front of the monolith.

Route tables parse into immutable values (``load_routes``); ``Router``, ``decide`` and the
cohort functions are pure; ``ProxyApp`` is the ASGI app; ``strangler proxy`` serves it.

>>> from strangler_proxy import bucket, on_new_side
>>> on_new_side(bucket("cases", "cookie:user-1", 10_000), 100, 10_000)
True
"""

from strangler_proxy.cohort import bucket, on_new_side
from strangler_proxy.config import load_routes
from strangler_proxy.model import Module, RouteTable, Upstream
from strangler_proxy.decision import Decision, decide, may_fall_back
from strangler_proxy.errors import (
    ConnectFailed, ProxyError, RouteConfigError, StateStoreError, UpstreamBroken, UpstreamError, UpstreamTimeout,
)
from strangler_proxy.routing import Router

__all__ = [
    "ConnectFailed", "Decision", "Module", "ProxyError", "RouteConfigError", "RouteTable", "Router",
    "StateStoreError", "Upstream", "UpstreamBroken", "UpstreamError", "UpstreamTimeout", "bucket", "decide",
    "load_routes", "may_fall_back", "on_new_side",
]
