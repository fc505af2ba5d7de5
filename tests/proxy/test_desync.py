"""Round two of the attacker's pass: what the *upstream* receives when a client lies.

Raw bytes on a socket to the real proxy process; a ``RecordingUpstream`` parses what
reaches it with h11, so a desync shows up as a request the client never sent, and a
poisoned pooled connection as another user's request inside a body.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.proxy.harness import ProxyProcess, routes_file
from tests.proxy.rawpeers import RecordingUpstream, raw_exchange, statuses
from tests.servers import free_port

SMUGGLED = b"GET /retired/secret HTTP/1.1\r\nHost: a\r\n\r\n"
H2C = b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"


@pytest.fixture
def proxy(tmp_path: Path, recorder: RecordingUpstream, start_proxy) -> ProxyProcess:  # type: ignore[no-untyped-def]
    modules = ("  old:\n    match: {path_prefix: /retired}\n    service: svc\n    stage: retired\n"
               "  api:\n    match: {path_prefix: /api, hosts: [intranet.corp], headers: {X-Api-Version: '2'}}\n"
               "    service: svc\n    stage: retired\n")
    dead = f"http://127.0.0.1:{free_port()}"  # the retired modules' service: nothing listens, so never confused with legacy
    p: ProxyProcess = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": recorder.url, "svc": dead}, modules))
    return p


def _seen(recorder: RecordingUpstream) -> list[tuple[str, str, bytes]]:
    return [(r.method, r.target, r.body) for r in recorder.requests if r.target != "/__probe__"]


# -- 1. an Upgrade head with a body: the body is the body, never a request -------------------------------
@pytest.mark.parametrize("chunked", [False, True])
def test_upgrade_h2c_with_a_body_sends_the_body_not_a_second_request(proxy: ProxyProcess, recorder: RecordingUpstream,
                                                                     chunked: bool) -> None:
    if chunked:
        framing, body = b"Transfer-Encoding: chunked\r\n", b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)
    else:
        framing, body = b"Content-Length: %d\r\n" % len(SMUGGLED), SMUGGLED
    answer = raw_exchange(proxy.port, b"POST /x HTTP/1.1\r\nHost: p\r\n" + H2C + framing + b"\r\n" + body
                          + b"GET /after HTTP/1.1\r\nHost: p\r\n\r\n")
    assert statuses(answer) == [200, 200], answer
    assert _seen(recorder) == [("POST", "/x", SMUGGLED), ("GET", "/after", b"")]
    assert not recorder.errors
    first = recorder.requests[-2]
    assert not first.header("upgrade") and not first.header("http2-settings")


def test_curl_http2_post_is_answered_at_once(proxy: ProxyProcess, recorder: RecordingUpstream) -> None:
    """What ``curl --http2 -d x`` sends on plain HTTP: answered as HTTP/1.1, not after a timeout."""
    started = time.monotonic()
    answer = raw_exchange(proxy.port, b"POST /form HTTP/1.1\r\nHost: p\r\n" + H2C
                          + b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1\r\n\r\nx")
    assert statuses(answer) == [200] and b'"body": 1' in answer, answer
    assert time.monotonic() - started < 3
    assert _seen(recorder) == [("POST", "/form", b"x")]


def test_a_poisoned_connection_never_carries_another_users_request(proxy: ProxyProcess, recorder: RecordingUpstream) -> None:
    """User A's Upgrade POST and user B's GET on other connections: the upstream's pooled
    connection must see A's body as A's body, and B's request as B's."""
    a = socket.create_connection(("127.0.0.1", proxy.port))
    a.sendall(b"POST /a HTTP/1.1\r\nHost: p\r\n" + H2C + b"Content-Length: %d\r\n\r\n" % len(SMUGGLED))
    time.sleep(0.3)  # the head alone first: the body follows in its own packet
    a.sendall(SMUGGLED)
    a.settimeout(5)
    assert statuses(a.recv(65536)) == [200]
    b = raw_exchange(proxy.port, b"GET /b HTTP/1.1\r\nHost: p\r\n\r\n")
    assert statuses(b) == [200] and b'"/b"' in b
    a.close()
    assert _seen(recorder) == [("POST", "/a", SMUGGLED), ("GET", "/b", b"")]


def test_a_websocket_upgrade_with_a_body_is_refused(proxy: ProxyProcess, recorder: RecordingUpstream) -> None:
    answer = raw_exchange(proxy.port, b"GET /ws HTTP/1.1\r\nHost: p\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                          b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED)
    assert statuses(answer) == [400], answer
    assert _seen(recorder) == [] and recorder.connections <= 1  # the probe's connection at most


# -- 2. nothing the proxy itself sets or reads is taken from a client --------------------------------------
def test_client_sent_strangler_headers_never_reach_an_upstream(proxy: ProxyProcess, recorder: RecordingUpstream) -> None:
    answer = raw_exchange(proxy.port, b"POST /write HTTP/1.1\r\nHost: p\r\nX-Strangler-Shadow: 1\r\nx-strangler-side: new\r\n"
                          b"X-Strangler-Anything: y\r\nX-Stranglers: kept\r\nContent-Length: 2\r\n\r\n{}")
    assert statuses(answer) == [200], answer
    seen = recorder.requests[-1]
    assert [n for n, _ in seen.headers if n.startswith("x-strangler-")] == []
    assert seen.header("x-stranglers") == ["kept"]  # only the proxy's own prefix


# -- 4. no spelling of a host, header or path reaches a retired module's legacy ------------------------
@pytest.mark.parametrize("head", [
    b"GET /api/x HTTP/1.1\r\nHost: intranet.corp.\r\nX-Api-Version: 2\r\n\r\n",
    b"GET /api/x HTTP/1.1\r\nHost: intranet.corp \r\nX-Api-Version: 2\r\n\r\n",
    b"GET /api/x HTTP/1.1\r\nHost: intranet.corp\t\r\nX-Api-Version: 2\r\n\r\n",
    b"GET /api/x HTTP/1.1\r\nHost: INTRANET.corp.:8080\r\nX-Api-Version: 2\r\n\r\n",
    b"GET /api/x HTTP/1.1\r\nHost: intranet.corp\r\nX-Api-Version: 2 \r\n\r\n",
    b"GET /api/x HTTP/1.1\r\nHost: intranet.corp\r\nX-Api-Version: 1\r\nX-Api-Version: 2\r\n\r\n",
    b"GET /retired%20 HTTP/1.1\r\nHost: p\r\n\r\n",
    b"GET /retired%09/x HTTP/1.1\r\nHost: p\r\n\r\n",
    b"GET /retired::$DATA HTTP/1.1\r\nHost: p\r\n\r\n",
    b"GET /retired::$data/x HTTP/1.1\r\nHost: p\r\n\r\n",
    b"GET /retired:$DATA HTTP/1.1\r\nHost: p\r\n\r\n",
    b"GET /retired%20%20/x HTTP/1.1\r\nHost: p\r\n\r\n",
    b"GET /retired/x HTTP/1.1\r\nHost: in\x01tranet\r\n\r\n",
    b"GET /retired/x HTTP/1.1\r\nHost: p/../x\r\n\r\n",
])
def test_retired_is_never_reached_on_legacy_by_spelling(proxy: ProxyProcess, recorder: RecordingUpstream, head: bytes) -> None:
    answer = raw_exchange(proxy.port, head)
    assert statuses(answer) in ([400], [502], [503]), answer  # refused, or the (unreachable) service: never legacy
    assert _seen(recorder) == [], head


def test_spellings_that_are_not_a_module_still_reach_legacy(proxy: ProxyProcess, recorder: RecordingUpstream) -> None:
    for target in (b"/api/x", b"/apis/x", b"/ok%20name/x", b"/v1/projects/p:run"):
        assert statuses(raw_exchange(proxy.port, b"GET " + target + b" HTTP/1.1\r\nHost: intranet.corp\r\n\r\n")) == [200]
    assert [t for _, t, _ in _seen(recorder)] == ["/api/x", "/apis/x", "/ok%20name/x", "/v1/projects/p:run"]


# -- 7. what an upstream sends that is not a response this proxy forwards ----------------------------------
@pytest.mark.parametrize("reply,reason", [
    (b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\nGET /x HTTP/1.1\r\n\r\n", b"101"),
    (b"HTTP/1.1 099 Odd\r\ncontent-length: 0\r\n\r\n", b"status"),
    (b"HTTP/1.1 200 OK\r\n" + b"x-big: " + b"a" * 70_000 + b"\r\ncontent-length: 0\r\n\r\n", b"head larger"),
])
def test_an_upstream_answer_that_is_not_forwardable_is_a_502_with_a_reason(tmp_path: Path, start_proxy: Any, reply: bytes,
                                                                           reason: bytes) -> None:
    from tests.proxy.rawpeers import Reply

    up = RecordingUpstream(lambda req: Reply([(0.0, reply)], close=True)).start()
    try:
        p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": up.url}), access_log=True)
        answer = raw_exchange(p.port, b"GET /odd HTTP/1.1\r\nHost: p\r\n\r\nGET /odd HTTP/1.1\r\nHost: p\r\n\r\n")
        assert statuses(answer) == [502, 502], answer
        p.stop()
        assert reason in p.out.read_bytes(), p.out.read_text()[-2000:]
        assert b"Traceback" not in p.log.read_bytes()
    finally:
        up.stop()


def test_a_204_with_a_body_is_forwarded_without_it(tmp_path: Path, start_proxy) -> None:  # type: ignore[no-untyped-def]
    from tests.proxy.rawpeers import Reply

    up = RecordingUpstream(lambda req: Reply([(0.0, b"HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\nhello")])).start()
    try:
        p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": up.url}))
        answer = raw_exchange(p.port, b"GET /a HTTP/1.1\r\nHost: p\r\n\r\nGET /b HTTP/1.1\r\nHost: p\r\n\r\n")
        assert statuses(answer) == [204, 204] and b"hello" not in answer, answer
        assert b"Traceback" not in p.log.read_bytes()
    finally:
        up.stop()


@pytest.mark.parametrize("body", [
    b"fffffffffffffffffffff\r\nx\r\n0\r\n\r\n",  # a chunk size past 64 bits
    b"3\nabc\n0\n\n",  # bare LF
    b"zz\r\nabc\r\n0\r\n\r\n",
])
def test_malformed_chunked_bodies_are_400_at_once(proxy: ProxyProcess, recorder: RecordingUpstream, body: bytes) -> None:
    started = time.monotonic()
    answer = raw_exchange(proxy.port, b"POST /x HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n" + body, quiet=3)
    assert statuses(answer) == [400], answer
    assert time.monotonic() - started < 2.5
    assert _seen(recorder) == []


def test_xchunked_is_refused(proxy: ProxyProcess, recorder: RecordingUpstream) -> None:
    answer = raw_exchange(proxy.port, b"POST /x HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: xchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", quiet=3)
    assert statuses(answer) == [400], answer
    assert _seen(recorder) == []


# -- the proxy's own paths and listeners -----------------------------------------------------------------
@pytest.mark.parametrize("target", [b"/_strangler/healthz", b"//_strangler/healthz", b"/x/../_strangler/readyz",
                                    b"/_strangler;a=1/healthz", b"/%5fstrangler/healthz", b"/_strangler/./nope"])
def test_the_probe_prefix_is_never_forwarded_in_any_spelling(proxy: ProxyProcess, recorder: RecordingUpstream,
                                                            target: bytes) -> None:
    answer = raw_exchange(proxy.port, b"GET " + target + b" HTTP/1.1\r\nHost: p\r\n\r\n")
    assert statuses(answer) in ([200], [404]), answer
    assert _seen(recorder) == []


def test_the_admin_listener_has_the_data_ports_head_limits_and_timeouts(tmp_path: Path, recorder: RecordingUpstream,
                                                                        start_proxy: Any) -> None:
    routes = routes_file(tmp_path / "r.yaml", {"legacy": recorder.url}, extra="limits: {max_header_bytes: 4096, header_timeout: 1}\n")
    p: ProxyProcess = start_proxy(routes)
    big = raw_exchange(p.admin_port, b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 8000 + b"\r\n\r\n")
    assert statuses(big) == [431], big
    started = time.monotonic()
    slow = raw_exchange(p.admin_port, b"GET /healthz HTTP/1.1\r\nHost: a\r\n", quiet=3, limit=5)
    assert statuses(slow) == [408] and time.monotonic() - started < 2.5, slow
    assert statuses(raw_exchange(p.admin_port, b"GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: a\r\n\r\n")) == [400]


def test_a_client_leaving_a_pipelined_connection_cancels_its_upstream_exchange(tmp_path: Path, start_proxy) -> None:  # type: ignore[no-untyped-def]
    from tests.proxy.upstreams import Upstream

    slow = Upstream("slow", hang=True).start()
    try:
        p: ProxyProcess = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": slow.url}))
        s = socket.create_connection(("127.0.0.1", p.port))
        s.sendall(b"GET /hang HTTP/1.1\r\nHost: p\r\n\r\nGET /hang HTTP/1.1\r\nHost: p\r\n\r\n")
        deadline = time.monotonic() + 5
        while slow.in_flight < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert slow.in_flight == 1
        s.close()  # the client goes while the first of its two requests waits on the upstream
        deadline = time.monotonic() + 5
        while slow.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        assert slow.in_flight == 0 and slow.cancelled >= 1
    finally:
        slow.stop()
