from __future__ import annotations

from strangler_analyzer import load_estate


def test_env_configmaps_and_init_containers_become_config_derived_edges(fixtures) -> None:  # type: ignore[no-untyped-def]
    estate = load_estate([fixtures / "k8s"])
    e = {x.key: x for x in estate.edges}
    assert {c.name for c in estate.components} == {"frontend", "productcatalog", "redis-cart", "cart", "checkout"}
    assert e[("frontend", "productcatalog")].evidence[0].kind == "config.k8s.env"
    assert e[("frontend", "cart")].evidence[0].kind == "config.k8s.env"
    assert e[("frontend", "checkout")].evidence[0].kind == "config.k8s.configmap"  # svc FQDN
    assert "config.k8s.init" in {ev.kind for ev in e[("cart", "redis-cart")].evidence}
    assert "config.k8s.configmap" in {ev.kind for ev in e[("cart", "redis-cart")].evidence}
    assert all(not x.declared for x in estate.edges)
    frontend = estate.component("frontend")
    assert frontend is not None and frontend.check is not None and frontend.check.kind == "http"
    assert estate.component("redis-cart").tier == "cache"  # type: ignore[union-attr]
    messages = " ".join(w.message for w in estate.warnings)
    assert "Widget" in messages and "Ingress" not in messages


def test_a_service_selecting_two_versions_resolves_to_both(write) -> None:  # type: ignore[no-untyped-def]
    def deployment(name: str, labels: str, env: str = "") -> str:
        return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  selector: {{matchLabels: {labels}}}\n"
                f"  template:\n    metadata: {{labels: {labels}}}\n    spec:\n      containers:\n        - name: c\n"
                f"          image: example/{name}\n          ports: [{{containerPort: 8080}}]\n{env}")
    docs = [
        deployment("cases-v1", "{app: cases, version: v1}"),
        deployment("cases-v2", "{app: cases, version: v2}"),
        deployment("portal", "{app: portal}", "          env:\n            - {name: CASES_URL, value: 'http://cases:8080/api'}\n"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: cases}\nspec:\n  selector: {app: cases}\n  ports: [{port: 8080}]\n",
    ]
    path = write("app.yaml", "---\n".join(docs))
    estate = load_estate([path])
    assert {e.dst for e in estate.edges if e.src == "portal"} == {"cases-v1", "cases-v2"}


def test_helm_template_and_kustomize_output_read_cleanly(fixtures) -> None:  # type: ignore[no-untyped-def]
    """Rendered multi-document streams as `helm template` and `kubectl kustomize` write them:
    leading empty documents, `# Source:` comments, hashed ConfigMap names, envFrom, CRDs."""
    from strangler_analyzer import analyze

    helm = load_estate([fixtures / "k8s-rendered" / "helm-template.yaml"])
    assert {c.name for c in helm.components} == {"cart", "redis-master", "frontend"}
    e = {x.key for x in helm.edges}
    assert {("frontend", "cart"), ("cart", "redis-master")} <= e  # CART_SERVICE_ADDR, REDIS_HOST via envFrom
    assert helm.component("redis-master").tier == "cache"  # type: ignore[union-attr]
    assert {w.message.split(" (")[0] for w in helm.warnings} == {"kind ServiceMonitor", "kind CustomResourceDefinition"}
    kust = load_estate([fixtures / "k8s-rendered" / "kustomize-build.yaml"])
    assert {x.key for x in kust.edges} == {("prod-orders", "prod-orders-db"), ("prod-orders", "prod-payments")}
    assert analyze(kust).waves.waves[-1] == ("prod-orders",)


def test_a_kustomization_file_says_how_to_read_it(write) -> None:  # type: ignore[no-untyped-def]
    path = write("kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [app.yaml]\n")
    estate = load_estate([path])
    assert any("kubectl kustomize" in w.message and w.line == 1 for w in estate.warnings)
