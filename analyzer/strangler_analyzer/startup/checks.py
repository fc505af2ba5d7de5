"""Readiness checks: is a component *ready*, not just running? One attempt per call.

Each check is ``async (Check, timeout) -> Outcome`` and never raises for a not-ready
component: the outcome carries the last error ("connection refused", "status 503"), which
``strangler up`` puts in its blocked-chain message. PostgreSQL and Redis are asked through
their own protocols, as pg_isready and redis-cli ping do, with no client library.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import socket
import struct
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from strangler_analyzer.errors import AnalyzerError
from strangler_analyzer.model import Check

__all__ = ["validate"]  # public (the CLI's and loadtests' imports are checked against it)


@dataclass(frozen=True, slots=True)
class Outcome:
    ready: bool
    detail: str


def describe(check: Check) -> str:
    if check.kind in ("tcp",):
        return f"tcp://{check.target}"
    if check.kind in ("command", "file", "log"):
        return f"{check.kind} {check.target}"
    return check.target


def validate(check: Check) -> None:
    """Refuse what cannot work before anything starts."""
    if check.kind == "tcp":
        _hostport(check.target)
    elif check.kind == "http":
        parts = urlsplit(check.target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AnalyzerError(f"http check {check.target!r}: expected an http(s):// URL")
    elif check.kind in ("postgres", "redis"):
        parts = urlsplit(check.target)
        if not parts.hostname:
            raise AnalyzerError(f"{check.kind} check {check.target!r}: expected a {check.kind}:// URL with a host")
    elif check.kind == "log" and "pattern" not in check.options:
        raise AnalyzerError(f"log check {check.target!r}: needs a 'pattern'")
    for key in ("body", "pattern"):
        if key in check.options:
            try:
                re.compile(check.options[key])
            except re.error as exc:
                raise AnalyzerError(f"check {describe(check)}: invalid {key} regex: {exc}") from None


def _hostport(target: str) -> tuple[str, int]:
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise AnalyzerError(f"tcp check {target!r}: expected host:port")
    return host.strip("[]"), int(port)


def reason(exc: BaseException) -> str:
    """A short, library-independent cause: "connection refused", "unknown host", ..."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower():
            return "connection refused"
        if isinstance(seen, socket.gaierror):
            return "unknown host"
        if isinstance(seen, (TimeoutError, asyncio.TimeoutError)):
            return "timed out"
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED:
        return "connection refused"
    text = str(exc) or type(exc).__name__
    return "connection refused" if "all connection attempts failed" in text.lower() else text


async def attempt(check: Check, timeout: float) -> Outcome:
    try:
        return await asyncio.wait_for(_ATTEMPTS[check.kind](check, timeout), timeout)
    except asyncio.TimeoutError:
        return Outcome(False, f"no answer within {timeout:g} s")
    except OSError as exc:
        return Outcome(False, reason(exc))


async def _tcp(check: Check, timeout: float) -> Outcome:
    host, port = _hostport(check.target)
    _, writer = await asyncio.open_connection(host, port)
    writer.close()
    return Outcome(True, "accepting connections")


_clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}


def _client() -> httpx.AsyncClient:
    """One client per event loop: checks repeat, and a client per attempt costs CPU."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        for old in [lp for lp in _clients if lp.is_closed()]:
            del _clients[old]
        # verify=False: a readiness probe asks "is it up", as curl -k and Kubernetes probes do
        client = _clients[loop] = httpx.AsyncClient(verify=False, follow_redirects=False,
                                                    limits=httpx.Limits(max_keepalive_connections=0))
    return client


async def _http(check: Check, timeout: float) -> Outcome:
    try:
        r = await _client().get(check.target, timeout=timeout)
    except httpx.HTTPError as exc:
        return Outcome(False, reason(exc))
    want = check.options.get("status")
    if want is not None and r.status_code != int(want) or want is None and not 200 <= r.status_code < 400:
        return Outcome(False, f"status {r.status_code}")
    body = check.options.get("body")
    if body is not None and not re.search(body, r.text):
        return Outcome(False, f"body does not match {body!r}")
    path = check.options.get("json_path")
    if path is not None:
        try:
            value = json_path(r.json(), path)
        except (ValueError, KeyError, IndexError, TypeError):
            return Outcome(False, f"no {path} in the JSON body")
        expected = check.options.get("equals")
        if expected is not None and str(value).lower() != expected.lower():
            return Outcome(False, f"{path} is {value!r}, not {expected!r}")
    return Outcome(True, f"status {r.status_code}")


def json_path(doc: object, path: str) -> object:
    """``$.status``, ``$.checks[0].state`` or ``status.db``: a small JSONPath subset.

    >>> json_path({"a": {"b": [1, {"c": "UP"}]}}, "$.a.b[1].c")
    'UP'
    """
    cur = doc
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path.removeprefix("$").lstrip(".")):
        if part.startswith("["):
            cur = cur[int(part[1:-1])]  # type: ignore[index]
        else:
            cur = cur[part]  # type: ignore[index]
    return cur


async def _command(check: Check, timeout: float) -> Outcome:
    proc = await asyncio.create_subprocess_shell(check.target, stdout=asyncio.subprocess.DEVNULL,
                                                 stderr=asyncio.subprocess.PIPE, start_new_session=True)
    try:
        _, err = await proc.communicate()
    except BaseException:  # timed out or cancelled by attempt(): leave nothing running
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
        await proc.wait()
        raise
    if proc.returncode == 0:
        return Outcome(True, "exit 0")
    last = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
    return Outcome(False, f"exit {proc.returncode}" + (f": {last[0]}" if last[0] else ""))


async def _file(check: Check, timeout: float) -> Outcome:
    return Outcome(True, "exists") if os.path.exists(check.target) else Outcome(False, "no such file")


async def _log(check: Check, timeout: float) -> Outcome:
    try:
        with open(check.target, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as exc:
        return Outcome(False, (exc.strerror or str(exc)).lower())
    pattern = check.options["pattern"]
    return Outcome(True, "line found") if re.search(pattern, text, re.M) else Outcome(False, f"no line matches {pattern!r}")


async def _postgres(check: Check, timeout: float) -> Outcome:
    """Send a StartupMessage: an authentication request means the server accepts connections
    (as pg_isready reports it); an error such as 57P03 means it is still starting."""
    parts = urlsplit(check.target)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 5432)
    try:
        params = b"user\x00" + (parts.username or "postgres").encode() + b"\x00"
        params += b"database\x00" + (parts.path.lstrip("/") or parts.username or "postgres").encode() + b"\x00\x00"
        writer.write(struct.pack("!II", 8 + len(params), 196608) + params)
        await writer.drain()
        kind = await reader.readexactly(1)
        if kind == b"R":
            return Outcome(True, "accepting connections")
        if kind == b"E":
            size = struct.unpack("!I", await reader.readexactly(4))[0]
            fields = (await reader.readexactly(size - 4)).split(b"\x00")
            code = next((f[1:].decode() for f in fields if f.startswith(b"C")), "")
            message = next((f[1:].decode() for f in fields if f.startswith(b"M")), "")
            if code in ("57P03", "53300"):
                return Outcome(False, f"{message} ({code})")
            return Outcome(True, f"accepting connections ({message})")  # e.g. unknown role: up all the same
        return Outcome(False, f"unexpected reply {kind!r}")
    except asyncio.IncompleteReadError:
        return Outcome(False, "connection closed")
    finally:
        writer.close()


async def _redis(check: Check, timeout: float) -> Outcome:
    parts = urlsplit(check.target)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 6379)
    try:
        writer.write(b"*1\r\n$4\r\nPING\r\n")
        await writer.drain()
        line = (await reader.readline()).decode(errors="replace").strip()
    finally:
        writer.close()
    if line == "+PONG" or line.startswith("-NOAUTH"):
        return Outcome(True, "PONG" if line == "+PONG" else "up (needs auth)")
    return Outcome(False, line or "connection closed")


_ATTEMPTS = {"tcp": _tcp, "http": _http, "command": _command, "file": _file, "log": _log,
             "postgres": _postgres, "redis": _redis}
