"""What the data plane hands the shadow mirror, defined once for both: a captured
response, the endpoint a request counts under, and the marker on a mirrored request.
(``shadow/`` and ``dataplane/`` import this, never each other.)"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["SHADOW_HEADER", "Response", "endpoint_template", "mirror_head"]

SHADOW_HEADER = b"x-strangler-shadow: 1\r\n"


@dataclass(frozen=True, slots=True)
class Response:
    """One side's answer, as captured (body possibly cut at the capture cap)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    complete: bool = True
    error: str | None = None  # set when no (whole) response came

    def header(self, name: str) -> str | None:
        for n, v in self.headers:
            if n == name:
                return v
        return None


_ID = re.compile(r"^(\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{24,}|[A-Za-z0-9_-]{20,})$")


@lru_cache(maxsize=8192)
def endpoint_template(method: str, path: str) -> str:
    """``GET /cases/123/notes`` -> ``GET /cases/{id}/notes``: counts aggregate per endpoint."""
    parts = ["{id}" if seg and _ID.match(seg) else seg for seg in path.split("/")]
    return f"{method} {'/'.join(parts) or '/'}"


def mirror_head(head: bytes) -> bytes:
    """The legacy request's head with the shadow marker added."""
    return head[:-2] + SHADOW_HEADER + b"\r\n"
