"""The route table as Kubernetes objects: Gateway API ``HTTPRoute``s, or an Istio
``VirtualService`` with a ``DestinationRule`` per new service.

Each upstream is a Service: its host's first DNS label (and namespace, from
``name.namespace[.svc...]``), or, for an address that is no DNS name (``127.0.0.1``), the
upstream's name in the route file. A module's canary is three rules on the same match:

1. a well-formed cohort cookie whose id is on the new side (a ``Cookie`` header regex over
   the id's first four hex digits, the ranges strangler's hash gives) -> the service;
2. any other well-formed cohort cookie -> legacy;
3. no cookie: a weighted choice, each backend setting the cookie (a ``Set-Cookie`` per
   backend, as Flagger's session affinity does) to one of ``COHORT_SEEDS`` ids spread over
   its side, so the user sticks to the side it drew.

Istio rules are tried in order (``ordered_routes`` as it is); Gateway API ranks rules by its
own precedence, which agrees with strangler's except where the exporter warns.

Objects are named per module and per path pattern within it (``OWNER-MODULE-N``, N counting
the module's own patterns in its order), so adding, removing or reordering *other* modules
renames nothing; each carries ``app.kubernetes.io/managed-by: strangler`` and
``strangler.io/owner: OWNER``, the labels the Kubernetes plane prunes by.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

import yaml

from strangler_proxy.cohort import POSITIONS, new_side_ranges
from strangler_proxy.planes.table import COHORT_COOKIE, Entry, cookie_attributes, hex_ranges_regex, host_regex, literal, \
    ordered_routes
from strangler_proxy.model import Match, Module, RouteTable, Upstream

__all__ = ["COHORT_SEEDS", "MANAGED_BY", "OWNER", "KubeOptions", "dns_name", "entry_names", "render_gateway", "render_istio", "service_ref"]

COHORT_SEEDS = 8  # ids set per side to cookie-less users (more is finer for other modules, longer YAML)
MANAGED_BY = "app.kubernetes.io/managed-by"
OWNER = "strangler.io/owner"
MODULE = "strangler.io/module"


class _Dumper(yaml.SafeDumper):
    """Plain YAML: shared values written out again, never as anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(docs: list[dict[str, Any]]) -> str:
    return yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False)


@dataclass(frozen=True, slots=True)
class KubeOptions:
    namespace: str = "default"
    gateway: str | None = None  # Gateway API parentRef (a Gateway's name); None: the legacy Service (GAMMA, mesh)
    gateway_namespace: str | None = None
    hosts: tuple[str, ...] = ()  # Istio VirtualService hosts; default: the legacy Service's name
    istio_gateways: tuple[str, ...] = ()  # Istio gateways the VirtualService binds to (none: the mesh)
    owner: str = "strangler"  # the objects' name prefix and owner label: what the plane may prune

    def labels(self, module: str | None = None) -> dict[str, str]:
        return {MANAGED_BY: "strangler", OWNER: self.owner, **({MODULE: dns_name(module)} if module is not None else {})}


def entry_names(entries: list[Entry], owner: str) -> dict[int, str]:
    """A stable name per entry: ``OWNER-MODULE-N``, N counting the module's own entries."""
    seen: dict[str, int] = {}
    out: dict[int, str] = {}
    for e in entries:
        n = seen[e.module.name] = seen.get(e.module.name, 0) + 1
        out[e.index] = f"{owner}-{dns_name(e.module.name)}-{n}"
    return out


def service_ref(name: str, up: Upstream, namespace: str) -> tuple[str, str, int]:
    """(Service name, namespace, port) for an upstream."""
    host = up.host
    try:
        ipaddress.ip_address(host.strip("[]"))
        is_ip = True
    except ValueError:
        is_ip = False
    if is_ip or host == "localhost" or "." not in host and not host.replace("-", "").isalnum():
        return name.lower().replace("_", "-").replace(".", "-"), namespace, up.port
    labels = host.split(".")
    ns = labels[1] if len(labels) > 1 and (len(labels) == 2 or labels[2] == "svc") else namespace
    return labels[0], ns, up.port


def _seed_ids(ranges: list[tuple[int, int]]) -> list[str]:
    """``COHORT_SEEDS`` cohort ids spread evenly over the hex-prefix values in ``ranges``."""
    total = sum(hi - lo + 1 for lo, hi in ranges)
    if total <= 0:
        return []
    out = []
    for i in range(COHORT_SEEDS):
        k = (2 * i + 1) * total // (2 * COHORT_SEEDS)
        for lo, hi in ranges:
            if k <= hi - lo:
                out.append(f"{lo + k:04x}" + "0" * 24 + f"{i:04x}")
                break
            k -= hi - lo + 1
    return out


def _legacy_ranges(new: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, start = [], 0
    for lo, hi in sorted(new):
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start < POSITIONS:
        out.append((start, POSITIONS - 1))
    return out


def _cookie_regex(cookie: str, id_regex: str) -> str:
    """A whole-header (RE2) regex for a ``Cookie`` header carrying ``cookie`` with an id
    (quoted or not, as strangler reads it)."""
    return f"^(?:.*;\\s*)?{literal(cookie)}=\"*(?:{id_regex})\"*(?:;.*)?$"


def _cohort(table: RouteTable, m: Module) -> tuple[str, str | None, list[str], list[str]]:
    """(any-valid-id cookie regex, new-side cookie regex or None, new seeds, legacy seeds)."""
    cookie = table.cohort.cookie.name if table.cohort.cookie else COHORT_COOKIE
    ranges = new_side_ranges(m.name, m.weight, table.cohort.buckets)
    rx = hex_ranges_regex(ranges)
    new = _cookie_regex(cookie, f"(?:{rx})[0-9a-f]{{28}}") if rx else None
    return _cookie_regex(cookie, "[0-9a-f]{32}"), new, _seed_ids(ranges), _seed_ids(_legacy_ranges(ranges))


def _pins(table: RouteTable, m: Module) -> list[tuple[str, str, str]]:
    """(header name, RE2 whole-value regex, "new" or "legacy") for a module's unsigned pins,
    legacy first. RE2 has no lookahead: a value naming the module twice with both sides
    is read by the first rule that matches, not by its first part (the export warns)."""
    if table.pin.secret is not None or m.stage not in ("canary", "released"):
        return []
    name = literal(m.name)
    specs = [(side, rf"(?:[^,]*,)*[ \t]*(?:{name}[ \t]*=[ \t]*)?(?i:{words})[ \t]*")
             for side, words in (("legacy", "legacy"), ("new", "new|service"))]
    out = []
    if table.pin.header:  # the header first, as strangler reads it
        out += [(table.pin.header, f"^{spec}(?:,.*)?$", side) for side, spec in specs]
    if table.pin.cookie:
        out += [("cookie", rf"^(?:.*;\s*)?{literal(table.pin.cookie)}={spec}(?:[,;].*)?$", side) for side, spec in specs]
    return out


def _set_cookie(table: RouteTable, cid: str) -> str:
    cookie = table.cohort.cookie.name if table.cohort.cookie else COHORT_COOKIE
    return f"{cookie}={cid}; {cookie_attributes(table)}"


def _regex_path(e: Entry) -> str:
    """An RE2 full-match regex for a strangler ``path_regex`` (searched, not anchored)."""
    body = f".*(?:{e.pattern}).*"
    return f"(?i){body}" if e.case_insensitive else body


def _weights(weight: float) -> tuple[int, int]:
    """(new, legacy) integer weights in basis points."""
    new = max(0, min(10_000, round(weight * 100)))
    return new, 10_000 - new


# ---------------------------------------------------------------- Gateway API

def _gw_path(e: Entry) -> dict[str, str]:
    if e.kind == "regex":
        return {"type": "RegularExpression", "value": _regex_path(e)}
    if e.case_insensitive:
        return {"type": "RegularExpression", "value": "(?i)" + e.path_regex()[1:-1]}
    return {"type": "Exact" if e.kind == "exact" else "PathPrefix", "value": e.pattern}


def _gw_matches(e: Entry, extra: list[dict[str, str]]) -> list[dict[str, Any]]:
    m = e.match
    base: dict[str, Any] = {"path": _gw_path(e)}
    headers = [{"type": "Exact", "name": n, "value": v} for n, v in m.headers] + extra
    if headers:
        base["headers"] = headers
    if not m.methods:
        return [base]
    return [{**base, "method": meth} for meth in sorted(m.methods)]


def _backend(table: RouteTable, opts: KubeOptions, upstream: str, weight: int | None = None,
             cookie: str | None = None) -> dict[str, Any]:
    name, ns, port = service_ref(upstream, table.upstreams[upstream], opts.namespace)
    ref: dict[str, Any] = {"name": name, "port": port}
    if ns != opts.namespace:
        ref["namespace"] = ns
    if weight is not None:
        ref["weight"] = weight
    if cookie is not None:
        ref["filters"] = [{"type": "ResponseHeaderModifier",
                           "responseHeaderModifier": {"add": [{"name": "Set-Cookie", "value": cookie}]}}]
    return ref


def _gw_rules(table: RouteTable, opts: KubeOptions, e: Entry) -> list[dict[str, Any]]:
    m = e.module
    legacy = [_backend(table, opts, m.legacy)]
    new = [_backend(table, opts, m.service)]
    if m.stage in ("legacy", "shadow"):
        rule: dict[str, Any] = {"matches": _gw_matches(e, []), "backendRefs": legacy}
        methods = _mirrored_methods(e)
        if not methods:
            return [rule]
        # the mirror only for the shadow's methods (safe ones unless 'writes'), as strangler: a rule whose
        # matches name a method, which the spec ranks before the same match without one
        base = {k: v for k, v in _gw_matches(e, [])[0].items() if k != "method"}
        mirrored = {"matches": [{**base, "method": meth} for meth in methods], "backendRefs": legacy,
                    "filters": [_gw_mirror(table, opts, m)]}
        covered = bool(e.match.methods) and set(e.match.methods) <= set(methods)  # every method it matches is mirrored
        return [mirrored] if covered else [mirrored, rule]
    rules = [{"matches": _gw_matches(e, [{"type": "RegularExpression", "name": h, "value": rx}]),
              "backendRefs": new if side == "new" else legacy} for h, rx, side in _pins(table, m)]
    if m.stage in ("released", "retired"):
        return rules + [{"matches": _gw_matches(e, []), "backendRefs": new}]
    any_id, new_id, new_seeds, legacy_seeds = _cohort(table, m)
    if new_id is not None:
        rules.append({"matches": _gw_matches(e, [{"type": "RegularExpression", "name": "Cookie", "value": new_id}]),
                      "backendRefs": new})
    rules.append({"matches": _gw_matches(e, [{"type": "RegularExpression", "name": "Cookie", "value": any_id}]),
                  "backendRefs": legacy})
    wn, wl = _weights(m.weight)
    refs = [_backend(table, opts, m.service, wn // len(new_seeds) + (i < wn % len(new_seeds)), _set_cookie(table, c))
            for i, c in enumerate(new_seeds)] if wn else []
    refs += [_backend(table, opts, m.legacy, wl // len(legacy_seeds) + (i < wl % len(legacy_seeds)), _set_cookie(table, c))
             for i, c in enumerate(legacy_seeds)] if wl else []
    rules.append({"matches": _gw_matches(e, []), "backendRefs": refs})
    return rules


def _mirrored_methods(e: Entry) -> list[str]:
    """The methods a shadow module mirrors on this entry (the match's own methods, if it names any, among them)."""
    m = e.module
    if m.stage != "shadow" or m.shadow is None:
        return []
    methods = set(m.shadow.methods)
    return sorted(methods & set(e.match.methods) if e.match.methods else methods)


def _gw_mirror(table: RouteTable, opts: KubeOptions, m: Module) -> dict[str, Any]:
    name, ns, port = service_ref(m.service, table.upstreams[m.service], opts.namespace)
    ref: dict[str, Any] = {"name": name, "port": port}
    if ns != opts.namespace:
        ref["namespace"] = ns
    mirror: dict[str, Any] = {"backendRef": ref}
    if m.shadow is not None and m.shadow.percent < 100:
        mirror["percent"] = max(0, min(100, round(m.shadow.percent)))
    return {"type": "RequestMirror", "requestMirror": mirror}


def render_gateway(table: RouteTable, opts: KubeOptions, warnings: list[str]) -> str:
    warnings.append("fallback: Gateway API cannot resend a failed request to another backend: a refused or failing "
                    "service is not replaced by legacy (use the implementation's retries and outlier detection)")
    warnings.append("paths: ';' parameters are part of the path for Gateway API; strangler drops them before matching")
    if any(mt.hosts for m in table.modules for mt in m.matches):
        warnings.append("hosts: Gateway API ranks a route whose hostname matches more precisely (an exact name before a "
                        "wildcard, a hostname before none) before any path precedence; strangler ranks the path first "
                        "and takes hosts as one more condition")
    _gateway_precedence_warnings(table, warnings)
    _pin_warnings(table, warnings)
    if opts.gateway:
        parent: dict[str, Any] = {"name": opts.gateway}
        if opts.gateway_namespace:
            parent["namespace"] = opts.gateway_namespace
    else:
        name, ns, port = service_ref("legacy", table.upstreams["legacy"], opts.namespace)
        parent = {"group": "", "kind": "Service", "name": name, "port": port}
        if ns != opts.namespace:
            parent["namespace"] = ns
    docs: list[dict[str, Any]] = []
    # one HTTPRoute per entry, named per module (stable when other modules come and go);
    # ties between modules' routes are warned about (Gateway API gives them to the oldest)
    entries = ordered_routes(table.modules)
    names = entry_names(entries, opts.owner)
    for e in entries:
        spec: dict[str, Any] = {"parentRefs": [parent]}
        if e.match.hosts:
            spec["hostnames"] = list(e.match.hosts)
        spec["rules"] = _gw_rules(table, opts, e)
        docs.append({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                     "metadata": {"name": names[e.index], "namespace": opts.namespace, "labels": opts.labels(e.module.name)},
                     "spec": spec})
    docs.append({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                 "metadata": {"name": f"{opts.owner}-legacy", "namespace": opts.namespace, "labels": opts.labels()},
                 "spec": {"parentRefs": [parent],
                          "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                     "backendRefs": [_backend(table, opts, "legacy")]}]}})
    return dump(docs)


def _gateway_precedence_warnings(table: RouteTable, warnings: list[str]) -> None:
    seen: dict[tuple[str, str], list[Match]] = {}
    for e in ordered_routes(table.modules):
        if e.kind == "regex" or e.case_insensitive:
            what = f"path_regex {e.pattern!r}" if e.kind == "regex" else f"case-insensitive {e.kind} path {e.pattern}"
            warnings.append(f"module {e.module.name}: {what} is exported as a RegularExpression match, whose support and "
                            "precedence (against the PathPrefix rules, the legacy catch-all included) are "
                            "implementation-specific in Gateway API")
            continue
        seen.setdefault((e.kind, e.pattern), []).append(e.match)
    for (kind, pattern), matches in seen.items():
        if len(matches) > 1 and len({(bool(mt.methods), len(mt.headers), mt.conditions) for mt in matches}) > 1:
            warnings.append(f"{kind} path {pattern}: several blocks with different conditions; Gateway API ranks a "
                            "method before header counts, strangler counts all conditions alike")
    ties: dict[tuple[str, str, bool, int, tuple[str, ...]], list[str]] = {}
    for e in ordered_routes(table.modules):
        if e.kind != "regex" and not e.case_insensitive:
            key = (e.kind, e.pattern, bool(e.match.methods), len(e.match.headers), e.match.hosts)
            ties.setdefault(key, [])
            if e.module.name not in ties[key]:
                ties[key].append(e.module.name)
    for (kind, pattern, *_), modules in ties.items():
        if len(modules) > 1:
            warnings.append(f"{kind} path {pattern}: modules {', '.join(modules)} match it with as many conditions; "
                            "Gateway API gives a request both could take to the oldest HTTPRoute (then the first name), "
                            f"strangler to {modules[0]} (the first in the file): give them distinct conditions")


def _pin_warnings(table: RouteTable, warnings: list[str]) -> None:
    if any(m.stage == "canary" for m in table.modules):
        warnings.append("cohorts: a request carrying two cohort cookies may match on either (no lookahead in RE2); "
                        "strangler reads the first")
    if not (table.pin.header or table.pin.cookie):
        return
    if table.pin.secret is not None:
        warnings.append("pins: signed pins need an HMAC the target cannot compute: not exported")
    else:
        warnings.append("pins: a value naming one module with both sides ('legacy,cases=new') takes the legacy side "
                        "(no lookahead in RE2; strangler takes the first part), and a pin cookie counts even when a pin "
                        "header for other modules is present (strangler then reads only the header)")


def dns_name(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


# ---------------------------------------------------------------- Istio

def _istio_uri(e: Entry) -> list[dict[str, Any]]:
    if e.kind == "regex":
        return [{"uri": {"regex": _regex_path(e)}}]
    if e.case_insensitive:
        return [{"uri": {"regex": "(?i)" + e.path_regex()[1:-1]}}]
    if e.kind == "exact":
        return [{"uri": {"exact": e.pattern}}]
    if e.pattern == "/":
        return [{"uri": {"prefix": "/"}}]
    return [{"uri": {"exact": e.pattern}}, {"uri": {"prefix": e.pattern + "/"}}]


def _istio_matches(e: Entry, cookie_regex: str | None, pin: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    m = e.match
    extra: dict[str, Any] = {}
    headers: dict[str, dict[str, str]] = {n: {"exact": v} for n, v in m.headers}
    if cookie_regex is not None:
        headers["cookie"] = {"regex": cookie_regex}
    if pin is not None:
        headers[pin[0]] = {"regex": pin[1]}
    if headers:
        extra["headers"] = headers
    if m.hosts:
        # host names are case-insensitive (strangler lowers them); Istio's regex is not: (?i)
        extra["authority"] = {"regex": "(?i)" + host_regex(m.hosts)[1:-1] + "\\.?(?::[0-9]*)?"}
    out = []
    for uri in _istio_uri(e):
        if m.methods:
            out += [{**uri, **extra, "method": {"exact": meth}} for meth in sorted(m.methods)]
        else:
            out.append({**uri, **extra})
    return out


def _dest(table: RouteTable, opts: KubeOptions, upstream: str) -> dict[str, Any]:
    name, ns, port = service_ref(upstream, table.upstreams[upstream], opts.namespace)
    return {"host": f"{name}.{ns}.svc.cluster.local", "port": {"number": port}}


def _istio_routes(table: RouteTable, opts: KubeOptions, e: Entry, name: str) -> list[dict[str, Any]]:
    m = e.module
    legacy = [{"destination": _dest(table, opts, m.legacy)}]
    new = [{"destination": _dest(table, opts, m.service)}]
    if m.stage in ("legacy", "shadow"):
        r: dict[str, Any] = {"name": name, "match": _istio_matches(e, None), "route": legacy}
        methods = _mirrored_methods(e)
        if not methods:
            return [r]
        # first match wins: the shadow's methods (safe ones unless 'writes') are mirrored, the rest is not
        mirrored = [{**x, "method": {"exact": meth}} for x in _istio_matches(e, None) if "method" not in x for meth in methods]
        mirrored += [x for x in _istio_matches(e, None) if "method" in x and x["method"]["exact"] in methods]
        return [{"name": f"{name}-shadow", "match": mirrored, "route": legacy, "mirror": _dest(table, opts, m.service),
                 "mirrorPercentage": {"value": float(m.shadow.percent)}}, r]  # type: ignore[union-attr]
    retries = {"attempts": 1, "retryOn": "connect-failure,refused-stream,reset"}
    out: list[dict[str, Any]] = []
    for i, (h, rx, side) in enumerate(_pins(table, m)):
        r = {"name": f"{name}-pin{i}", "match": _istio_matches(e, None, (h.lower(), rx)), "route": new if side == "new" else legacy}
        out.append({**r, "retries": retries} if side == "new" else r)
    if m.stage in ("released", "retired"):
        return out + [{"name": name, "match": _istio_matches(e, None), "route": new, "retries": retries}]
    any_id, new_id, new_seeds, legacy_seeds = _cohort(table, m)
    if new_id is not None:
        out.append({"name": name + "-new", "match": _istio_matches(e, new_id), "route": new, "retries": retries})
    out.append({"name": name + "-legacy", "match": _istio_matches(e, any_id), "route": legacy})
    wn, wl = _weights(m.weight)
    route = []
    for seeds, up, total in ((new_seeds, m.service, wn), (legacy_seeds, m.legacy, wl)):
        if not total:
            continue
        for i, cid in enumerate(seeds):
            route.append({"destination": _dest(table, opts, up), "weight": total // len(seeds) + (i < total % len(seeds)),
                          "headers": {"response": {"add": {"Set-Cookie": _set_cookie(table, cid)}}}})
    out.append({"name": name + "-draw", "match": _istio_matches(e, None), "route": route})
    return out


def render_istio(table: RouteTable, opts: KubeOptions, warnings: list[str]) -> str:
    warnings.append("fallback: Istio cannot resend a failed request to another service: a refused or failing service is "
                    "retried once on itself (connect-failure, refused-stream, reset) and ejected by outlier detection "
                    "(the DestinationRule: the circuit breaker's failures and cooldown), not replaced by legacy")
    warnings.append("paths: ';' parameters are part of the path for Istio; strangler drops them before matching")
    warnings.append("weights: Istio weights are in basis points of 10,000 here (strangler's are exact percentages)")
    _pin_warnings(table, warnings)
    legacy_name, legacy_ns, _ = service_ref("legacy", table.upstreams["legacy"], opts.namespace)
    http: list[dict[str, Any]] = []
    entries = ordered_routes(table.modules)
    names = entry_names(entries, opts.owner)
    for e in entries:
        http += _istio_routes(table, opts, e, names[e.index][len(opts.owner) + 1:])
    http.append({"name": "legacy", "route": [{"destination": _dest(table, opts, "legacy")}]})
    spec: dict[str, Any] = {"hosts": list(opts.hosts) or [f"{legacy_name}.{legacy_ns}.svc.cluster.local"]}
    if opts.istio_gateways:
        spec["gateways"] = list(opts.istio_gateways)
    spec["http"] = http
    docs: list[dict[str, Any]] = [{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                                   "metadata": {"name": opts.owner, "namespace": opts.namespace, "labels": opts.labels()},
                                   "spec": spec}]
    b = table.breaker
    for up_name in sorted({m.service for m in table.modules}):
        name, ns, _ = service_ref(up_name, table.upstreams[up_name], opts.namespace)
        up = table.upstreams[up_name]
        policy: dict[str, Any] = {
            "connectionPool": {"tcp": {"connectTimeout": f"{round(up.connect_timeout * 1000)}ms"},
                               "http": {"maxRequestsPerConnection": 0, "idleTimeout": f"{round(up.read_timeout)}s"}},
            "outlierDetection": {"consecutive5xxErrors": b.failures, "interval": "1s",
                                 "baseEjectionTime": f"{round(b.cooldown)}s", "maxEjectionPercent": 100},
        }
        if up.tls is not None:
            tls: dict[str, Any] = {"mode": "SIMPLE", "sni": up.server_hostname}
            if up.tls.ca:
                tls["caCertificates"] = up.tls.ca
            if not up.tls.verify:
                tls["insecureSkipVerify"] = True
            policy["tls"] = tls
        docs.append({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                     "metadata": {"name": f"{opts.owner}-{dns_name(up_name)}", "namespace": opts.namespace, "labels": opts.labels()},
                     "spec": {"host": f"{name}.{ns}.svc.cluster.local", "trafficPolicy": policy}})
    return dump(docs)
