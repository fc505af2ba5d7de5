"""Tiers from evidence, not the image name alone (issue 22, item 18), and extraction
candidates that are services a team could extract (item 19)."""

from __future__ import annotations

import pytest

from strangler_analyzer import analyze, load_estate


def tiers(estate):  # type: ignore[no-untyped-def]
    return {c.name: c.tier for c in estate.components}


def test_compose_tiers_from_image_vendor_tag_healthcheck_env_ports_and_labels(write) -> None:  # type: ignore[no-untyped-def]
    compose = write("t/compose.yaml", (
        "services:\n"
        "  pg: {image: bitnami/postgresql:16}\n"
        "  broker: {image: 'confluentinc/cp-server:7.6'}\n"
        "  kafka-ui: {image: provectuslabs/kafka-ui}\n"
        "  pg-exporter: {image: prometheuscommunity/postgres-exporter}\n"
        "  store: {image: 'mycorp/store:postgres-15'}\n"
        "  search:\n    build: ./search\n    environment: {discovery.type: single-node}\n"
        "  sessions:\n    build: ./sessions\n    healthcheck: {test: [CMD, redis-cli, ping]}\n"
        "  queue:\n    build: ./queue\n    expose: ['5672']\n"
        "  ledger:\n    build: ./ledger\n    labels: {strangler.tier: database}\n"
        "  ledger2:\n    build: ./ledger\n    labels: [strangler.tier=erp]\n"
        "  orders: {image: shop/orders, ports: ['8080:8080']}\n"))
    estate = load_estate([compose])
    assert tiers(estate) == {"pg": "database", "broker": "broker", "kafka-ui": "admin", "pg-exporter": "monitoring",
                             "store": "database", "search": "search", "sessions": "cache", "queue": "broker",
                             "ledger": "database", "ledger2": "erp", "orders": "app"}
    search = next(c for c in estate.components if c.name == "search")
    assert any(e.kind == "tier" and e.detail == "environment key discovery.type" for e in search.evidence)
    ranked = {c.component for c in analyze(estate).candidates}
    assert ranked == {"orders"}  # no datastore, broker, console or exporter is ranked for extraction


def test_kubernetes_tiers_from_annotations_env_and_ports(write) -> None:  # type: ignore[no-untyped-def]
    doc = write("k/app.yaml", "\n---\n".join(
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n{meta}spec:\n  selector: {{matchLabels: {{app: {name}}}}}\n"
        f"  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers:\n"
        f"        - name: c\n          image: {image}\n{extra}"
        for name, meta, image, extra in (
            ("db", "", "corp/runtime:1", "          env: [{name: POSTGRES_PASSWORD, value: x}]\n"),
            ("mq", "", "corp/runtime:1", "          ports: [{containerPort: 5672}]\n"),
            ("ledger", "  annotations: {strangler.io/tier: database}\n", "corp/ledger:1", ""),
            ("web", "", "corp/web:1", "          ports: [{containerPort: 8080}]\n"))))
    assert tiers(load_estate([doc])) == {"db": "database", "mq": "broker", "ledger": "database", "web": "app"}


@pytest.mark.slow  # runs the strangler command
def test_candidates_serve_requests_and_run_on_and_the_plan_says_why_others_are_not(write, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 22, item 19: no one-shot job, systemd target or portless worker is ranked."""
    compose = write("c/compose.yaml", (
        "services:\n"
        "  migrate: {image: shop/migrate}\n"
        "  orders:\n    image: shop/orders\n    ports: ['8080']\n"
        "    depends_on: {migrate: {condition: service_completed_successfully}}\n"
        "  mailer: {image: shop/mailer, environment: {BROKER: 'amqp://mq:5672'}}\n"
        "  catalog: {image: shop/catalog}\n"
        "  front: {image: shop/front, ports: ['80'], environment: {CATALOG_URL: 'http://catalog:9000'}}\n"
        "  mq: {image: rabbitmq:3}\n"))
    units = tmp_path / "units"
    units.mkdir()
    (units / "portal.target").write_text("[Unit]\nWants=app.service\n")
    (units / "app.service").write_text("[Service]\nExecStart=/usr/bin/app\n")
    (units / "cleanup.service").write_text("[Service]\nType=oneshot\nExecStart=/usr/bin/cleanup\n")
    a = analyze(load_estate([compose]))
    assert {c.component for c in a.candidates} == {"orders", "front", "catalog"}  # catalog: called by URL
    assert a.excluded["migrate"].startswith("a one-shot job") and a.excluded["mailer"].startswith("serves no port")
    assert a.excluded["mq"].startswith("a broker (infrastructure: image rabbitmq:3)")
    b = analyze(load_estate([units]))
    assert b.excluded["portal.target"].startswith("a systemd target") and b.excluded["cleanup"].startswith("a one-shot job")
    from tests.cli.helpers import strangler
    import json

    r = strangler("analyze", str(compose), "--format", "json")
    doc = {c["name"]: c for c in json.loads(r.stdout)["components"]}
    assert doc["migrate"]["candidate"] is False and doc["migrate"]["role"] == "job" and "one-shot" in doc["migrate"]["not_candidate"]
