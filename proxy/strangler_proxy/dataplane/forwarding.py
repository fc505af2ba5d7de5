"""Faithful forwarding: the header transforms between client and upstream, as pure functions.

Toward the upstream: hop-by-hop headers go (including every name listed in ``Connection``,
except the framing and routing headers: a ``Connection: Content-Length`` cannot make the
upstream read a body as a second request), ``Expect`` is answered by the proxy itself,
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


def request_head(
    method: str,
    target: bytes,
    headers: Headers,
    client_ip: str | None,
    scheme: str,
    frame: bytes | None,
) -> tuple[bytes, bytes | None]:
    """The request line and headers to send upstream, and the client's Host value.

    ``frame`` is the body's framing line (see ``framing``); the client's own
    ``Content-Length`` and ``Transfer-Encoding`` are never copied.
    """
    drop = HOP_BY_HOP_REQUEST
    for n, v in headers:
        if n == b"connection" and v.lower() not in (b"keep-alive", b"close"):
            drop = HOP_BY_HOP_REQUEST | (_connection_tokens(headers) - PROTECTED)
            break
    lines = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
    host: bytes | None = None
    xff: bytes | None = None
    via: bytes | None = None
    for name, value in headers:
        if name in drop:
            continue
        if name == b"x-forwarded-for":
            xff = value if xff is None else xff + b", " + value
            continue
        if name == b"via":
            via = value if via is None else via + b", " + value
            continue
        if name == b"host":
            host = value
        elif name in (b"x-forwarded-proto", b"x-forwarded-host"):
            continue  # set by us from what we saw, not trusted from the client
        lines += [name, b": ", value, b"\r\n"]
    if client_ip:
        ip = client_ip.encode()
        lines += [b"x-forwarded-for: ", xff + b", " + ip if xff else ip, b"\r\n"]
    elif xff:
        lines += [b"x-forwarded-for: ", xff, b"\r\n"]
    lines += [b"x-forwarded-proto: ", scheme.encode(), b"\r\n"]
    if host is not None:
        lines += [b"x-forwarded-host: ", host, b"\r\n"]
    lines += [b"via: ", via + b", " + VIA if via else VIA, b"\r\n"]
    if frame is not None:
        lines.append(frame)
    lines.append(b"\r\n")
    return b"".join(lines), host


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
