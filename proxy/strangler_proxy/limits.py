"""What one client or upstream may hold: sizes, times and connections (``limits:``).

Defaults follow nginx's: 60 s to send a request head (``client_header_timeout``), 60 s
between two reads of a request body (``client_body_timeout``), 75 s for an idle keep-alive
connection (``keepalive_timeout``), 8 KiB for the request line and 64 KiB for the whole head
(nginx: 4 buffers of 8k; we allow more for the cookies of legacy portals), and upstream
read/send timeouts of 60 s between two operations (``proxy_read_timeout``,
``proxy_send_timeout``, set per upstream).

    limits:
      max_header_bytes: 65536      # request line and headers; more: 431 and close
      max_request_line: 8192       # the request target; more: 414 and close
      header_timeout: 60           # a head not complete in time: 408 and close
      body_timeout: 60             # no body bytes for this long: 408 (or close) and the upstream is let go
                                   # (checked once per period, so a silent body is cut after 1 to 2 periods)
      keepalive_timeout: 75        # an idle keep-alive connection is closed
      max_connections: 10000       # open client connections; more: the oldest idle one is closed,
                                   # or, with none idle, the new one gets 503 and is closed
      request_buffer: 1048576      # bodies up to this size are read whole before an upstream
                                   # connection is taken, so a slow client never holds one
"""

from __future__ import annotations

from dataclasses import dataclass

from strangler_common import Node

KEYS = {"max_header_bytes", "max_request_line", "header_timeout", "body_timeout", "keepalive_timeout", "max_connections",
        "request_buffer"}


@dataclass(frozen=True, slots=True)
class Limits:
    max_header_bytes: int = 64 * 1024
    max_request_line: int = 8 * 1024
    header_timeout: float = 60.0
    body_timeout: float = 60.0
    keepalive_timeout: float = 75.0
    max_connections: int = 10_000
    request_buffer: int = 1 << 20


def parse_limits(node: Node) -> Limits:
    f = node.mapping(KEYS)
    d = Limits()
    return Limits(
        max_header_bytes=f["max_header_bytes"].integer(1024, 1 << 24) if "max_header_bytes" in f else d.max_header_bytes,
        max_request_line=f["max_request_line"].integer(256, 1 << 24) if "max_request_line" in f else d.max_request_line,
        header_timeout=f["header_timeout"].number(0.01) if "header_timeout" in f else d.header_timeout,
        body_timeout=f["body_timeout"].number(0.01) if "body_timeout" in f else d.body_timeout,
        keepalive_timeout=f["keepalive_timeout"].number(0.01) if "keepalive_timeout" in f else d.keepalive_timeout,
        max_connections=f["max_connections"].integer(1) if "max_connections" in f else d.max_connections,
        request_buffer=f["request_buffer"].integer(0) if "request_buffer" in f else d.request_buffer,
    )
