"""What every importer returns: a partial estate plus configuration text to scan."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    "mssql": "database", "mongo": "database", "cassandra": "database", "db2": "database",
    "redis": "cache", "memcached": "cache", "valkey": "cache",
    "elasticsearch": "search", "opensearch": "search", "solr": "search",
    "rabbitmq": "broker", "activemq": "broker", "artemis": "broker", "kafka": "broker",
    "nats": "broker", "zookeeper": "broker", "openldap": "directory", "keycloak": "directory",
    "nginx": "web", "httpd": "web", "apache": "web", "haproxy": "web", "traefik": "web", "envoy": "web",
}


def tier_from_image(image: str) -> str:
    """Guess a tier from a container image name: ``postgres:16`` is a database."""
    base = image.rsplit("/", 1)[-1].split(":")[0].split("@")[0].lower()
    for key, tier in DATASTORE_IMAGES.items():
        if base == key or base.startswith(key + "-") or base.endswith("-" + key) or key in base.split("-"):
            return tier
    return "app"
