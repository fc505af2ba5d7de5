"""``strangler routes check | explain | pin | export | apply``: validate a route table, say how
it routes a request, sign a pin, compile it for nginx, HAProxy, Gateway API or Istio, or
apply it to the data plane its ``data_plane:`` block names (``--dry-run``: what would change)."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from strangler_common import StranglerError

from strangler_cli.proxy_cmd import DEFAULT_ADMIN, DEFAULT_LISTEN, hostport
from strangler_cli.helptext import examples
from strangler_common.text import plural

if TYPE_CHECKING:
    from strangler_proxy import RouteTable


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("routes", help="check a route table or explain how it routes a request")
    examples(p, "strangler routes check routes.yaml", "strangler routes explain routes.yaml GET /cases/42",
             "strangler routes export routes.yaml --to nginx")
    rs = p.add_subparsers(dest="routes_command", metavar="ACTION", required=True)
    c = rs.add_parser("check", help="validate a route table")
    c.add_argument("file", type=Path, help="the route file")
    c.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT", help="the proxy's listener (no upstream may be it)")
    c.add_argument("--admin", default=DEFAULT_ADMIN, metavar="HOST:PORT|off", help="the proxy's admin API (no upstream may be it)")
    examples(c, "strangler routes check routes/portal.yaml", "strangler routes check routes.yaml --listen 0.0.0.0:8080 --admin off")
    c.set_defaults(func=run_check)
    pn = rs.add_parser("pin", help="a signed pin value (header X-Strangler-Side or cookie strangler_side) for testers")
    pn.add_argument("file", type=Path, help="the route file (its pin section)")
    pn.add_argument("spec", help="new, legacy, or per module: cases=new,kb=legacy")
    pn.add_argument("--ttl", type=float, default=8 * 3600, metavar="SECONDS", help="valid for this long (default 8 h)")
    examples(pn, "strangler routes pin routes.yaml new", "strangler routes pin routes.yaml cases=new,kb=legacy --ttl 3600")
    pn.set_defaults(func=run_pin)
    e = rs.add_parser("explain", help="which module and side a request goes to, and why")
    e.add_argument("file", type=Path, help="the route file")
    e.add_argument("method", help="the request's method, as sent (GET, POST, ...)")
    e.add_argument("url", help="a path or a full URL (its host becomes the Host header)")
    e.add_argument("-H", "--header", action="append", default=[], metavar="'Name: value'",
                   help="a request header (repeatable; Cookie and Host too)")
    e.add_argument("--client-ip", default="127.0.0.1", help="the client's address (a cohort key; default 127.0.0.1)")
    e.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    live = e.add_mutually_exclusive_group()
    live.add_argument("--state", metavar="PATH|URL", help="the state store whose stages and weights apply (default: the "
                                                          "proxy's state file beside the route file, when there is one)")
    live.add_argument("--admin", metavar="HOST:PORT", help="ask a running proxy for its stages, weights and breakers")
    live.add_argument("--offline", action="store_true", help="the route file's values alone")
    e.add_argument("--token", default=os.environ.get("STRANGLER_ADMIN_TOKEN"), help="with --admin (default: "
                   "$STRANGLER_ADMIN_TOKEN, or the token file beside the route file)")
    examples(e, "strangler routes explain routes.yaml GET /cases/42",
             "strangler routes explain routes.yaml POST https://portal.example.com/api/orders -H 'X-Tenant: acme'",
             "strangler routes explain routes.yaml GET /cases/42 --offline")
    e.set_defaults(func=run_explain)
    x = rs.add_parser("export", help="the route table as nginx, HAProxy, Gateway API or Istio configuration",
                      description="Compile the current table (the file's modules with the state store's stages and "
                                  "weights) for another data plane. What the target cannot express is listed at the "
                                  "top of the output (and under 'warnings' with --format json).")
    x.add_argument("file", type=Path, help="the route file")
    x.add_argument("--to", required=True, choices=("nginx", "haproxy", "gateway-api", "istio"), help="the target data plane")
    x.add_argument("--state", metavar="PATH|URL",
                   help="the state store whose stages and weights apply (default: the proxy's state file beside the "
                        "route file, when there is one; 'none' for the file's values alone)")
    x.add_argument("-o", "--output", type=Path, help="write here, atomically (default: standard output)")
    x.add_argument("--listen", default="8000", metavar="[HOST:]PORT", help="nginx/HAProxy: where to listen (default 8000)")
    x.add_argument("--namespace", default="default", help="Kubernetes: the objects' namespace (default: default)")
    x.add_argument("--gateway", help="Gateway API: the parent Gateway's name (default: the legacy Service, a mesh route)")
    x.add_argument("--gateway-namespace", help="Gateway API: the parent Gateway's namespace")
    x.add_argument("--host", action="append", default=[], help="Istio: a VirtualService host (default: the legacy Service)")
    x.add_argument("--istio-gateway", action="append", default=[], metavar="NS/NAME",
                   help="Istio: a gateway the VirtualService binds to (default: the mesh)")
    x.add_argument("--owner", default="strangler", help="Kubernetes: the objects' name prefix and strangler.io/owner label "
                                                        "(default: strangler)")
    x.add_argument("--format", choices=("text", "json"), default="text", help="text (the configuration) or json (with warnings)")
    examples(x, "strangler routes export routes.yaml --to nginx -o /etc/nginx/conf.d/portal.conf",
             "strangler routes export routes.yaml --to gateway-api --namespace portal --gateway public",
             "strangler routes export routes.yaml --to haproxy --format json")
    x.set_defaults(func=run_export)
    a = rs.add_parser("apply", help="apply the current table to the file's data_plane (nginx, HAProxy, Kubernetes)",
                      description="What the proxy does at start and on each change, once: write, check and reload "
                                  "nginx or HAProxy (the previous configuration is put back if refused), or server-side "
                                  "apply the Kubernetes objects and delete the ones this owner no longer renders.",
)
    a.add_argument("file", type=Path, help="the route file, with its data_plane: block")
    a.add_argument("--state", metavar="PATH|URL", help="as for export")
    a.add_argument("--dry-run", action="store_true", help="print what would be created, changed and deleted; change nothing")
    examples(a, "strangler routes apply routes.yaml --dry-run", "strangler routes apply routes.yaml")
    a.set_defaults(func=run_apply)


def _address(flag: str, text: str) -> tuple[str, int]:
    try:
        return hostport(text)
    except argparse.ArgumentTypeError as exc:
        raise StranglerError(f"{flag}: {exc}") from None


def run_check(args: argparse.Namespace) -> int:
    from strangler_proxy import load_routes
    from strangler_proxy import check_not_self

    table = load_routes(args.file)
    own = [("listener", _address("--listen", args.listen))]
    if args.admin != "off":
        own.append(("admin API", _address("--admin", args.admin)))
    check_not_self(table, own)
    stages: dict[str, int] = {}
    for m in table.modules:
        stages[m.stage] = stages.get(m.stage, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(stages.items())) or "no modules"
    print(f"{args.file}: ok: {plural(len(table.upstreams), 'upstream')}, {plural(len(table.modules), 'module')} ({summary})")
    return 0


def run_pin(args: argparse.Namespace) -> int:
    import time

    from strangler_proxy import load_routes
    from strangler_proxy import sign_pin

    table = load_routes(args.file)
    if table.pin.secret is None:
        raise StranglerError(f"{args.file}: pins are {'unsigned' if table.pin.unsigned else 'off'} in this route file: "
                             "give pin.secret or pin.secret_env to sign them")
    print(sign_pin(args.spec, table.pin.secret, int(time.time() + args.ttl)))
    return 0


# the methods llhttp (the proxy's parser) reads; anything else, lower case included, is 400 there
PARSED_METHODS = frozenset("DELETE GET HEAD POST PUT OPTIONS PATCH PURGE COPY LOCK MKCOL MOVE PROPFIND PROPPATCH SEARCH "
                           "UNLOCK BIND REBIND UNBIND ACL REPORT MKACTIVITY CHECKOUT MERGE MSEARCH NOTIFY SUBSCRIBE "
                           "UNSUBSCRIBE MKCALENDAR LINK UNLINK QUERY".split())


def _live(args: argparse.Namespace, table: RouteTable) -> tuple[RouteTable, dict[str, str], Callable[[str], str | None]]:
    """The table as the proxy runs it: (table with overrides, breakers by module, what
    decided a module's setting). ``--offline``: the file alone."""
    from strangler_proxy import Override, with_overrides

    none: Callable[[str], str | None] = lambda module: None  # noqa: E731
    if args.offline:
        return table, {}, none
    if args.admin:
        import httpx

        from strangler_cli.admin_client import answer, token_for

        try:
            r = httpx.get(f"http://{args.admin}/modules", headers={"authorization": f"Bearer {token_for(args.token, args.file)}"},
                          timeout=10)
        except httpx.HTTPError as exc:
            raise StranglerError(f"--admin {args.admin}: no proxy answers: {exc} (--offline for the file alone)") from None
        mods = answer(r, f"--admin {args.admin}: GET /modules", list)
        overrides = {m["name"]: Override(m["stage"], m["weight"]) for m in mods if m.get("override")}
        breakers = {m["name"]: m["breaker"] for m in mods if m.get("breaker")}

        def said(module: str) -> str | None:
            o = overrides.get(module)
            return None if o is None else "a runtime change in the running proxy"

        return with_overrides(table, overrides), breakers, said
    from strangler_proxy import default_path, open_store

    state = args.state if args.state is not None else default_path(args.file)
    is_url = str(state).startswith(("postgresql://", "postgres://"))
    if not is_url and not Path(state).is_file():
        if args.state is not None:
            raise StranglerError(f"--state {state}: no state store there (--offline for the file alone)")
        return table, {}, none  # the proxy never ran beside this file: the file is the state
    store = open_store(state)
    try:
        overrides = store.overrides()
        deciders: dict[str, str] = {}
        for name, o in overrides.items():
            entries = store.ledger(name, 1)
            release = store.release(name)
            if release is not None and release.status in ("running", "paused"):
                deciders[name] = f"its release ({release.status} at step {release.step + 1})"
            elif entries:
                e = entries[0]
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.ts))
                deciders[name] = f"'{e.action}' by {e.actor} at {when} (the state store's ledger)"
            else:
                deciders[name] = "a runtime change in the state store"
    finally:
        store.close()
    return with_overrides(table, overrides), {}, deciders.get


def _setting(stage: str, weight: float) -> str:
    return f"canary {weight:g} %" if stage == "canary" else stage


def run_explain(args: argparse.Namespace) -> int:
    import random

    from strangler_proxy import load_routes
    from strangler_proxy import RequestHead, Routes, cohort_id, plan

    method = args.method
    if method not in PARSED_METHODS:
        hint = f"; methods are case-sensitive: did you mean {method.upper()}?" if method.upper() in PARSED_METHODS else ""
        if method in ("CONNECT", "TRACE"):
            raise StranglerError(f"{method}: the proxy answers 405 (no tunnels, no TRACE)")
        raise StranglerError(f"{method!r}: not a method the proxy reads (it answers 400){hint}")
    parts = urlsplit(args.url)
    if parts.scheme not in ("", "http", "https") or not (parts.path or "/").startswith("/") or (
            not parts.scheme and not args.url.startswith("/")):
        raise StranglerError(f"{args.url!r}: expected a path (/cases/42) or an http(s) URL: the proxy answers 400 to "
                             "any other request target")
    table, breakers, decided = _live(args, load_routes(args.file))
    headers: list[tuple[bytes, bytes]] = []
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            raise StranglerError(f"-H {h!r}: expected 'Name: value'")
        headers.append((name.strip().lower().encode("latin-1"), value.strip().encode("latin-1")))
    if parts.netloc and not any(n == b"host" for n, _ in headers):
        headers.append((b"host", parts.netloc.encode()))
    host = next((v.decode("latin-1") for n, v in headers if n == b"host"), "")
    cookies = "; ".join(v.decode("latin-1") for n, v in headers if n == b"cookie") or None
    path = parts.path or "/"
    if "%" in path:  # percent-decoded as the proxy's listener (uvicorn) gives it to the router
        path = unquote(path)
    head = RequestHead(method, path, host, headers, cookies, args.client_ip)
    cohort = cohort_id(table, head)  # the proxy's cohort cookie, as the proxy reads it
    if cohort is not None:
        head = head._replace(cohort=cohort[0])
    routes = Routes.of(table)
    p = plan(routes, head, random.random, _Breakers(breakers))
    if p.refused:
        raise StranglerError(f"{args.url}: {p.why}")
    module = p.module
    origin = table.upstreams[p.upstream].origin
    side = "new" if p.side == "service" else p.side  # as the rest of the tool names them
    decider = decided(module.name) if module is not None else None
    if args.format == "json":
        extra = {} if cohort is None else {"cohort": cohort[0], "sets_cohort_cookie": cohort[1]}
        print(json.dumps({"module": module.name if module else None, "side": side, "upstream": p.upstream, "url": origin,
                          "why": p.explain(), "stage": module.stage if module else None,
                          "weight": module.weight if module else None, "decided_by": decider or "the route file",
                          **({"breaker": breakers[module.name]} if module and module.name in breakers else {}), **extra}))
    else:
        print(f"module:   {module.name if module else '(none: legacy receives it)'}")
        if module is not None:
            print(f"setting:  {_setting(module.stage, module.weight)}, from {decider or 'the route file'}")
        print(f"side:     {side}")
        print(f"upstream: {p.upstream} ({origin})")
        print(f"why:      {p.explain()}")
        if cohort is not None:
            print(f"cohort:   {cohort[0]}" + (" (new: a canary response sets the cohort cookie)" if cohort[1] else ""))
        if module is not None and module.name in breakers:
            print(f"breaker:  {breakers[module.name]}")
    return 0


class _Breakers(dict[str, Any]):
    """The running proxy's breaker states, as ``plan`` reads breakers (``allow()``)."""

    def __init__(self, states: dict[str, str]) -> None:
        super().__init__({name: _State(state) for name, state in states.items()})


class _State:
    def __init__(self, state: str) -> None:
        self.state = state

    def allow(self) -> bool:
        return self.state != "open"


def _current_table(args: argparse.Namespace) -> RouteTable:
    """The route file with the state store's stages and weights (``--state``)."""
    from strangler_proxy import load_routes
    from strangler_proxy import with_overrides
    from strangler_proxy import default_path, open_store

    table = load_routes(args.file)
    state = args.state if args.state is not None else default_path(args.file)
    is_url = str(state).startswith(("postgresql://", "postgres://"))
    if args.state not in (None, "none") and not is_url and not Path(state).is_file():
        raise StranglerError(f"--state {state}: no state store there (give the proxy's --state, or 'none')")
    if args.state != "none" and (args.state is not None or Path(state).exists()):
        store = open_store(state)
        try:
            table = with_overrides(table, store.overrides())
        finally:
            store.close()
    return table


def run_export(args: argparse.Namespace) -> int:
    from strangler_proxy import KubeOptions, export

    from strangler_cli.output import write_output

    table = _current_table(args)
    kube = KubeOptions(owner=args.owner, namespace=args.namespace, gateway=args.gateway, gateway_namespace=args.gateway_namespace,
                       hosts=tuple(args.host), istio_gateways=tuple(args.istio_gateway))
    result = export(table, args.to, listen=args.listen, kube=kube)
    text = result.text
    if args.format == "json":
        text = json.dumps({"target": result.target, "warnings": list(result.warnings), "config": result.text}, indent=2) + "\n"
    write_output(text, None if args.output is None else str(args.output))
    if args.output is not None:
        print(f"{args.output}: {args.to} configuration written ({plural(len(result.warnings), 'difference')} listed at its top)")
    return 0


def run_apply(args: argparse.Namespace) -> int:
    from strangler_proxy import open_plane

    table = _current_table(args)
    spec = table.data_plane
    if spec.kind == "strangler":
        raise StranglerError(f"{args.file}: no data_plane: block (nginx, haproxy or kubernetes): strangler's own proxy "
                             "takes the table as it is (strangler proxy --routes FILE)")
    plane = open_plane(spec, print)
    change = plane.plan(table)
    where = spec.config or f"namespace {spec.namespace} (owner {spec.owner})"
    if change.diff:
        print(change.diff, end="" if change.diff.endswith("\n") else "\n")
    for verb, items in (("create", change.create), ("update", change.update), ("delete", change.delete)):
        for item in items:
            print(f"{verb:7s} {item}")
    if args.dry_run:
        print(f"{spec.kind} {where}: " + ("nothing to change" if change.empty else "dry run: nothing was changed"))
        return 0
    applied = plane.apply(table)
    print(f"{spec.kind} {where}: " + ("applied" if applied or not change.empty else "already carries this table: nothing applied"))
    return 0
