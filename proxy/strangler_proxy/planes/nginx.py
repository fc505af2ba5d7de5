"""The route table as an nginx ``http {}`` include: strangler's decisions made by ``map``s.

How strangler's behaviour is carried over:

- **Routing.** One ``map`` over ``method LF host LF headers... LF regex-bits LF path`` whose
  regexes are ``ordered_routes`` in order (nginx tries a map's regexes in order: first match
  wins, as in strangler's router). The path is nginx's ``$uri`` (percent-decoded, dot
  segments resolved, slashes merged) with ``;`` parameters dropped, as strangler reads it;
  what strangler refuses (control characters, backslash, a segment ending in ``.`` or a space,
  ``:$``) and what nginx cannot
  resolve (``..;``) is answered 400.
- **Sides.** A second ``map`` over ``module LF pin LF cohort id`` picks the upstream group:
  pins (unsigned), the cohort's id range for canary modules, the stage otherwise.
- **Cohorts.** The id is the cohort cookie when well formed, else ``$request_id`` (32 random
  hex digits), and a canary response sets the cookie: the same side as strangler's.
- **Fallback.** A module's new side is an upstream group with legacy as ``backup``;
  ``proxy_next_upstream error timeout http_500..504`` without ``non_idempotent``: a refused
  connection falls back for any method, a 5xx or timeout only for methods nginx deems
  idempotent. ``max_fails``/``fail_timeout`` take the circuit breaker's part. A retired
  module's group has no legacy server.
- **Shadow.** ``mirror`` to the new service for the sampled share and methods.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence

from strangler_proxy.external import DataPlane
from strangler_proxy.planes.base import Observation
from strangler_proxy.planes.files import FilePlane
from strangler_proxy.planes.table import COHORT_COOKIE, Entry, cookie_attributes, hex_ranges_regex, host_regex, literal, \
    millis, ordered_routes, pin_regex, side_regex
from strangler_proxy.model import Module, RouteTable, Upstream

__all__ = ["NginxPlane", "log_observations", "render_nginx"]

PARAM_SEGMENTS = 8  # segments with ';' parameters the canonical path handles; more are refused
NGINX_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})  # all but POST, LOCK, PATCH


def _q_regex(regex: str, ci: bool = False) -> str:
    r"""A quoted map key for a regex. nginx turns ``\\`` into ``\`` and ``\"`` into ``"``
    in quoted strings, so backslashes are doubled; a ``$`` in a map key is literal."""
    return '"' + ("~*" if ci else "~") + regex.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _var(name: str) -> str:
    return "$http_" + name.lower().replace("-", "_")


def identifier(name: str) -> str:
    """A route-file name as part of an nginx identifier ('-' and '.' become '_')."""
    return "".join(c if c.isalnum() else "_" for c in name)


def _up(name: str) -> str:
    return "strangler_" + identifier(name)


def render_nginx(table: RouteTable, listen: str, warnings: list[str], access_log: str | None = None) -> str:
    entries = ordered_routes(table.modules)
    headers = sorted({name for m in table.modules for mt in m.matches for name, _ in mt.headers})
    regexes = [e for e in entries if e.kind == "regex"]
    cookie = table.cohort.cookie.name if table.cohort.cookie else COHORT_COOKIE
    pins = table.pin.header is not None or table.pin.cookie is not None
    if pins and table.pin.secret is not None:
        warnings.append("pins: signed pins cannot be verified by nginx (no HMAC): the export ignores pins")
        pins = False
    warnings.append("a dot segment behind ';' parameters ('/x/..;/cases') and a malformed %-escape ('/kb/100%zz') are "
                    "answered 400 by nginx; strangler resolves the first and matches the second undecoded")
    warnings.append(f"a path with ';' parameters in more than {PARAM_SEGMENTS} segments is answered 400 by nginx; "
                    "strangler drops them all")
    out: list[str] = []
    w = out.append
    # upstream groups
    groups: dict[str, tuple[str, ...]] = {}
    for name, up in table.upstreams.items():
        groups[_up(name)] = _servers(up, None, table)
    for m in table.modules:
        if m.stage in ("canary", "released"):
            groups[_up(m.name) + "__new"] = _servers(table.upstreams[m.service], table.upstreams[m.legacy], table)
        elif m.stage == "retired":
            groups[_up(m.name) + "__new"] = _servers(table.upstreams[m.service], None, table)
    for g, servers in groups.items():
        w(f"upstream {g} {{")
        for s in servers:
            w(f"    {s}")
        w("    keepalive 64;")
        w("}")
    # the canonical path, and what is refused
    w("map $uri $strangler_path {")
    w('    "~^[^;]*$" $uri;')
    # ';' parameters in up to PARAM_SEGMENTS segments dropped (nginx has no global replace:
    # one regex per count); a path with more is refused 400 (the export says so)
    for n in range(1, PARAM_SEGMENTS + 1):
        parts = "".join(f"(?<strangler_p{i}>{'' if i == 1 else '/'}[^;]*);[^/]*" for i in range(1, n + 1))
        w(f'    "~^{parts}(?<strangler_p{n + 1}>/[^;]*)?$" {"".join(f"$strangler_p{i}" for i in range(1, n + 2))};')
    w('    default "";')
    w("}")
    # an absolute-form target (GET http://other/...) would name the host nginx matches on:
    # refused, as strangler refuses every target that is not a path (or OPTIONS *)
    w("map $request $strangler_not_path {")
    w('    "~^[^ ]+ /" 0;')
    w('    "~^OPTIONS \\* " 0;')
    w("    default 1;")
    w("}")
    w("map $strangler_path $strangler_refuse {")
    w('    "" 1;')
    w(r'    "~[\x00-\x1f\x7f\x5c]" 1;')  # as strangler: control characters, backslash,
    w(r'    "~[. ](?:/|$)" 1;')  # a segment ending in '.' or ' ' (a tab is a control character),
    w(r'    "~:[$]" 1;')  # an NTFS stream (::$DATA)
    w("    default 0;")
    w("}")
    for e in regexes:
        w(f"map $strangler_path $strangler_rx{e.index} {{")
        w(f"    {_q_regex(e.pattern, e.case_insensitive)} 1;")
        w("    default 0;")
        w("}")
    source = "\\n".join(["$request_method", "$host", *(_var(h) for h in headers),
                          "".join(f"$strangler_rx{e.index}" for e in regexes), "$strangler_path"])
    w(f'map "{source}" $strangler_module {{')
    for e in entries:
        w(f"    {_q_regex(_entry_regex(e, headers, regexes))} {e.module.name};")
    w('    default "";')
    w("}")
    # cohort id, pin, side
    # a quoted value ("id", RFC 6265's cookie-value) is the same id, as strangler reads it
    w(f"map $cookie_{cookie} $strangler_cohort_id {{")
    w('    "~^\\"*(?<strangler_cid>[0-9a-f]{32})\\"*$" $strangler_cid;')
    w("    default $request_id;")
    w("}")
    if pins:
        hv = _var(table.pin.header) if table.pin.header else '""'
        cv = f"$cookie_{table.pin.cookie}" if table.pin.cookie else '""'
        w(f"map {hv} $strangler_pin {{")
        w(f"    \"\" {cv};")
        w(f"    default {hv};")
        w("}")
    w('map "$strangler_module\\n$strangler_pin_value\\n$strangler_cohort_id" $strangler_target {')
    for m in table.modules:
        for regex, group in _side_rules(m, table, pins):
            w(f"    {_q_regex(regex)} {group};")
    w(f"    default {_up('legacy')};")
    w("}")
    # the cohort cookie: set by a canary module's response to a request without one
    canary = [m.name for m in table.modules if m.stage == "canary"]
    attrs = cookie_attributes(table)
    w(f'map "$strangler_module\\n$cookie_{cookie}" $strangler_set_cohort {{')
    for name in canary:
        w(f'    "~^{literal(name)}\\n(?!\\"*[0-9a-f]{{32}}\\"*$)" "{cookie}=$request_id; {attrs}";')
    w('    default "";')
    w("}")
    mirror_rules = [r for m in table.modules for r in _mirror_rules(m, table)]
    if mirror_rules:
        w('map "$strangler_module\\n$request_method\\n$strangler_target\\n$request_id" $strangler_mirror {')
        for regex, group in mirror_rules:
            w(f"    {_q_regex(regex)} {group};")
        w('    default "";')
        w("}")
    w('map $http_via $strangler_via { "" "1.1 strangler"; default "$http_via, 1.1 strangler"; }')
    w('map $http_upgrade $strangler_connection { "" ""; default "upgrade"; }')
    # timeouts: one named location per (connect, response head) pair
    classes: dict[tuple[float, float], list[str]] = {}
    for g, (connect, head) in _group_timeouts(table).items():
        classes.setdefault((connect, head), []).append(g)
    ordered = sorted(classes.items(), key=lambda kv: -len(kv[1]))
    w("map $strangler_target $strangler_class {")
    for i, (_, gs) in enumerate(ordered[1:], start=1):
        for g in gs:
            w(f"    {g} {i};")
    w("    default 0;")
    w("}")
    if access_log:  # what the release controller reads: each request's module, side and outcome
        w("log_format strangler_json escape=json '{\"module\":\"$strangler_module\",\"target\":\"$strangler_target\","
          "\"status\":$status,\"upstream_status\":\"$upstream_status\",\"upstream_addr\":\"$upstream_addr\","
          "\"request_time\":$request_time}';")
    w("server {")
    w(f"    listen {listen};")
    if access_log:
        w(f'    access_log "{access_log}" strangler_json;')  # a checked path (no quote, $, ; or control character)
    if table.server_names:
        w(f"    server_name {' '.join(table.server_names)};")
    lim = table.limits
    # one buffer the size of the limit: any one header up to it, and the whole head within
    # it (nginx moves a head that outgrows its first 1k buffer into the large one)
    w(f"    large_client_header_buffers 1 {max(lim.max_request_line, lim.max_header_bytes) // 1024 + 1}k;")
    w(f"    client_header_timeout {millis(lim.header_timeout)};")
    w(f"    client_body_timeout {millis(lim.body_timeout)};")
    w(f"    keepalive_timeout {millis(lim.keepalive_timeout)};")
    w("    client_max_body_size 0;")
    w("    set $strangler_pin_value \"\";" if not pins else "    set $strangler_pin_value $strangler_pin;")
    if mirror_rules:
        w("    set $strangler_mirror_to $strangler_mirror;")
    w("    proxy_http_version 1.1;")
    for line in _FORWARDING:
        w(f"    {line}")
    w('    proxy_set_header X-Strangler-Shadow "";')  # the proxy's own marker: never a client's (an empty value drops it)
    w("    proxy_next_upstream error timeout http_500 http_502 http_503 http_504;")
    w("    proxy_next_upstream_tries 2;")
    w("    proxy_buffering off;")
    for up in table.upstreams.values():
        w(f"    proxy_redirect {up.origin}/ /;")
    w("    add_header Set-Cookie $strangler_set_cohort always;")
    w("    location / {")
    w("        if ($strangler_refuse) { return 400; }")
    w("        if ($strangler_not_path) { return 400; }")
    for i in range(1, len(ordered)):
        w(f"        error_page {470 + i} = @strangler_class{i};")
        w(f'        if ($strangler_class = "{i}") {{ return {470 + i}; }}')
    if mirror_rules:
        w("        mirror /_strangler_mirror;")
        w("        mirror_request_body on;")
    (connect, head), _ = ordered[0]
    _proxy(w, connect, head)
    w("    }")
    for i, ((connect, head), _) in enumerate(ordered[1:], start=1):
        w(f"    location @strangler_class{i} {{")
        if mirror_rules:
            w("        mirror /_strangler_mirror;")
            w("        mirror_request_body on;")
        _proxy(w, connect, head)
        w("    }")
    if mirror_rules:
        timeout = max((m.shadow.timeout for m in table.modules if m.shadow), default=5.0)
        w("    location = /_strangler_mirror {")
        w("        internal;")
        w('        if ($strangler_mirror_to = "") { return 204; }')
        w(f"        proxy_connect_timeout {millis(timeout)};")
        w(f"        proxy_read_timeout {millis(timeout)};")
        w("        proxy_next_upstream off;")
        for line in _FORWARDING:  # a location's proxy_set_header replaces the server's: all of them again
            w(f"        {line}")
        w("        proxy_set_header X-Strangler-Shadow 1;")  # as strangler marks a mirror: a service can run it dry
        w("        proxy_pass http://$strangler_mirror_to$request_uri;")
        w("    }")
    w("}")
    return "\n".join(out) + "\n"


# what strangler's forwarding sets on every request it sends upstream
_FORWARDING = ("proxy_set_header Host $http_host;", "proxy_set_header Connection $strangler_connection;",
               "proxy_set_header Upgrade $http_upgrade;", "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
               "proxy_set_header X-Forwarded-Proto $scheme;", "proxy_set_header X-Forwarded-Host $http_host;",
               "proxy_set_header Via $strangler_via;")


def _proxy(w: Callable[[str], None], connect: float, head: float) -> None:
    w(f"        proxy_connect_timeout {millis(connect)};")
    w(f"        proxy_read_timeout {millis(head)};")
    w("        proxy_pass http://$strangler_target;")


def _servers(up: Upstream, backup: Upstream | None, table: RouteTable) -> tuple[str, ...]:
    b = table.breaker
    if backup is None:
        return (f"server {up.host}:{up.port} max_fails=0;",)
    first = f"server {up.host}:{up.port} max_fails={b.failures} fail_timeout={max(1, round(b.cooldown))}s;"
    return first, f"server {backup.host}:{backup.port} backup;"


def _group_timeouts(table: RouteTable) -> dict[str, tuple[float, float]]:
    out = {_up(n): (u.connect_timeout, u.timeout) for n, u in table.upstreams.items()}
    for m in table.modules:
        if m.stage in ("canary", "released", "retired"):
            svc = table.upstreams[m.service]
            out[_up(m.name) + "__new"] = (svc.connect_timeout, m.timeout or svc.timeout)
    return out


def _entry_regex(e: Entry, headers: Sequence[str], regexes: Sequence[Entry]) -> str:
    m = e.match
    parts = [("(?:" + "|".join(literal(x) for x in sorted(m.methods)) + ")") if m.methods else "[^\\n]*"]
    if m.hosts:
        parts.append(host_regex(m.hosts)[1:-1])
    else:
        parts.append("[^\\n]*")
    values = dict(m.headers)
    parts += [literal(values[h]) if h in values else "[^\\n]*" for h in headers]
    if e.kind == "regex":
        bits = "".join("1" if r.index == e.index else "[01]" for r in regexes)
        parts.append(bits)
        parts.append("[^\\n]*")
    else:
        parts.append("[01]" * len(regexes))
        parts.append(e.path_regex()[1:-1])
    return "^" + "\\n".join(parts) + "$"


def _side_rules(m: Module, table: RouteTable, pins: bool) -> list[tuple[str, str]]:
    name = f"^{literal(m.name)}\\n"
    legacy, new = _up(m.legacy), _up(m.name) + "__new"
    if m.stage in ("legacy", "shadow"):
        return [(name, legacy)]
    if m.stage == "retired":
        return [(name, new)]
    rules = []
    if pins:
        rules.append((name + pin_regex(m.name, "legacy", "\\n")[1:], legacy))
        rules.append((name + pin_regex(m.name, "new", "\\n")[1:], new))
    if m.stage == "released":
        return rules + [(name, new)]
    side = side_regex(m, table.cohort.buckets)
    if side is not None:
        rules.append((name + "[^\\n]*\\n" + side[1:], new))
    return rules + [(name, legacy)]


def _mirror_rules(m: Module, table: RouteTable) -> list[tuple[str, str]]:
    s = m.shadow
    if s is None or not (m.stage == "shadow" or (m.stage == "canary" and s.in_canary)):
        return []
    methods = "(?:" + "|".join(literal(x) for x in sorted(s.methods)) + ")"
    sample = "[0-9a-f]{32}" if s.percent >= 100 else "(?:" + hex_ranges_regex(
        [(0, round(s.percent * 65536 / 100) - 1)]) + ")[0-9a-f]{28}" if s.percent > 0 else None
    if sample is None:
        return []
    target = _up(m.legacy)
    return [(f"^{literal(m.name)}\\n{methods}\\n{target}\\n{sample}$", _up(m.service))]


def idempotence_warnings(table: RouteTable) -> list[str]:
    """Where a module's retry rule differs from nginx's fixed one."""
    out = []
    for m in table.modules:
        if m.stage not in ("canary", "released"):
            continue
        extra = sorted(NGINX_IDEMPOTENT - m.idempotent)
        if extra:
            out.append(f"module {m.name}: after a 5xx or a timeout nginx also retries {', '.join(extra)} on legacy "
                       f"(strangler retries only {', '.join(sorted(m.idempotent))})")
        if m.idempotency_key:
            out.append(f"module {m.name}: a POST with {m.idempotency_key} is not retried on legacy after a 5xx "
                       "(nginx cannot key retries on a header)")
    return out



# -- the running plane: apply (``FilePlane``) and the access log the release controller reads --

class NginxPlane(FilePlane):
    """nginx as the data plane: the export written, ``nginx -t``, reloaded; evidence from the
    JSON access log the export writes (``strangler_json`` above), read from where the last
    read stopped (a rotated log is read from its start)."""

    def __init__(self, spec: DataPlane, log: Callable[[str], None], render: Callable[[RouteTable], str]) -> None:
        super().__init__(spec, log, render)
        self._offset = 0
        self._inode: int | None = None

    def read(self, table: RouteTable) -> list[Observation]:
        if not self.spec.access_log:
            return []
        try:
            f = open(self.spec.access_log, "rb")
        except FileNotFoundError:
            return []
        with f:
            st = os.fstat(f.fileno())
            if st.st_ino != self._inode or st.st_size < self._offset:
                self._inode, self._offset = st.st_ino, 0  # a new or rotated log: from its start
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next read
        self._offset += end
        legacy = {f"{table.upstreams[m.legacy].host}:{table.upstreams[m.legacy].port}" for m in table.modules}
        return [o for line in data[:end].splitlines() for o in log_observations(line, legacy)]


def log_observations(line: bytes, legacy_addrs: set[str]) -> list[Observation]:
    """One ``strangler_json`` log line as what each side did: a request the service failed
    and legacy (its backup) then served is a new-side error and a legacy answer."""
    try:
        entry = json.loads(line)
    except ValueError:
        return []
    module = entry.get("module") or ""
    if not module or not isinstance(entry, dict):
        return []
    seconds = float(entry.get("request_time") or 0.0)
    failed = int(entry.get("status") or 0) >= 500
    if not str(entry.get("target", "")).endswith("__new"):
        return [Observation(module, "legacy", seconds, failed)]
    attempts = [a.strip() for a in str(entry.get("upstream_addr", "")).replace(" : ", ", ").split(",") if a.strip()]
    if len(attempts) > 1:  # the service failed, legacy (the backup) answered
        return [Observation(module, "service", 0.0, True), Observation(module, "legacy", seconds, failed)]
    if attempts and attempts[0] in legacy_addrs:  # the service is marked down (the breaker)
        return [Observation(module, "service", 0.0, True)]
    return [Observation(module, "service", seconds, failed)]
