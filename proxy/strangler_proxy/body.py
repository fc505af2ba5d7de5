"""The client's request body: streamed on, and kept for a replay while it is small."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

Receive = Callable[[], Awaitable[dict[str, Any]]]


class ClientGone(Exception):
    """The client disconnected while its request body was being read."""


class Body:
    """Reads the ASGI request body once; replays what it kept for a fallback.

    Up to ``limit`` bytes are kept; past that the body can no longer be replayed and a
    failed request cannot be resent to legacy (the caller counts why).
    """

    __slots__ = ("receive", "limit", "kept", "size", "replayable", "complete", "_pos")

    def __init__(self, receive: Receive, limit: int, present: bool) -> None:
        self.receive = receive
        self.limit = limit
        self.kept: list[bytes] = []
        self.size = 0
        self.replayable = True
        self.complete = not present
        self._pos = 0

    def rewind(self) -> bool:
        """Start over from the first byte; False when the body was too large to keep."""
        if not self.replayable:
            return False
        self._pos = 0
        return True

    async def next(self) -> bytes | None:
        """The next chunk, or ``None`` at the end."""
        if self._pos < len(self.kept):
            self._pos += 1
            return self.kept[self._pos - 1]
        if self.complete:
            return None
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            chunk: bytes = message.get("body", b"")
            if not message.get("more_body", False):
                self.complete = True
            if chunk:
                self.size += len(chunk)
                if self.replayable:
                    if self.size <= self.limit:
                        self.kept.append(chunk)
                        self._pos += 1
                    else:
                        self.replayable = False
                        self.kept = []
                        self._pos = 0
                return chunk
            if self.complete:
                return None
