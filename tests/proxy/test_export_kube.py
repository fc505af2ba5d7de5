"""Gateway API and Istio exports: valid against the published CRD schemas (pinned in
tests/fixtures/crds, installed by scripts/test.sh), and, read back and evaluated by the
matching rules of each specification, they send every request of a corpus where strangler
would (the cohort seeds a cookie-less user is given are on the side it was sent to)."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from strangler_proxy.config import load_routes
from strangler_proxy.dispatch import RequestHead, Routes, cohort_id, plan
from strangler_proxy.planes import KubeOptions, export
from strangler_proxy.planes.kubernetes.render import service_ref
from strangler_proxy.model import RouteTable

pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


CRDS = Path(__file__).parent.parent / "fixtures" / "crds"

ROUTES = """
upstreams:
  legacy: http://portal.shop.svc.cluster.local:8080
  cases-svc: http://cases.shop.svc.cluster.local:8000
  kb-svc: https://kb.search:8443
  old-svc: http://10.0.0.7:9000
cohort:
  cookie: true
pin: {header: X-Strangler-Side, cookie: strangler_side, unsigned: true}
modules:
  cases:
    match: {path_prefix: [/cases, /api/cases]}
    service: cases-svc
    stage: canary
    weight: 30
  cases-admin:
    match:
      - {path_prefix: [/cases/admin], methods: [POST], headers: {X-Tenant: acme}}
    service: cases-svc
    stage: released
  reports:
    match:
      - {path: [/reports], hosts: [reports.example.com, '*.reports.example.com']}
      - {path_prefix: [/Reports/Export], case_insensitive: true}
    service: cases-svc
    stage: canary
    weight: 5
  kb:
    match: {path_prefix: [/kb]}
    service: kb-svc
    stage: shadow
    shadow: {percent: 100}
  old:
    match: {path_prefix: [/old]}
    service: old-svc
    stage: retired
  everything-else-post:
    match: {methods: [PATCH], headers: {X-Api: v2}}
    service: old-svc
    stage: released
"""

IDS = ["0" * 32, "9" * 32, "fb8c" + "1" * 28, "4858" + "2" * 28, "c0ffee" + "4" * 26, "0400" + "5" * 28]
PATHS = [
    ("GET", "/cases/7", {}), ("GET", "/cases", {}), ("GET", "/casesX", {}), ("POST", "/api/cases/1", {}),
    ("POST", "/cases/admin/x", {"x-tenant": "acme"}), ("GET", "/cases/admin/x", {"x-tenant": "acme"}),
    ("POST", "/cases/admin/x", {}), ("GET", "/reports", {"host": "reports.example.com"}),
    ("GET", "/reports", {"host": "a.reports.example.com:8443"}), ("GET", "/reports", {"host": "other"}),
    ("GET", "/reports/export/1", {}), ("GET", "/REPORTS/EXPORT", {}), ("GET", "/kb/a", {}), ("GET", "/old/1", {}),
    ("GET", "/cases/1", {"x-strangler-side": "new"}), ("GET", "/cases/1", {"x-strangler-side": "Legacy"}),
    ("GET", "/cases/1", {"x-strangler-side": "kb=legacy, cases=service"}), ("GET", "/cases/1", {"x-strangler-side": "kb=new"}),
    ("GET", "/cases/admin/1", {"x-strangler-side": "cases-admin=legacy"}), ("POST", "/cases/admin/1", {"x-tenant": "acme", "x-strangler-side": "cases-admin=legacy"}),
    ("GET", "/reports", {"host": "reports.example.com", "cookie": "strangler_side=reports=new"}),
    ("PATCH", "/anything", {"x-api": "v2"}), ("PATCH", "/cases/1", {"x-api": "v2"}), ("PATCH", "/x", {}), ("GET", "/", {}), ("DELETE", "/other", {}),
]


@pytest.fixture
def table(tmp_path: Path) -> RouteTable:
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES)
    return load_routes(path)


def corpus() -> list[tuple[str, str, dict[str, str]]]:
    out = []
    for method, path, headers in PATHS:
        out.append((method, path, {"host": "portal", **headers}))
        for cid in IDS:
            out.append((method, path, {"host": "portal", **headers, "cookie": f"a=1; strangler_cohort={cid}"}))
    return out


def predict(table: RouteTable, method: str, path: str, headers: dict[str, str], seed: str | None) -> str:
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    head = RequestHead(method, path, headers["host"], raw, headers.get("cookie"), "10.1.1.1")
    found = cohort_id(table, head)
    if found is not None:
        head = head._replace(cohort=seed if found[1] and seed else found[0])
    return plan(Routes.of(table), head, random.random).upstream


def services(table: RouteTable, namespace: str) -> dict[str, str]:
    """Service name (and Istio host) -> upstream name."""
    out = {}
    for name, up in table.upstreams.items():
        svc, ns, _ = service_ref(name, up, namespace)
        out[svc] = out[f"{svc}.{ns}.svc.cluster.local"] = name
    return out


def seed_of(set_cookie: str | None) -> str | None:
    m = re.match(r"strangler_cohort=([0-9a-f]{32});", set_cookie or "")
    return m.group(1) if m else None


def weighted(refs: list[dict[str, Any]], rng: random.Random, key: str) -> dict[str, Any]:
    return rng.choices(refs, weights=[r.get(key, 1) for r in refs])[0]


# ---------------------------------------------------------------- Istio, first match in order

def _str_match(spec: dict[str, str], value: str | None) -> bool:
    if value is None:
        return False
    if "exact" in spec:
        return value == spec["exact"]
    if "prefix" in spec:
        return value.startswith(spec["prefix"])
    return re.fullmatch(spec["regex"], value) is not None


def istio_route(vs: dict[str, Any], method: str, path: str, headers: dict[str, str], rng: random.Random) -> tuple[str, str | None]:
    for r in vs["spec"]["http"]:
        conds = r.get("match")
        if conds and not any(
                ("uri" not in c or _str_match(c["uri"], path)) and ("method" not in c or _str_match(c["method"], method))
                and ("authority" not in c or _str_match(c["authority"], headers["host"]))
                and all(_str_match(spec, headers.get(n)) for n, spec in c.get("headers", {}).items())
                for c in conds):
            continue
        d = weighted(r["route"], rng, "weight")
        cookie = d.get("headers", {}).get("response", {}).get("add", {}).get("Set-Cookie")
        return d["destination"]["host"], cookie
    raise AssertionError("no route: the VirtualService must end with legacy's")


# ---------------------------------------------------------------- Gateway API precedence

def _path_ok(p: dict[str, str], path: str) -> bool:
    v = p["value"]
    if p["type"] == "Exact":
        return path == v
    if p["type"] == "PathPrefix":
        return v == "/" or path == v or path.startswith(v.rstrip("/") + "/")
    return re.fullmatch(v, path) is not None


def _host_ok(hostnames: list[str] | None, host: str) -> bool:
    host = host.rsplit(":", 1)[0]
    return not hostnames or any(h == host or (h.startswith("*.") and host.endswith(h[1:])) for h in hostnames)


def gateway_route(routes: list[dict[str, Any]], method: str, path: str, headers: dict[str, str],
                  rng: random.Random) -> tuple[str, str | None]:
    """The spec's precedence: exact path, longest prefix, method, most headers, then the
    route's name (same creation time), then rule order."""
    found = []
    for route in routes:
        if not _host_ok(route["spec"].get("hostnames"), headers["host"]):
            continue
        for ri, rule in enumerate(route["spec"]["rules"]):
            for m in rule["matches"]:
                ok = _path_ok(m["path"], path) and m.get("method", method) == method and all(
                    headers.get(h["name"].lower()) is not None and (
                        headers[h["name"].lower()] == h["value"] if h["type"] == "Exact"
                        else re.fullmatch(h["value"], headers[h["name"].lower()]) is not None)
                    for h in m.get("headers", []))
                if ok:
                    kind = m["path"]["type"]
                    rank = (0 if kind == "Exact" else 1 if kind == "PathPrefix" else 2,
                            -len(m["path"]["value"]) if kind == "PathPrefix" else 0,
                            "method" not in m, -len(m.get("headers", [])), route["metadata"]["name"], ri)
                    found.append((rank, rule))
    rule = min(found, key=lambda t: t[0])[1]
    ref = weighted(rule["backendRefs"], rng, "weight")
    cookie = None
    for f in ref.get("filters", []):
        cookie = f["responseHeaderModifier"]["add"][0]["value"]
    return ref["name"], cookie


def round_trip(table: RouteTable, docs: list[dict[str, Any]], route_fn: Any, skip: str | None = None) -> list[str]:
    names = services(table, "shop")
    rng = random.Random(7)
    wrong = []
    for method, path, headers in corpus():
        if skip and re.match(skip, path):
            continue
        for _ in range(3):  # cookie-less requests draw: try several draws
            dest, set_cookie = route_fn(docs, method, path, headers, rng)
            want = predict(table, method, path, headers, seed_of(set_cookie))
            if names[dest] != want:
                wrong.append(f"{method} {path} {headers}: {names[dest]} ({set_cookie}), strangler says {want}")
    return wrong


def test_istio_round_trip_agrees_with_strangler(table: RouteTable) -> None:
    exported = export(table, "istio", kube=KubeOptions(namespace="shop"))
    docs = list(yaml.safe_load_all(exported.text))
    (vs,) = [d for d in docs if d["kind"] == "VirtualService"]
    assert vs["spec"]["hosts"] == ["portal.shop.svc.cluster.local"]
    wrong = round_trip(table, docs, lambda _d, *a: istio_route(vs, *a))
    assert not wrong, "\n".join(wrong)
    rules = {d["spec"]["host"]: d["spec"]["trafficPolicy"] for d in docs if d["kind"] == "DestinationRule"}
    assert rules["kb.search.svc.cluster.local"]["tls"] == {"mode": "SIMPLE", "sni": "kb.search"}
    assert rules["cases.shop.svc.cluster.local"]["outlierDetection"]["consecutive5xxErrors"] == 5


def test_gateway_api_round_trip_agrees_with_strangler(table: RouteTable) -> None:
    exported = export(table, "gateway-api", kube=KubeOptions(namespace="shop", gateway="edge"))
    docs = list(yaml.safe_load_all(exported.text))
    assert all(d["spec"]["parentRefs"] == [{"name": "edge"}] for d in docs)
    # a case-insensitive path is a RegularExpression match, ranked by each implementation
    # its own way (the export warns): this evaluator ranks it last, so it is left out here
    wrong = round_trip(table, docs, gateway_route, skip="(?i)/reports/export")
    assert not wrong, "\n".join(wrong)
    assert any(w.startswith("fallback: Gateway API cannot") for w in exported.warnings)
    assert any("case-insensitive prefix path /Reports/Export" in w for w in exported.warnings)


def test_cookie_less_users_are_split_by_the_weight(table: RouteTable) -> None:
    docs = list(yaml.safe_load_all(export(table, "istio").text))
    (vs,) = [d for d in docs if d["kind"] == "VirtualService"]
    rng = random.Random(1)
    hosts = [istio_route(vs, "GET", "/cases/1", {"host": "portal"}, rng)[0] for _ in range(4000)]
    share = sum(h.startswith("cases.") for h in hosts) / len(hosts)
    assert abs(share - 0.30) < 0.03


def validate(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None or not (CRDS / "node_modules").is_dir():
        pytest.fail("node and the pinned CRD schemas are needed: run scripts/test.sh (npm ci in tests/fixtures/crds)")
    out = subprocess.run([node, str(CRDS / "validate.mjs")], input=json.dumps(docs), capture_output=True, text=True,
                         cwd=CRDS, timeout=60)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_exports_are_valid_against_the_published_crd_schemas(table: RouteTable) -> None:
    docs = []
    for target, opts in (("gateway-api", KubeOptions()), ("gateway-api", KubeOptions(gateway="edge", gateway_namespace="infra")),
                         ("istio", KubeOptions(namespace="shop", istio_gateways=("infra/edge",), hosts=("portal.example.com",)))):
        docs += list(yaml.safe_load_all(export(table, target, kube=opts).text))  # type: ignore[arg-type]
    results = validate(docs)
    assert len(results) == len(docs) and {r["kind"] for r in results} == {"HTTPRoute", "VirtualService", "DestinationRule"}
    assert [r for r in results if r["errors"]] == []
    # and the validator is no rubber stamp: the same objects, broken, are refused
    broken = json.loads(json.dumps(docs[:1] + [d for d in docs if d["kind"] == "VirtualService"][:1]))
    broken[0]["spec"]["rules"][0]["matches"][0]["path"]["type"] = "Prefix"
    broken[1]["spec"]["http"][0]["route"][0]["weight"] = "thirty"
    assert all(r["errors"] for r in validate(broken))


def test_the_mirror_copies_only_the_shadows_methods_in_gateway_api_and_istio(tmp_path: Path) -> None:
    """A write must never be copied to the new service unless the module says 'writes: true'
    (strangler and the nginx export mirror safe methods only)."""
    from strangler_proxy.config import load_routes
    from strangler_proxy.planes import export

    path = tmp_path / "r.yaml"
    path.write_text("upstreams:\n  legacy: http://legacy.shop:8080\n  svc: http://svc.shop:9000\n"
                    "modules:\n  kb:\n    match: {path_prefix: /kb}\n    service: svc\n    stage: shadow\n")
    table = load_routes(path)
    docs = list(yaml.safe_load_all(export(table, "gateway-api").text))
    rules = [r for d in docs if d and d["kind"] == "HTTPRoute" for r in d["spec"]["rules"]]
    mirrored = [r for r in rules if any(f["type"] == "RequestMirror" for f in r.get("filters", []))]
    assert mirrored and all(m.get("method") in ("GET", "HEAD", "OPTIONS") for r in mirrored for m in r["matches"])
    assert any("filters" not in r for r in rules)  # the other methods: the same backend, no mirror
    docs = list(yaml.safe_load_all(export(table, "istio").text))
    routes = [h for d in docs if d and d["kind"] == "VirtualService" for h in d["spec"]["http"]]
    with_mirror = [h for h in routes if "mirror" in h]
    assert with_mirror and all(m["method"]["exact"] in ("GET", "HEAD", "OPTIONS") for h in with_mirror for m in h["match"])
    first_for_post = next(h for h in routes if any(m.get("uri", {}).get("prefix", "").startswith("/kb")
                                                   and m.get("method", {"exact": "POST"})["exact"] == "POST" for m in h["match"]))
    assert "mirror" not in first_for_post  # Istio takes the first match: a POST is not copied


def test_names_are_stable_per_module_and_ties_between_modules_are_warned(tmp_path: Path) -> None:
    """Adding a module renames no other module's objects (the Kubernetes plane prunes by
    name); two modules on the same path with as many conditions are a tie that Gateway API
    breaks by age, not file order: said."""
    head = "upstreams:\n  legacy: http://legacy.shop:8080\n  svc: http://svc.shop:9000\nmodules:\n"
    kb = "  kb:\n    match: {path_prefix: [/kb, /help]}\n    service: svc\n    stage: canary\n    weight: 10\n"
    early = "  aa:\n    match: {path: /a/b/c/d/e}\n    service: svc\n    stage: released\n"
    path = tmp_path / "r.yaml"

    def names(text: str, target: str) -> set[str]:
        path.write_text(head + text)
        docs = [d for d in yaml.safe_load_all(export(load_routes(path), target).text) if d]  # type: ignore[arg-type]
        if target == "istio":
            return {h["name"] for d in docs if d["kind"] == "VirtualService" for h in d["spec"]["http"]}
        assert all(d["metadata"]["labels"]["strangler.io/owner"] == "strangler" for d in docs)
        return {d["metadata"]["name"] for d in docs}

    for target in ("gateway-api", "istio"):
        alone, more = names(kb, target), names(early + kb, target)
        assert alone < more and not any(n.startswith(("strangler-aa", "aa-")) for n in alone)
    assert names(kb, "gateway-api") == {"strangler-kb-1", "strangler-kb-2", "strangler-legacy"}
    path.write_text(head + kb.replace("{path_prefix: [/kb, /help]}", "{path_prefix: /kb, headers: {X-A: '1'}}")
                    + kb.replace("  kb:", "  kb2:").replace("{path_prefix: [/kb, /help]}", "{path_prefix: /kb, headers: {X-B: '1'}}"))
    warnings = export(load_routes(path), "gateway-api").warnings
    assert any("modules kb, kb2 match it with as many conditions" in w for w in warnings)
    path.write_text(head + kb + kb.replace("  kb:", "  KB:").replace("/kb", "/x").replace("/help", "/y"))
    from strangler_proxy.planes import ExportError

    with pytest.raises(ExportError, match="modules.KB: its Kubernetes object name 'kb' is also the one of 'kb'"):
        export(load_routes(path), "istio")
