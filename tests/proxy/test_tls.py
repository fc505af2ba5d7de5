"""TLS with the real proxy process: https and wss upstreams verified against a test CA made
here (trustme), SNI and name checks, client certificates, a wrong CA refused with its reason,
and TLS on the listener."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from websockets.asyncio.client import connect

from tests.cli.helpers import strangler
from tests.proxy.harness import routes_file
from tests.proxy.upstreams import Upstream


pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def pki(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    files = {"ca": d / "ca.pem", "other_ca": d / "other-ca.pem", "server": d / "server.pem",
             "named": d / "named.pem", "client": d / "client.pem"}
    ca.cert_pem.write_to_path(files["ca"])
    trustme.CA().cert_pem.write_to_path(files["other_ca"])
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(files["server"])
    ca.issue_cert("orders.internal").private_key_and_cert_chain_pem.write_to_path(files["named"])
    ca.issue_cert("strangler-proxy").private_key_and_cert_chain_pem.write_to_path(files["client"])
    return files


def _upstream(name: str, cert: Path, **extra: Any) -> Iterator[Upstream]:
    u = Upstream(name, tls={"ssl_certfile": str(cert), **extra}).start()
    yield u
    u.stop()


@pytest.fixture
def tls_service(pki: dict[str, Path]) -> Iterator[Upstream]:
    yield from _upstream("tls-service", pki["server"])


def _routes(tmp_path: Path, legacy: Upstream, service: str, stage: str = "released") -> Path:
    return routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service},
                       f"  cases:\n    match: {{path_prefix: [/echo/cases, /ws]}}\n    service: service\n    stage: {stage}\n")


def test_an_https_upstream_is_verified_reused_and_carries_websockets(tmp_path: Path, legacy: Upstream, tls_service: Upstream,
                                                                    pki: dict[str, Path], start_proxy: Any) -> None:
    p = start_proxy(_routes(tmp_path, legacy, f"{{url: '{tls_service.url}', tls: {{ca: {pki['ca']}}}}}"), access_log=True)
    with httpx.Client() as c:
        for i in range(20):
            r = c.post(f"{p.url}/echo/cases/{i}", content=b"x" * 1000)
            assert r.status_code == 200 and r.json()["name"] == "tls-service" and r.json()["body_length"] == 1000
    assert tls_service.open_connections == 1  # one TLS connection, reused (no handshake per request)
    assert not [r for r in legacy.requests if r["path"].startswith("/echo/cases")]

    async def talk() -> object:
        async with connect(f"ws://127.0.0.1:{p.port}/ws") as ws:
            await ws.send("over wss")
            return await ws.recv()

    assert asyncio.run(talk()) == "tls-service:over wss"


def test_a_wrong_ca_is_refused_with_its_reason_and_legacy_takes_even_a_post(tmp_path: Path, legacy: Upstream,
                                                                          tls_service: Upstream, pki: dict[str, Path],
                                                                          start_proxy: Any) -> None:
    p = start_proxy(_routes(tmp_path, legacy, f"{{url: '{tls_service.url}', tls: {{ca: {pki['other_ca']}}}}}"),
                    access_log=True)
    r = httpx.post(f"{p.url}/echo/cases/1", content=b"order")
    assert r.status_code == 200 and r.json()["name"] == "legacy"  # the service never saw it: any method may fall back
    assert not tls_service.requests
    assert p.metric("strangler_upstream_errors_total", module="cases", side="service", kind="tls") == 1
    assert p.metric("strangler_fallbacks_total", module="cases", reason="tls") == 1
    line = json.loads(p.out.read_text().splitlines()[-1])
    assert line["side"] == "legacy" and line["fallback"]


def test_a_wrong_ca_on_legacy_is_a_502_naming_the_reason_in_the_log(tmp_path: Path, tls_service: Upstream,
                                                                    pki: dict[str, Path], start_proxy: Any) -> None:
    routes = routes_file(tmp_path / "r.yaml", {"legacy": f"{{url: '{tls_service.url}', tls: {{ca: {pki['other_ca']}}}}}"})
    p = start_proxy(routes, access_log=True)
    r = httpx.get(f"{p.url}/echo/x")
    assert r.status_code == 502 and "127.0.0.1" not in r.text  # the client is not told upstream addresses
    line = json.loads(p.out.read_text().splitlines()[-1])
    assert "TLS handshake with 127.0.0.1" in line["error"] and "certificate verify failed" in line["error"]
    # the harness's start-up probe and this request
    assert p.metric("strangler_upstream_errors_total", module="_unclaimed", side="legacy", kind="tls") == 2


def test_server_name_sets_sni_and_the_name_checked(tmp_path: Path, legacy: Upstream, pki: dict[str, Path],
                                                 start_proxy: Any) -> None:
    for named in _upstream("named", pki["named"]):  # its certificate names orders.internal only
        base = f"url: '{named.url}', tls: {{ca: {pki['ca']}"
        p = start_proxy(_routes(tmp_path, legacy, f"{{{base}, server_name: orders.internal}}}}"))
        assert httpx.get(f"{p.url}/echo/cases/1").json()["name"] == "named"
        wrong = start_proxy(_routes(tmp_path, legacy, f"{{{base}}}}}"))  # 127.0.0.1 is not orders.internal
        assert httpx.get(f"{wrong.url}/echo/cases/1").json()["name"] == "legacy"
        insecure = start_proxy(_routes(tmp_path, legacy, f"{{url: '{named.url}', tls: {{verify: false}}}}"))
        assert httpx.get(f"{insecure.url}/echo/cases/1").json()["name"] == "named"  # explicitly unverified


def test_a_client_certificate_for_an_upstream_that_requires_one(tmp_path: Path, legacy: Upstream, pki: dict[str, Path],
                                                               start_proxy: Any) -> None:
    for mtls in _upstream("mtls", pki["server"], ssl_ca_certs=str(pki["ca"]), ssl_cert_reqs=ssl.CERT_REQUIRED):
        without = start_proxy(_routes(tmp_path, legacy, f"{{url: '{mtls.url}', tls: {{ca: {pki['ca']}}}}}"))
        assert httpx.get(f"{without.url}/echo/cases/1").json()["name"] == "legacy"
        assert not mtls.requests
        with_cert = start_proxy(_routes(tmp_path, legacy, f"{{url: '{mtls.url}', tls: {{ca: {pki['ca']}, cert: {pki['client']}}}}}"))
        assert httpx.get(f"{with_cert.url}/echo/cases/1").json()["name"] == "mtls"


def test_tls_on_the_listener(tmp_path: Path, legacy: Upstream, pki: dict[str, Path], start_proxy: Any) -> None:
    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url}),
                    args=("--tls-cert", str(pki["server"])), scheme="https",
                    verify=ssl.create_default_context(cafile=pki["ca"]))
    r = httpx.get(f"{p.url}/echo/x", verify=ssl.create_default_context(cafile=pki["ca"]))
    assert r.status_code == 200
    assert dict(legacy.requests[-1]["headers"])["x-forwarded-proto"] == "https"
    bad = strangler("proxy", "--routes", str(tmp_path / "r.yaml"), "--tls-cert", str(pki["ca"]), "--listen", "127.0.0.1:1")
    assert bad.returncode == 1 and "cannot be loaded as a PEM certificate chain and key" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_tls_handshakes_are_counted_and_timed_from_accept(tmp_path: Path, legacy: Upstream, pki: dict[str, Path],
                                                          start_proxy: Any) -> None:
    """Silent connections that never start the handshake hold no place for long: at the cap
    the oldest goes to make room, and each is closed once the head's time runs out."""
    import os
    import socket
    import time

    routes = routes_file(tmp_path / "r.yaml", {"legacy": legacy.url}, extra="limits: {max_connections: 20, header_timeout: 1.5}\n")
    p = start_proxy(routes, args=("--tls-cert", str(pki["server"])), scheme="https",
                    verify=ssl.create_default_context(cafile=pki["ca"]))
    assert p.proc is not None
    silent = [socket.create_connection(("127.0.0.1", p.port)) for _ in range(200)]
    time.sleep(0.3)
    fds = len(os.listdir(f"/proc/{p.proc.pid}/fd"))
    # a real client still gets in: the oldest silent connection made room
    r = httpx.get(f"{p.url}/echo/x", verify=ssl.create_default_context(cafile=pki["ca"]), timeout=5)
    assert r.status_code == 200
    assert fds < 80, fds  # the cap holds while they shake hands (200 silent connections: 20 places and the process's own fds)
    deadline = time.monotonic() + 10  # header_timeout is 1.5 s: each is closed well before, even on a loaded machine
    closed = 0
    for s in silent:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            closed += s.recv(1) == b""
        except ConnectionResetError:
            closed += 1
        except socket.timeout:
            pass  # still open
        s.close()
    assert closed == len(silent)  # every one closed: by the cap, or by header_timeout
    assert p.metric("strangler_client_connections_closed_total", reason="header_timeout") + p.metric(
        "strangler_client_connections_closed_total", reason="evicted") >= 180
