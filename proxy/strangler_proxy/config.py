"""The route file parser: YAML into the immutable values of ``model``, with precise errors.

A minimal table::

    upstreams:
      legacy: http://127.0.0.1:8080
      cases-service: http://127.0.0.1:9001
    modules:
      cases:
        match: {path_prefix: [/cases, /api/cases]}
        service: cases-service
        stage: canary
        weight: 25

``legacy`` receives everything no module claims. The full format is documented in
``routes/README.md`` and published as ``schemas/routes.schema.json``.
"""

from __future__ import annotations

import importlib
import os
import re
import ssl
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Literal
from urllib.parse import urlsplit

from strangler_common import ConfigError, Location, Node, load_yaml_documents
from strangler_common.oserr import os_reason

from strangler_proxy.clientip import Network, parse_networks
from strangler_proxy.errors import RouteConfigError
from strangler_proxy.external import DataPlane, parse_data_plane
from strangler_proxy.limits import Limits, parse_limits
from strangler_proxy.grammar import TOKEN_TEXT, is_field_value, is_host, is_host_pattern, is_path, is_token
from strangler_proxy.model import (
    HTTP_METHODS, SAFE_METHODS, STAGES, Breaker, Cohort, CohortCookie, CohortSource, Match, Module, Pin, ReleasePlan, ReleaseThresholds,
    RouteTable, Shadow, Upstream, UpstreamTLS, Webhook,
)
from strangler_proxy.shadow.compare import DEFAULT_IGNORED_HEADERS, Rules

__all__ = ["load_routes", "routes_from_text"]  # public (the CLI's and loadtests' imports are checked against it)

TOP_KEYS = {"upstreams", "modules", "cohort", "pin", "breaker", "fallback", "limits", "server_names", "trusted_proxies",
            "data_plane"}
MODULE_KEYS = {"match", "service", "stage", "weight", "legacy", "idempotent", "idempotency_key", "timeout", "description",
               "shadow", "shadow_percent", "release", "retire_window"}
RELEASE_KEYS = {"steps", "interval", "analysis", "failure_limit", "rollback", "webhooks"}
ANALYSIS_KEYS = {"error_rate_margin", "p99_factor", "p99_floor_ms", "shadow_gate", "min_requests"}
SHADOW_KEYS = {"percent", "writes", "methods", "max_body", "max_response", "timeout", "queue", "concurrency", "in_canary",
               "noise", "thresholds", "compare", "samples", "redact", "min_samples"}
COMPARE_KEYS = {"ignore_headers", "ignore", "unordered", "tolerance", "hook"}
MATCH_KEYS = {"path", "path_prefix", "path_regex", "methods", "hosts", "headers", "case_insensitive"}
UPSTREAM_KEYS = {"url", "connect_timeout", "timeout", "max_idle", "read_timeout", "send_timeout", "tls"}
TLS_KEYS = {"ca", "verify", "server_name", "cert", "key"}


MAX_ROUTE_FILE_BYTES = 16 << 20  # 10,000 modules take about 2 MiB


def load_routes(path: str | Path) -> RouteTable:
    """Read and validate a route file; every error names the file, line and key."""
    try:
        size = Path(path).stat().st_size
    except OSError as exc:
        raise RouteConfigError(Location(str(path)), f"cannot read file: {exc.strerror}") from None
    if size > MAX_ROUTE_FILE_BYTES:
        raise RouteConfigError(Location(str(path)), f"the route file is {size / (1 << 20):.1f} MiB; the limit is "
                                                    f"{MAX_ROUTE_FILE_BYTES >> 20} MiB")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RouteConfigError(Location(str(path)), f"cannot read file: {os_reason(exc)}") from None
    return routes_from_text(text, str(path))


def routes_from_text(text: str, source: str) -> RouteTable:
    """A route file's text, read as ``load_routes`` reads the file ``source`` (relative
    paths in it are the file's): how workers take the table their leader accepted."""
    path = source
    try:
        docs = load_yaml_documents(text, source)
    except ConfigError as exc:
        raise RouteConfigError(exc.location, exc.message) from None
    if len(docs) != 1:
        raise RouteConfigError(Location(str(path), 1), f"expected exactly one YAML document, found {len(docs)}")
    try:
        return parse_routes(docs[0], str(path))
    except RouteConfigError:
        raise
    except ConfigError as exc:
        raise RouteConfigError(exc.location, exc.message) from None
    except Exception as exc:  # a file must never crash a reload or 'routes check': say what, in one line
        raise RouteConfigError(Location(str(path)), f"cannot be read: {type(exc).__name__}: {exc}") from None


def parse_routes(doc: object, source: str) -> RouteTable:
    root = Node.root(doc, source)
    top = root.mapping(TOP_KEYS)
    if "upstreams" not in top:
        root.fail("expected an 'upstreams' mapping with at least 'legacy'")
    upstreams = {name: _upstream(name, node) for name, node in top["upstreams"].items()}
    if "legacy" not in upstreams:
        top["upstreams"].fail("expected an upstream named 'legacy': it receives everything no module claims")
    modules = tuple(_module(name, node, upstreams) for name, node in (top["modules"].items() if "modules" in top else []))
    _check_ambiguous(modules, top.get("modules"))
    fallback = top["fallback"].mapping({"body_limit"}) if "fallback" in top else {}
    return RouteTable(
        source=source,
        upstreams=MappingProxyType(upstreams),
        modules=modules,
        cohort=_cohort(top["cohort"]) if "cohort" in top else Cohort(),
        pin=_pin(top["pin"]) if "pin" in top else Pin(),
        breaker=_breaker(top["breaker"]) if "breaker" in top else Breaker(),
        fallback_body_limit=fallback["body_limit"].integer(0) if "body_limit" in fallback else 1 << 20,
        limits=parse_limits(top["limits"]) if "limits" in top else Limits(),
        server_names=tuple(_host_pattern(h) for h in top["server_names"].sequence_or_one()) if "server_names" in top else (),
        trusted_proxies=_networks(top["trusted_proxies"]) if "trusted_proxies" in top else (),
        data_plane=parse_data_plane(top["data_plane"]) if "data_plane" in top else DataPlane(),
    )


# host[:port] as urlsplit leaves it: nothing between the host and the port (no ';server ...')
_AUTHORITY = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[^:/?#\[\]@\s]+)(?::[0-9]{1,5})?")


def _token(node: Node, what: str) -> str:
    """A header or cookie name: an RFC 9110 token, refused at its line otherwise."""
    text = node.string(what)
    if not is_token(text):
        node.fail(f"expected {what}, {TOKEN_TEXT}, found {text!r}")
    return text


def _host_pattern(node: Node) -> str:
    """A host name or address, or ``*.suffix``, lower case."""
    text = node.string("a host name")
    if not is_host_pattern(text):
        node.fail(f"expected a host name or address (or *.suffix), found {text!r}")
    return text.lower()


def _networks(node: Node) -> tuple[Network, ...]:
    out: list[Network] = []
    for item in node.sequence_or_one():
        try:
            out += parse_networks([item.string("a CIDR such as 10.0.0.0/8")])
        except ValueError as exc:
            item.fail(f"expected a CIDR such as 10.0.0.0/8 or an address, found {item.value!r} ({exc})")
    return tuple(out)


def _upstream(name: str, node: Node) -> Upstream:
    fields = node.mapping(UPSTREAM_KEYS) if isinstance(node.value, dict) else {"url": node}
    if "url" not in fields:
        node.fail("expected 'url'")
    url_node = fields["url"]
    url = url_node.string("an http:// or https:// URL")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        url_node.fail(f"expected an http://host:port or https://host:port URL, found {url!r}")
    if not is_host(parts.hostname) or "@" in parts.netloc or not _AUTHORITY.fullmatch(parts.netloc):
        url_node.fail(f"expected an http://host:port or https://host:port URL (a host name or address, no user), "
                      f"found {url!r}")
    if parts.path not in ("", "/") or parts.query:
        url_node.fail(f"expected no path in the upstream URL, found {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        url_node.fail(f"invalid port in {url!r}")
    if "tls" in fields and parts.scheme != "https":
        fields["tls"].fail("tls applies to https:// upstreams only")
    tls = _tls(fields.get("tls"), node.file) if parts.scheme == "https" else None
    return Upstream(
        name=name,
        scheme="https" if parts.scheme == "https" else "http",
        host=parts.hostname,
        port=port,
        connect_timeout=fields["connect_timeout"].number(0.001) if "connect_timeout" in fields else 3.0,
        timeout=fields["timeout"].number(0.001) if "timeout" in fields else 30.0,
        max_idle=fields["max_idle"].integer(0) if "max_idle" in fields else 128,
        read_timeout=fields["read_timeout"].number(0.001) if "read_timeout" in fields else 60.0,
        send_timeout=fields["send_timeout"].number(0.001) if "send_timeout" in fields else 60.0,
        line=node.line,
        tls=tls,
    )


def _tls(node: Node | None, source: str) -> UpstreamTLS:
    """An upstream's TLS settings, and the one ``SSLContext`` every connection to it uses
    (built here, so a missing or bad file is an error at its line, not at the first request)."""
    f = node.mapping(TLS_KEYS) if node is not None else {}
    base = Path(source).parent

    def path(key: str) -> str | None:
        if key not in f:
            return None
        p = base / f[key].string("a file path")
        if not p.is_file():
            f[key].fail(f"file {p} not found")
        return str(p)

    ca, cert, key = path("ca"), path("cert"), path("key")
    verify = f["verify"].boolean() if "verify" in f else True
    if key is not None and cert is None:
        f["key"].fail("key needs cert (the client certificate it belongs to)")
    try:  # TLS 1.2+; trusting the system store, or with ca only that bundle (nginx's proxy_ssl_trusted_certificate)
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    except (ssl.SSLError, OSError) as exc:
        f["ca"].fail(f"cannot load {ca} as PEM CA certificates: {exc}")
    if cert is not None:
        try:
            context.load_cert_chain(cert, key)
        except (ssl.SSLError, OSError) as exc:
            f["cert"].fail(f"cannot load the client certificate {cert}" + (f" and key {key}" if key else "") + f": {exc}")
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    return UpstreamTLS(ca=ca, verify=verify, server_name=f["server_name"].string("a host name") if "server_name" in f else None,
                       cert=cert, key=key, context=context)


def _module(name: str, node: Node, upstreams: Mapping[str, Upstream]) -> Module:
    f = node.mapping(MODULE_KEYS)
    for key in ("match", "service", "stage"):
        if key not in f:
            node.fail(f"module {name} needs '{key}'")
    service = f["service"].string("an upstream name")
    if service not in upstreams:
        f["service"].fail(f"unknown upstream {service!r}; defined: {', '.join(sorted(upstreams))}")
    legacy = f["legacy"].string() if "legacy" in f else "legacy"
    if legacy not in upstreams:
        f["legacy"].fail(f"unknown upstream {legacy!r}; defined: {', '.join(sorted(upstreams))}")
    stage = f["stage"].choice(STAGES)
    if stage == "canary" and "weight" not in f:
        f["stage"].fail("a module in canary needs 'weight' (0-100)")
    weight = f["weight"].number(0, 100) if "weight" in f else (100.0 if stage in ("released", "retired") else 0.0)
    blocks = f["match"].sequence() if isinstance(f["match"].value, list) else [f["match"]]
    matches = tuple(_match(b) for b in blocks)
    idempotent = set(SAFE_METHODS)
    if "idempotent" in f:
        for m in f["idempotent"].sequence_or_one():
            idempotent.add(m.choice(HTTP_METHODS))
    return Module(
        name=name,
        matches=matches,
        service=service,
        stage=stage,  # type: ignore[arg-type]
        weight=weight,
        legacy=legacy,
        idempotent=frozenset(idempotent),
        idempotency_key=_token(f["idempotency_key"], "a header name").lower() if "idempotency_key" in f else None,
        timeout=f["timeout"].number(0.001) if "timeout" in f else None,
        shadow=_shadow(f, upstreams) if "shadow" in f or "shadow_percent" in f or stage == "shadow" or _plans_shadow(f) else None,
        release=_release(f["release"]) if "release" in f else None,
        retire_window=f["retire_window"].number(0) if "retire_window" in f else 3600.0,
        line=node.line,
    )


def _plans_shadow(f: dict[str, Node]) -> bool:
    steps = f["release"].value.get("steps") if "release" in f and isinstance(f["release"].value, dict) else None
    return isinstance(steps, list) and "shadow" in steps


def _release(node: Node) -> ReleasePlan:
    f = node.mapping(RELEASE_KEYS)
    if "steps" not in f:
        node.fail("a release plan needs 'steps', such as [shadow, 1, 5, 25, 50, 100]")
    steps: list[float | Literal["shadow"]] = []
    last = 0.0
    for i, item in enumerate(f["steps"].sequence("a list of steps")):
        if item.value == "shadow":
            if i != 0:
                item.fail("'shadow' can only be the first step")
            steps.append("shadow")
            continue
        weight = item.number(0, 100)
        if weight <= last:
            item.fail(f"expected weights increasing step by step, found {weight:g} after {last:g}")
        last = weight
        steps.append(weight)
    if not steps:
        f["steps"].fail("expected at least one step")
    a = f["analysis"].mapping(ANALYSIS_KEYS) if "analysis" in f else {}
    d = ReleaseThresholds()
    return ReleasePlan(
        steps=tuple(steps),
        interval=f["interval"].number(0.001) if "interval" in f else 30.0,
        analysis=ReleaseThresholds(
            error_rate_margin=a["error_rate_margin"].number(0, 1) if "error_rate_margin" in a else d.error_rate_margin,
            p99_factor=a["p99_factor"].number(1) if "p99_factor" in a else d.p99_factor,
            p99_floor_ms=a["p99_floor_ms"].number(0) if "p99_floor_ms" in a else d.p99_floor_ms,
            shadow_gate=a["shadow_gate"].number(0, 1) if "shadow_gate" in a else d.shadow_gate,
            min_requests=a["min_requests"].integer(1) if "min_requests" in a else d.min_requests,
        ),
        failure_limit=f["failure_limit"].integer(1) if "failure_limit" in f else 2,
        rollback=f["rollback"].choice(("legacy", "last_safe")) if "rollback" in f else "last_safe",  # type: ignore[arg-type]
        webhooks=tuple(_webhook(w) for w in f["webhooks"].sequence_or_one()) if "webhooks" in f else (),
    )


def _webhook(node: Node) -> Webhook:
    """A URL, or ``{url, gate, secret_env}``: the secret is read from the environment, never
    written in the route file."""
    f = node.mapping({"url", "gate", "secret_env"}) if isinstance(node.value, dict) else {"url": node}
    if "url" not in f:
        node.fail("a webhook needs 'url'")
    url = f["url"].string("an http(s):// URL")
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        f["url"].fail(f"expected an http(s):// URL, found {url!r}")
    secret = _env_secret(f["secret_env"]) if "secret_env" in f else None
    return Webhook(url, f["gate"].boolean() if "gate" in f else False, secret)


def _env_secret(node: Node) -> bytes:
    """A secret read from the environment variable ``node`` names (never from the file)."""
    name = node.string("an environment variable name")
    value = os.environ.get(name)
    if not value:
        node.fail(f"the environment variable {name} is not set or empty")
    return value.encode()


def _shadow(f: dict[str, Node], upstreams: Mapping[str, Upstream]) -> Shadow:
    node = f.get("shadow")
    s = node.mapping(SHADOW_KEYS) if node is not None and node.value is not None else {}
    d = Shadow()
    methods = set(SAFE_METHODS)
    writes = s["writes"].boolean() if "writes" in s else False
    if "methods" in s:
        methods = {m.choice(HTTP_METHODS) for m in s["methods"].sequence_or_one()}
        unsafe = methods - SAFE_METHODS
        if unsafe and not writes:
            s["methods"].fail(f"mirroring {', '.join(sorted(unsafe))} may write twice: set 'writes: true' to opt in")
    elif writes:
        methods = set(HTTP_METHODS) - {"CONNECT", "TRACE"}
    noise = None
    if "noise" in s:
        noise = s["noise"].string("'twice' or an upstream name")
        if noise != "twice" and noise not in upstreams:
            s["noise"].fail(f"expected 'twice' or an upstream name, found {noise!r}")
    th = s["thresholds"].mapping({"relative", "absolute"}) if "thresholds" in s else {}
    cmp = s["compare"].mapping(COMPARE_KEYS) if "compare" in s else {}
    percent = f["shadow_percent"].number(0, 100) if "shadow_percent" in f else None
    if "percent" in s:
        percent = s["percent"].number(0, 100)
    return Shadow(
        percent=d.percent if percent is None else percent,
        methods=frozenset(methods),
        max_body=s["max_body"].integer(0) if "max_body" in s else d.max_body,
        max_response=s["max_response"].integer(1) if "max_response" in s else d.max_response,
        timeout=s["timeout"].number(0.001) if "timeout" in s else d.timeout,
        queue=s["queue"].integer(1) if "queue" in s else d.queue,
        concurrency=s["concurrency"].integer(1, 1024) if "concurrency" in s else d.concurrency,
        in_canary=s["in_canary"].boolean() if "in_canary" in s else False,
        noise=noise,
        relative=th["relative"].number(0) if "relative" in th else d.relative,
        absolute=th["absolute"].number(0, 1) if "absolute" in th else d.absolute,
        rules=_rules(cmp),
        samples=s["samples"].integer(0, 1000) if "samples" in s else d.samples,
        redact=tuple(r.string() for r in s["redact"].sequence_or_one()) if "redact" in s else (),
        min_samples=s["min_samples"].integer(1) if "min_samples" in s else d.min_samples,
    )


def _pointer(node: Node) -> str:
    """A JSON Pointer or glob; array indices become ``*`` as in difference paths."""
    text = node.string("a JSON Pointer such as /meta/timestamp, or a glob such as /items/*/id")
    if not (text.startswith("/") or text.startswith("header:")):
        node.fail(f"expected a JSON Pointer starting with / (or header:NAME), found {text!r}")
    if text.startswith("header:"):
        return text.lower()
    return "/".join("*" if seg.isdigit() else seg for seg in text.split("/"))


def _rules(cmp: dict[str, Node]) -> Rules:
    ignore_headers = set(DEFAULT_IGNORED_HEADERS)
    for h in cmp["ignore_headers"].sequence_or_one() if "ignore_headers" in cmp else []:
        ignore_headers.add(_token(h, "a header name").lower())
    hook = None
    if "hook" in cmp:
        spec = cmp["hook"].string("module:function")
        mod_name, _, func = spec.partition(":")
        try:
            hook = getattr(importlib.import_module(mod_name), func) if func else None
        except (ImportError, AttributeError) as exc:
            cmp["hook"].fail(f"cannot load the normalisation hook {spec!r}: {exc}")
        if not callable(hook):
            cmp["hook"].fail(f"expected module:function naming a callable, found {spec!r}")
    return Rules(
        ignore_headers=frozenset(ignore_headers),
        ignore=tuple(_pointer(p) for p in cmp["ignore"].sequence_or_one()) if "ignore" in cmp else (),
        unordered=tuple(_pointer(p) for p in cmp["unordered"].sequence_or_one()) if "unordered" in cmp else (),
        tolerance=cmp["tolerance"].number(0) if "tolerance" in cmp else 0.0,
        normalize=hook,
    )


def _match(node: Node) -> Match:
    f = node.mapping(MATCH_KEYS)
    if not ({"path", "path_prefix", "path_regex", "hosts", "headers"} & f.keys()):
        node.fail("expected at least one of path, path_prefix, path_regex, hosts, headers")

    def paths(key: str) -> tuple[str, ...]:
        out = []
        for p in f[key].sequence_or_one() if key in f else []:
            text = p.string("a path starting with /")
            if not is_path(text):
                p.fail(f"expected a path starting with / without control characters, found {text!r}")
            out.append(text.rstrip("/") or "/" if key == "path_prefix" else text)
        return tuple(out)

    ci = f["case_insensitive"].boolean() if "case_insensitive" in f else False
    regexes = []
    for r in f["path_regex"].sequence_or_one() if "path_regex" in f else []:
        text = r.string("a regular expression")
        if not is_path("/" + text):
            r.fail(f"expected a regular expression without control characters (write \\n, \\t), found {text!r}")
        try:
            regexes.append(re.compile(text, re.IGNORECASE if ci else 0))
        except re.error as exc:
            r.fail(f"invalid regular expression: {exc}")
    headers = []
    if "headers" in f:
        for hname, hvalue in f["headers"].items():
            if not is_token(hname):
                hvalue.fail(f"expected a header name, {TOKEN_TEXT}, found {hname!r}")
            text = hvalue.scalar_text()
            if not is_field_value(text):
                hvalue.fail(f"expected a header value (visible characters, inner spaces and tabs), found {text!r}")
            headers.append((hname.lower(), text))
    return Match(
        path=paths("path"),
        path_prefix=paths("path_prefix"),
        path_regex=tuple(regexes),
        methods=frozenset(m.choice(HTTP_METHODS) for m in f["methods"].sequence_or_one()) if "methods" in f else frozenset(),
        hosts=tuple(_host_pattern(h) for h in f["hosts"].sequence_or_one()) if "hosts" in f else (),
        headers=tuple(sorted(headers)),
        case_insensitive=ci,
        line=node.line,
    )


def _check_ambiguous(modules: tuple[Module, ...], node: Node | None) -> None:
    """Two modules claiming the same path with the same conditions cannot both win."""
    seen: dict[tuple[str, str, frozenset[str], tuple[str, ...], tuple[tuple[str, str], ...]], str] = {}
    for mod in modules:
        for m in mod.matches:
            keys = [("=", p) for p in m.path] + [("^", p) for p in m.path_prefix] + [("~", r.pattern) for r in m.path_regex]
            for kind, p in keys:
                key = (kind, p, m.methods, m.hosts, m.headers)
                other = seen.get(key)
                if other is not None and other != mod.name and node is not None:
                    raise RouteConfigError(
                        Location(node.file, m.line, f"modules.{mod.name}.match"),
                        f"module {mod.name} claims {p!r} with the same conditions as module {other}: ambiguous",
                    )
                seen[key] = mod.name


def _cohort(node: Node) -> Cohort:
    f = node.mapping({"key", "buckets", "cookie"})
    sources: list[tuple[CohortSource, str]] = []
    for item in f["key"].sequence_or_one() if "key" in f else []:
        text = item.string("cookie:NAME, header:NAME or client_ip")
        kind, _, name = text.partition(":")
        if kind == "client_ip" and not name:
            sources.append(("client_ip", ""))
        elif kind in ("cookie", "header") and name:
            if not is_token(name):
                item.fail(f"expected a {kind} name after '{kind}:', {TOKEN_TEXT}, found {name!r}")
            sources.append((kind, name.lower() if kind == "header" else name))  # type: ignore[arg-type]
        else:
            item.fail(f"expected cookie:NAME, header:NAME or client_ip, found {text!r}")
    return Cohort(tuple(sources) if "key" in f else Cohort().sources, f["buckets"].integer(100, 1_000_000) if "buckets" in f else 10_000,
                  _cohort_cookie(f["cookie"]) if "cookie" in f else None)


def _cohort_cookie(node: Node) -> CohortCookie | None:
    """``cookie: true`` (the defaults), ``false``, or ``{name, max_age, secure, same_site, path}``."""
    if isinstance(node.value, bool):
        return CohortCookie() if node.value else None
    f = node.mapping({"name", "max_age", "secure", "same_site", "path"}, what="true, false or a mapping")
    d = CohortCookie()
    name = f["name"].string("a cookie name") if "name" in f else d.name
    if not is_token(name):
        f["name"].fail(f"expected a cookie name, {TOKEN_TEXT}, found {name!r}")
    secure: bool | None = None
    if "secure" in f:
        secure = None if f["secure"].value == "auto" else f["secure"].boolean()
    same_site = f["same_site"].choice(("Lax", "Strict", "None")) if "same_site" in f else d.same_site
    if same_site == "None" and secure is False:
        f["same_site"].fail("SameSite=None needs secure (browsers refuse it otherwise)")
    path = f["path"].string("a path starting with /") if "path" in f else d.path
    if not is_path(path) or any(c in path for c in ";\"' "):
        f["path"].fail(f"expected a path starting with /, found {path!r}")
    return CohortCookie(name, f["max_age"].integer(1) if "max_age" in f else d.max_age, secure,
                        same_site, path)  # type: ignore[arg-type]


def _pin(node: Node) -> Pin:
    f = node.mapping({"header", "cookie", "secret", "secret_env", "unsigned"})
    secret: bytes | None = None
    if "secret" in f:
        secret = f["secret"].string("a shared secret").encode()
    elif "secret_env" in f:
        secret = _env_secret(f["secret_env"])
    unsigned = f["unsigned"].boolean() if "unsigned" in f else False
    if secret is None and not unsigned:
        node.fail("a pin lets a client choose its side (even a weight-0 service, past an open breaker): give 'secret' or "
                  "'secret_env' so pin values must be signed, or 'unsigned: true' in a test environment")
    if secret is not None and len(secret) < 16:
        node.fail("expected a pin secret of at least 16 characters")
    return Pin(
        header=(_token(f["header"], "a header name").lower() if f["header"].value else None) if "header" in f else "x-strangler-side",
        cookie=(_token(f["cookie"], "a cookie name") if f["cookie"].value else None) if "cookie" in f else "strangler_side",
        secret=secret,
        unsigned=unsigned and secret is None,
    )


def _breaker(node: Node) -> Breaker:
    f = node.mapping({"failures", "cooldown"})
    return Breaker(
        failures=f["failures"].integer(1) if "failures" in f else 5,
        cooldown=f["cooldown"].number(0.001) if "cooldown" in f else 30.0,
    )
