"""Hostile input, tried as an attacker would, asserting what the *upstream* received.

Every request here is raw bytes on a socket; the upstream is a ``RecordingUpstream`` that
parses what reaches it with h11, so a desync shows up as a request the client never sent.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.proxy.harness import ProxyProcess, routes_file, rss_kib, wait_until
from tests.proxy.rawpeers import RecordingUpstream, raw_exchange, statuses


pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


@pytest.fixture
def proxy(tmp_path: Path, recorder: RecordingUpstream, start_proxy) -> ProxyProcess:  # type: ignore[no-untyped-def]
    modules = "  old:\n    match: {path_prefix: /retired}\n    service: svc\n    stage: retired\n"
    p: ProxyProcess = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": recorder.url, "svc": recorder.url}, modules))
    return p


SMUGGLED = b"GET /retired/secret HTTP/1.1\r\nHost: a\r\n\r\n"


@pytest.mark.parametrize("listed", [b"Content-Length", b"content-length, keep-alive", b"Host", b"Transfer-Encoding"])
def test_connection_tokens_never_remove_framing(proxy: ProxyProcess, recorder: RecordingUpstream, listed: bytes) -> None:
    if listed == b"Transfer-Encoding":
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)
        framing = b"Transfer-Encoding: chunked\r\n"
    else:
        body = SMUGGLED
        framing = b"Content-Length: %d\r\n" % len(SMUGGLED)
    request = b"POST /upload HTTP/1.1\r\nHost: portal\r\nConnection: " + listed + b"\r\n" + framing + b"\r\n" + body
    answer = raw_exchange(proxy.port, request + b"GET /after HTTP/1.1\r\nHost: portal\r\n\r\n")
    assert statuses(answer) == [200, 200], answer
    seen = [(r.method, r.target, r.body) for r in recorder.requests if r.target != "/__probe__"]
    assert seen == [("POST", "/upload", SMUGGLED), ("GET", "/after", b"")], seen
    assert not recorder.errors
    first = next(r for r in recorder.requests if r.target == "/upload")
    assert first.header("host") == ["portal"]
    assert first.header("content-length") == [str(len(SMUGGLED))] or first.header("transfer-encoding") == ["chunked"]


# -- 2. no request target can name a host -------------------------------------------------------
WS_HEADERS = (b"Host: portal\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")


@pytest.mark.parametrize("line", [
    b"GET *@127.0.0.1:{evil}/ws HTTP/1.1\r\n",
    b"GET http://127.0.0.1:{evil}/ws HTTP/1.1\r\n",
    b"GET 127.0.0.1:{evil} HTTP/1.1\r\n",
    b"CONNECT 127.0.0.1:{evil} HTTP/1.1\r\n",
    b"CONNECT /tunnel HTTP/1.1\r\n",
    b"TRACE / HTTP/1.1\r\n",
    b"GET * HTTP/1.1\r\n",
])
@pytest.mark.parametrize("upgrade", [True, False])
def test_only_origin_form_targets_reach_an_upstream(proxy: ProxyProcess, recorder: RecordingUpstream, line: bytes,
                                                    upgrade: bool) -> None:
    evil = RecordingUpstream().start()
    try:
        head = line.replace(b"{evil}", str(evil.port).encode())
        answer = raw_exchange(proxy.port, head + (WS_HEADERS if upgrade else b"Host: portal\r\n\r\n"))
        assert statuses(answer) == ([405] if head.startswith((b"CONNECT", b"TRACE")) else [400]), answer
        assert evil.connections == 0
        assert [r for r in recorder.requests if r.target != "/__probe__"] == []
    finally:
        evil.stop()
    assert "Traceback" not in proxy.log.read_text()


def test_websocket_url_is_the_configured_upstream_plus_a_path() -> None:
    from strangler_proxy.model import Upstream
    from strangler_proxy.dataplane.websocket import upstream_url

    up = Upstream("legacy", "http", "10.0.0.5", 8080)
    assert upstream_url(up, "/ws?x=1") == "ws://10.0.0.5:8080/ws?x=1"
    for bad in ("*@evil:80/", "@evil/", "//evil/x", "/a#b", "/a\\b", "evil:80/"):
        assert upstream_url(up, bad) is None, bad


# -- 4. the head is limited while it arrives -----------------------------------------------------
def _flood(port: int, prefix: bytes, piece: bytes, total: int) -> tuple[int, bytes]:
    """Send ``prefix`` then ``piece`` repeatedly up to ``total`` bytes or until the proxy
    stops reading; the bytes sent and the answer."""
    import socket

    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(prefix)
        s.settimeout(2)
        try:
            while sent < total:
                s.sendall(piece)
                sent += len(piece)
        except OSError:
            pass
        answer = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except OSError:
            pass
    return sent, answer


def test_request_target_and_head_are_limited_while_they_arrive(proxy: ProxyProcess, recorder: RecordingUpstream) -> None:
    assert proxy.proc is not None
    before = rss_kib(proxy.proc.pid)
    # a target that never ends: 414 long before it is all sent
    sent, answer = _flood(proxy.port, b"GET /", b"a" * 65536, 48 << 20)
    assert statuses(answer) == [414] and sent < 48 << 20
    # 8 connections each trying a 48 MiB header block: 431, and memory stays flat
    for _ in range(8):
        sent, answer = _flood(proxy.port, b"GET /x HTTP/1.1\r\nHost: p\r\nX-Big: ", b"b" * 65536, 48 << 20)
        assert statuses(answer) == [431] and sent < 48 << 20
    for _ in range(4):
        sent, answer = _flood(proxy.port, b"GET /x HTTP/1.1\r\nHost: p\r\n", b"X-Many: 1\r\n" * 6000, 48 << 20)
        assert statuses(answer) == [431] and sent < 48 << 20
    assert rss_kib(proxy.proc.pid) - before < 32 * 1024
    # a head just under the limit is served
    answer = raw_exchange(proxy.port, b"GET /ok HTTP/1.1\r\nHost: p\r\nX-Fill: " + b"c" * 60000 + b"\r\n\r\n")
    assert statuses(answer) == [200]
    assert [r.target for r in recorder.requests if r.target != "/__probe__"] == ["/ok"]
    assert proxy.metric("strangler_client_connections_closed_total", reason="header_too_large") == 12
    assert proxy.metric("strangler_client_connections_closed_total", reason="uri_too_long") == 1


# -- 3. a pooled connection is reused only in a clean state ---------------------------------------
def test_large_responses_leave_the_pooled_connection_reading(tmp_path: Path, start_proxy) -> None:  # type: ignore[no-untyped-def]
    from tests.proxy.rawpeers import ok

    big = b"z" * (400 * 1024)  # written in one piece: it is all buffered (and reading paused) before the app reads it
    up = RecordingUpstream(lambda req: ok(big if req.target == "/big" else b"{}")).start()
    try:
        p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": f"{{url: '{up.url}', timeout: 3, max_idle: 1}}"}))
        import httpx

        with httpx.Client(timeout=10) as client:
            for _ in range(6):
                r = client.get(f"{p.url}/big")
                assert r.status_code == 200 and len(r.content) == len(big)
                r = client.get(f"{p.url}/small")
                assert r.status_code == 200 and r.content == b"{}"
        assert up.connections <= 2  # reused, not replaced after every response
    finally:
        up.stop()


# -- 11. one response per request -----------------------------------------------------------------
@pytest.mark.parametrize("extra,pause", [
    (b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecret", 0.0),  # a second response in the same packet
    (b"\r\nsecret garbage", 0.0),  # bytes after the body
    (b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecret", 0.3),  # an unasked-for response on an idle pooled connection
])
def test_bytes_after_a_complete_response_are_never_forwarded(tmp_path: Path, start_proxy, extra: bytes, pause: float) -> None:  # type: ignore[no-untyped-def]
    from tests.proxy.rawpeers import Reply

    def respond(req):  # type: ignore[no-untyped-def]
        first = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"
        if req.target == "/first":
            return Reply([(0.0, first + extra)] if not pause else [(0.0, first), (pause, extra)])
        return Reply([(0.0, b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfresh")])

    up = RecordingUpstream(respond).start()
    try:
        p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": up.url}))
        first = raw_exchange(p.port, b"GET /first HTTP/1.1\r\nHost: p\r\n\r\n", quiet=pause + 0.5)
        assert first.endswith(b"\r\n\r\nhello") and b"secret" not in first
        time.sleep(pause + 0.2)
        second = raw_exchange(p.port, b"GET /second HTTP/1.1\r\nHost: p\r\n\r\n")
        assert second.endswith(b"\r\n\r\nfresh") and statuses(second) == [200], second
        assert [r.target for r in up.requests if r.target != "/__probe__"] == ["/first", "/second"]
    finally:
        up.stop()


# -- 5. slow peers: every wait is bounded -----------------------------------------------------------
LIMITS = "limits: {header_timeout: 1, body_timeout: 1, keepalive_timeout: 1, max_connections: 40, request_buffer: 65536}\n"


@pytest.fixture
def strict(tmp_path: Path, recorder: RecordingUpstream, start_proxy) -> ProxyProcess:  # type: ignore[no-untyped-def]
    p: ProxyProcess = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": recorder.url}, extra=LIMITS))
    return p


def _closed_after(sock: socket.socket, limit: float) -> tuple[float, bytes]:
    """Seconds until the proxy closed ``sock``, and what it said before."""
    started = time.monotonic()
    sock.settimeout(limit)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return time.monotonic() - started, data


def test_header_body_and_keepalive_timeouts(strict: ProxyProcess, recorder: RecordingUpstream) -> None:
    silent = socket.create_connection(("127.0.0.1", strict.port))
    partial = socket.create_connection(("127.0.0.1", strict.port))
    partial.sendall(b"GET /x HTTP/1.1\r\nHost: p\r\nX-Slow: ")
    slow_body = socket.create_connection(("127.0.0.1", strict.port))
    slow_body.sendall(b"POST /upload HTTP/1.1\r\nHost: p\r\nContent-Length: 1000\r\n\r\n" + b"a" * 100)
    idle = socket.create_connection(("127.0.0.1", strict.port))
    idle.sendall(b"GET /idle HTTP/1.1\r\nHost: p\r\n\r\n")
    for sock, expected in ((silent, []), (partial, [408]), (slow_body, [408]), (idle, [200])):
        took, said = _closed_after(sock, 10)
        assert took < 4, (expected, took)
        assert statuses(said) == expected, said
        sock.close()
    # the slow body never reached the upstream: it was being read ahead, no upstream connection held
    assert [r.target for r in recorder.requests if r.target != "/__probe__"] == ["/idle"]
    assert strict.metric("strangler_client_connections_closed_total", reason="header_timeout") == 2
    assert strict.metric("strangler_client_connections_closed_total", reason="body_timeout") == 1


def test_slow_bodies_hold_no_upstream_connection(strict: ProxyProcess, recorder: RecordingUpstream) -> None:
    before = recorder.connections
    socks = []
    for i in range(20):
        s = socket.create_connection(("127.0.0.1", strict.port))
        s.sendall(b"POST /u%d HTTP/1.1\r\nHost: p\r\nContent-Length: 2000\r\n\r\n" % i + b"a" * 1000)
        socks.append(s)
    time.sleep(0.5)
    assert recorder.connections == before  # nothing reached the upstream while the bodies trickle
    for s in socks:
        s.sendall(b"b" * 1000)
    for s in socks:
        s.settimeout(5)
        assert statuses(s.recv(65536)) == [200]
        s.close()
    assert sorted(r.body for r in recorder.requests if r.method == "POST") == [b"a" * 1000 + b"b" * 1000] * 20


def accepted(port: int) -> int:
    """Connections the server on ``port`` has accepted and not closed, as the kernel lists them:
    established or closed by the client only (CLOSE_WAIT), with an inode (one still in the
    accept queue has none). Not the analyzer's ``parse_proc_net``: it keeps what ``observe``
    maps (ESTABLISHED, LISTEN) and drops CLOSE_WAIT, which is a connection the proxy still holds."""
    count = 0
    for name in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] in ("01", "08") and int(fields[1].rsplit(":", 1)[1], 16) == port and fields[9] != "0":
                count += 1
    return count


def test_connection_cap_closes_the_oldest_idle_then_refuses(strict: ProxyProcess, recorder: RecordingUpstream) -> None:
    idle = [socket.create_connection(("127.0.0.1", strict.port)) for _ in range(40)]
    assert wait_until(lambda: accepted(strict.port) == 40, 10)  # the proxy holds all 40: it is at its cap
    # at the cap: a new client is served, and the oldest idle connection made room
    answer = raw_exchange(strict.port, b"GET /new HTTP/1.1\r\nHost: p\r\n\r\n")
    assert statuses(answer) == [200]
    took, _ = _closed_after(idle[0], 2)
    assert took < 2
    for s in idle:
        s.close()
    assert wait_until(lambda: accepted(strict.port) == 0, 10)
    # 40 connections each in the middle of a head: none idle, so a new one is refused with 503
    busy = []
    for _ in range(40):
        s = socket.create_connection(("127.0.0.1", strict.port))
        s.sendall(b"GET /busy HTTP/1.1\r\n")
        busy.append(s)
    assert wait_until(lambda: accepted(strict.port) == 40, 10)
    assert statuses(raw_exchange(strict.port, b"GET /refused HTTP/1.1\r\nHost: p\r\n\r\n")) == [503]
    for s in busy:
        s.close()
    assert strict.metric("strangler_client_connections_closed_total", reason="evicted") >= 1
    assert strict.metric("strangler_client_connections_closed_total", reason="refused") >= 1


def test_upstream_that_stalls_mid_body_or_never_reads(tmp_path: Path, start_proxy) -> None:  # type: ignore[no-untyped-def]
    from tests.proxy.rawpeers import Reply

    def respond(req):  # type: ignore[no-untyped-def]
        if req.target != "/stall":
            return Reply([(0.0, b"HTTP/1.1 204 No Content\r\n\r\n")])
        return Reply([(0.0, b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + b"x" * 10), (30.0, b"")])

    up = RecordingUpstream(respond).start()
    try:
        p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": f"{{url: '{up.url}', read_timeout: 1}}"}))
        started = time.monotonic()
        answer = raw_exchange(p.port, b"GET /stall HTTP/1.1\r\nHost: p\r\n\r\n", quiet=5)
        assert time.monotonic() - started < 4
        assert statuses(answer) == [200] and answer.endswith(b"x" * 10)  # cut short, as the upstream did
        assert p.metric("strangler_upstream_errors_total", kind="truncated") == 1
    finally:
        up.stop()


# -- 8. an Upgrade the proxy does not speak is plain HTTP/1.1 -----------------------------------------
@pytest.mark.parametrize("upgrade", [b"h2c", b"foo/1"])
def test_non_websocket_upgrade_is_served_as_http11_and_pipelining_goes_on(proxy: ProxyProcess, recorder: RecordingUpstream,
                                                                          upgrade: bytes) -> None:
    answer = raw_exchange(proxy.port, b"GET /a HTTP/1.1\r\nHost: p\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: " + upgrade
                          + b"\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\nGET /b HTTP/1.1\r\nHost: p\r\n\r\n")
    assert statuses(answer) == [200, 200], answer
    seen = [r for r in recorder.requests if r.target != "/__probe__"]
    assert [r.target for r in seen] == ["/a", "/b"]
    assert not seen[0].header("upgrade") and not seen[0].header("http2-settings") and not seen[0].header("connection")


# -- 9. one Host; trailers are never headers --------------------------------------------------------------
@pytest.mark.parametrize("head,expected", [
    (b"GET /x HTTP/1.1\r\nHost: portal\r\nHost: evil\r\n\r\n", [400]),
    (b"GET /x HTTP/1.1\r\nUser-Agent: t\r\n\r\n", [400]),
    (b"GET /x HTTP/1.0\r\n\r\n", [200]),
])
def test_exactly_one_host(proxy: ProxyProcess, recorder: RecordingUpstream, head: bytes, expected: list[int]) -> None:
    assert statuses(raw_exchange(proxy.port, head)) == expected
    assert len([r for r in recorder.requests if r.target == "/x"]) == (1 if expected == [200] else 0)


def test_trailers_never_become_headers_or_make_a_post_replayable(tmp_path: Path, legacy, service, start_proxy) -> None:  # type: ignore[no-untyped-def]
    modules = ("  cases:\n    match: {path_prefix: /status}\n    service: service\n    stage: released\n"
               "    idempotency_key: Idempotency-Key\n")
    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, modules))
    body = b"2\r\n{}\r\n0\r\nIdempotency-Key: k1\r\nX-Trailer: t\r\n\r\n"
    answer = raw_exchange(p.port, b"POST /status/503 HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\nTrailer: Idempotency-Key\r\n\r\n" + body)
    assert statuses(answer) == [503] and b'"service"' in answer  # not resent to legacy: the key came only as a trailer
    assert not [r for r in legacy.requests if r["path"].startswith("/status")]
    seen = dict((k, v) for k, v in service.requests[-1]["headers"])
    assert "idempotency-key" not in seen and "x-trailer" not in seen


# -- 10. no spelling of a path reaches the other side ---------------------------------------------------
def test_a_retired_module_is_not_reached_on_legacy_by_spelling(tmp_path: Path, start_proxy) -> None:  # type: ignore[no-untyped-def]
    legacy, svc = RecordingUpstream().start(), RecordingUpstream().start()
    try:
        modules = "  old:\n    match: {path_prefix: /retired}\n    service: svc\n    stage: retired\n"
        p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "svc": svc.url}, modules))
        spellings = [b"/retired/x", b"/public/..;/retired/x", b"/retired;jsessionid=A1/x", b"/%72etired/x",
                     b"/public/%2e%2e/retired/x", b"//retired/x", b"/./retired/x", b"/public/%2E%2E;/retired/x"]
        for target in spellings:
            answer = raw_exchange(p.port, b"GET " + target + b" HTTP/1.1\r\nHost: p\r\n\r\n")
            assert statuses(answer) == [200], (target, answer)
        for target in (b"/retired./x", b"/retired%00/x", b"/retired%5cx", b"/retired.%2fx"):
            assert statuses(raw_exchange(p.port, b"GET " + target + b" HTTP/1.1\r\nHost: p\r\n\r\n")) == [400], target
        assert [r.target for r in legacy.requests if r.target != "/__probe__"] == []
        assert [r.target.encode() for r in svc.requests] == spellings  # forwarded as sent
    finally:
        legacy.stop()
        svc.stop()


# -- 12. nothing about upstreams leaks to clients ----------------------------------------------------------
def test_gateway_errors_do_not_reveal_upstream_addresses(tmp_path: Path, start_proxy) -> None:  # type: ignore[no-untyped-def]
    from tests.servers import free_port

    dead = free_port()
    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": f"http://127.0.0.1:{dead}"}), access_log=True)
    answer = raw_exchange(p.port, b"GET /x HTTP/1.1\r\nHost: p\r\n\r\n")
    assert statuses(answer) == [502]
    assert str(dead).encode() not in answer and b"127.0.0.1" not in answer and b"refused" not in answer.lower()
    p.stop()
    assert str(dead) in p.out.read_text()  # the operator still sees why, in the access log


# -- 13. the admin API and pins ------------------------------------------------------------------------------
def test_admin_refuses_remote_addresses_bad_values_and_self_pointing_upstreams(tmp_path: Path, proxy: ProxyProcess) -> None:
    from tests.cli.helpers import strangler
    from tests.proxy.harness import TOKEN
    from tests.servers import free_port

    import httpx

    routes = routes_file(tmp_path / "ok.yaml", {"legacy": "http://127.0.0.1:1"})
    r = strangler("proxy", "--routes", str(routes), "--listen", f"127.0.0.1:{free_port()}", "--admin", f"0.0.0.0:{free_port()}",
                  "--admin-token", "t", timeout=30)
    assert r.returncode == 1 and "--admin-allow-remote" in r.stderr and "Traceback" not in r.stderr
    # an upstream that is the proxy's own admin API (or listener) is refused, by check and at start
    selfish = routes_file(tmp_path / "self.yaml", {"legacy": "http://localhost:9901"})
    r = strangler("routes", "check", str(selfish))
    assert r.returncode == 1 and "admin API" in r.stderr and "upstreams.legacy" in r.stderr
    assert strangler("routes", "check", str(selfish), "--admin", "127.0.0.1:9999").returncode == 0
    port = free_port()
    loop_file = routes_file(tmp_path / "loop.yaml", {"legacy": f"http://127.0.0.1:{port}"})
    r = strangler("proxy", "--routes", str(loop_file), "--listen", f"127.0.0.1:{port}", "--admin", "off", timeout=30)
    assert r.returncode == 1 and "own listener" in r.stderr
    # malformed values are 400, never 500; health reveals no paths
    auth = {"authorization": f"Bearer {TOKEN}"}
    assert httpx.get(f"{proxy.admin}/ledger?limit=abc", headers=auth).status_code == 400
    assert httpx.get(f"{proxy.admin}/ledger?limit=-1", headers=auth).status_code == 400
    for body in (b"[" * 100_000, b"\xff\xfe", b"{\"weight\": 1e999999}", b"null"):
        assert httpx.patch(f"{proxy.admin}/modules/old", content=body, headers=auth).status_code == 400, body
        assert httpx.post(f"{proxy.admin}/releases/old", content=body, headers=auth).status_code in (400, 404), body
    health = httpx.get(f"{proxy.admin}/healthz").text
    assert str(tmp_path) not in health and "yaml" not in health


def test_websockets_count_against_the_connection_cap(tmp_path: Path, legacy, start_proxy) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from websockets.asyncio.client import connect

    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url}, extra="limits: {max_connections: 5}\n"))

    async def scenario() -> tuple[list[int], list[int]]:
        sockets = [await connect(f"ws://127.0.0.1:{p.port}/ws") for _ in range(5)]
        for ws in sockets:
            await ws.send("hi")
            assert await ws.recv() == "legacy:hi"
        full = statuses(await asyncio.to_thread(raw_exchange, p.port, b"GET /echo/x HTTP/1.1\r\nHost: p\r\n\r\n"))
        for ws in sockets:
            await ws.close()
        await asyncio.sleep(0.3)
        freed = statuses(await asyncio.to_thread(raw_exchange, p.port, b"GET /echo/x HTTP/1.1\r\nHost: p\r\n\r\n"))
        return full, freed

    full, freed = asyncio.run(scenario())
    assert full == [503] and freed == [200]  # upgraded connections hold their place until they close
