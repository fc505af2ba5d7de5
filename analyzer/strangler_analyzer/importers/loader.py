"""Detect each input's kind, run its importer, and merge everything into one ``Estate``.

This module owns reading files; the importers turn parsed documents into partial estates.
Connection strings found in any configuration value are resolved to components here, which
is also where declarations and configuration are compared (drift).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from strangler_analyzer.errors import AnalyzerError, InputError, UnknownInputError
from strangler_analyzer.importers.base import ConfigValue, Partial
from strangler_analyzer.importers.compose import read_compose
from strangler_analyzer.importers.connstrings import Endpoint, endpoints_in, redact
from strangler_analyzer.importers.inventory import read_inventory
from strangler_analyzer.importers.kubernetes import read_kubernetes
from strangler_analyzer.importers.systemd import UNIT_SUFFIXES, UnitDir, dropin_unit, link_kind, read_units
from strangler_analyzer.observed.mapping import Observed, map_flows
from strangler_analyzer.observed.readers import detect, read_observations
from strangler_analyzer.model import (
    Component, Drift, Edge, Estate, Evidence, Warning_, merge_components, merge_edges, yield_to_declared,
)
from strangler_common import ConfigError, Location, load_yaml_file

Kind = Literal["inventory", "compose", "kubernetes", "systemd", "config"]
CONFIG_SUFFIXES = {".properties", ".xml", ".conf", ".ini", ".env", ".cfg", ".toml", ".json", ".yaml", ".yml", ".txt", ".config"}
COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
SKIP_DIRS = {".git", "node_modules", "__pycache__", ".venv", "venv"}
OBSERVED_SUFFIXES = {".jsonl", ".csv", ".prom"}  # observations (strangler observe, Azure Migrate, OTel); .json, .txt too by content


def _not_an_estate(docs: list[Any]) -> str:
    """Why a YAML file named on the command line is none of the kinds the analyzer reads."""
    first = docs[0] if docs else None
    if first is None:
        found = "an empty file"
    elif isinstance(first, dict):
        keys = ", ".join(map(str, list(first)[:5]))
        found = f"top-level keys {keys}" + (" (did you mean 'services:'?)" if "service" in first else "")
    else:
        found = f"a {type(first).__name__}"
    return ("expected a Compose file ('services:'), Kubernetes manifests ('apiVersion:' and 'kind:') or an inventory "
            f"('components:'); found {found}")


def _yaml_kind(docs: list[Any]) -> Kind:
    first = docs[0] if docs else None
    if not isinstance(first, dict):
        return "config"
    if "apiVersion" in first and "kind" in first:
        return "kubernetes"
    if "components" in first:
        return "inventory"
    if "services" in first and isinstance(first["services"], dict):
        return "compose"
    return "config"


def _files(path: Path, explicit: bool, warnings: list[Warning_]) -> list[Path]:
    if path.is_dir():
        out: list[Path] = []
        for root, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
            for name in sorted(names):
                p = Path(root) / name
                if p.suffix in UNIT_SUFFIXES or p.suffix in CONFIG_SUFFIXES or p.suffix in OBSERVED_SUFFIXES or name == ".env":
                    out.append(p)
                else:
                    warnings.append(Warning_(str(p), None, "not a kind the analyzer reads; skipped"))
        return out
    if not path.exists():
        raise UnknownInputError(f"{path}: no such file or directory")
    if explicit and path.suffix not in UNIT_SUFFIXES and path.suffix not in CONFIG_SUFFIXES and path.suffix not in OBSERVED_SUFFIXES \
            and path.name != ".env" and _observation_kind(path) is None:
        raise UnknownInputError(
            f"{path}: unknown file kind; expected a Compose or Kubernetes YAML file, an inventory "
            f"YAML, a systemd unit ({', '.join(UNIT_SUFFIXES[:3])}...) or a config file "
            f"({', '.join(sorted(CONFIG_SUFFIXES))})"
        )
    return [path]


def load_estate(
    paths: Sequence[str | Path], profiles: Sequence[str] = (), env_file: str | Path | None = None, lenient: bool = False,
    observed_orders: bool = False,
) -> Estate:
    """Read every path (files or directories, any mix of kinds) into one estate.

    Compose files are merged in the order given, like ``docker compose -f a -f b``; a
    directory's ``compose.override.yaml`` follows its ``compose.yaml``.
    """
    warnings: list[Warning_] = []
    files: list[Path] = []
    project_of: dict[Path, Path] = {}  # a file found in a folder argument -> that folder
    for p in paths:
        listed = _files(Path(p), True, warnings)
        if Path(p).is_dir():
            project_of.update((f, Path(p)) for f in listed)
        files += listed
    files = _order_compose(files)
    compose_docs: list[tuple[str, object]] = []
    k8s_docs: list[tuple[str, object]] = []
    units: list[tuple[str, str]] = []
    unit_dir = UnitDir()
    config_files: list[Path] = []
    observation_files: list[Path] = []
    parts: list[Partial] = []
    for f in files:
        if f.suffix in OBSERVED_SUFFIXES or f.suffix in (".json", ".txt", ".log"):
            if _observation_kind(f) is not None:  # detected by content, as every input
                observation_files.append(f)
                continue
            if f.suffix in OBSERVED_SUFFIXES:
                if f not in project_of:
                    raise UnknownInputError(f"{f}: not an observation file the analyzer reads (strangler observe JSON Lines, "
                                            "ss -tnp or netstat -tnp text, an Azure Migrate dependency CSV, Zipkin/Jaeger "
                                            "dependency links, OpenTelemetry service-graph metrics)")
                warnings.append(Warning_(str(f), None, "not an observation file the analyzer reads; skipped"))
                continue
        link = link_kind(f) if f.suffix in UNIT_SUFFIXES else None
        if link is not None:  # unit.wants/dep.service: a dependency, not a unit file
            unit_dir.links.append((link[0], link[1], f.name, str(f)))
            continue
        dropin = dropin_unit(f)
        if dropin is not None:
            unit_dir.dropins.setdefault(dropin, []).append((str(f), _read_text(f)))
            continue
        if f.suffix in UNIT_SUFFIXES:
            if f.is_symlink():
                target = os.readlink(f)
                if target == "/dev/null":
                    unit_dir.masked[f.name] = str(f)
                    continue
                if Path(target).name != f.name and Path(target).suffix in UNIT_SUFFIXES and (f.parent / target).exists():
                    unit_dir.aliases[f.name] = Path(target).name
            units.append((str(f), _read_text(f)))
            continue
        if f.suffix not in (".yaml", ".yml"):
            config_files.append(f)
            continue
        try:
            docs = load_yaml_file(f)
        except ConfigError as exc:
            if f not in project_of:  # a file named on the command line: its error ends the run
                raise
            # one file of a folder (an unrendered Helm template, a broken example) does not
            # end the run: it is left out, said at its line
            warnings.append(Warning_(str(f), exc.location.line, f"cannot be read as YAML, left out: {exc.message}"
                                     + (" (a Helm template: analyse 'helm template' output)" if "{{" in _read_text(f) else "")))
            continue
        kind = _yaml_kind(docs)
        if kind == "config" and f not in project_of:  # named on the command line: it must be one we read
            raise InputError(Location(str(f), 1), _not_an_estate(docs))
        if kind == "kubernetes":
            k8s_docs += [(str(f), d) for d in docs]
        elif kind == "compose":
            folder = project_of.get(f)
            if folder is not None and f not in compose_files(folder):
                # docker compose run in that folder reads its compose.yaml and override only
                warnings.append(Warning_(str(f), None, f"a Compose file docker compose does not read in {folder} "
                                         "(it reads compose.yaml or docker-compose.yml and its override): not merged; "
                                         "name it as a file argument to analyse it"))
                continue
            compose_docs.append((str(f), docs[0]))
        elif kind == "inventory":
            parts.append(read_inventory(docs[0], str(f)))
        else:
            config_files.append(f)
    if compose_docs:
        # a Compose project's .env holds interpolation variables, read by read_compose
        compose_dirs = {Path(src).parent for src, _ in compose_docs}
        config_files = [f for f in config_files if not (f.name == ".env" and f.parent in compose_dirs)]
        parts.append(read_compose(compose_docs, profiles, Path(env_file) if env_file else None, lenient))
    elif env_file is not None and not Path(env_file).is_file():
        raise ConfigError(Location(str(env_file)), "env file not found")
    if k8s_docs:
        parts.append(read_kubernetes(k8s_docs))
    if units:
        names = {Path(p).name for p, _ in units}
        unit_dir.aliases = {a: t for a, t in unit_dir.aliases.items() if t in names}  # else read under its own name
        parts.append(read_units(units, unit_dir))
    if not parts and not config_files and not units and not observation_files:
        named = ", ".join(str(p) for p in paths)
        raise AnalyzerError(f"{named}: nothing the analyzer reads (a Compose file, Kubernetes manifests, systemd units, an "
                            "inventory YAML, or config files of components)")
    whole = Partial()
    for part in parts:
        whole.extend(part)
    whole.warnings[:0] = warnings
    components = merge_components(whole.components)
    names = {c.name for c in components}
    for f in config_files:
        owner = _owner(f, components)
        if owner is None:
            whole.warn(str(f), None, "config file belongs to no known component (name a directory after one); not scanned")
            continue
        for number, line in enumerate(_read_text(f).splitlines(), 1):
            if line.strip():
                whole.config.append(ConfigValue(owner, line, str(f), number, "", "file"))
    declared = [e for e in whole.edges]
    for e in declared:
        if e.dst not in names:
            ev = e.evidence[0]
            raise InputError(Location(ev.source, ev.line, e.src), f"depends on undefined component {e.dst!r}; defined: {', '.join(sorted(names)) or 'none'}")
    found, unresolved = _config_edges(whole.config, components)
    for w in unresolved:
        whole.warnings.append(w)
    drift = _drift(declared, found, whole.config, components)
    observed: list[Edge] = []
    if observation_files:
        flows = [flow for f in observation_files for flow in read_observations(str(f), _read_text(f), whole.warnings)]
        seen = map_flows(flows, components, observed_orders)
        components = merge_components([*components, *seen.externals])
        whole.warnings.extend(seen.warnings)
        observed = seen.edges
        drift = tuple(sorted((*drift, *_observed_drift(declared, seen)), key=lambda d: (d.src, d.dst, d.kind)))
    edges, yielded = yield_to_declared(merge_edges(declared + found + observed))
    whole.warnings.extend(yielded)
    sources = tuple(sorted({str(f) for f in files}))
    return Estate(
        components=components,
        edges=edges,
        warnings=tuple(sorted(set(whole.warnings), key=lambda w: (w.source, w.line or 0, w.message))),
        drift=drift,
        sources=sources,
    )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(Location(str(path)), f"cannot read file: {exc.strerror}") from None


def compose_files(folder: Path) -> tuple[Path, ...]:
    """What ``docker compose`` reads in ``folder``: the first of ``COMPOSE_NAMES`` there and
    its override file."""
    for name in COMPOSE_NAMES:
        main = folder / name
        if main.is_file():
            override = folder / name.replace(".y", ".override.y", 1)
            return (main, override) if override.is_file() else (main,)
    return ()


def _order_compose(files: list[Path]) -> list[Path]:
    """Within one directory, Compose reads ``compose.yaml`` before its override file."""
    def rank(p: Path) -> int:
        if p.name in COMPOSE_NAMES:
            return 0
        if ".override." in p.name and p.name.replace(".override", "") in COMPOSE_NAMES:
            return 1
        return 2
    out: list[Path] = []
    for f in files:
        out.append(f)
    # stable: keep the user's order across directories, fix it only within a directory
    by_dir: dict[Path, list[int]] = {}
    for i, f in enumerate(out):
        if rank(f) < 2:
            by_dir.setdefault(f.parent, []).append(i)
    for idxs in by_dir.values():
        ordered = sorted((out[i] for i in idxs), key=rank)
        for i, f in zip(idxs, ordered):
            out[i] = f
    return out


def _owner(path: Path, components: Sequence[Component]) -> str | None:
    known: dict[str, str] = {}
    for c in components:
        known[c.name.lower()] = c.name
        for a in c.aliases:
            known.setdefault(a, c.name)
    parents = list(reversed(path.parent.parts))
    # the nearest folder names the owner best (config/tomcat-1/db.properties), then the file
    for part in [*parents[:1], path.stem, *parents[1:]]:
        if part.lower() in known:
            return known[part.lower()]
    return None


Index = dict[str, list[str]]
PortIndex = dict[tuple[str, int], list[str]]


def _index(components: Sequence[Component]) -> tuple[Index, PortIndex]:
    """Host names (and host:port) -> every component answering there: a Kubernetes Service
    selecting v1 and v2 of one app names both."""
    by_host: Index = {}
    by_host_port: PortIndex = {}
    for c in components:
        for host in dict.fromkeys((c.name.lower(), *(c.aliases), *((c.host,) if c.host else ()))):
            by_host.setdefault(host, []).append(c.name)
            if c.port:
                by_host_port.setdefault((host, c.port), []).append(c.name)
    return by_host, by_host_port


def _resolve(ep: Endpoint, by_host: Index, by_hp: PortIndex) -> list[str]:
    candidates = [ep.host]
    if "." in ep.host and not ep.host.replace(".", "").isdigit():
        candidates.append(ep.host.split(".")[0])  # svc.ns.svc.cluster.local, mq.local
    for host in candidates:
        if ep.port and (host, ep.port) in by_hp:
            return by_hp[(host, ep.port)]
    for host in candidates:
        if host in by_host:
            return by_host[host]
    return []


_DATA_SCHEMES = {"oracle", "mysql", "postgresql", "postgres", "sqlserver", "amqp", "amqps", "redis", "rediss", "mongodb", "ldap", "ldaps", "t3", "t3s", "db2", "kafka", "nats", "stomp"}


# keys and ports of the telemetry and error-reporting endpoints applications send to when they
# can (OpenTelemetry's OTLP, Jaeger, Zipkin, statsd, Datadog's agent, Sentry and the like)
_TELEMETRY_KEY = re.compile(r"(?i)otel|otlp|jaeger|zipkin|statsd|sentry|datadog|\bdd_|^dd_|apm|tracing|tracer|telemetry|"
                            r"honeycomb|newrelic|new_relic|elastic_apm|signalfx|lightstep|collector|metrics_(?:endpoint|url|host)")
_TELEMETRY_PORTS = frozenset({4317, 4318, 14250, 14268, 6831, 6832, 9411, 8125, 8126, 55680, 55681})


def is_telemetry(key: str, ep: Endpoint) -> bool:
    """Whether a configured endpoint is telemetry: an application never blocks its start on it.

    >>> is_telemetry("OTEL_EXPORTER_OTLP_ENDPOINT", Endpoint("http", "collector", 4318, ""))
    True
    >>> is_telemetry("DATABASE_URL", Endpoint("postgresql", "db", 5432, ""))
    False
    """
    name = re.split(r"[ .]", key)[-1]  # the variable's own name, not the path to it (services.collector...)
    return bool(_TELEMETRY_KEY.search(name)) or ep.port in _TELEMETRY_PORTS or ep.scheme in ("statsd", "sentry")


def _config_edges(config: list[ConfigValue], components: Sequence[Component]) -> tuple[list[Edge], list[Warning_]]:
    by_host, by_hp = _index(components)
    namespace = {c.name: c.namespace for c in components}
    edges: list[Edge] = []
    warnings: list[Warning_] = []
    for value in config:
        endpoints = endpoints_in(value.text, value.key)
        if value.origin == "k8s.init" and not endpoints:
            endpoints = [Endpoint("tcp", w.lower(), None, w) for w in value.text.replace(";", " ").split() if w.lower() in by_host]
        for ep in endpoints:
            targets = _resolve(ep, by_host, by_hp)
            own = namespace.get(value.owner)
            if len(targets) > 1 and own is not None:  # a Service name resolves in the caller's namespace first
                targets = [t for t in targets if namespace.get(t) == own] or targets
            if not targets:
                internal = ep.scheme in ("http", "https") and ("." not in ep.host or ep.host.endswith((".svc", ".cluster.local", ".local")))
                if (ep.scheme in _DATA_SCHEMES or internal) and ep.host not in ("localhost", "127.0.0.1"):
                    warnings.append(Warning_(value.source, value.line, f"{value.owner} connects to {ep.host}:{ep.port or '?'} ({ep.scheme}), which no component in the input matches"))
                continue
            detail = redact(f"{value.key}: {ep.raw}" if value.key else ep.raw)  # no secret in any output
            # telemetry (traces, metrics, error reports) is sent when it can be: no one waits for it
            soft = is_telemetry(value.key, ep)
            for dst in targets:
                if dst != value.owner:
                    edges.append(Edge(value.owner, dst, "soft" if soft else "hard", not soft,
                                      (Evidence(value.source, value.line, f"config.{value.origin}" + (".telemetry" if soft else ""),
                                                detail),), declared=False))
    return edges, warnings


def _observation_kind(path: Path) -> str | None:
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            return detect(f.read(65536))
    except OSError:
        return None


def _observed_drift(declared: list[Edge], seen: Observed) -> list[Drift]:
    """Observed, declared nowhere (a hidden dependency); declared, never observed although
    its caller was watched (over the window, stated)."""
    declared_keys = {e.key for e in declared}
    observed_keys = {e.key for e in seen.edges}
    out = [Drift(e.src, e.dst, "observed_undeclared", e.evidence) for e in seen.edges if e.key not in declared_keys]
    window = seen.window_text()
    external = {c.name for c in seen.externals}
    for e in declared:
        if e.src in seen.covered and e.key not in observed_keys and e.dst not in external:
            out.append(Drift(e.src, e.dst, "declared_unobserved",
                             (*e.evidence, Evidence(seen.sources[0] if seen.sources else "", None, "observed.window",
                                                    f"not seen from {e.src} during {window}"))))
    return out


def _drift(declared: list[Edge], found: list[Edge], config: list[ConfigValue], components: Sequence[Component]) -> tuple[Drift, ...]:
    declared_keys = {e.key for e in declared}
    declaring = {e.src for e in declared} | {c.name for c in components if any(ev.kind in ("inventory", "compose.service", "systemd.unit") for ev in c.evidence)}
    configured = {v.owner for v in config}
    found_by_key: dict[tuple[str, str], list[Evidence]] = {}
    for e in found:
        found_by_key.setdefault(e.key, []).extend(e.evidence)
    drift: list[Drift] = []
    for key, ev in found_by_key.items():
        if key not in declared_keys and key[0] in declaring:
            drift.append(Drift(key[0], key[1], "undeclared", tuple(ev)))
    external = {c.name for c in components if c.external}
    for e in declared:
        if e.src in configured and e.key not in found_by_key and e.dst not in external:
            drift.append(Drift(e.src, e.dst, "unconfigured", e.evidence))
    return tuple(sorted(drift, key=lambda d: (d.src, d.dst, d.kind)))
