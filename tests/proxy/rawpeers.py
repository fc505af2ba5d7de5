"""Raw-socket peers for the hostile-input tests: what the *upstream* received, byte for byte.

``RecordingUpstream`` is a TCP server in a thread that keeps every byte each connection
sent it and parses them with h11 (a strict, independent HTTP/1.1 parser), so a test can
assert how many requests the upstream saw, with which targets, headers and bodies: a
desync shows up as a second request the client never sent. Its answers are scripted by
``respond(request) -> Reply``; the default answers JSON naming the request.

``raw_exchange`` sends raw bytes to the proxy and reads what comes back until the proxy
closes or goes quiet.
"""

from __future__ import annotations

import json
import re
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import h11

from tests.servers import free_port


@dataclass
class Seen:
    """One request as the upstream's parser read it."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n == name.lower()]


@dataclass
class Reply:
    """What the upstream sends back: pieces written with a pause before each (seconds);
    ``close`` drops the connection afterwards."""

    pieces: list[tuple[float, bytes]] = field(default_factory=list)
    close: bool = False


def ok(body: bytes, extra: bytes = b"") -> Reply:
    return Reply([(0.0, b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s"
                   % (len(body), extra, body))])


def _default(req: Seen) -> Reply:
    return ok(json.dumps({"method": req.method, "target": req.target, "body": len(req.body)}).encode())


class RecordingUpstream:
    def __init__(self, respond: Callable[[Seen], Reply] = _default) -> None:
        self.respond = respond
        self.port = free_port()
        self.requests: list[Seen] = []
        self.raw: list[bytearray] = []  # per connection, everything received
        self.errors: list[str] = []  # what h11 refused to parse
        self.connections = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer._serve(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 1024

        self.server = Server(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RecordingUpstream:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _serve(self, sock: socket.socket) -> None:
        raw = bytearray()
        with self.lock:
            self.connections += 1
            self.raw.append(raw)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
        current: Seen | None = None
        sock.settimeout(30)
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                with self.lock:
                    self.errors.append(str(exc))
                return
            if event is h11.NEED_DATA:
                try:
                    data = sock.recv(65536)
                except OSError:
                    return
                raw.extend(data)
                conn.receive_data(data)
                if not data:
                    return
                continue
            if isinstance(event, h11.Request):
                current = Seen(event.method.decode(), event.target.decode("latin-1"),
                               [(n.decode("latin-1"), v.decode("latin-1")) for n, v in event.headers])
            elif isinstance(event, h11.Data) and current is not None:
                current.body += event.data
            elif isinstance(event, h11.EndOfMessage) and current is not None:
                with self.lock:
                    self.requests.append(current)
                reply = self.respond(current)
                current = None
                try:
                    for pause, piece in reply.pieces:
                        if pause:
                            time.sleep(pause)
                        sock.sendall(piece)
                except OSError:
                    return
                if reply.close:
                    sock.close()
                    return
                # we wrote raw bytes: walk h11's state machine past a response it never built
                try:
                    conn.send(h11.Response(status_code=200, headers=[("content-length", "0")]))
                    conn.send(h11.EndOfMessage())
                    if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                        return
                    conn.start_next_cycle()
                except h11.LocalProtocolError:  # e.g. a CONNECT: h11 would switch protocols
                    return
            elif isinstance(event, h11.ConnectionClosed):
                return


def raw_exchange(port: int, data: bytes, quiet: float = 0.5, limit: float = 10.0) -> bytes:
    """Send ``data`` to 127.0.0.1:``port``; everything received until the peer closes,
    or until nothing arrived for ``quiet`` seconds (``limit`` at most)."""
    out = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as s:
        s.sendall(data)
        s.settimeout(quiet)
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out.extend(chunk)
    return bytes(out)


def statuses(response_bytes: bytes) -> list[int]:
    """The status codes of every response in a byte stream (pipelined answers included)."""
    return [int(m) for m in re.findall(rb"HTTP/1\.[01] (\d{3}) ", response_bytes)]
