"""``strangler export-startup``: the start order written in the formats teams deploy with.

- Compose: ``depends_on`` with ``condition: service_healthy`` on every hard dependency that
  has a readiness check (``service_started`` otherwise; soft ordered ones ``required:
  false``), and healthchecks derived from the checks.
- Kubernetes: per component a Deployment whose init containers wait (busybox's ``nc`` or
  ``wget``, in a loop) for each hard dependency's Service, with a startup probe from its
  check, and a Service for its port (the component's, else the one the connection strings
  name).
- systemd: per component a unit with ``Requires=``/``After=`` (``Wants=`` for soft ordered
  dependencies) and ``ExecStartPre=strangler wait`` on the hard ones.

Images are kept (``nginx:1.27`` stays ``nginx:1.27``; ``NAME:latest`` only where no
input names one). Every dependency an export cannot carry is a warning, never silent.
Reading any export back with the analyzer gives the same waves.
"""

from __future__ import annotations

import shlex
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from strangler_analyzer.importers.connstrings import endpoints_in
from strangler_analyzer.model import Check, Component, Estate

__all__ = ["EXPORTERS", "WAIT_IMAGE"]  # public (the CLI's and loadtests' imports are checked against it)

Target = Literal["compose", "kubernetes", "systemd"]
WAIT_IMAGE = "busybox:1.36"  # a public image with nc and wget: the init containers' wait loop


def _image(c: Component, warnings: list[str]) -> str:
    if c.image:
        return c.image
    warnings.append(f"{c.name}: no input names its image; written as {c.name}:latest, replace it")
    return f"{c.name}:latest"


def _seen_ports(estate: Estate) -> dict[str, int]:
    """The port other components' connection strings name for a component (``db:5432``)."""
    names = {c.name: {c.name.lower(), *c.aliases} for c in estate.components}
    out: dict[str, int] = {}
    for e in estate.edges:
        for ev in e.evidence:
            for ep in endpoints_in(ev.detail.split(": ", 1)[-1]) if ev.detail else ():
                if ep.port and ep.host.split(".")[0] in names.get(e.dst, ()) and e.dst not in out:
                    out[e.dst] = ep.port
    return out


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


def to_compose(estate: Estate, warnings: list[str]) -> str:
    by_name = {c.name: c for c in estate.components}
    services: dict[str, Any] = {}
    for c in estate.components:
        if c.external:
            continue
        svc: dict[str, Any] = {"image": _image(c, warnings)}
        if c.start:
            svc["command"] = ["sh", "-c", c.start]
        if c.check is not None:
            svc["healthcheck"] = {"test": ["CMD-SHELL", _probe_command(c.check)], "interval": "5s", "retries": 30}
        hard, soft = _deps(estate, c.name)
        dep: dict[str, Any] = {}
        for d in hard:
            if not by_name[d].external:
                dep[d] = {"condition": "service_healthy" if by_name[d].check is not None else "service_started"}
            else:
                warnings.append(f"{c.name} -> {d}: {d} is outside the input: not carried")
        for d in soft:
            if not by_name[d].external:
                dep[d] = {"condition": "service_started", "required": False}
        if dep:
            svc["depends_on"] = dep
        services[c.name] = svc
    return yaml.safe_dump({"services": services}, sort_keys=False)


def _port(c: Component) -> int | None:
    if c.port:
        return c.port
    if c.check is not None and c.check.kind == "command":  # curl http://localhost:8080/health
        found = [ep.port for ep in endpoints_in(c.check.target) if ep.port and ep.host in ("localhost", "127.0.0.1", c.name)]
        if found:
            return found[0]
    if c.check is not None and c.check.kind in ("tcp", "http", "postgres", "redis"):
        target = c.check.target if c.check.kind != "tcp" else f"tcp://{c.check.target}"
        parts = urlsplit(target)
        return parts.port or {"http": 80, "https": 443, "postgresql": 5432, "postgres": 5432, "redis": 6379}.get(parts.scheme)
    return None


def _cluster_target(c: Component, seen: dict[str, int]) -> tuple[str, int] | None:
    """In a cluster a component is reached by its Service name and port."""
    port = _port(c) or seen.get(c.name)
    return None if port is None else (c.name, port)


def to_kubernetes(estate: Estate, warnings: list[str]) -> str:
    by_name = {c.name: c for c in estate.components}
    seen = _seen_ports(estate)
    docs: list[dict[str, Any]] = []
    for c in estate.components:
        if c.external:
            continue
        hard, soft = _deps(estate, c.name)
        inits = []
        for d in hard:
            target = _cluster_target(by_name[d], seen)
            if target is None:
                warnings.append(f"{c.name} -> {d}: {d} has no port in the input (none published, none in a connection "
                                "string): no init container waits for it")
                continue
            host, dport = target
            inits.append({"name": f"wait-{d}"[:63], "image": WAIT_IMAGE,
                          "env": [{"name": "WAIT_FOR", "value": f"{host}:{dport}"}],
                          "command": ["sh", "-c", f"until nc -z {host} {dport}; do sleep 1; done"]})
        for d in soft:
            warnings.append(f"{c.name} -> {d}: an optional dependency; Kubernetes starts {c.name} without waiting")
        container: dict[str, Any] = {"name": c.name, "image": _image(c, warnings)}
        port = _port(c) or seen.get(c.name)
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


def to_systemd(estate: Estate, warnings: list[str]) -> str:
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
            elif by_name[d].external:
                warnings.append(f"{c.name} -> {d}: {d} is outside the input: not carried")
        lines.append(f"ExecStart={c.start or '/bin/true'}")
        lines += ["Restart=on-failure", "", "[Install]", "WantedBy=multi-user.target", ""]
        out.append("\n".join(lines))
    return "\n".join(out)


EXPORTERS = {"compose": to_compose, "kubernetes": to_kubernetes, "systemd": to_systemd}
