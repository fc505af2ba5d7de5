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
