"""Faithful forwarding: the header transforms between client and upstream, as pure functions.

Toward the upstream: hop-by-hop headers go (including every name listed in ``Connection``,
except the framing and routing headers: a ``Connection: Content-Length`` cannot make the
upstream read a body as a second request), ``Expect`` is answered by the proxy itself,
``x-strangler-*`` headers are the proxy's own and never come from a client,
``X-Forwarded-For/Proto/Host`` and ``Via`` are added, and nothing else is: no
``Accept-Encoding`` or ``User-Agent`` the client did not send, so compressed bodies pass
through untouched. ``Host`` is kept as the client sent it. The body's framing
(``Content-Length`` or ``Transfer-Encoding: chunked``) is always written by the proxy for
what it sends, never copied from the client.

Toward the client: hop-by-hop headers go, and a redirect ``Location`` pointing at an
upstream is rewritten to the address the client used when that host is one of the route
file's ``server_names``, else to a relative reference (``/path?query``): a client-supplied
``Host`` never chooses where a redirect sends the user.
"""

from __future__ import annotations

from collections.abc import Iterable

Headers = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"proxy-authenticate", b"proxy-authorization",
    b"te", b"trailer", b"transfer-encoding", b"upgrade", b"expect",
})
HOP_BY_HOP_REQUEST = HOP_BY_HOP | {b"content-length"}  # the proxy writes its own framing
# never removed by a Connection token: the proxy writes the framing itself, and Host routes
PROTECTED = frozenset({b"content-length", b"transfer-encoding", b"host"})
VIA = b"1.1 strangler"
CHUNKED = b"transfer-encoding: chunked\r\n"


def framing(length: int) -> bytes:
    """The framing header line for a body of known length (``CHUNKED`` for an unknown one)."""
    return b"content-length: %d\r\n" % length


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return frozenset(tokens)


def forwarded_headers(headers: Headers, client_ip: str | None, scheme: str, drop: frozenset[bytes] = HOP_BY_HOP_REQUEST) -> Headers:
    """The client's headers as an upstream gets them, for plain HTTP and WebSocket alike.

    Hop-by-hop headers (``drop``, and every name the client's ``Connection`` lists but the
    framing and ``Host``) and every ``x-strangler-*`` header (the proxy's own: a client
    cannot mark a real write as a shadow copy, nor pass one a pin) are removed;
    ``X-Forwarded-For`` gains the client's address, ``X-Forwarded-Proto``/``-Host`` are set
    from what the proxy saw (never the client's), ``Via`` gains the proxy.

    >>> forwarded_headers([(b"host", b"p"), (b"x-strangler-shadow", b"1"), (b"x-forwarded-host", b"evil")], "10.0.0.1", "http")
    [(b'host', b'p'), (b'x-forwarded-for', b'10.0.0.1'), (b'x-forwarded-proto', b'http'), (b'x-forwarded-host', b'p'), (b'via', b'1.1 strangler')]
    """
    for n, v in headers:
        if n == b"connection" and v.lower() not in (b"keep-alive", b"close"):
            drop = drop | (_connection_tokens(headers) - PROTECTED)
            break
    out: Headers = []
    host: bytes | None = None
    xff: bytes | None = None
    via: bytes | None = None
    for item in headers:
        name = item[0]
        if name == b"host":
            host = item[1]  # X-Forwarded-Host, whether Host itself goes (a WebSocket client writes its own)
        elif name in drop or name[:12] == b"x-strangler-":
            continue
        elif name in _OWN:
            if name == b"x-forwarded-for":
                xff = item[1] if xff is None else xff + b", " + item[1]
            elif name == b"via":
                via = item[1] if via is None else via + b", " + item[1]
            continue
        if name not in drop:
            out.append(item)
    if client_ip:
        ip = client_ip.encode()
        out.append((b"x-forwarded-for", xff + b", " + ip if xff else ip))
    elif xff:
        out.append((b"x-forwarded-for", xff))
    out.append((b"x-forwarded-proto", b"https" if scheme == "https" else b"http"))
    if host is not None:
        out.append((b"x-forwarded-host", host))
    out.append((b"via", via + b", " + VIA if via else VIA))
    return out


# set by the proxy from what it saw (X-Forwarded-For and Via are extended, not replaced)
_OWN = frozenset({b"x-forwarded-for", b"via", b"x-forwarded-proto", b"x-forwarded-host"})


def request_head(method: str, target: bytes, headers: Headers, frame: bytes | None) -> bytes:
    """The request line and ``forwarded_headers`` to send upstream, with the body's framing
    line (see ``framing``): the client's own ``Content-Length`` and ``Transfer-Encoding``
    are never copied."""
    return b"".join([method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n",
                     *[n + b": " + v + b"\r\n" for n, v in headers], frame or b"", b"\r\n"])


def public_origin(scheme: str, host: bytes, server_names: tuple[str, ...]) -> bytes:
    """What an upstream's own address in a redirect becomes: the client's origin when its
    host is served here, else nothing (the redirect becomes relative)."""
    name = host.decode("latin-1").lower()
    name = name.rsplit(":", 1)[0] if not name.endswith("]") else name
    for p in server_names:
        if p == name or (p.startswith("*.") and name.endswith(p[1:])):
            return scheme.encode() + b"://" + host
    return b""


def response_headers(raw: Headers, upstream_origins: tuple[bytes, ...], public: tuple[str, bytes, tuple[str, ...]]) -> Headers:
    """Response headers for the client: hop-by-hop removed, ``Location`` rewritten.
    ``public`` is the request's scheme, Host and the served names (see ``public_origin``)."""
    drop = HOP_BY_HOP
    for name, value in raw:
        if name.lower() == b"connection":
            # "keep-alive" and "close" name nothing beyond the usual hop-by-hop set
            if value.lower() not in (b"keep-alive", b"close"):
                drop = HOP_BY_HOP | (_connection_tokens(raw) - PROTECTED)
            break
    out: Headers = []
    for name, value in raw:
        low = name.lower()
        if low in drop:
            continue
        if low == b"location":
            for origin in upstream_origins:
                if value.startswith(origin) and (len(value) == len(origin) or value[len(origin)] in b"/?#"):
                    rest = value[len(origin):]
                    value = public_origin(*public) + (rest if rest[:1] == b"/" else b"/" + rest)
                    break
        out.append((low, value))
    return out


def upstream_origins(scheme: str, host: str, port: int) -> tuple[bytes, ...]:
    """Every way an upstream may spell its own address in a redirect."""
    base = f"{scheme}://{host}".encode()
    out = [base + f":{port}".encode()]
    if (scheme, port) in (("http", 80), ("https", 443)):
        out.append(base)
    if host in ("127.0.0.1", "localhost"):
        other = "localhost" if host == "127.0.0.1" else "127.0.0.1"
        out.append(f"{scheme}://{other}:{port}".encode())
    return tuple(out)
