"""The route table as an ``haproxy.cfg``: strangler's decisions made by ACLs in order.

How strangler's behaviour is carried over:

- **Routing.** The canonical path goes into ``txn.path`` (percent-decoded, ``;`` parameters
  dropped, slashes merged); each ``ordered_routes`` entry is an ``http-request set-var``
  guarded by its ACLs, and the first one that holds names the module. Dot segments, which
  strangler resolves and HAProxy cannot, are answered 400 like strangler's refused paths.
- **Sides.** Each module has a backend per side (``be_<module>_new``, ``be_<module>_legacy``),
  so the stats socket counts each side of each module: what the release controller judges.
  ``use_backend`` rules in order: pins (unsigned), the cohort id's range, the stage.
- **Cohorts.** The id is the cohort cookie when well formed, else a random UUID's 32 hex
  digits; a canary module's response to a request without a cookie sets it.
- **Fallback.** The new side's backend balances ``first`` over the service then legacy, with
  ``option redispatch 1``: a retry goes to legacy. ``retry-on conn-failure`` for every
  method, and 5xx/timeouts only for the module's idempotent methods (``disable-l7-retry``
  otherwise, as strangler does, the idempotency-key header included). ``observe layer7``
  with ``error-limit`` marks a failing service down for a while: the circuit breaker.
"""

from __future__ import annotations

import csv
import io
import re
import socket
from collections.abc import Callable

from strangler_proxy.external import DataPlane
from strangler_proxy.planes.base import Observation
from strangler_proxy.planes.files import FilePlane
from strangler_proxy.planes.table import COHORT_COOKIE, cookie_attributes, host_regex, millis, ordered_routes, pin_regex, \
    side_regex
from strangler_proxy.model import Match, Module, RouteTable, Upstream

__all__ = ["HaproxyPlane", "render_haproxy"]


def _bufsize(table: RouteTable) -> int:
    """HAProxy's buffer: the head limit, and what a resend of a request body needs."""
    return max(16384, min(table.limits.max_header_bytes + 1024, 1 << 20))


def _first_cookie(w: Callable[[str], None], name: str, var: str) -> None:
    """``var`` := the first cookie ``name``, whole: ``req.cook`` stops at a ',' (old cookie
    syntax; a pin value has commas) and takes the last cookie of the name, so the value is
    cut out of the first Cookie line itself (``name`` is a checked token: nothing to escape),
    and ``req.cook`` is the fallback for a cookie on another line. Never overwrites ``var``."""
    w(f"    http-request set-var({var}) \"req.fhdr(cookie,1),regsub('^(|.*?; *){name}=([^;]*).*\\$','\\\\2')\" "
      f"if !{{ var({var}) -m found }} {{ req.fhdr(cookie,1) -m reg (^|;\\ *){name}= }}")
    w(f"    http-request set-var({var}) req.cook({name}) if !{{ var({var}) -m found }} {{ req.cook({name}) -m found }}")


def _sq(text: str) -> str:
    """An ACL pattern: ``--`` ends the options (a pattern may start with '-'), then a
    single-quoted word, nothing inside expanded; a quote becomes ``\\x27`` (the word is a
    regex matched by ``-m reg``; literals are matched as escaped regexes)."""
    if text in ("{", "}"):
        text = "\\" + text  # a lone brace would end the anonymous ACL even quoted; escaped, the regex is the same
    return "-- '" + text.replace("'", "\\x27") + "'"


def _backend(w: Callable[[str], None], name: str, servers: list[tuple[str, Upstream]], connect: float, timeout: float,
             module: Module | None, table: RouteTable) -> None:
    w(f"backend {name}")
    w(f"    timeout connect {millis(connect)}")
    w(f"    timeout server {millis(timeout)}")
    if len(servers) > 1 and module is not None:
        b = table.breaker
        w("    balance first")
        w("    option redispatch 1")
        w("    retries 1")
        w("    retry-on conn-failure empty-response response-timeout 500 501 502 503 504")
        safe = " ".join(sorted(module.idempotent))
        cond = f"{{ method {safe} }}"
        if module.idempotency_key:
            cond += f" || {{ method POST }} {{ req.fhdr({module.idempotency_key}) -m found }}"
        w(f"    http-request disable-l7-retry unless {cond}")
        for i, (role, up) in enumerate(servers):
            extra = f" check inter {millis(b.cooldown)} observe layer7 error-limit {b.failures} on-error mark-down" \
                if role == "service" else ""
            w(f"    server {role} {up.host}:{up.port}{extra}")
    else:
        w("    retries 0")
        for role, up in servers:
            w(f"    server {role} {up.host}:{up.port}")
    w("    http-reuse safe")


def _acl(m: Match, kind: str, path_regex: str) -> str:
    """The ACL terms (ANDed) of one entry."""
    conds = [f"{{ var(txn.path) -m reg {'-i ' if m.case_insensitive and kind == 'regex' else ''}{_sq(path_regex)} }}"]
    if m.methods:
        conds.append("{ method " + " ".join(sorted(m.methods)) + " }")
    if m.hosts:
        conds.append(f"{{ var(txn.host) -m reg {_sq(host_regex(m.hosts))} }}")
    for name, value in m.headers:
        conds.append(f"{{ req.fhdr({name},1) -m reg {_sq('^' + re.escape(value) + '$')} }}")  # a literal, as a regex: no word is special
    return " ".join(conds)


def render_haproxy(table: RouteTable, listen: str, warnings: list[str], stats_socket: str | None = None) -> str:
    cookie = table.cohort.cookie.name if table.cohort.cookie else COHORT_COOKIE
    pins = table.pin.header is not None or table.pin.cookie is not None
    if pins and table.pin.secret is not None:
        warnings.append("pins: signed pins cannot be verified by HAProxy (no HMAC): the export ignores pins")
        pins = False
    if any(m.shadow is not None and m.stage in ("shadow", "canary") for m in table.modules):
        warnings.append("shadow: HAProxy mirrors nothing without an external SPOE mirror agent: shadow modules are "
                        "served by legacy only")
    warnings.append("dot segments ('/./', '/../', also after ';' parameters) are answered 400; strangler resolves them")
    warnings.append("a malformed %-escape ('/kb/100%zz') is answered 400: HAProxy cannot decode the path, so no module "
                    "could be matched; strangler matches it undecoded")
    warnings.append("an unreachable service with no legacy to fall back to (retired) is answered 503, where strangler "
                    "answers 502")
    warnings.append("a request target with a '#' fragment (which browsers never send) is answered 400 by HAProxy; "
                    "strangler and nginx ignore the fragment")
    warnings.append("after a 5xx from the service, HAProxy resends to legacy on 500, 501, 502, 503 and 504 only (its "
                    "retry-on statuses): 505 to 599 reach the client, where strangler falls back on any 5xx")
    buf = _bufsize(table)
    if table.fallback_body_limit > buf:
        warnings.append(f"a request body larger than HAProxy's buffer (tune.bufsize {buf} bytes) cannot be resent to "
                        f"legacy after the service failed; strangler keeps up to fallback.body_limit "
                        f"({table.fallback_body_limit} bytes) for that")
    lim = table.limits
    out: list[str] = []
    w = out.append
    w("global")
    if stats_socket:  # what the release controller reads: per-backend (module x side) counters
        w(f"    stats socket '{stats_socket}' mode 600 level operator")  # a checked path, quoted: a space stays in it
    w(f"    tune.bufsize {_bufsize(table)}")
    w("    tune.http.maxhdr 256")
    w("    hard-stop-after 60s")  # a reload's old process lets in-flight requests finish, no longer
    w("defaults")
    w("    mode http")
    w("    option http-keep-alive")
    w("    option idle-close-on-response")  # after a reload, kept-alive clients move to the new configuration
    w("    option forwardfor")
    w(f"    timeout client {millis(lim.body_timeout)}")
    w(f"    timeout http-request {millis(lim.header_timeout)}")
    w(f"    timeout http-keep-alive {millis(lim.keepalive_timeout)}")
    w("    timeout connect 3s")
    w("    timeout server 30s")
    w("    option http-buffer-request")
    w("frontend strangler")
    w(f"    bind {listen if ':' in listen else ':' + listen}")  # a bare port: every address, as nginx's listen
    w(f"    maxconn {lim.max_connections}")
    w("    http-request set-var(txn.path) path,url_dec,regsub(';[^/]*',,g),regsub('/+',/,g)")
    w("    http-request set-var(txn.host) req.hdr(host,1),regsub(':[0-9]+$',),lower")
    # what strangler refuses (control characters, backslash, a segment ending in '.', ' ' or a tab, an
    # NTFS stream), and a path url_dec cannot decode (a malformed %-escape: no canonical path, no module)
    w("    http-request deny deny_status 400 unless { var(txn.path) -m found }")
    # as strangler's listener: a target that is not a path (absolute-form would name the
    # host), and not exactly one Host (none is fine for HTTP/1.0 only)
    w("    http-request deny deny_status 400 unless { url_beg / } || { method OPTIONS } { url * }")
    w("    http-request deny deny_status 400 if { req.hdr_cnt(host) gt 1 } || { req.ver 1.1 } { req.hdr_cnt(host) eq 0 }")
    w(r"    http-request deny deny_status 400 if { var(txn.path) -m reg '[\x00-\x1f\x7f\x5c]' } || "
      r"{ var(txn.path) -m reg '[. ](/|$)' } || { var(txn.path) -m reg ':\$' }")
    w("    http-request set-header X-Forwarded-Proto http")
    w("    http-request set-header X-Forwarded-Host %[req.hdr(host)] if { req.hdr(host) -m found }")
    w('    http-request set-var(txn.via) req.fhdr(via) if { req.fhdr(via) -m found }')
    w('    http-request set-header Via "%[var(txn.via)], 1.1 strangler" if { var(txn.via) -m found }')
    w('    http-request set-header Via "1.1 strangler" unless { var(txn.via) -m found }')
    # the module
    for e in ordered_routes(table.modules):
        cond = _acl(e.match, e.kind, e.path_regex())
        w(f"    http-request set-var(txn.module) str({e.module.name}) if !{{ var(txn.module) -m found }} {cond}")
    # cohort id and pin
    # the first cookie of that name (strangler's reading; req.cook takes the last), and a
    # quoted value ("id", RFC 6265's cookie-value) is the same id
    _first_cookie(w, cookie, "txn.cidraw")
    unquoted = "var(txn.cidraw),regsub(^\\\\x22+|\\\\x22+$,,g)"
    w(f"    http-request set-var(txn.cid) {unquoted} if {{ {unquoted} -m reg ^[0-9a-f]{{32}}$ }}")
    w("    http-request set-var(txn.fresh) bool(1) unless { var(txn.cid) -m found }")
    w("    http-request set-var(txn.cid) uuid,regsub(-,,g) unless { var(txn.cid) -m found }")
    if pins:
        if table.pin.header:  # an empty header is no header: the cookie then counts (as strangler reads it)
            w(f"    http-request set-var(txn.pin) req.fhdr({table.pin.header},1) if {{ req.fhdr({table.pin.header},1) -m len gt 0 }}")
        if table.pin.cookie:
            _first_cookie(w, table.pin.cookie, "txn.pin")
    canary = [m.name for m in table.modules if m.stage == "canary"]
    if canary:
        attrs = cookie_attributes(table)
        w(f'    http-response add-header Set-Cookie "{cookie}=%[var(txn.cid)]; {attrs}" if '
          f"{{ var(txn.fresh) -m bool }} {{ var(txn.module) -m str {' '.join(canary)} }}")
    for up in table.upstreams.values():
        origin = up.origin.replace(".", "\\.")
        w(f"    http-response replace-header Location '^{origin}(/.*)?$' '\\1'")
    for m in table.modules:
        is_m = f"{{ var(txn.module) -m str {m.name} }}"
        new, legacy = f"be_{m.name}_new", f"be_{m.name}_legacy"
        if m.stage in ("legacy", "shadow"):
            w(f"    use_backend {legacy} if {is_m}")
            continue
        if m.stage != "retired" and pins:
            for pin, be in ((pin_regex(m.name, "legacy"), legacy), (pin_regex(m.name, "new"), new)):
                w(f"    use_backend {be} if {is_m} {{ var(txn.pin) -m reg {_sq(pin)} }}")
        if m.stage == "canary":
            rx = side_regex(m, table.cohort.buckets)
            if rx is not None:
                w(f"    use_backend {new} if {is_m} {{ var(txn.cid) -m reg {_sq(rx)} }}")
            w(f"    use_backend {legacy} if {is_m}")
        else:
            w(f"    use_backend {new} if {is_m}")
    w("    default_backend be_legacy")
    ups = table.upstreams
    legacy_up = ups["legacy"]
    _backend(w, "be_legacy", [("legacy", legacy_up)], legacy_up.connect_timeout, legacy_up.timeout, None, table)
    for m in table.modules:
        svc, leg = ups[m.service], ups[m.legacy]
        _backend(w, f"be_{m.name}_legacy", [("legacy", leg)], leg.connect_timeout, leg.timeout, None, table)
        servers = [("service", svc)] if m.stage == "retired" else [("service", svc), ("legacy", leg)]
        _backend(w, f"be_{m.name}_new", servers, svc.connect_timeout, m.timeout or svc.timeout, m, table)
    return "\n".join(out) + "\n"


# -- the running plane: apply (``FilePlane``) and the stats socket the release controller reads --

STAT_FIELDS = ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other", "eresp", "econ", "rtime")


class HaproxyPlane(FilePlane):
    """HAProxy as the data plane: the export written, ``haproxy -c``, reloaded; evidence from
    the stats socket's per-server counters (``show stat``) of each module's two backends,
    as differences from the last read."""

    def __init__(self, spec: DataPlane, log: Callable[[str], None], render: Callable[[RouteTable], str]) -> None:
        super().__init__(spec, log, render)
        self._stats: dict[tuple[str, str], dict[str, int]] = {}

    def read(self, table: RouteTable) -> list[Observation]:
        if not self.spec.stats_socket:
            return []
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(self.spec.stats_socket)
            s.sendall(b"show stat\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return self.observations(b"".join(chunks).decode("utf-8", "replace"), {m.name for m in table.modules})

    def observations(self, stat: str, modules: set[str]) -> list[Observation]:
        out: list[Observation] = []
        for row in csv.DictReader(io.StringIO(stat.lstrip("# "))):
            backend, server = row.get("pxname", ""), row.get("svname", "")
            if server in ("FRONTEND", "BACKEND") or not backend.startswith("be_"):
                continue
            name, _, side = backend[3:].rpartition("_")
            if name not in modules or side not in ("new", "legacy"):
                continue
            now = {k: int(row.get(k) or 0) for k in STAT_FIELDS}
            before = self._stats.get((backend, server))
            self._stats[(backend, server)] = now
            if before is None:
                continue  # the first read sets the baseline
            delta = {k: max(0, now[k] - before[k]) for k in now if k != "rtime"}
            answered = sum(delta[k] for k in STAT_FIELDS[:6])
            failed = delta["econ"] + delta["eresp"]
            seconds = now["rtime"] / 1000
            role = "service" if server == "service" else "legacy"
            ok = answered - delta["hrsp_5xx"]
            if side == "new" and role == "legacy":
                # legacy answered inside the new side's backend: only after the service failed
                # (a retry redispatched, or the service marked down): a new-side error each
                out.append(Observation(name, "service", 0.0, True, answered + failed))
            if ok > 0:
                out.append(Observation(name, role, seconds, False, ok))
            if delta["hrsp_5xx"] + failed > 0:
                out.append(Observation(name, role, seconds, True, delta["hrsp_5xx"] + failed))
        return out
