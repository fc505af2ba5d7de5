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
