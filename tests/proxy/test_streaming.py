"""Bodies stream both ways with flat memory; disconnects and broken upstreams are contained."""

from __future__ import annotations

import pytest

import hashlib
import socket
from pathlib import Path

import httpx

from tests.proxy.harness import ProxyProcess, routes_file, rss_kib, wait_until
from tests.proxy.upstreams import Upstream

pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


GIB = 1 << 30


def proxy_for(tmp_path: Path, legacy: Upstream, start_proxy) -> ProxyProcess:  # type: ignore[no-untyped-def]
    return start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url}))  # type: ignore[no-any-return]


def test_one_gib_upload_and_download_with_flat_memory(tmp_path: Path, legacy: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    p = proxy_for(tmp_path, legacy, start_proxy)
    assert p.proc is not None
    httpx.get(f"{p.url}/echo/warm")
    before = rss_kib(p.proc.pid)
    chunk = b"s" * (1 << 20)
    digest = hashlib.sha256()

    def body():  # type: ignore[no-untyped-def]
        for _ in range(GIB // len(chunk)):
            digest.update(chunk)
            yield chunk

    r = httpx.post(f"{p.url}/echo/upload", content=body(), headers={"content-length": str(GIB)}, timeout=120)
    assert r.json()["body_length"] == GIB and r.json()["body_sha256"] == digest.hexdigest()
    received = 0
    with httpx.stream("GET", f"{p.url}/bytes/{GIB}", timeout=120) as resp:
        for piece in resp.iter_raw(1 << 20):
            received += len(piece)
    assert received == GIB
    peak = rss_kib(p.proc.pid, "VmHWM")
    assert (peak - before) < 64 * 1024, f"RSS grew by {(peak - before) / 1024:.0f} MiB"


def test_chunked_upload_of_unknown_length(tmp_path: Path, legacy: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    p = proxy_for(tmp_path, legacy, start_proxy)
    r = httpx.post(f"{p.url}/echo/chunked", content=iter([b"a" * 1000, b"b" * 5000, b"c"]))
    assert r.json()["body_length"] == 6001


def test_client_disconnect_cancels_the_upstream_request(tmp_path: Path, legacy: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    p = proxy_for(tmp_path, legacy, start_proxy)
    with socket.create_connection(("127.0.0.1", p.port)) as s:
        s.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_until(lambda: legacy.in_flight == 1)
    assert wait_until(lambda: legacy.cancelled == 1 and legacy.in_flight == 0), "the upstream request was not cancelled"
    assert wait_until(lambda: legacy.open_connections == 0), "the upstream connection leaked"


def test_client_leaving_mid_download_releases_the_upstream(tmp_path: Path, legacy: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    p = proxy_for(tmp_path, legacy, start_proxy)
    with socket.create_connection(("127.0.0.1", p.port)) as s:
        s.sendall(b"GET /bytes/500000000 HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(65536)
    assert wait_until(lambda: legacy.open_connections == 0, 10), "the upstream connection leaked"
    assert httpx.get(f"{p.url}/echo/after").status_code == 200


def test_upstream_closing_mid_body_cuts_the_client_response(tmp_path: Path, legacy: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    p = proxy_for(tmp_path, legacy, start_proxy)
    try:
        r = httpx.get(f"{p.url}/close-mid-body")
        raise AssertionError(f"expected a cut response, got {r.status_code} with {len(r.content)} bytes")
    except httpx.RemoteProtocolError:
        pass
    assert p.metric("strangler_upstream_errors_total", kind="truncated") == 1
    assert httpx.get(f"{p.url}/echo/after").status_code == 200


def raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        data = b""
        while True:
            piece = s.recv(65536)
            if not piece:
                return data
            data += piece
            if b"\r\n\r\n" in data and b"content-length: 0" not in data.lower() and data.split(b"\r\n\r\n", 1)[1]:
                return data


def test_hostile_requests_are_refused_and_never_forwarded(tmp_path: Path, legacy: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    p = proxy_for(tmp_path, legacy, start_proxy)
    count = len(legacy.requests)
    smuggle = raw(p.port, b"POST /echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert smuggle.startswith(b"HTTP/1.1 400")
    absolute = raw(p.port, b"GET http://169.254.169.254/latest/meta-data HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n")
    assert absolute.startswith(b"HTTP/1.1 400")
    huge = raw(p.port, b"GET /echo/x HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
    assert huge.startswith(b"HTTP/1.1 431")
    assert len(legacy.requests) == count
