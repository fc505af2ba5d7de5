"""Errors of the proxy.

    StranglerError (strangler_common)
     └── ProxyError                    the proxy cannot do what was asked
          ├── RouteConfigError         a route table is invalid (also a ConfigError: file, line, key)
          ├── StateStoreError          the state store cannot be read or written
          └── UpstreamError            forwarding to an upstream failed
               ├── ConnectFailed       never connected: the upstream cannot have seen the request
               ├── UpstreamTimeout     no response in time: it may have seen the request
               └── UpstreamBroken      the connection failed mid-exchange: it may have seen it
"""

from __future__ import annotations

from typing import Literal

from strangler_common import ConfigError, StranglerError

__all__ = ["ConnectFailed", "ProxyError", "RouteConfigError", "StateStoreError", "TLSFailed", "UpstreamBroken", "UpstreamError",
           "UpstreamTimeout"]


class ProxyError(StranglerError):
    """Base of the proxy's errors."""


class RouteConfigError(ProxyError, ConfigError):
    """A route table is invalid."""


class StateStoreError(ProxyError):
    """The state store cannot be opened, read or written."""


class UpstreamError(ProxyError):
    """Forwarding failed. ``may_have_seen`` tells whether the upstream may have acted on
    it; ``failure`` names the way it failed (metrics label, fallback rule)."""

    may_have_seen = True
    failure: Literal["refused", "tls", "timeout", "broken"] = "broken"
    stale = False  # a reused keep-alive connection the upstream had closed (no byte came back): resend once

    def __init__(self, upstream: str, message: str) -> None:
        self.upstream = upstream
        super().__init__(f"{upstream}: {message}")


class ConnectFailed(UpstreamError):
    may_have_seen = False
    failure: Literal["refused", "tls", "timeout", "broken"] = "refused"


class TLSFailed(ConnectFailed):
    failure = "tls"


class UpstreamTimeout(UpstreamError):
    failure = "timeout"


class UpstreamBroken(UpstreamError):
    pass
