"""``strangler wait``: targets given as URLs, checked until all (or any) are ready.

The replacement for ping-until-up scripts: ``tcp://``, ``http(s)://``, ``file://``,
``postgresql://`` and ``redis://`` targets, with backoff up to one second between rounds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from strangler_analyzer.errors import AnalyzerError
from strangler_analyzer.model import Check
from strangler_analyzer.startup.checks import attempt, describe

__all__ = ["parse_target", "wait_for"]  # public (the CLI's and loadtests' imports are checked against it)


def parse_target(text: str, http: Mapping[str, str] | None = None) -> Check:
    """A wait target as a readiness check; ``http`` are the HTTP options (status, body,
    json_path, equals) applied to http(s) targets."""
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "tcp" and parts.hostname and parts.port:
        return Check("tcp", f"{parts.hostname}:{parts.port}")
    if scheme in ("http", "https") and parts.hostname:
        return Check("http", text, dict(http or {}))
    if scheme == "file" and (parts.path or parts.netloc):
        return Check("file", (parts.netloc + parts.path) if parts.netloc else parts.path)
    if scheme in ("postgres", "postgresql") and parts.hostname:
        return Check("postgres", text)
    if scheme == "redis" and parts.hostname:
        return Check("redis", text)
    raise AnalyzerError(f"cannot wait for {text!r}: expected tcp://HOST:PORT, http(s)://..., file://PATH, "
                        "postgresql://HOST[:PORT], or redis://HOST[:PORT]")


async def wait_for(checks: list[Check], timeout: float, any_: bool = False,
                   say: Callable[[str], None] = lambda line: None) -> bool:
    """True once every check (or one, with ``any_``) is ready; False after ``timeout``,
    having said each pending check's last error."""
    deadline = time.monotonic() + timeout
    pending = list(checks)
    last: dict[str, str] = {}
    delay = 0.05
    while True:
        left = deadline - time.monotonic()
        results = await asyncio.gather(*(attempt(c, max(0.05, min(5.0, left))) for c in pending))
        for c, r in zip(list(pending), results):
            last[describe(c)] = r.detail
            if r.ready:
                say(f"{describe(c)} is ready ({r.detail})")
                pending.remove(c)
                if any_:
                    return True
        if not pending:
            return True
        if time.monotonic() + delay > deadline:
            for c in pending:
                say(f"{describe(c)} not ready after {timeout:g} s; last error: {last[describe(c)]}")
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)
