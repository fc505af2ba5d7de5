"""Compare a legacy response with the new service's: pure functions, no I/O.

Status, headers (minus a default ignore list), and bodies: JSON structurally (key order
ignored, array reorder its own kind, ignore paths, unordered arrays, numeric tolerance),
text and HTML with whitespace normalised, anything else by hash. Differences are reported
per field path, JSON-Pointer style with array indices as ``*`` so that counts aggregate
across requests (``/items/*/price``).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from strangler_proxy.errors import ProxyError
from strangler_proxy.samples import Response

__all__ = ["Response", "TooLarge", "compare"]  # public (the CLI's and loadtests' imports are checked against it)

Kind = Literal["status", "header", "value", "type", "missing", "extra", "order", "length",
               "text", "hash", "invalid_json", "invalid_utf8", "truncated", "error"]

DEFAULT_IGNORED_HEADERS = frozenset({
    "date", "server", "etag", "last-modified", "expires", "age", "via", "x-request-id",
    "x-correlation-id", "x-trace-id", "traceparent", "tracestate", "content-length", "transfer-encoding",
    "connection", "keep-alive", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
    "x-upstream", "x-powered-by", "x-runtime", "x-response-time", "report-to", "nel", "alt-svc",
})


@dataclass(frozen=True, slots=True)
class Rules:
    ignore_headers: frozenset[str] = DEFAULT_IGNORED_HEADERS
    ignore: tuple[str, ...] = ()  # JSON Pointers or globs: /meta/timestamp, /items/*/id
    unordered: tuple[str, ...] = ()  # arrays compared as multisets
    tolerance: float = 0.0  # numbers equal within this absolute difference
    normalize: Callable[[str, Response], Response] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Difference:
    path: str
    kind: Kind


def _pattern_match(patterns: Sequence[str], path: str) -> bool:
    for p in patterns:
        if p == path or fnmatch.fnmatchcase(path, p):
            return True
    return False


class TooLarge(ProxyError):
    """A compressed body decodes to more than the comparison's cap (a decompression bomb,
    or just too large): the sample is skipped as ``too_large``, never decoded whole."""


def _inflate(body: bytes, wbits: int, cap: int) -> bytes:
    d = zlib.decompressobj(wbits)
    out = d.decompress(body, cap + 1)  # never more than the cap (and one byte to tell) in memory
    if len(out) > cap or d.unconsumed_tail:
        raise TooLarge(f"the body decodes to more than {cap} bytes")
    return out


def _decode(r: Response, cap: int) -> tuple[bytes | None, Difference | None]:
    enc = (r.header("content-encoding") or "").lower().strip()
    if not enc or enc == "identity":
        return r.body, None
    try:
        if enc == "gzip":
            return _inflate(r.body, 47, cap), None
        if enc == "deflate":
            try:
                return _inflate(r.body, 15, cap), None
            except zlib.error:
                return _inflate(r.body, -15, cap), None
    except zlib.error:
        return None, Difference("body", "truncated")
    return None, None  # br and others: compared by hash


def compare(legacy: Response, candidate: Response, rules: Rules = Rules(), cap: int = 1 << 20) -> tuple[Difference, ...]:
    """Every difference between two responses, sorted; empty when they match. A compressed
    body is decoded to ``cap`` bytes at most (``TooLarge`` past that)."""
    if rules.normalize is not None:
        legacy, candidate = rules.normalize("legacy", legacy), rules.normalize("candidate", candidate)
    if candidate.error is not None or not candidate.complete:
        return (Difference("response", "error" if candidate.error else "truncated"),)
    diffs: list[Difference] = []
    if legacy.status != candidate.status:
        diffs.append(Difference("status", "status"))
    diffs += _headers(legacy, candidate, rules)
    diffs += _body(legacy, candidate, rules, cap)
    return tuple(sorted(set(diffs), key=lambda d: (d.path, d.kind)))


def _headers(a: Response, b: Response, rules: Rules) -> list[Difference]:
    def fold(r: Response) -> dict[str, str]:
        out: dict[str, list[str]] = {}
        ignored = rules.ignore_headers
        for n, v in r.headers:  # names arrive lower-cased from both sides
            if n in ignored:
                continue
            if n == "set-cookie":
                v = v.split("=", 1)[0].strip()  # cookie names, not values
            elif n == "content-type":
                v = v.split(";")[0].strip().lower()
            out.setdefault(n, []).append(v)
        return {n: ",".join(sorted(vs)) for n, vs in out.items()}

    fa, fb = fold(a), fold(b)
    diffs = []
    for name in sorted(set(fa) | set(fb)):
        if _pattern_match(rules.ignore, f"header:{name}"):
            continue
        va, vb = fa.get(name), fb.get(name)
        if va != vb:
            diffs.append(Difference(f"header:{name}", "missing" if vb is None else ("extra" if va is None else "header")))
    return diffs


def _is_json(r: Response) -> bool:
    ct = (r.header("content-type") or "").lower()
    return "json" in ct


def _is_text(r: Response) -> bool:
    ct = (r.header("content-type") or "").lower()
    return ct.startswith("text/") or "xml" in ct or "javascript" in ct


def _body(a: Response, b: Response, rules: Rules, cap: int) -> list[Difference]:
    if not a.complete:
        return []  # legacy's body was cut at the capture cap: only the head is compared
    da, ea = _decode(a, cap)
    db, eb = _decode(b, cap)
    if eb is not None:
        return [eb]
    if da is None or db is None:
        return [] if hashlib.sha256(a.body).digest() == hashlib.sha256(b.body).digest() else [Difference("body", "hash")]
    if da == db:
        return []  # the common case, and the cheapest: identical bytes
    if _is_json(a) or _is_json(b):
        try:
            ja = json.loads(da)
        except (ValueError, UnicodeDecodeError):
            ja = _INVALID
        try:
            jb = json.loads(db)
        except (ValueError, UnicodeDecodeError) as exc:
            if ja is _INVALID:
                return [] if da == db else [Difference("body", "hash")]
            kind: Kind = "invalid_utf8" if isinstance(exc, UnicodeDecodeError) else "invalid_json"
            return [Difference("body", kind)]
        if ja is _INVALID:
            return [Difference("body", "invalid_json")]
        out: list[Difference] = []
        # Python's == skips equal subtrees at C speed, but holds true == 1: when the bodies
        # do not carry the same number of true/false tokens, walk every node strictly.
        strict = da.count(b"true") != db.count(b"true") or da.count(b"false") != db.count(b"false")
        _json("", ja, jb, rules, out, strict)
        return out
    if _is_text(a) or _is_text(b):
        try:
            ta, tb = da.decode("utf-8"), db.decode("utf-8")
        except UnicodeDecodeError:
            try:
                da.decode("utf-8")
            except UnicodeDecodeError:
                return [] if da == db else [Difference("body", "hash")]
            return [Difference("body", "invalid_utf8")]
        return [] if ta.split() == tb.split() else [Difference("body", "text")]
    return [] if da == db else [Difference("body", "hash")]


class _Invalid:
    pass


_INVALID: Any = _Invalid()


def _json(path: str, a: Any, b: Any, rules: Rules, out: list[Difference], strict: bool = True) -> None:
    if not strict and a == b:
        return
    if rules.ignore and _pattern_match(rules.ignore, path or "/"):
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for k in a.keys() | b.keys():
            p = f"{path}/{_escape(k)}"
            if k not in b:
                if not _pattern_match(rules.ignore, p):
                    out.append(Difference(p, "missing"))
            elif k not in a:
                if not _pattern_match(rules.ignore, p):
                    out.append(Difference(p, "extra"))
            else:
                _json(p, a[k], b[k], rules, out, strict)
        return
    if isinstance(a, list) and isinstance(b, list):
        if rules.unordered and _pattern_match(rules.unordered, path or "/"):
            if sorted(map(_canon, a)) != sorted(map(_canon, b)):
                out.append(Difference(path or "/", "value"))
            return
        item = f"{path}/*"
        if len(a) == len(b):
            before = len(out)
            differing = []
            for i, (x, y) in enumerate(zip(a, b)):
                n = len(out)
                _json(item, x, y, rules, out, strict)
                if len(out) > n:
                    differing.append(i)
            # only the differing positions can hold a reordering: canonicalise just those
            if differing and sorted(_canon(a[i]) for i in differing) == sorted(_canon(b[i]) for i in differing):
                del out[before:]
                out.append(Difference(path or "/", "order"))
            return
        out.append(Difference(path or "/", "length"))
        for x, y in zip(a, b):
            _json(item, x, y, rules, out, strict)
        return
    if isinstance(a, bool) or isinstance(b, bool):
        if a is not b:
            out.append(Difference(path or "/", "value" if type(a) is type(b) else "type"))
        return
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if a != b and abs(a - b) > rules.tolerance:
            out.append(Difference(path or "/", "value"))
        return
    if type(a) is not type(b):
        out.append(Difference(path or "/", "type"))
    elif a != b:
        out.append(Difference(path or "/", "value"))


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _canon(x: Any) -> str:
    return json.dumps(x, sort_keys=True, separators=(",", ":"))
