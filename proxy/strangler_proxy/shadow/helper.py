"""The mirror helper: a child process, at the lowest CPU priority, that runs the mirrors.

The proxy hands each mirror job over a socketpair in length-prefixed pickle frames,
batched per event-loop turn, and goes on serving. The helper sends the requests to the
new service, compares, keeps the evidence in the state store, and reports counter deltas
back twice a second for the proxy's /metrics. Scheduled as SCHED_IDLE (nice 19 where that
is not available), it only uses CPU time the proxy leaves idle: mirroring stays off the
user's path even on one core, and a burst of mirrors waits in bounded queues instead.

Frames, both ways: 4-byte big-endian length, then a pickled tuple:
    proxy -> helper   ("module", Module, {upstream name: Upstream})   on first use and on change
                      ("job", module, endpoint, method, path, head, body, status, headers, legacy body)
                      ("skip", module, endpoint, reason)
    helper -> proxy   ("counts", {(counter, module, reason): n})
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import socket
import struct
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from strangler_proxy.model import Module, Upstream
from strangler_proxy.errors import ProxyError
from strangler_proxy.shadow.compare import Response
from strangler_proxy.shadow.mirror import Job, Mirror
from strangler_proxy.upstream import Pool

HEADER = struct.Struct("!I")
BUFFER_CAP = 16 << 20  # bytes of jobs waiting for the helper; beyond it mirrors are dropped (queue_full)


def _frame(message: tuple[Any, ...]) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


class HelperClient:
    """The proxy's end: queue jobs without waiting, apply the counters that come back."""

    def __init__(self, sock: socket.socket, pid: int, on_counts: Callable[[dict[tuple[str, str, str], int]], None],
                 on_skip: Callable[[str, str], None]) -> None:
        self.sock = sock
        self.pid = pid
        self.on_counts = on_counts
        self.on_skip = on_skip
        self.out = bytearray()
        self.writing = False
        self.scheduled = False
        self.sent: dict[str, Module] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.reader: asyncio.Task[None] | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.sock.setblocking(False)
        self.reader = loop.create_task(self._read())

    def _queue(self, message: tuple[Any, ...], droppable: bool = True) -> bool:
        frame = _frame(message)
        if droppable and len(self.out) + len(frame) > BUFFER_CAP:
            return False
        self.out += frame
        if not self.scheduled and not self.writing and self.loop is not None:
            self.scheduled = True
            self.loop.call_soon(self._flush)  # one write per loop turn, however many jobs
        return True

    def job(self, module: Module, upstreams: Mapping[str, Upstream], endpoint: str, method: str, path: str,
            head: bytes, body: bytes, legacy: Response) -> None:
        if self.sent.get(module.name) is not module:
            self.sent[module.name] = module
            shadow = module.shadow
            wanted = {module.service, module.legacy, shadow.noise if shadow is not None else None}
            self._queue(("module", module, {n: u for n, u in upstreams.items() if n in wanted}), droppable=False)
        if not self._queue(("job", module.name, endpoint, method, path, head, body, legacy.status, legacy.headers, legacy.body)):
            self.on_skip(module.name, "queue_full")
            self._queue(("skip", module.name, endpoint, "queue_full"), droppable=False)

    def skip(self, module: str, endpoint: str, reason: str) -> None:
        self.on_skip(module, reason)
        self._queue(("skip", module, endpoint, reason), droppable=False)

    def _flush(self) -> None:
        self.scheduled = False
        assert self.loop is not None
        while self.out:
            try:
                n = self.sock.send(self.out)
            except BlockingIOError:
                if not self.writing:
                    self.writing = True
                    self.loop.add_writer(self.sock.fileno(), self._writable)
                return
            except OSError:
                self.out.clear()  # the helper is gone: mirrors are lost, users are not affected
                return
            del self.out[:n]
        if self.writing:
            self.writing = False
            self.loop.remove_writer(self.sock.fileno())

    def _writable(self) -> None:
        self._flush()

    async def _read(self) -> None:
        assert self.loop is not None
        reader, _ = await asyncio.open_unix_connection(sock=self.sock)
        try:
            while True:
                size = HEADER.unpack(await reader.readexactly(HEADER.size))[0]
                message = pickle.loads(await reader.readexactly(size))
                if message[0] == "counts":
                    self.on_counts(message[1])
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    def close(self, timeout: float = 5.0) -> None:
        """Let the helper finish its queue and write its evidence, then reap it."""
        if self.reader is not None:
            self.reader.cancel()
        if self.out:
            self.sock.setblocking(True)
            try:
                self.sock.sendall(self.out)
            except OSError:
                pass
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        _reap(self.pid, timeout)
        self.sock.close()


def _reap(pid: int, timeout: float) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _lowest_priority() -> None:
    """SCHED_IDLE where the kernel has it: run only when the proxy leaves the CPU idle, and
    give it back at once when a user request arrives; nice 19 elsewhere."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)


def spawn(state: str) -> tuple[socket.socket, int]:
    """Fork the helper; call before the proxy's event loop exists."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    for s in (ours, theirs):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    pid = os.fork()
    if pid == 0:
        ours.close()
        code = 0
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the proxy decides when we stop
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            _lowest_priority()
            import uvloop

            uvloop.run(_helper(theirs, state))
        except BaseException as exc:  # never return into the proxy's code
            print(f"strangler mirror helper: {exc}", file=sys.stderr)
            code = 1
        os._exit(code)
    theirs.close()
    return ours, pid


async def _helper(sock: socket.socket, state: str) -> None:
    from strangler_proxy.shadow.store import ShadowStore

    store = ShadowStore(state)
    modules: dict[str, Module] = {}
    pools: dict[str, Pool] = {}
    counts: Counter[tuple[str, str, str]] = Counter()
    mirror = Mirror(lambda: pools, lambda c, m, r: counts.update({(c, m, r): 1}))
    reader, writer = await asyncio.open_unix_connection(sock=sock)

    async def report() -> None:
        while True:
            await asyncio.sleep(0.5)
            await flush()

    async def flush() -> None:
        if counts:
            writer.write(_frame(("counts", dict(counts))))
            counts.clear()
        deltas, samples = mirror.drain()
        if deltas or samples:
            caps = {m.name: m.shadow.samples for m in modules.values() if m.shadow is not None}
            try:
                await asyncio.to_thread(store.flush, deltas, samples, caps)
            except ProxyError as exc:
                print(f"strangler mirror helper: {exc}", file=sys.stderr)

    ticker = asyncio.get_running_loop().create_task(report())
    try:
        while True:
            try:
                size = HEADER.unpack(await reader.readexactly(HEADER.size))[0]
                message = pickle.loads(await reader.readexactly(size))
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            kind = message[0]
            if kind == "job":
                _, name, endpoint, method, path, head, body, status, headers, legacy_body = message
                module = modules.get(name)
                if module is not None and module.shadow is not None:
                    mirror.offer(Job(module, endpoint, method, path, head, body, Response(status, headers, legacy_body, True)))
            elif kind == "module":
                _, module, upstreams = message
                modules[module.name] = module
                for uname, up in upstreams.items():
                    if uname not in pools or pools[uname].upstream != up:
                        pools[uname] = Pool(up)
            elif kind == "skip":
                _, name, endpoint, reason = message
                mirror.skip(name, endpoint, reason, counted=True)
    finally:
        # drain what is queued (bounded by each module's timeout), then write the evidence
        deadline = asyncio.get_running_loop().time() + 10
        while not mirror.idle() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        ticker.cancel()
        await flush()
        mirror.close()
        store.close()
