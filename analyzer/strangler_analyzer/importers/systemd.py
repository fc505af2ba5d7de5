"""systemd unit files: requirement and ordering kept apart, as systemd keeps them.

``Requires=``/``BindsTo=``/``Requisite=`` make an edge hard, ``Wants=`` soft; ``After=`` orders
it (and ``Before=`` on the other unit does too). ``Requires=`` without ``After=`` is a hard
edge that does not order start-up: systemd starts both at once. Units outside the input
that a unit needs or starts after (``network-online.target``) become external components,
with a warning. ``Before=`` a unit outside the input (``Before=shutdown.target``, in most
real units) orders nothing this estate starts, so it adds no edge.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from strangler_analyzer.importers.base import ConfigValue, Partial
from strangler_analyzer.model import Component, Edge, Evidence
from strangler_common import ConfigError, Location

UNIT_SUFFIXES = (".service", ".socket", ".target", ".mount", ".timer", ".path", ".device", ".slice", ".scope", ".swap", ".automount")
REQUIRE = {"Requires": "hard", "BindsTo": "hard", "Requisite": "hard", "Wants": "soft", "Upholds": "soft"}


def unit_name(name: str) -> str:
    """``tomcat.service`` -> ``tomcat``; other unit types keep their suffix."""
    return name[: -len(".service")] if name.endswith(".service") else name


def parse_unit(text: str, source: str) -> dict[str, dict[str, list[tuple[str, int]]]]:
    """Sections -> key -> [(value, line)]; repeated keys accumulate, an empty value resets."""
    sections: dict[str, dict[str, list[tuple[str, int]]]] = {}
    current: dict[str, list[tuple[str, int]]] | None = None
    pending = ""
    pending_line = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if pending:
            line, number = pending + line.lstrip(), pending_line
            pending = ""
        if line.endswith("\\"):
            pending, pending_line = line[:-1] + " ", number
            continue
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            current = sections.setdefault(stripped[1:-1], {})
            continue
        key, sep, value = stripped.partition("=")
        if not sep or current is None:
            raise ConfigError(Location(source, number), f"expected [Section] or Key=Value, found {stripped!r}")
        key, value = key.strip(), value.strip()
        if not value:
            current[key] = []
        else:
            current.setdefault(key, []).append((value, number))
    return sections


def read_units(files: list[tuple[str, str]]) -> Partial:
    """Read unit files given as (path, text) pairs."""
    out = Partial()
    defined = {unit_name(Path(p).name) for p, _ in files}
    befores: list[tuple[str, str, str, int]] = []
    for path, text in files:
        name = unit_name(Path(path).name)
        sections = parse_unit(text, path)
        unit = sections.get("Unit", {})
        service = sections.get("Service", {})
        ordered_after: dict[str, int] = {}
        for value, ln in unit.get("After", []):
            for dep in value.split():
                ordered_after.setdefault(unit_name(dep), ln)
        required: dict[str, tuple[str, str, int]] = {}
        for key, strength in REQUIRE.items():
            for value, ln in unit.get(key, []):
                for dep in value.split():
                    dep = unit_name(dep)
                    if dep not in required or strength == "hard":
                        required[dep] = (strength, key, ln)
        for dep, (strength, key, ln) in required.items():
            ev = [Evidence(path, ln, f"systemd.{key}")]
            if dep in ordered_after:
                ev.append(Evidence(path, ordered_after[dep], "systemd.After"))
            out.edges.append(Edge(name, dep, strength, dep in ordered_after, tuple(ev)))  # type: ignore[arg-type]
        for dep, ln in ordered_after.items():
            if dep not in required:
                # After= alone orders two units only when both are started: soft, ordered.
                out.edges.append(Edge(name, dep, "soft", True, (Evidence(path, ln, "systemd.After"),)))
        for value, ln in unit.get("Before", []):
            for other in value.split():
                befores.append((unit_name(other), name, path, ln))
        start = " ".join(v for v, _ in service.get("ExecStart", [])) or None
        out.components.append(
            Component(name=name, start=start, evidence=(Evidence(path, 1, "systemd.unit"),),
                      tier=_tier(unit.get("Description", [("", 0)])[0][0], name))
        )
        for key in ("Environment", "ExecStart", "ExecStartPre"):
            for value, ln in service.get(key, []):
                words = shlex.split(value, posix=True) if key == "Environment" else [value]
                for word in words:
                    out.config.append(ConfigValue(name, word, path, ln, f"[Service] {key}", "systemd"))
        for key, lines in unit.items():
            if key not in REQUIRE and key not in ("After", "Before", "Description", "Documentation", "Conflicts", "PartOf", "ConditionPathExists", "StartLimitIntervalSec", "StartLimitBurst", "DefaultDependencies"):
                out.warn(path, lines[0][1] if lines else None, f"[Unit] {key}= is not interpreted")
    for dst_unit, src, path, ln in befores:
        # ``src`` has Before=dst: dst is ordered after src, which matters only if dst is started here
        if dst_unit in defined:
            out.edges.append(Edge(dst_unit, src, "soft", True, (Evidence(path, ln, "systemd.Before"),)))
    for dep in sorted({e.dst for e in out.edges} - defined):
        out.components.append(Component(name=dep, tier="external", external=True, startup_seconds=0.0,
                                        evidence=(Evidence("systemd", None, "systemd.external"),)))
        out.warn("systemd", None, f"unit {dep} is referenced but not in the input; treated as external")
    return out


def _tier(description: str, name: str) -> str:
    text = f"{description} {name}".lower()
    for word, tier in (("database", "database"), ("postgres", "database"), ("mysql", "database"),
                       ("oracle", "database"), ("redis", "cache"), ("elastic", "search"),
                       ("activemq", "broker"), ("rabbitmq", "broker"), ("broker", "broker"),
                       ("ldap", "directory"), ("apache", "web"), ("httpd", "web"), ("nginx", "web")):
        if word in text:
            return tier
    return "app"
