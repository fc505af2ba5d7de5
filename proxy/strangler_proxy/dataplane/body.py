"""The client's request body: read ahead, streamed on, and kept for a replay while small."""

from __future__ import annotations

from strangler_proxy.dataplane.asgi import Receive


class ClientGone(Exception):
    """The client disconnected while its request body was being read."""


class Body:
    """Reads the ASGI request body once; replays what it kept for a fallback.

    Up to ``limit`` bytes are kept; past that the body can no longer be replayed and a
    failed request cannot be resent to legacy (the caller counts why). ``fill`` reads ahead
    before an upstream connection is taken, so a slow client holds no upstream connection
    while its (small) body trickles in, as nginx's request buffering does.
    """

    __slots__ = ("receive", "limit", "kept", "held", "size", "replayable", "complete", "_pos")

    def __init__(self, receive: Receive, limit: int, present: bool) -> None:
        self.receive = receive
        self.limit = limit
        self.kept: list[bytes] = []  # every chunk read so far, while the body is replayable
        self.held: list[bytes] = []  # read ahead and not served yet, once it no longer is
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

    async def fill(self, cap: int) -> None:
        """Read ahead until the body is complete or more than ``cap`` bytes are in hand."""
        while not self.complete and self.size <= cap:
            chunk = await self._read()
            if chunk:
                self._account(chunk, serve=False)

    async def next(self) -> bytes | None:
        """The next chunk, or ``None`` at the end."""
        if self._pos < len(self.kept):
            self._pos += 1
            return self.kept[self._pos - 1]
        if self.held:
            return self.held.pop(0)
        while not self.complete:
            chunk = await self._read()
            if chunk:
                self._account(chunk, serve=True)
                return chunk
        return None

    async def _read(self) -> bytes:
        message = await self.receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        if not message.get("more_body", False):
            self.complete = True
        chunk: bytes = message.get("body", b"")
        return chunk

    def _account(self, chunk: bytes, serve: bool) -> None:
        self.size += len(chunk)
        if self.replayable:
            if self.size <= self.limit:
                self.kept.append(chunk)
                if serve:
                    self._pos += 1
                return
            # too large to keep: what was read ahead and not served yet is held instead
            self.replayable = False
            self.held = self.kept[self._pos:]
            self.kept = []
            self._pos = 0
        if not serve:
            self.held.append(chunk)
