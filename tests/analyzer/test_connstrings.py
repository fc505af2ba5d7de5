from __future__ import annotations

import pytest

from strangler_analyzer.importers.connstrings import find_endpoints, find_host_ports


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("jdbc:oracle:thin:@ora1:1521:ORCL", [("oracle", "ora1", 1521)]),
        ("jdbc:oracle:thin:@//ora1.corp:1522/CRM", [("oracle", "ora1.corp", 1522)]),
        ("jdbc:mysql://db1:3306/x?useSSL=false", [("mysql", "db1", 3306)]),
        ("jdbc:postgresql://pg/app", [("postgresql", "pg", 5432)]),
        ("jdbc:sqlserver://sql01:1433;databaseName=crm", [("sqlserver", "sql01", 1433)]),
        ("Server=sql01,1433;Database=x;User Id=a", [("sqlserver", "sql01", 1433)]),
        ("Host=pg01;Port=5433;Database=x", [("sqlserver", "pg01", 5433)]),
        ("amqp://user:secret@mq.local:5672/vhost", [("amqp", "mq.local", 5672)]),
        ("redis://cache:6380/0", [("redis", "cache", 6380)]),
        ("mongodb://a:27017,b:27018/db?replicaSet=rs", [("mongodb", "a", 27017), ("mongodb", "b", 27018)]),
        ("failover:(tcp://amq1:61616,tcp://amq2:61616)", [("tcp", "amq1", 61616), ("tcp", "amq2", 61616)]),
        ("https://api.partner.com/v1", [("https", "api.partner.com", 443)]),
        ("(ADDRESS=(PROTOCOL=TCP)(HOST=erp-db)(PORT=1522))", [("oracle", "erp-db", 1522)]),
        ("file:///etc/passwd", []),
        ("just words", []),
    ],
)
def test_find_endpoints(text: str, expected: list[tuple[str, str, int]]) -> None:
    assert [(e.scheme, e.host, e.port) for e in find_endpoints(text)] == expected


def test_bare_host_port_as_kubernetes_writes_it() -> None:
    assert [(e.host, e.port) for e in find_host_ports("productcatalogservice:3550")] == [("productcatalogservice", 3550)]
    assert find_host_ports("version 1.2:3") == []


def test_no_secret_in_any_output_format(write) -> None:  # type: ignore[no-untyped-def]
    from tests.cli.helpers import strangler

    root = write("inventory.yaml", "components:\n  portal-app: {tier: app}\n  db: {tier: database, host: db, port: 5432}\n"
                                   "  mq: {tier: broker, host: mq, port: 5672}\n").parent
    write("portal-app/app.properties", "db.url=postgresql://portal:S3cretA@db:5432/portal\n"
                                       "jdbc.url=jdbc:postgresql://db:5432/portal?user=portal&password=S3cretB\n"
                                       "mq.url=amqp://guest:S3cretC@mq:5672/\n"
                                       "ado=Server=db,5432;Database=x;User Id=sa;Password=S3cretD;\n")
    for fmt in ("text", "json", "markdown", "dot", "mermaid", "html"):
        r = strangler("analyze", str(root), "--format", fmt)
        assert r.returncode == 0, r.stderr
        assert "S3cret" not in r.stdout + r.stderr, fmt
    r = strangler("analyze", str(root), "--format", "json")
    assert "postgresql://portal:***@db:5432" in r.stdout  # still says which connection, without its secret


def test_redact_masks_credentials_and_keeps_the_rest() -> None:
    from strangler_analyzer.importers.connstrings import redact

    assert redact("redis://:pw@cache:6379/0") == "redis://:***@cache:6379/0"
    assert redact("mongodb://app:p%40ss@m1:27017,m2:27017/db") == "mongodb://app:***@m1:27017,m2:27017/db"
    assert redact("Data Source=ora;User Id=u;Password=pw;") == "Data Source=ora;User Id=u;Password=***;"
    assert redact("https://api.corp/v1?token=abc&x=1") == "https://api.corp/v1?token=***&x=1"
    assert redact("http://db:5432/x?user=u") == "http://db:5432/x?user=u"


def test_bare_host_names_give_edges_only_for_keys_that_name_a_host(write) -> None:  # type: ignore[no-untyped-def]
    from strangler_analyzer import load_estate

    compose = write("compose.yaml", """\
services:
  db: {image: mysql:8}
  mysqldb: {image: mysql:8}
  cache: {image: redis:7}
  rabbitmq: {image: rabbitmq:3}
  basketdata: {image: redis:7}
  store: {image: example/store}
  temporal: {image: temporalio/server}
  wordpress:
    image: wordpress
    environment:
      - WORDPRESS_DB_HOST=db
      - POSTGRES_USER=temporal
  catalog:
    image: example/catalog
    environment:
      REDIS_HOST: cache
      MYSQL_DB_HOST: mysqldb
      EventBusConnection: rabbitmq
      ConnectionString: basketdata
      CHECKOUT_URL: "http://gateway/api?endpoint=store:8333"
      WORKFLOW_USER: temporal
""")
    write("catalog/app.properties", "spring.redis.hostname = cache\nlog.level=info\n")
    estate = load_estate([compose.parent])
    got = {(e.src, e.dst) for e in estate.edges}
    assert ("wordpress", "db") in got
    assert {("catalog", "cache"), ("catalog", "mysqldb"), ("catalog", "rabbitmq"), ("catalog", "basketdata"),
            ("catalog", "store")} <= got
    assert ("wordpress", "temporal") not in got and ("catalog", "temporal") not in got  # a user name, not a host
    cache = next(e for e in estate.edges if e.key == ("catalog", "cache"))
    assert {ev.source.rsplit("/", 1)[-1] for ev in cache.evidence} >= {"compose.yaml", "app.properties"}


def test_bare_hosts_in_kubernetes_env_and_cluster_names(write) -> None:  # type: ignore[no-untyped-def]
    from strangler_analyzer import load_estate

    path = write("k8s.yaml", """\
apiVersion: v1
kind: Service
metadata: {name: orders-db, namespace: shop}
spec: {selector: {app: orders-db}, ports: [{port: 5432}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: orders-db, namespace: shop}
spec:
  selector: {matchLabels: {app: orders-db}}
  template:
    metadata: {labels: {app: orders-db}}
    spec: {containers: [{name: db, image: postgres:16}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: orders, namespace: shop}
spec:
  selector: {matchLabels: {app: orders}}
  template:
    metadata: {labels: {app: orders}}
    spec:
      containers:
        - name: app
          image: example/orders
          env:
            - {name: DB_SERVER, value: orders-db}
            - {name: REPLICA, value: orders-db.shop.svc.cluster.local}
            - {name: DB_NAME, value: orders-db}
""")
    estate = load_estate([path])
    edges = [e for e in estate.edges if e.key == ("orders", "orders-db")]
    assert edges, [e.key for e in estate.edges]
    details = " ".join(ev.detail for ev in edges[0].evidence)
    assert "DB_SERVER" in details and "cluster.local" in details and "DB_NAME" not in details
