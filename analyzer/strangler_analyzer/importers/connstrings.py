"""Find the network endpoints that connection strings in configuration point at.

Pure text work: ``find_endpoints`` returns every (scheme, host, port) it recognises in a
value; resolving hosts to components is the estate builder's job.

>>> [(e.scheme, e.host, e.port) for e in find_endpoints("jdbc:oracle:thin:@//ora1:1521/CRM")]
[('oracle', 'ora1', 1521)]
>>> [(e.scheme, e.host, e.port) for e in find_endpoints("Server=sql01,1433;Database=x")]
[('sqlserver', 'sql01', 1433)]
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

DEFAULT_PORTS = {
    "http": 80, "https": 443, "amqp": 5672, "amqps": 5671, "redis": 6379, "rediss": 6379,
    "mongodb": 27017, "postgresql": 5432, "postgres": 5432, "mysql": 3306, "mariadb": 3306,
    "oracle": 1521, "sqlserver": 1433, "ldap": 389, "ldaps": 636, "tcp": None, "nats": 4222,
    "kafka": 9092, "elasticsearch": 9200, "ssl": None, "nio": None, "t3": 7001, "t3s": 7002,
    "jms": None, "stomp": 61613, "mqtt": 1883, "memcached": 11211, "smtp": 25, "ftp": 21,
    "sftp": 22, "iiop": None, "db2": 50000,
}

_HOST = r"(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?)"
_PORT = r"(?::(?P<port>\d{1,5}))?"
# scheme://[user[:pass]@]host[:port][,host2[:port2]...]
_URL = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?:[^@/\s,;'\"]*@)?"
    r"(?P<hosts>(?:(?![A-Za-z][A-Za-z0-9+.-]*://)[^/\s?#;'\")])+)"
)
_JDBC_ORACLE = re.compile(
    r"jdbc:oracle:(?:thin|oci):(?:[^@\s]*)@(?://)?" + _HOST + _PORT
)
_ORACLE_TNS = re.compile(r"\(\s*HOST\s*=\s*" + _HOST + r"\s*\)\s*\(\s*PORT\s*=\s*(?P<port>\d+)\s*\)", re.I)
_ADO = re.compile(
    r"(?:^|[;\s\"'])(?:Server|Data Source|Host|Address|Addr|Network Address)\s*=\s*"
    r"(?:tcp:)?" + _HOST + r"(?:[,:](?P<port>\d{1,5}))?\s*(?:;|$|[\"'])",
    re.I,
)
_ADO_PORT = re.compile(r"(?:^|;)\s*Port\s*=\s*(?P<port>\d{1,5})", re.I)


@dataclass(frozen=True, slots=True)
class Endpoint:
    scheme: str
    host: str
    port: int | None
    raw: str


_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][\w+.-]*://)(?P<user>[^:/@\s]*):(?P<secret>[^@/\s]*)@")
_SECRET_FIELD = re.compile(r"(?i)(?P<key>\b(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)\s*[=:]\s*)"
                           r"(?P<value>[^;&\s,]+)")


def redact(text: str) -> str:
    """``text`` with credentials masked: URL passwords, and password/secret/token fields
    of query strings, ADO/ODBC strings and key=value pairs. Every output goes through it.

    >>> redact("amqp://guest:s3cret@mq:5672/ jdbc:x://db/p?user=u&password=p2 Server=db;Pwd=p3;")
    'amqp://guest:***@mq:5672/ jdbc:x://db/p?user=u&password=*** Server=db;Pwd=***;'
    """
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _SECRET_FIELD.sub(lambda m: m["key"] + "***", text)


def _port(text: str | None, scheme: str) -> int | None:
    if text:
        value = int(text)
        return value if 0 < value < 65536 else None
    return DEFAULT_PORTS.get(scheme)


def _split_hosts(hosts: str, scheme: str, raw: str) -> list[Endpoint]:
    out = []
    for part in hosts.split(","):
        m = re.fullmatch(_HOST + _PORT, part.strip())
        if m:
            out.append(Endpoint(scheme, m["host"].strip("[]").lower(), _port(m["port"], scheme), raw))
    return out


def find_endpoints(text: str) -> list[Endpoint]:
    """Every endpoint named by a connection string in ``text``, in order of appearance."""
    return _scan(text)[0]


def _scan(text: str) -> tuple[list[Endpoint], list[tuple[int, int]]]:
    found: list[tuple[int, Endpoint]] = []
    taken: list[tuple[int, int]] = []

    def add(start: int, end: int, endpoints: list[Endpoint]) -> None:
        if any(s <= start < e for s, e in taken):
            return
        taken.append((start, end))
        found.extend((start, ep) for ep in endpoints)

    # each pattern only where its literal part occurs: most values hold none (LOG_LEVEL: info)
    for m in _JDBC_ORACLE.finditer(text) if "jdbc:oracle:" in text else ():
        add(m.start(), m.end(), [Endpoint("oracle", m["host"].lower(), _port(m["port"], "oracle"), m[0])])
    for m in _ORACLE_TNS.finditer(text) if "(" in text else ():
        add(m.start(), m.end(), [Endpoint("oracle", m["host"].lower(), int(m["port"]), m[0])])
    for m in _URL.finditer(text) if "://" in text else ():
        scheme = m["scheme"].lower()
        if scheme.startswith("jdbc:"):
            scheme = scheme[5:]
        scheme = scheme.split(":")[-1].split("+")[0]
        if scheme in ("file", "classpath", "jar", "vm"):
            continue
        add(m.start(), m.end(), _split_hosts(m["hosts"], scheme, m[0]))
    for m in _ADO.finditer(text) if "=" in text else ():
        port = m["port"]
        if port is None:
            extra = _ADO_PORT.search(text)
            port = extra["port"] if extra else None
        add(m.start(), m.end(), [Endpoint("sqlserver", m["host"].lower(), _port(port, "sqlserver"), m[0].strip(" ;\"'"))])
    # ``jdbc:mysql://`` etc. are matched by _URL through their inner scheme.
    return [ep for _, ep in sorted(found, key=lambda t: t[0])], taken


_HOSTPORT = re.compile(
    r"(?<![\w.:/-])(?P<host>[A-Za-z][A-Za-z0-9_.-]*[A-Za-z0-9]|\d{1,3}(?:\.\d{1,3}){3})"
    r":(?P<port>\d{1,5})(?![\w.-])"
)


def find_host_ports(text: str) -> list[Endpoint]:
    """Bare ``host:port`` values (the Kubernetes ``FOO_ADDR: svc:3550`` style)."""
    return [
        Endpoint("tcp", m["host"].lower(), int(m["port"]), m[0])
        for m in (_HOSTPORT.finditer(text) if ":" in text else ())
        if 0 < int(m["port"]) < 65536
    ]


# key names that say their value is a host or a connection (split on _ . - and camelCase)
_HOST_WORDS = {"host", "hostname", "hosts", "server", "servers", "addr", "address", "endpoint", "broker", "brokers",
               "connection", "connectionstring", "dsn", "url", "uri", "service", "svc"}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_KEY_VALUE = re.compile(r"^\s*(?:export\s+)?(?P<key>[A-Za-z_][\w.\-]*)\s*[=:]\s*(?P<value>.*?)\s*$")
_BARE_HOST = re.compile(r"[A-Za-z][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*")
_CLUSTER_FQDN = re.compile(r"(?<![\w.-])(?P<host>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.[a-z0-9-]+\.svc(?:\.cluster\.local)?)(?![\w.-])")


@functools.lru_cache(maxsize=4096)  # the same few key names, once per service
def names_a_host(key: str) -> bool:
    """Whether a configuration key says its value is a host or a connection.

    >>> [names_a_host(k) for k in ("WORDPRESS_DB_HOST", "EventBusConnection", "db.hostname", "POSTGRES_USER")]
    [True, True, True, False]
    """
    words = [w for w in re.split(r"[_.\-\s]+", _CAMEL.sub("_", key).lower()) if w]
    return bool(words) and (words[-1] in _HOST_WORDS or "".join(words[-2:]) in _HOST_WORDS)


def find_bare_hosts(key: str, text: str) -> list[Endpoint]:
    """A whole value that is only a host name (``REDIS_HOST=cache``), for keys that name a
    host or a connection; and Kubernetes service names (``svc.ns.svc.cluster.local``)
    anywhere. The caller keeps only hosts that are components: a bare word is weak evidence.

    >>> [e.host for e in find_bare_hosts("services.web.environment.WORDPRESS_DB_HOST", "db")]
    ['db']
    >>> [e.host for e in find_bare_hosts("", "ConnectionString=basketdata")]
    ['basketdata']
    >>> find_bare_hosts("services.db.environment.POSTGRES_USER", "temporal")
    []
    """
    out = [Endpoint("tcp", m["host"].lower(), None, m[0]) for m in _CLUSTER_FQDN.finditer(text)] if ".svc" in text else []
    name = key.rsplit(".", 1)[-1].rsplit(" ", 1)[-1] if key else ""
    value = text
    if not name or "[" in name or not names_a_host(name):
        m = _KEY_VALUE.match(text)
        if m is None:
            return out
        name, value = m["key"].rsplit(".", 1)[-1], m["value"]
        if not names_a_host(m["key"].replace(".", "_")):
            return out
    value = value.strip().strip("\"'")
    hosts = [h.strip() for h in value.split(",")]
    if hosts and all(_BARE_HOST.fullmatch(h) for h in hosts):
        out += [Endpoint("tcp", h.lower(), None, value) for h in hosts if not any(e.host == h.lower() for e in out)]
    return out


def endpoints_in(text: str, key: str = "") -> list[Endpoint]:
    """Every endpoint a configuration value names: connection strings and URLs, bare
    ``host:port`` (also inside a URL's query string: ``?endpoint=store:8333``), and bare
    host names where the key says it holds one."""
    found, taken = _scan(text)
    rest = text
    for start, end in taken:
        rest = rest[:start] + " " * (end - start) + rest[end:]
    found += find_host_ports(rest)
    if not found:
        found = find_bare_hosts(key, text)
    return found
