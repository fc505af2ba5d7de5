"""What every importer returns: a partial estate plus configuration text to scan."""

from __future__ import annotations

import re
from collections.abc import Iterable

from dataclasses import dataclass, field
from functools import lru_cache

from strangler_analyzer.model import Check, Component, Edge, Warning_
from strangler_common import Node


@dataclass(frozen=True, slots=True)
class ConfigValue:
    """A configuration value owned by a component, to be scanned for connection strings."""

    owner: str
    text: str
    source: str
    line: int | None
    key: str
    origin: str = "file"  # evidence kind becomes ``config.<origin>``


@dataclass
class Partial:
    """What one importer found. Mutable while an importer fills it, then merged."""

    components: list[Component] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    warnings: list[Warning_] = field(default_factory=list)
    config: list[ConfigValue] = field(default_factory=list)

    def warn(self, source: str, line: int | None, message: str) -> None:
        self.warnings.append(Warning_(source, line, message))

    def extend(self, other: Partial) -> None:
        self.components += other.components
        self.edges += other.edges
        self.warnings += other.warnings
        self.config += other.config


CHECK_KINDS = ("tcp", "http", "command", "file", "log", "postgres", "redis")
CHECK_OPTIONS = frozenset({"status", "body", "json_path", "equals", "pattern", "timeout", "interval"})


def parse_check(node: Node) -> Check:
    """``{http: URL, status: 200}``, ``{tcp: host:port}``, ``{command: "..."}``, ..."""
    fields = node.mapping(set(CHECK_KINDS) | CHECK_OPTIONS, what="a check such as {tcp: host:port}")
    kinds = [k for k in CHECK_KINDS if k in fields]
    if len(kinds) != 1:
        node.fail("expected exactly one check kind among " + ", ".join(CHECK_KINDS))
    kind = kinds[0]
    target = fields[kind].string(f"the {kind} check's target")
    options: dict[str, str] = {}
    for key in sorted(CHECK_OPTIONS & fields.keys()):
        value = fields[key]
        if key == "status":
            options[key] = str(value.integer(100, 599))
        elif key in ("timeout", "interval"):
            options[key] = f"{value.number(0.001):g}"
        else:
            options[key] = value.scalar_text()
    return Check(kind, target, options)  # type: ignore[arg-type]


DATASTORE_IMAGES = {
    "postgres": "database", "mysql": "database", "mariadb": "database", "oracle": "database",
    "mssql": "database", "mongo": "database", "mongodb": "database", "cassandra": "database", "db2": "database",
    "sqlserver": "database", "azure-sql-edge": "database", "percona": "database", "couchbase": "database",
    "couchdb": "database", "neo4j": "database", "influxdb": "database", "clickhouse": "database",
    "timescaledb": "database", "cockroach": "database", "yugabyte": "database", "scylla": "database",
    "arangodb": "database", "questdb": "database", "memgraph": "database", "oracle-xe": "database", "database": "database",
    "redis": "cache", "memcached": "cache", "valkey": "cache", "dragonfly": "cache", "keydb": "cache", "hazelcast": "cache",
    "elasticsearch": "search", "opensearch": "search", "solr": "search", "meilisearch": "search", "typesense": "search",
    "rabbitmq": "broker", "activemq": "broker", "artemis": "broker", "kafka": "broker", "redpanda": "broker",
    "nats": "broker", "zookeeper": "broker", "mosquitto": "broker", "pulsar": "broker", "emqx": "broker",
    "openldap": "directory", "keycloak": "directory", "vault": "directory", "consul": "directory", "etcd": "directory",
    "minio": "storage", "azurite": "storage", "localstack": "storage",
    "prometheus": "monitoring", "grafana": "monitoring", "jaeger": "monitoring", "jaegertracing": "monitoring",
    "zipkin": "monitoring", "loki": "monitoring", "tempo": "monitoring", "alertmanager": "monitoring",
    "opentelemetry-collector": "monitoring", "otel": "monitoring", "node-exporter": "monitoring", "cadvisor": "monitoring",
    "mailhog": "mail", "mailpit": "mail", "mailcatcher": "mail",
    "postgresql": "database", "postgis": "database", "cp-server": "broker", "cp-kafka": "broker",
    "cp-zookeeper": "broker", "cp-enterprise-kafka": "broker",
    "nginx": "web", "httpd": "web", "apache": "web", "haproxy": "web", "traefik": "web", "envoy": "web",
}
WEB_SERVERS = {"nginx", "httpd", "apache", "haproxy", "traefik", "envoy"}


# the tools around a datastore are not the datastore: a Kafka UI, a Postgres exporter
TOOL_SUFFIXES = {"ui": "admin", "exporter": "monitoring", "admin": "admin", "commander": "admin", "express": "admin",
                 "web": "admin", "manager": "admin", "console": "admin"}
ADMIN_IMAGES = {"adminer": "admin", "pgadmin4": "admin", "pgadmin": "admin", "phpmyadmin": "admin", "kafdrop": "admin",
                "akhq": "admin", "redisinsight": "admin", "mongo-express": "admin", "redis-commander": "admin",
                "schema-registry": "broker", "cp-schema-registry": "broker", "kafka-connect": "broker"}


def _tier_of(name: str) -> str | None:
    if name in ADMIN_IMAGES:
        return ADMIN_IMAGES[name]
    words = name.split("-")
    if len(words) > 1 and words[-1] in TOOL_SUFFIXES:
        return TOOL_SUFFIXES[words[-1]]
    for key, tier in DATASTORE_IMAGES.items():
        if name == key or name.startswith(key + "-") or name.endswith("-" + key) or key in name.split("-"):
            return tier
    return None


@lru_cache(maxsize=4096)  # estates reuse a few images many times
def tier_from_image(image: str) -> str:
    """Guess a tier from a container image name: ``postgres:16`` is a database.

    The image's own name decides; failing that, its namespace (``mcr.microsoft.com/mssql/server``
    is SQL Server, ``jaegertracing/all-in-one`` is Jaeger), except a web server's namespace
    (``apache/airflow`` is an application). The registry host is never read.

    >>> [tier_from_image(i) for i in ("mcr.microsoft.com/mssql/server:2022-latest", "bitnami/kafka", "apache/airflow")]
    ['database', 'broker', 'app']
    >>> [tier_from_image(i) for i in ("bitnami/postgresql:16", "confluentinc/cp-server:7.6", "provectuslabs/kafka-ui",
    ...                               "prometheuscommunity/postgres-exporter", "mycorp/store:postgres-15")]
    ['database', 'broker', 'admin', 'monitoring', 'database']
    """
    parts = image.split("@")[0].lower().split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]  # the registry host
    parts[-1], _, tag = parts[-1].partition(":")
    tier = _tier_of(parts[-1])
    if tier is not None:
        return tier
    for word in re.split(r"[-_.]", tag):  # the engine in the tag: mycorp/db:postgres-15
        if word in DATASTORE_IMAGES and DATASTORE_IMAGES[word] != "web":
            return DATASTORE_IMAGES[word]
    for namespace in reversed(parts[:-1]):
        if namespace not in WEB_SERVERS:
            tier = _tier_of(namespace)
            if tier is not None:
                return tier
    return "app"


# evidence beyond the image, weakest last: a healthcheck's command, the engine's own
# environment keys, a well-known port
_CHECK_WORDS = (("pg_isready", "database"), ("mysqladmin", "database"), ("mongosh", "database"), ("mongo ", "database"),
                ("cqlsh", "database"), ("redis-cli", "cache"), ("valkey-cli", "cache"), ("_cluster/health", "search"),
                ("kafka-topics", "broker"), ("kafka-broker-api-versions", "broker"), ("rabbitmq-diagnostics", "broker"),
                ("rabbitmqctl", "broker"), ("zkok", "broker"), ("nodetool", "database"))
_ENV_PREFIXES = (("POSTGRES_", "database"), ("PGDATA", "database"), ("MYSQL_", "database"), ("MARIADB_", "database"),
                 ("MONGO_INITDB_", "database"), ("ORACLE_PWD", "database"), ("MSSQL_", "database"), ("ACCEPT_EULA", "database"),
                 ("ELASTIC_PASSWORD", "search"), ("discovery.type", "search"), ("OPENSEARCH_", "search"),
                 ("KAFKA_BROKER_ID", "broker"), ("KAFKA_NODE_ID", "broker"), ("KAFKA_PROCESS_ROLES", "broker"),
                 ("KAFKA_CFG_", "broker"), ("KAFKA_ADVERTISED_LISTENERS", "broker"), ("RABBITMQ_DEFAULT_", "broker"),
                 ("ZOO_", "broker"), ("ZOOKEEPER_CLIENT_PORT", "broker"))
_PORTS = {5432: "database", 3306: "database", 1521: "database", 1433: "database", 27017: "database", 9042: "database",
          6379: "cache", 11211: "cache", 9200: "search", 9092: "broker", 5672: "broker", 2181: "broker", 4222: "broker",
          61616: "broker", 389: "directory", 9000: "storage"}
TIER_LABELS = ("strangler.tier", "strangler.io/tier")


def infer_tier(image: str = "", check: str = "", env_keys: Iterable[str] = (), ports: Iterable[int] = (),
               override: str | None = None) -> tuple[str, str]:
    """(tier, what decided it): an operator's override (a ``strangler.tier`` label or
    annotation, the inventory's ``tier:``), else the image, else a healthcheck command,
    the engine's environment keys, then a well-known port.

    >>> infer_tier("example/search-node", env_keys=["discovery.type", "ES_JAVA_OPTS"])
    ('search', 'environment key discovery.type')
    >>> infer_tier("build/local", check="pg_isready -U shop")
    ('database', 'healthcheck pg_isready')
    """
    if override:
        return override, "its strangler.tier label"
    tier = tier_from_image(image) if image else "app"
    if tier != "app":
        return tier, f"image {image}"
    for word, t in _CHECK_WORDS:
        if word in check:
            return t, f"healthcheck {word.strip()}"
    for key in env_keys:
        for prefix, t in _ENV_PREFIXES:
            if key.startswith(prefix):
                return t, f"environment key {key}"
    for port in ports:
        if port in _PORTS:
            return _PORTS[port], f"port {port}"
    return "app", "no datastore evidence"
