"""``strangler export-startup``: the start order written in the formats teams deploy with.

- Compose: ``depends_on`` with ``condition: service_healthy`` on every hard dependency that
  has a readiness check (``service_started`` otherwise; soft ordered ones ``required:
  false``), and healthchecks derived from the checks.
- Kubernetes: per component a Deployment whose init containers run ``strangler wait`` on
  each hard dependency, with a startup probe from its check, and a Service for its port.
- systemd: per component a unit with ``Requires=``/``After=`` (``Wants=`` for soft ordered
  dependencies) and ``ExecStartPre=strangler wait`` on the hard ones.

Reading an exported Compose file back with the analyzer gives the same waves.
"""

from __future__ import annotations

import shlex
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from strangler_analyzer.model import Check, Component, Estate

__all__ = ["EXPORTERS"]  # public (the CLI's and loadtests' imports are checked against it)

Target = Literal["compose", "kubernetes", "systemd"]


def wait_target(c: Component) -> str | None:
    """What ``strangler wait`` should wait for to know ``c`` is ready."""
    check = c.check
    if check is not None:
        if check.kind == "tcp":
            return f"tcp://{check.target}"
        if check.kind in ("http", "postgres", "redis"):
            return check.target
        if check.kind == "file":
            return f"file://{check.target}"
    if c.host and c.port:
        return f"tcp://{c.host}:{c.port}"
    return None


def _probe_command(check: Check) -> str:
    if check.kind == "tcp":
        host, _, port = check.target.rpartition(":")
        return f"nc -z {shlex.quote(host)} {port}"
    if check.kind == "http":
        return f"curl -fsS -o /dev/null {shlex.quote(check.target)}"
    if check.kind == "file":
        return f"test -e {shlex.quote(check.target)}"
    if check.kind == "log":
        return f"grep -qE {shlex.quote(check.options.get('pattern', ''))} {shlex.quote(check.target)}"
    if check.kind == "postgres":
        parts = urlsplit(check.target)
        return f"pg_isready -h {parts.hostname} -p {parts.port or 5432}"
    if check.kind == "redis":
        parts = urlsplit(check.target)
        return f"redis-cli -h {parts.hostname} -p {parts.port or 6379} ping"
    return check.target


def _deps(estate: Estate, name: str) -> tuple[list[str], list[str]]:
    """(hard ordered, soft ordered) dependencies of ``name``."""
    hard = sorted(e.dst for e in estate.edges if e.src == name and e.ordered and e.strength == "hard")
    soft = sorted(e.dst for e in estate.edges if e.src == name and e.ordered and e.strength == "soft")
    return hard, soft


def to_compose(estate: Estate) -> str:
    by_name = {c.name: c for c in estate.components}
    services: dict[str, Any] = {}
    for c in estate.components:
        if c.external:
            continue
        svc: dict[str, Any] = {"image": f"{c.name}:latest"}
        if c.start:
            svc["command"] = ["sh", "-c", c.start]
        if c.check is not None:
            svc["healthcheck"] = {"test": ["CMD-SHELL", _probe_command(c.check)], "interval": "5s", "retries": 30}
        hard, soft = _deps(estate, c.name)
        dep: dict[str, Any] = {}
        for d in hard:
            if not by_name[d].external:
                dep[d] = {"condition": "service_healthy" if by_name[d].check is not None else "service_started"}
        for d in soft:
            if not by_name[d].external:
                dep[d] = {"condition": "service_started", "required": False}
        if dep:
            svc["depends_on"] = dep
        services[c.name] = svc
    header = "# Written by strangler export-startup: replace each image with the real one.\n"
    return header + yaml.safe_dump({"services": services}, sort_keys=False)


def _port(c: Component) -> int | None:
    if c.port:
        return c.port
    if c.check is not None and c.check.kind in ("tcp", "http", "postgres", "redis"):
        target = c.check.target if c.check.kind != "tcp" else f"tcp://{c.check.target}"
        parts = urlsplit(target)
        return parts.port or {"http": 80, "https": 443, "postgresql": 5432, "postgres": 5432, "redis": 6379}.get(parts.scheme)
    return None


def _cluster_target(c: Component) -> str | None:
    """In a cluster a component is reached by its Service name, not by its inventory host."""
    port = _port(c)
    if port is None:
        return None
    if c.check is not None and c.check.kind == "http":
        parts = urlsplit(c.check.target)
        return f"{parts.scheme}://{c.name}:{port}{parts.path or '/'}"
    return f"tcp://{c.name}:{port}"


def to_kubernetes(estate: Estate) -> str:
    by_name = {c.name: c for c in estate.components}
    docs: list[dict[str, Any]] = []
    for c in estate.components:
        if c.external:
            continue
        hard, _ = _deps(estate, c.name)
        inits = []
        for d in hard:
            target = _cluster_target(by_name[d])
            if target is not None:
                inits.append({"name": f"wait-{d}"[:63], "image": "strangler:latest",
                              "command": ["strangler", "wait", target, "--timeout", "600"]})
        container: dict[str, Any] = {"name": c.name, "image": f"{c.name}:latest"}
        port = _port(c)
        if port:
            container["ports"] = [{"containerPort": port}]
        if c.check is not None:
            container["startupProbe"] = _k8s_probe(c)
        spec: dict[str, Any] = {"containers": [container]}
        if inits:
            spec["initContainers"] = inits
        docs.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": c.name},
                     "spec": {"replicas": 1, "selector": {"matchLabels": {"app": c.name}},
                              "template": {"metadata": {"labels": {"app": c.name}}, "spec": spec}}})
        if port:
            docs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": c.name},
                         "spec": {"selector": {"app": c.name}, "ports": [{"port": port, "targetPort": port}]}})
    return yaml.safe_dump_all(docs, sort_keys=False)


def _k8s_probe(c: Component) -> dict[str, Any]:
    check = c.check
    assert check is not None
    probe: dict[str, Any] = {"periodSeconds": 5, "failureThreshold": 60}
    if check.kind == "tcp":
        probe["tcpSocket"] = {"port": int(check.target.rpartition(":")[2])}
    elif check.kind == "http":
        parts = urlsplit(check.target)
        probe["httpGet"] = {"path": parts.path or "/", "port": parts.port or (443 if parts.scheme == "https" else 80),
                            "scheme": parts.scheme.upper()}
    else:
        probe["exec"] = {"command": ["sh", "-c", _probe_command(check)]}
    return probe


def to_systemd(estate: Estate) -> str:
    """All units in one text, each introduced by a ``# file: NAME.service`` line."""
    by_name = {c.name: c for c in estate.components}
    out = []
    for c in estate.components:
        if c.external:
            continue
        hard, soft = _deps(estate, c.name)
        units = [f"{d}.service" for d in hard if not by_name[d].external]
        wants = [f"{d}.service" for d in soft if not by_name[d].external]
        lines = [f"# file: {c.name}.service", "[Unit]", f"Description={c.name} ({c.tier} tier)"]
        if units:
            lines.append("Requires=" + " ".join(units))
        if wants:
            lines.append("Wants=" + " ".join(wants))
        if units or wants:
            lines.append("After=" + " ".join(units + wants))
        lines += ["", "[Service]"]
        for d in hard:
            target = wait_target(by_name[d])
            if target is not None:
                lines.append(f"ExecStartPre=strangler wait {shlex.quote(target)} --timeout 600")
        lines.append(f"ExecStart={c.start or '/bin/true'}")
        lines += ["Restart=on-failure", "", "[Install]", "WantedBy=multi-user.target", ""]
        out.append("\n".join(lines))
    return "\n".join(out)


EXPORTERS = {"compose": to_compose, "kubernetes": to_kubernetes, "systemd": to_systemd}
