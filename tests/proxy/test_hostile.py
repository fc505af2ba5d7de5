"""Hostile input, tried as an attacker would, asserting what the *upstream* received.

Every request here is raw bytes on a socket; the upstream is a ``RecordingUpstream`` that
parses what reaches it with h11, so a desync shows up as a request the client never sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.proxy.harness import ProxyProcess, routes_file
from tests.proxy.rawpeers import RecordingUpstream, raw_exchange, statuses


@pytest.fixture
def recorder() -> Iterator[RecordingUpstream]:
    up = RecordingUpstream().start()
    yield up
    up.stop()


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
