"""The inventory YAML: strangler's own description of an estate.

A hand-written file for what no other format says: tiers, hosts, readiness checks,
measured start-up seconds and dependencies marked ``hard`` (must be ready before start) or
``soft`` (needed at run time only). Its JSON Schema is ``schemas/inventory.schema.json``.
"""

from __future__ import annotations

from pathlib import Path

from strangler_analyzer.importers.base import ConfigValue, Partial, parse_check
from strangler_analyzer.model import DEFAULT_STARTUP_SECONDS, Component, Edge, Evidence
from strangler_common import Node

TOP_KEYS = {"version", "estate", "description", "components"}
COMPONENT_KEYS = {
    "tier", "host", "port", "startup_seconds", "check", "start", "aliases", "depends_on",
    "config", "config_files", "description", "external", "addresses", "process",
}
DEP_KEYS = {"kind", "note"}


def read_inventory(doc: object, source: str) -> Partial:
    root = Node.root(doc, source)
    top = root.mapping(TOP_KEYS)
    if "version" in top and top["version"].integer() != 1:
        top["version"].fail("expected version 1")
    if "components" not in top:
        root.fail("expected a 'components' mapping")
    out = Partial()
    base = Path(source).parent
    for name, node in top["components"].items():
        _component(name, node, source, base, out)
    return out


def _component(name: str, node: Node, source: str, base: Path, out: Partial) -> None:
    f = node.mapping(COMPONENT_KEYS)
    ev = Evidence(source, node.line, "inventory")
    seconds = f["startup_seconds"].number(0) if "startup_seconds" in f else None
    out.components.append(
        Component(
            name=name,
            tier=f["tier"].string() if "tier" in f else "app",
            host=f["host"].string().lower() if "host" in f else None,
            port=f["port"].integer(1, 65535) if "port" in f else None,
            startup_seconds=DEFAULT_STARTUP_SECONDS if seconds is None else seconds,
            startup_known=seconds is not None,
            check=parse_check(f["check"]) if "check" in f else None,
            start=f["start"].string() if "start" in f else None,
            aliases=tuple(a.string().lower() for a in f["aliases"].sequence()) if "aliases" in f else (),
            external=f["external"].boolean() if "external" in f else False,
            addresses=tuple(a.string("a host name or IP address").lower() for a in f["addresses"].sequence()) if "addresses" in f else (),
            process=_pattern(f["process"]) if "process" in f else None,
            evidence=(ev,),
        )
    )
    if "depends_on" in f:
        deps = f["depends_on"]
        pairs = (
            [(d.string("a component name"), d, "hard") for d in deps.sequence()]
            if isinstance(deps.value, list)
            else [(dst, d, _strength(d)) for dst, d in deps.items()]
        )
        for dst, d, strength in pairs:
            out.edges.append(
                Edge(name, dst, strength, strength == "hard", (Evidence(source, d.line, "inventory"),))  # type: ignore[arg-type]
            )
    if "config" in f:
        for key, value in f["config"].items():
            out.config.append(ConfigValue(name, value.scalar_text(), source, value.line, f"{node.path}.config.{key}", "inventory"))
    if "config_files" in f:
        for item in f["config_files"].sequence():
            path = base / item.string("a path")
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                item.fail(f"cannot read config file {str(path)!r}: {exc.strerror}")
            for lineno, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    out.config.append(ConfigValue(name, line, str(path), lineno, "", "file"))


def _strength(node: Node) -> str:
    if isinstance(node.value, dict):
        fields = node.mapping(DEP_KEYS)
        if "kind" not in fields:
            node.fail("expected 'kind: hard' or 'kind: soft'")
        return fields["kind"].choice(("hard", "soft"))
    return node.choice(("hard", "soft"))


def _pattern(node: Node) -> str:
    """A ``process:`` pattern: a regular expression searched in command lines, checked now."""
    import re

    text = node.string("a regular expression matched against command lines")
    try:
        re.compile(text)
    except re.error as exc:
        node.fail(f"not a regular expression: {exc}")
    return text
