from __future__ import annotations

from strangler_proxy.dataplane.forwarding import CHUNKED, Headers, forwarded_headers, framing, request_head, response_headers, \
    upstream_origins


def head_of(method: str, target: bytes, headers: Headers, client: str | None, scheme: str, frame: bytes | None) -> bytes:
    return request_head(method, target, forwarded_headers(headers, client, scheme), frame)


def parse(head: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    lines = head.split(b"\r\n")
    return lines[0], [tuple(line.split(b": ", 1)) for line in lines[1:] if line]  # type: ignore[misc]


def test_hop_by_hop_removed_including_connection_listed_names() -> None:
    head = head_of("GET", b"/a?b=1", [
        (b"host", b"portal.corp"), (b"connection", b"keep-alive, X-Secret-Hop"), (b"x-secret-hop", b"1"),
        (b"keep-alive", b"300"), (b"te", b"trailers"), (b"upgrade", b"h2c"), (b"traceparent", b"00-abc-01"),
        (b"accept-encoding", b"gzip"), (b"cookie", b"s=1"),
    ], "10.0.0.9", "https", None)
    line, headers = parse(head)
    names = [n for n, _ in headers]
    assert line == b"GET /a?b=1 HTTP/1.1" and (b"host", b"portal.corp") in headers
    assert not {b"connection", b"x-secret-hop", b"keep-alive", b"te", b"upgrade"} & set(names)
    assert (b"traceparent", b"00-abc-01") in headers and (b"cookie", b"s=1") in headers
    assert (b"x-forwarded-for", b"10.0.0.9") in headers
    assert (b"x-forwarded-proto", b"https") in headers and (b"x-forwarded-host", b"portal.corp") in headers
    assert (b"via", b"1.1 strangler") in headers
    assert b"user-agent" not in names  # nothing the client did not send
    assert names.count(b"accept-encoding") == 1


def test_connection_tokens_never_remove_host_or_framing() -> None:
    head = head_of("POST", b"/x", [
        (b"host", b"portal"), (b"connection", b"Content-Length, Host, Transfer-Encoding, x-a"), (b"x-a", b"1"),
        (b"content-length", b"00012"), (b"transfer-encoding", b"chunked"),
    ], None, "http", framing(12))
    _, headers = parse(head)
    assert (b"host", b"portal") in headers and (b"x-a", b"1") not in headers
    assert [v for n, v in headers if n in (b"content-length", b"transfer-encoding")] == [b"12"]  # ours, once
    head = head_of("POST", b"/x", [(b"host", b"p"), (b"content-length", b"5")], None, "http", CHUNKED)
    assert [h for h in parse(head)[1] if h[0] in (b"content-length", b"transfer-encoding")] == [(b"transfer-encoding", b"chunked")]


def test_forwarded_for_and_via_are_appended() -> None:
    _, headers = parse(head_of("GET", b"/", [(b"x-forwarded-for", b"1.1.1.1"), (b"via", b"1.0 edge"),
                                             (b"x-forwarded-proto", b"spoofed")], "2.2.2.2", "http", None))
    assert (b"x-forwarded-for", b"1.1.1.1, 2.2.2.2") in headers
    assert (b"via", b"1.0 edge, 1.1 strangler") in headers
    assert (b"x-forwarded-proto", b"http") in headers and (b"x-forwarded-proto", b"spoofed") not in headers


def test_the_proxys_own_headers_never_come_from_a_client() -> None:
    sent = [(b"host", b"p"), (b"x-strangler-shadow", b"1"), (b"x-strangler-side", b"new"), (b"x-stranglers", b"k"),
            (b"x-forwarded-host", b"evil")]
    out = forwarded_headers(sent, "10.0.0.1", "http")
    assert [n for n, _ in out if n.startswith(b"x-strangler-")] == []
    assert (b"x-stranglers", b"k") in out and (b"x-forwarded-host", b"p") in out and (b"x-forwarded-host", b"evil") not in out


def test_location_rewritten_only_for_upstream_origins_and_served_hosts() -> None:
    origins = upstream_origins("http", "127.0.0.1", 9001)
    served = ("https", b"portal.corp", ("portal.corp",))
    out = dict(response_headers([(b"Location", b"http://127.0.0.1:9001/login?next=/"), (b"Connection", b"close"),
                                 (b"Set-Cookie", b"a=1")], origins, served))
    assert out[b"location"] == b"https://portal.corp/login?next=/" and b"connection" not in out
    kept = dict(response_headers([(b"location", b"http://127.0.0.1:90011/x")], origins, served))
    assert kept[b"location"] == b"http://127.0.0.1:90011/x"
    other = dict(response_headers([(b"location", b"https://sso.corp/login")], origins, served))
    assert other[b"location"] == b"https://sso.corp/login"
    # a Host this proxy does not serve never becomes a redirect target: the redirect goes relative
    for host in (b"evil.example", b"portal.corp.evil.example", b""):
        out = dict(response_headers([(b"location", b"http://127.0.0.1:9001?x=1")], origins, ("https", host, ("portal.corp",))))
        assert out[b"location"] == b"/?x=1", host
    wild = dict(response_headers([(b"location", b"http://127.0.0.1:9001/a")], origins, ("http", b"eu.portal.corp:8443", ("*.portal.corp",))))
    assert wild[b"location"] == b"http://eu.portal.corp:8443/a"
