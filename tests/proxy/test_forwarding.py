from __future__ import annotations

from strangler_proxy.dataplane.forwarding import CHUNKED, framing, request_head, response_headers, upstream_origins


def parse(head: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    lines = head.split(b"\r\n")
    return lines[0], [tuple(line.split(b": ", 1)) for line in lines[1:] if line]  # type: ignore[misc]


def test_hop_by_hop_removed_including_connection_listed_names() -> None:
    head, host = request_head("GET", b"/a?b=1", [
        (b"host", b"portal.corp"), (b"connection", b"keep-alive, X-Secret-Hop"), (b"x-secret-hop", b"1"),
        (b"keep-alive", b"300"), (b"te", b"trailers"), (b"upgrade", b"h2c"), (b"traceparent", b"00-abc-01"),
        (b"accept-encoding", b"gzip"), (b"cookie", b"s=1"),
    ], "10.0.0.9", "https", None)
    line, headers = parse(head)
    names = [n for n, _ in headers]
    assert line == b"GET /a?b=1 HTTP/1.1" and host == b"portal.corp"
    assert not {b"connection", b"x-secret-hop", b"keep-alive", b"te", b"upgrade"} & set(names)
    assert (b"traceparent", b"00-abc-01") in headers and (b"cookie", b"s=1") in headers
    assert (b"x-forwarded-for", b"10.0.0.9") in headers
    assert (b"x-forwarded-proto", b"https") in headers and (b"x-forwarded-host", b"portal.corp") in headers
    assert (b"via", b"1.1 strangler") in headers
    assert b"user-agent" not in names  # nothing the client did not send
    assert names.count(b"accept-encoding") == 1


def test_connection_tokens_never_remove_host_or_framing() -> None:
    head, _ = request_head("POST", b"/x", [
        (b"host", b"portal"), (b"connection", b"Content-Length, Host, Transfer-Encoding, x-a"), (b"x-a", b"1"),
        (b"content-length", b"00012"), (b"transfer-encoding", b"chunked"),
    ], None, "http", framing(12))
    _, headers = parse(head)
    assert (b"host", b"portal") in headers and (b"x-a", b"1") not in headers
    assert [v for n, v in headers if n in (b"content-length", b"transfer-encoding")] == [b"12"]  # ours, once
    head, _ = request_head("POST", b"/x", [(b"host", b"p"), (b"content-length", b"5")], None, "http", CHUNKED)
    assert [h for h in parse(head)[1] if h[0] in (b"content-length", b"transfer-encoding")] == [(b"transfer-encoding", b"chunked")]


def test_forwarded_for_and_via_are_appended() -> None:
    _, headers = parse(request_head("GET", b"/", [(b"x-forwarded-for", b"1.1.1.1"), (b"via", b"1.0 edge"),
                                                  (b"x-forwarded-proto", b"spoofed")], "2.2.2.2", "http", None)[0])
    assert (b"x-forwarded-for", b"1.1.1.1, 2.2.2.2") in headers
    assert (b"via", b"1.0 edge, 1.1 strangler") in headers
    assert (b"x-forwarded-proto", b"http") in headers and (b"x-forwarded-proto", b"spoofed") not in headers


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
