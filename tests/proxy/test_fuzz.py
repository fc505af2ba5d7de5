"""Property-based fuzzing of the proxy's parsers: generated request heads and chunked bodies
against the real proxy process, generated route files against the route parser.

Properties: the proxy itself never answers 5xx (the upstream here always answers 200),
never logs a traceback, never sends the upstream a request it cannot parse, and never
lets one client request become two upstream requests (each generated request is followed
by a sentinel request, so the upstream may see at most those two, and only those targets).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strangler_proxy.config import load_routes
from strangler_proxy.errors import RouteConfigError
from strangler_proxy.routing import canonical_path
from tests.proxy.harness import ProxyProcess, routes_file
from tests.proxy.rawpeers import RecordingUpstream, statuses

pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


SENTINEL = b"GET /__end__ HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n"


Target = tuple[ProxyProcess, RecordingUpstream, RecordingUpstream]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    tmp = tmp_path_factory.mktemp("fuzz")
    legacy, svc = RecordingUpstream().start(), RecordingUpstream().start()
    modules = ("  old:\n    match: {path_prefix: /retired}\n    service: svc\n    stage: retired\n"
               "  cases:\n    match: {path_prefix: /cases}\n    service: svc\n    stage: canary\n    weight: 50\n")
    proxy = ProxyProcess(routes_file(tmp / "r.yaml", {"legacy": legacy.url, "svc": svc.url}, modules,
                                     extra="limits: {header_timeout: 0.5, body_timeout: 0.5}\npin: {unsigned: true}\n"), tmp)
    proxy.start()
    yield proxy, legacy, svc
    proxy.stop()
    legacy.stop()
    svc.stop()
    assert "Traceback" not in proxy.log.read_text()


token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_0123456789", min_size=1, max_size=12)
odd = st.sampled_from(["", " ", "\t", "\x00", "\x7f", "\xff", ";", ",", ":", "..", "%", "%2e", "%00", "\\", "/", "?", "#", "@", "*"])
path = st.lists(st.one_of(token, odd, st.sampled_from(["..", ".", "..;", "cases", "retired", "%2e%2e"])), max_size=6).map(
    lambda segs: "/" + "/".join(segs))
request_target = st.one_of(path, path.map(lambda p: p + "?q=1&x=%20"), st.sampled_from(
    ["*", "http://evil.example/x", "evil.example:443", "*@127.0.0.1:1/", "//evil/x", "", "/cases/1 HTTP/1.1\r\nX: y"]))
header_name = st.one_of(token, st.sampled_from(
    ["Host", "Content-Length", "Transfer-Encoding", "Connection", "Upgrade", "Expect", "Trailer", "TE", "Cookie",
     "X-Strangler-Side", "X-Forwarded-For", "Keep-Alive", "Proxy-Connection", "Via", "Host ", " Host", "Content-Length\t"]))
header_value = st.one_of(token, st.sampled_from(
    ["chunked", "chunked, gzip", "gzip, chunked", "Content-Length", "Host, Transfer-Encoding", "close", "keep-alive, upgrade",
     "h2c", "websocket", "100-continue", "0", "5", "-1", "+5", "0x10", "99999999999999999999", "new", "cases=new", " 5",
     "a\x00b", "\xff\xfe", ""]))
methods = st.sampled_from(["GET", "POST", "PUT", "HEAD", "OPTIONS", "DELETE", "CONNECT", "TRACE", "PATCH", "GE T", "get", "PRI"])


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, str]:
    method = draw(methods)
    target_text = draw(request_target)
    headers = draw(st.lists(st.tuples(header_name, header_value), max_size=6))
    if draw(st.booleans()):
        headers.insert(draw(st.integers(0, len(headers))), ("Host", "p"))
    body = b""
    kind = draw(st.sampled_from(["none", "length", "chunked"]))
    if kind == "length":
        data = draw(st.binary(max_size=64))
        headers.append(("Content-Length", str(len(data) + draw(st.sampled_from([0, 0, 0, -1, 1])))))
        body = data
    elif kind == "chunked":
        headers.append(("Transfer-Encoding", "chunked"))
        for piece in draw(st.lists(st.binary(min_size=1, max_size=20), max_size=4)):
            body += b"%x\r\n%s\r\n" % (len(piece), piece)
        body += b"0\r\n" + b"".join(f"{n}: {v}\r\n".encode("latin-1") for n, v in draw(
            st.lists(st.tuples(header_name, header_value), max_size=2))) + b"\r\n"
    eol = draw(st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n"]))
    head = f"{method} {target_text} HTTP/1.1".encode("latin-1") + eol
    head += b"".join(f"{n}: {v}".encode("latin-1") + eol for n, v in headers) + eol
    return head + body, target_text


def _exchange(port: int, data: bytes) -> bytes:
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        try:
            s.sendall(data + SENTINEL)
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (ConnectionResetError, BrokenPipeError, socket.timeout):
            pass
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(request=requests())
def test_generated_requests_never_crash_or_desync(target: Target, request: tuple[bytes, str]) -> None:
    proxy, legacy, svc = target
    data, target_text = request
    before = {up: (len(up.requests), len(up.errors)) for up in (legacy, svc)}
    answer = _exchange(proxy.port, data)
    assert all(code < 500 for code in statuses(answer)), (data, answer[:300])
    seen = []
    for up, (n, errors) in before.items():
        assert len(up.errors) == errors, up.errors[errors:]  # the upstream could parse everything it was sent
        seen += [(up, r) for r in up.requests[n:]]
    assert len(seen) <= 2, [(r.method, r.target) for _, r in seen]
    # as llhttp reads the request line ("GET /  HTTP/1.1" is "/"); a fragment is never sent
    forwarded = target_text.strip(" \t").split(" ", 1)[0].split("\r", 1)[0].split("#", 1)[0]
    allowed = (target_text, forwarded, forwarded[:-1] if forwarded.endswith("?") else forwarded, "/__end__")
    assert all(r.target in allowed for _, r in seen), [(r.target, target_text) for _, r in seen]
    # a spelling of the retired module's path never reaches legacy
    for up, r in seen:
        canonical = canonical_path(unquote(r.target.split("?", 1)[0]))
        if up is legacy and canonical is not None:
            assert not (canonical == "/retired" or canonical.startswith("/retired/")), r.target


route_keys = st.sampled_from(["upstreams", "modules", "legacy", "url", "match", "path", "path_prefix", "path_regex", "service",
                              "stage", "weight", "limits", "pin", "secret", "cohort", "key", "shadow", "release", "steps",
                              "hosts", "headers", "case_insensitive", "max_connections", "timeout", "server_names"])
route_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True), st.text(max_size=20),
                          st.sampled_from(["http://127.0.0.1:1", "canary", "released", "retired", "/x", "(", "[a-", "legacy"]))
route_docs = st.recursive(route_scalars, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(route_keys, children, max_size=5)), max_leaves=25)


@settings(max_examples=300, deadline=None)
@given(doc=route_docs, raw=st.sampled_from(["", "[" * 3000, "{a: " * 3000, "&a [*a]", "!!python/object:os.system x", "\x00"]))
def test_generated_route_files_are_a_table_or_a_config_error(tmp_path_factory: pytest.TempPathFactory, doc: object, raw: str) -> None:
    path = Path(tmp_path_factory.mktemp("routes")) / "r.yaml"
    for text in (yaml.safe_dump(doc), raw, yaml.safe_dump({"upstreams": {"legacy": "http://127.0.0.1:1"}, "modules": doc})):
        path.write_text(text)
        try:
            load_routes(path)
        except RouteConfigError as exc:
            assert str(exc).startswith(str(path)), str(exc)
