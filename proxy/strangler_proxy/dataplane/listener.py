"""The client side of the wire: uvicorn's httptools protocol, hardened before the app runs.

uvicorn parses (llhttp) and frames responses; this subclass bounds what one client can do
or hold, at the socket, before a request reaches the app:

- the request target must be origin-form (``/path``), or ``*`` for ``OPTIONS``; anything
  else (absolute-form, authority-form, ``*@host:port/``) gets 400 and the connection is
  closed, for plain HTTP and WebSocket upgrades alike: no request can name a host;
  ``CONNECT`` (a tunnel) and ``TRACE`` (echoes credentials) are 405;
- the request target and the whole head are limited *while they arrive* (414 / 431 and
  close): no more than the limit is ever handed to the parser for one head;
- exactly one ``Host`` header (HTTP/1.1 requires it; two are 400), as nginx;
- chunked trailers never become headers of the request;
- an ``Upgrade`` other than WebSocket (``h2c``) is served as plain HTTP/1.1 *with its
  body* (llhttp would end such a message at its head and parse the body as the next
  request: a desync), and what is pipelined after it is parsed and answered; a WebSocket
  upgrade with a body is 400;
- header values lose their trailing whitespace (RFC 9110's OWS, as uvicorn does); a
  ``Host`` that is not a host (control characters, spaces, ``/``, ``\\``, ``@``) is 400;
- timeouts: the head (408 and close; a connection that never sends a byte is closed;
  with TLS the handshake counts as part of the head, from accept),
  the body between two reads (408, or close once the response started; the app sees a
  disconnect and lets its upstream connection go), idle keep-alive;
- a cap on open connections, WebSockets included: at the cap the oldest idle connection
  (keep-alive, or not yet sent a byte) is closed to make room, as nginx does; with none
  idle the new one gets 503 and is closed.

Limits come from the route file's ``limits:`` (``strangler_proxy.limits``) and follow a
reload for new connections. Rejections are counted, never logged per request: logging is
what an attacker would flood.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import http
import re
import ssl
from collections.abc import Callable
from typing import Any, Protocol, cast

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from strangler_proxy.limits import Limits

WATCH = "strangler.watch"  # set by the app in a request's scope: told when the client goes away
CORK = "strangler.cork"  # set by the listener in a request's scope: the connection's ``Cork``


class Cork:
    """The client connection's transport as a request's response writes it: between
    ``hold()`` and ``flush()`` writes are gathered into one, so a response whose body is in
    hand goes out in one write (one syscall) instead of uvicorn's two, head then body."""

    __slots__ = ("transport", "held")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.held: list[bytes] | None = None

    def hold(self) -> None:
        self.held = []

    def flush(self) -> None:
        held, self.held = self.held, None
        if held and not self.transport.is_closing():
            self.transport.write(b"".join(held) if len(held) > 1 else held[0])

    def write(self, data: bytes) -> None:
        if self.held is not None:
            self.held.append(data)
        else:
            self.transport.write(data)

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def close(self) -> None:
        self.flush()
        self.transport.close()


class Watcher(Protocol):
    def client_gone(self) -> None: ...

OVERLOADED = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 38\r\n"
              b"retry-after: 1\r\nconnection: close\r\n\r\nstrangler: too many open connections.\n")


def error_response(status: int, text: str) -> bytes:
    body = text.encode()
    return b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s" % (
        status, http.HTTPStatus(status).phrase.encode(), len(body), body)


# a Host value is a host name or address and an optional port; anything else (control
# characters, spaces, a path, userinfo) is refused before it can be matched or forwarded
_BAD_HOST = re.compile(rb"[\x00-\x20\x7f/\\@?#]")


class _Reject(Exception):
    def __init__(self, status: int, reason: str, text: str) -> None:
        self.status, self.reason, self.text = status, reason, text


class Guard:
    """What every connection of one listener shares: the limits, the idle set, the count."""

    def __init__(self, limits: Callable[[], Limits], on_event: Callable[[str], None] = lambda reason: None) -> None:
        self.limits = limits
        self.on_event = on_event  # a connection closed by a rule: evicted, refused, header_timeout, ...
        self.idle: dict[StranglerHttpProtocol, None] = {}  # insertion order: oldest first
        self.open = 0

    def make_room(self) -> bool:
        """True if a new connection may be served, closing the oldest idle one if needed."""
        if self.open < self.limits().max_connections:
            return True
        while self.idle:
            conn = next(iter(self.idle))
            del self.idle[conn]
            if conn.evict():
                self.on_event("evicted")
                return True
        return False


class StranglerHttpProtocol(HttpToolsProtocol):
    guard: Guard  # set on the class made by ``protocol_classes``
    tls: ssl.SSLContext | None = None  # the listener's TLS: the handshake is done here, counted and timed

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lim = self.guard.limits()
        self.raw: asyncio.Transport | None = None  # the connection from accept (TLS: until the handshake, the TCP one)
        self.cork: Cork
        self.counted = False
        self.refused = False
        self.closing = False  # a rejection was written; nothing more is read
        self.in_head = False
        self.head_used = 0
        self.url_parts: list[bytes] = []
        self.url_len = 0
        self.header_bytes = 0
        self.hosts = 0
        self.has_body = False
        self.framing: bytes | None = None  # the body's framing line, for a body after an Upgrade head
        self.upgrade_body: bytes | None = None  # set between an h2c-like head and its body
        self.synthetic = False  # feeding the parser a made-up head: its callbacks are ignored
        self.reads = 0  # counts body reads: the idle timer sees progress without a clock call per read
        self.reads_seen = 0
        self.header_timer: asyncio.TimerHandle | None = None
        self.body_timer: asyncio.TimerHandle | None = None
        self.pending: bytes | None = None  # a rejection to write once the response in flight ends
        self.cycles: list[Any] = []  # requests read and not yet answered (uvicorn keeps only the last)

    # -- connection ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if self.raw is not None:  # TLS: the handshake is done, this is the secure transport
            self._serve(transport)
            return
        guard = self.guard
        if not guard.make_room():
            self.refused = True
            if self.tls is None:
                transport.write(OVERLOADED)
            transport.close()
            guard.on_event("refused")
            return
        guard.open += 1
        self.counted = True
        guard.idle[self] = None  # not sent a byte yet: the first to go at the cap
        self.raw = transport
        self.header_timer = self.loop.call_later(self.lim.header_timeout, self._head_timeout)
        if self.tls is not None:
            # the handshake is part of the head: counted and timed from accept, as nginx does
            # (a TLS server of the loop's hands over a connection only once it is done). The
            # TLS layer takes the connection before it can deliver a byte: asyncio's
            # SSLProtocol, installed here and now (uvloop's start_tls lets a ClientHello
            # reach the old protocol first), calls connection_made again when it is done
            handshake = self.loop.create_future()
            handshake.add_done_callback(self._handshake_done)
            layer = asyncio.sslproto.SSLProtocol(self.loop, self, self.tls, handshake, server_side=True,
                                                 ssl_handshake_timeout=max(0.01, self.lim.header_timeout))  # type: ignore[arg-type]  # seconds: a float works (call_later)
            transport.set_protocol(layer)
            layer.connection_made(transport)
            return
        self._serve(transport)

    def _serve(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self.cork = Cork(transport)
        self.timeout_keep_alive = self.lim.keepalive_timeout  # type: ignore[assignment]  # uvicorn says int; call_later takes float

    def _handshake_done(self, handshake: asyncio.Future[None]) -> None:
        if handshake.cancelled() or handshake.exception() is not None:
            self._uncount()  # a failed, abandoned or timed-out handshake: gone without a word
            if self.raw is not None:
                self.raw.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.refused:
            return
        self._uncount()
        if self.transport is None:
            return  # closed while it shook hands: uvicorn never had it
        for cycle in self.cycles:  # the request in flight (pipelined ones too): its upstream exchange stops now
            if not cycle.response_complete:
                watch = cast("Watcher | None", cycle.scope.get(WATCH))
                if watch is not None:
                    watch.client_gone()
        super().connection_lost(exc)

    def _uncount(self) -> None:
        self.guard.idle.pop(self, None)
        if self.counted:
            self.counted = False
            self.guard.open -= 1
        for timer in (self.header_timer, self.body_timer):
            if timer is not None:
                timer.cancel()
        self.header_timer = self.body_timer = None

    def evict(self) -> bool:
        """Close this idle connection to make room (nginx's reuse of idle connections)."""
        conn = self.transport or self.raw  # TLS: the secure one once the handshake is done
        if conn is None or conn.is_closing():
            return False
        self._uncount()
        conn.close()
        return True

    def handle_websocket_upgrade(self) -> None:
        # the WebSocket protocol owns the connection from here; it stays counted against
        # max_connections (never idle, so never evicted) until that protocol loses it
        self.guard.idle.pop(self, None)
        for timer in (self.header_timer, self.body_timer):
            if timer is not None:
                timer.cancel()
        self.header_timer = self.body_timer = None
        self.counted = False
        self.closing = True  # nothing more goes to this HTTP parser
        super().handle_websocket_upgrade()

    # -- reading ---------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.refused or self.closing:
            return
        idle = self.guard.idle
        if idle:
            idle.pop(self, None)
        if self.timeout_keep_alive_task is not None:
            self._unset_keepalive_if_required()
        cycle = self.cycle
        if self.in_head or cycle is None or not cycle.more_body:  # reading a head, or between requests
            room = self.lim.max_header_bytes - self.head_used
            if len(data) > room:
                self._feed_bounded(data, room)
                return
            self.head_used += len(data)
        else:
            self.reads += 1  # body bytes: the body idle timer sees progress
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._stopped(exc, data)
        if self.in_head and self.header_timer is None and not self.closing:
            self.header_timer = self.loop.call_later(self.lim.header_timeout, self._head_timeout)

    def _feed_bounded(self, data: bytes, room: int) -> None:
        """Never hand the parser more than the limit for one head."""
        self._feed(data[:room])
        if self.closing:
            return
        if self._between():
            self._reject(_Reject(414, "uri_too_long", "request target too long\n") if self.url_len and not self.header_bytes
                         and self.in_head else _Reject(431, "header_too_large", "request header fields too large\n"))
            return
        self.data_received(data[room:])

    def _between(self) -> bool:
        """Reading a head, or waiting for a request (uvicorn's cycle has its whole body)."""
        return self.in_head or self.cycle is None or not self.cycle.more_body

    def _feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._stopped(exc, data)

    def _stopped(self, exc: Exception, data: bytes) -> None:
        """The parser stopped: an upgrade, or an error (ours, raised from a callback, or llhttp's)."""
        if isinstance(exc, httptools.HttpParserUpgrade):
            if self._should_upgrade():
                self.handle_websocket_upgrade()
                return
            # h2c or another protocol this proxy does not speak: the request is served as
            # HTTP/1.1 (Upgrade is hop-by-hop); parse what follows with a fresh parser. llhttp
            # ended the message at its head: its body, if any, is read now, framed as the
            # client framed it, by a parser primed with a head of that framing alone
            self.parser = httptools.HttpRequestParser(self)
            self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
            if self.upgrade_body is not None:
                self.synthetic = True
                try:
                    self.parser.feed_data(b"POST / HTTP/1.1\r\n" + self.upgrade_body + b"\r\n")
                finally:
                    self.synthetic = False
                    self.upgrade_body = None
            rest = data[exc.args[0]:] if exc.args else b""
            if rest:
                self.data_received(rest)
            return
        reason = exc.__context__
        self._reject(reason if isinstance(reason, _Reject) else _Reject(400, "bad_request", "invalid HTTP request\n"))

    def _reject(self, why: _Reject) -> None:
        if self.closing:
            return
        self.closing = True
        self.guard.on_event(why.reason)
        response = error_response(why.status, why.text)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete and not cycle.disconnected:
            if cycle.more_body and not self.in_head:
                # the error is in this request's own body (bad chunk framing): it can never
                # complete, so answer now (nothing waits for body_timeout) and let its upstream go
                if not cycle.response_started:
                    self.transport.write(response)
                cycle.disconnected = True
                cycle.message_event.set()
                self.transport.close()
                return
            self.pending = response  # after the response in flight (pipelining)
            self.flow.pause_reading()
            return
        self.transport.write(response)
        self.transport.close()

    # -- parser callbacks --------------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.synthetic:
            return
        super().on_message_begin()
        self.in_head = True
        self.url_parts = []
        self.url_len = self.header_bytes = self.hosts = 0
        self.has_body = False
        self.framing = None

    def on_url(self, url: bytes) -> None:
        if self.synthetic:
            return
        self.url_len += len(url)
        if self.url_len > self.lim.max_request_line:
            raise _Reject(414, "uri_too_long", "request target too long\n")
        self.url_parts.append(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.in_head:
            return  # a chunked trailer (or the made-up head): never a header of the request
        self.header_bytes += len(name) + len(value) + 4
        if self.header_bytes > self.lim.max_header_bytes:
            raise _Reject(431, "header_too_large", "request header fields too large\n")
        name = name.lower()
        value = value.rstrip(b" \t")  # llhttp keeps trailing OWS; RFC 9110 excludes it from the value
        if name == b"host":
            self.hosts += 1
            if _BAD_HOST.search(value):
                raise _Reject(400, "bad_host", "the Host header is not a host name\n")
        elif name == b"content-length":
            self.has_body = True
            if value != b"0":
                self.framing = b"content-length: " + value + b"\r\n"
        elif name == b"transfer-encoding":
            self.has_body = True
            self.framing = b"transfer-encoding: chunked\r\n"
        elif name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.synthetic:
            return
        self.in_head = False
        self.head_used = 0
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None
        url = self.url = b"".join(self.url_parts) if len(self.url_parts) != 1 else self.url_parts[0]
        method = self.parser.get_method()
        if method in (b"CONNECT", b"TRACE"):
            # not a forward proxy (no tunnels), and TRACE would echo cookies back (as nginx: refused)
            raise _Reject(405, "bad_method", f"{method.decode()} is not served by this proxy\n")
        if url[:1] != b"/" and not (url == b"*" and method == b"OPTIONS"):
            raise _Reject(400, "bad_target", "the request target must be a path: this proxy only talks to its configured upstreams\n")
        if self.hosts != 1 and (self.hosts > 1 or self.parser.get_http_version() == "1.1"):
            raise _Reject(400, "bad_host", "exactly one Host header is required\n")
        if self.framing is not None and self.parser.should_upgrade():
            if self._should_upgrade():
                raise _Reject(400, "bad_upgrade", "a WebSocket upgrade has no body\n")
            self.upgrade_body = self.framing  # llhttp will end the message here: its body follows
        if self.has_body:
            self.reads_seen = self.reads
            self.body_timer = self.loop.call_later(self.lim.body_timeout, self._body_idle)
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None:
            self.cycles.append(cycle)
            cycle.transport = self.cork  # type: ignore[assignment]  # write, close and is_closing: all the cycle uses
            cycle.scope[CORK] = self.cork  # type: ignore[literal-required]
        if len(self.pipeline) == 1 and not self.closing:
            # uvicorn stops reading while a pipelined request waits; with one waiting, read on
            # (two heads at most are held), so that a client that leaves is seen and the
            # exchange in flight is cancelled, not left to run to its end
            self.flow.resume_reading()

    def on_message_complete(self) -> None:
        if self.upgrade_body is not None:
            return  # the end of an Upgrade head, not of its message: the body is still to come
        super().on_message_complete()

    def on_response_complete(self) -> None:
        if self.body_timer is not None:  # the exchange is over: so is the wait for its body
            self.body_timer.cancel()
            self.body_timer = None
        super().on_response_complete()
        self.cycles = [c for c in self.cycles if not c.response_complete]
        if self.pending is not None:
            if not self.pipeline and not self.transport.is_closing():
                self.cork.write(self.pending)  # after the response, which the cork may still hold
                self.cork.close()
            return
        if not self.pipeline and self.counted and not self.transport.is_closing():
            self.guard.idle[self] = None

    # -- timers ------------------------------------------------------------------------------
    def _head_timeout(self) -> None:
        self.header_timer = None
        raw = self.raw
        if self.closing or raw is None or raw.is_closing():
            return
        self.guard.on_event("header_timeout")
        self.closing = True
        if self.transport is None:
            self._uncount()  # still shaking hands: nothing of uvicorn's to tell
            raw.close()
            return
        if self.in_head:
            self.transport.write(error_response(408, "request head not received in time\n"))
        self.transport.close()

    def _body_idle(self) -> None:
        """A whole body_timeout passed since the timer was armed: close unless body bytes
        came (then wait another period) or we paused reading for a slow upstream."""
        self.body_timer = None
        if self._between() or self.transport.is_closing():
            return
        if self.reads != self.reads_seen or self.flow.read_paused:
            self.reads_seen = self.reads
            self.body_timer = self.loop.call_later(self.lim.body_timeout, self._body_idle)
            return
        self.guard.on_event("body_timeout")
        self.closing = True
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            self.transport.write(error_response(408, "request body not received in time\n"))
        if cycle is not None:
            cycle.disconnected = True  # the app's next receive() says so; its upstream is let go
            cycle.message_event.set()
        self.transport.close()


class CountedWebSocket(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, releasing the upgraded connection's place under the cap."""

    guard: Guard  # set on the class made by ``protocol_classes``

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.open -= 1
        super().connection_lost(exc)


def protocol_classes(guard: Guard, tls: ssl.SSLContext | None = None) -> tuple[type[StranglerHttpProtocol], type[CountedWebSocket]]:
    """The HTTP and WebSocket protocol classes for one listener (uvicorn makes one per
    connection); ``tls``: the listener's TLS context (uvicorn itself is given none)."""
    return (type("StranglerListenerProtocol", (StranglerHttpProtocol,), {"guard": guard, "tls": tls}),
            type("StranglerWebSocketProtocol", (CountedWebSocket,), {"guard": guard}))
