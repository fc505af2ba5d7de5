"""Kubernetes read as kubectl reads it (issue 22, items 8-12): namespaces, $(VAR), ConfigMaps
mounted as files, command lines, dapr Components, one broken file in a folder."""

from __future__ import annotations

from strangler_analyzer import load_estate


def deployment(name: str, ns: str = "", env: str = "", extra: str = "", volumes: str = "") -> str:
    meta = f"  namespace: {ns}\n" if ns else ""
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n{meta}spec:\n"
            f"  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n"
            f"    spec:\n{volumes}      containers:\n        - name: c\n          image: corp/{name}:1\n{env}{extra}")


def service(name: str, ns: str = "") -> str:
    meta = f"  namespace: {ns}\n" if ns else ""
    return f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n{meta}spec: {{selector: {{app: {name}}}, ports: [{{port: 80}}]}}\n"


def edges(estate):  # type: ignore[no-untyped-def]
    return {e.key for e in estate.edges}


def test_namespaces_keep_two_dbs_apart_and_names_resolve_in_their_own_namespace(write) -> None:  # type: ignore[no-untyped-def]
    docs = [deployment("db", "team-a"), service("db", "team-a"), deployment("db", "team-b"), service("db", "team-b"),
            deployment("api", "team-a", "          env: [{name: DB, value: 'postgresql://db:5432/x'}]\n"),
            deployment("report", "team-b", "          env: [{name: A, value: 'http://db.team-a:80/'}]\n"),
            deployment("batch", "team-b", "          env: [{name: B, value: 'http://db.team-b.svc.cluster.local/'}]\n")]
    path = write("k/all.yaml", "---\n".join(docs))
    estate = load_estate([path])
    assert {c.name for c in estate.components} == {"db.team-a", "db.team-b", "api", "report", "batch"}
    assert edges(estate) == {("api", "db.team-a"), ("report", "db.team-a"), ("batch", "db.team-b")}


def test_the_same_object_twice_the_last_wins_with_a_warning(write) -> None:  # type: ignore[no-untyped-def]
    write("k2/a.yaml", deployment("api", env="          env: [{name: DB, value: 'postgresql://old-db:5432/x'}]\n"))
    write("k2/b.yaml", deployment("api", env="          env: [{name: DB, value: 'postgresql://db:5432/x'}]\n")
          + "---\n" + deployment("db") + "---\n" + service("db"))
    estate = load_estate([write("k2/c.yaml", "").parent])
    assert ("api", "db") in edges(estate)
    assert any("is defined again" in w.message and w.source.endswith("a.yaml") for w in estate.warnings)


def test_dependent_variables_configmap_volumes_and_command_lines(write) -> None:  # type: ignore[no-untyped-def]
    env = ("          env:\n            - {name: COLLECTOR_HOST, value: otel}\n"
           "            - {name: OTEL_EXPORTER_OTLP_ENDPOINT, value: 'http://$(COLLECTOR_HOST):4318'}\n")
    args = "          args: ['--cache=redis://cache:6379']\n"
    vols = "      volumes: [{name: ds, configMap: {name: datasources}}]\n"
    cm = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: datasources}\ndata:\n  ds.yaml: |\n"
          "    apiVersion: 1\n    datasources:\n      - url: http://prometheus:9090\n")
    docs = [deployment("app", env=env, extra=args), deployment("grafana", volumes=vols), cm]
    docs += [deployment(n) + "---\n" + service(n) for n in ("otel", "cache", "prometheus")]
    estate = load_estate([write("k3/all.yaml", "---\n".join(docs))])
    e = {x.key: x for x in estate.edges}
    assert ("app", "otel") in e and e[("app", "otel")].strength == "soft"  # $(COLLECTOR_HOST) expanded; telemetry
    assert ("app", "cache") in e and ("grafana", "prometheus") in e


def test_dapr_components_and_unknown_internal_urls_are_warnings_and_a_broken_file_is_left_out(write) -> None:  # type: ignore[no-untyped-def]
    write("k4/app.yaml", deployment("app", env="          env: [{name: PAYMENTS, value: 'http://payments:8080/api'}]\n"))
    write("k4/dapr.yaml", "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: statestore}\n"
                          "spec:\n  type: state.redis\n  metadata:\n    - {name: redisHost, value: 'redis-master:6379'}\n")
    write("k4/templates/deploy.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Values.name }}\n"
                                      "  labels: {{- include \"x\" . | nindent 4 }}\n")
    write("k4/nameless.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n")
    estate = load_estate([write("k4/x.txt", "").parent])
    said = [w.message for w in estate.warnings]
    assert any("dapr Component statestore names 'redis-master:6379'" in m for m in said)
    assert any("app connects to payments:8080 (http)" in m for m in said)
    assert any("cannot be read as YAML, left out" in m and "helm template" in m for m in said)
    assert any("without metadata.name: left out" in m for m in said)
    assert {c.name for c in estate.components} == {"app"}
