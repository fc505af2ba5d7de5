"""Docker Compose files, read the way ``docker compose -f a.yml -f b.yml --profile p`` reads them.

- several files merge in order: mappings by key (``depends_on`` and ``environment`` too,
  after their list forms are normalised), scalars override, lists of strings append;
- ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, ``$VAR`` and ``$$``
  interpolation from the process environment over an env file (``.env`` by default);
- services whose ``profiles`` are all inactive are left out, as Compose leaves them out;
- ``depends_on`` short and long form (``required: false`` is soft), ``links``,
  ``volumes_from``, ``network_mode``/``pid``/``ipc``/``uts``/``cgroup: service:X``; a
  healthcheck becomes a readiness check.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from strangler_analyzer.importers.base import ConfigValue, Partial, tier_from_image
from strangler_analyzer.model import Check, Component, Edge, Evidence
from strangler_common import ConfigError, Location, MarkedList, MarkedMap, Node

TOP_KEYS = {"version", "name", "services", "networks", "volumes", "configs", "secrets", "include", "models"}
#: service keys of the Compose spec that say nothing about dependencies
IGNORED_KEYS = {
    "image", "build", "command", "entrypoint", "container_name", "hostname", "domainname",
    "restart", "deploy", "volumes", "networks", "labels", "logging", "ulimits", "user",
    "working_dir", "cap_add", "cap_drop", "privileged", "stdin_open", "tty", "init",
    "platform", "pull_policy", "read_only", "secrets", "configs", "security_opt",
    "shm_size", "stop_grace_period", "stop_signal", "sysctls", "tmpfs", "devices", "dns",
    "dns_search", "extra_hosts", "env_file", "expose", "mem_limit", "cpus", "cpu_shares",
    "mem_reservation", "scale", "annotations", "attach", "develop", "external_links",
    "group_add", "isolation", "mac_address", "oom_score_adj", "userns_mode", "runtime",
    "storage_opt", "cgroup_parent", "device_cgroup_rules", "credential_spec",
    "blkio_config", "cpu_count", "cpu_percent", "cpu_period", "cpu_quota", "cpu_rt_period",
    "cpu_rt_runtime", "cpuset", "memswap_limit", "mem_swappiness", "oom_kill_disable",
    "pids_limit", "gpus", "post_start", "pre_stop", "use_api_socket", "provider", "models",
    "label_file", "extends",
}
INTERPRETED_KEYS = {
    "depends_on", "links", "volumes_from", "network_mode", "pid", "ipc", "uts", "cgroup", "healthcheck",
    "environment", "profiles", "ports",
}
_VAR = re.compile(r"\$(?:(?P<esc>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))")


def read_env_file(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(Location(str(path)), f"cannot read env file: {exc.strerror}") from None
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key.strip()):
            raise ConfigError(Location(str(path), number), f"expected KEY=VALUE, found {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    return env


class _Interpolator:
    def __init__(self, env: Mapping[str, str], partial: Partial) -> None:
        self.env = env
        self.partial = partial

    def text(self, value: str, node: Node) -> str:
        def sub(m: re.Match[str]) -> str:
            if m["esc"]:
                return "$"
            expr = m["braced"] if m["braced"] is not None else m["named"]
            for op in (":-", ":?", ":+", "-", "?", "+"):
                name, sep, arg = expr.partition(op)
                if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                    break
            else:
                name, op, arg = expr, "", ""
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                    node.fail(f"invalid interpolation ${{{expr}}}")
            present = name in self.env
            val = self.env.get(name, "")
            if op == ":-":
                return val if val else self.text(arg, node)
            if op == "-":
                return val if present else self.text(arg, node)
            if op == ":+":
                return self.text(arg, node) if val else ""
            if op == "+":
                return self.text(arg, node) if present else ""
            if op in (":?", "?") and (not present or (op == ":?" and not val)):
                node.fail(f"required variable {name} is missing a value: {arg or 'unset'}")
            if not present:
                self.partial.warn(node.file, node.line, f"{node.path}: variable {name} is not set; using an empty string")
            return val

        return _VAR.sub(sub, value)

    def walk(self, value: Any, node: Node) -> Any:
        if isinstance(value, str):
            return self.text(value, node)
        if isinstance(value, dict):
            out = MarkedMap()
            out.line, out.key_lines = getattr(value, "line", node.line), dict(getattr(value, "key_lines", {}))
            for k, v in value.items():
                out[k] = self.walk(v, node._child(str(k), v))
            return out
        if isinstance(value, list):
            lst = MarkedList()
            lst.line, lst.item_lines = getattr(value, "line", node.line), list(getattr(value, "item_lines", []))
            lst.extend(self.walk(v, node._child(i, v)) for i, v in enumerate(value))
            return lst
        return value


def _as_map(node: Node, kind: str) -> MarkedMap:
    """Normalise list forms (``depends_on: [a]``, ``environment: [K=V]``) to mappings."""
    if isinstance(node.value, dict):
        return cast(MarkedMap, node.value)
    out = MarkedMap()
    out.line, out.key_lines = node.line, {}
    for item in node.sequence():
        text = item.scalar_text()
        if kind == "depends_on":
            value: Any = {"condition": "service_started"}
            key = text
        else:
            key, _, rest = text.partition("=")
            value = rest if "=" in text else None
        out[key] = value
        out.key_lines[key] = item.line or 0
    return out


_REPLACED = {"command", "entrypoint", "test", "dns", "dns_search", "tmpfs"}


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = MarkedMap(base)
        out.line = getattr(base, "line", None)
        out.key_lines = {**getattr(base, "key_lines", {}), **getattr(over, "key_lines", {})}
        for k, v in over.items():
            # command-like lists replace rather than append (Compose merge rules)
            out[k] = _merge(base[k], v) if k in base and k not in _REPLACED else v
        return out
    if isinstance(base, list) and isinstance(over, list):
        out_l = MarkedList(base)
        out_l.line, out_l.item_lines = getattr(base, "line", None), list(getattr(base, "item_lines", []))
        for i, v in enumerate(over):
            if v not in out_l:
                out_l.append(v)
                out_l.item_lines.append((over.line_of(i) if isinstance(over, MarkedList) else None) or 0)
        return out_l
    return over


def read_compose(
    docs: Sequence[tuple[str, object]], profiles: Sequence[str] = (), env_file: Path | None = None
) -> Partial:
    """Read one Compose project from its files, in ``-f`` order."""
    out = Partial()
    first = Path(docs[0][0])
    env: dict[str, str] = {}
    default_env = first.parent / ".env"
    if env_file is not None:
        env.update(read_env_file(env_file))
    elif default_env.is_file():
        env.update(read_env_file(default_env))
    env.update(os.environ)
    interp = _Interpolator(env, out)

    services: dict[str, Any] = {}
    where: dict[str, str] = {}
    for source, doc in docs:
        root = Node.root(doc, source)
        top = root.mapping(TOP_KEYS)
        if "services" not in top:
            continue
        for name, snode in top["services"].items():
            value = interp.walk(snode.value, snode)
            snode = Node(value, source, snode.path, snode.line)
            svc = snode.mapping()
            for key in ("depends_on", "environment"):
                if key in svc:
                    value[key] = _as_map(svc[key], key)
            services[name] = _merge(services[name], value) if name in services else value
            where[name] = source

    active = set(profiles)
    enabled = {
        n for n, s in services.items()
        if not isinstance(s, dict) or not s.get("profiles") or active & set(map(str, s["profiles"]))
    }
    for name in sorted(services):
        source = where[name]
        snode = Node(services[name], source, f"services.{name}", getattr(services[name], "line", None))
        if name not in enabled:
            out.warn(source, snode.line, f"service {name} left out: its profiles {list(services[name]['profiles'])} are not active")
            continue
        _service(name, snode, enabled, set(services), out)
    return out


def _service(name: str, snode: Node, enabled: set[str], defined: set[str], out: Partial) -> None:
    svc = snode.mapping(what="a service definition")
    source = snode.file
    for key, node in svc.items():
        if key not in IGNORED_KEYS and key not in INTERPRETED_KEYS and not key.startswith("x-"):
            out.warn(source, node.line, f"{node.path}: key {key!r} is not part of the Compose spec; ignored")
    image = svc["image"].scalar_text() if "image" in svc else ""
    tier = tier_from_image(image)
    port = _published_port(svc["ports"]) if "ports" in svc else None
    check = _healthcheck(svc["healthcheck"]) if "healthcheck" in svc else None
    out.components.append(
        Component(name=name, tier=tier, host=name, port=port, check=check,
                  evidence=(Evidence(source, snode.line, "compose.service"),))
    )

    def edge(dst: str, node: Node, kind: str, strength: str = "hard") -> None:
        if dst not in defined:
            node.fail(f"service {name} depends on undefined service {dst!r}")
        if dst not in enabled:
            out.warn(source, node.line, f"{node.path}: {name} depends on {dst}, whose profiles are not active; edge left out")
            return
        out.edges.append(Edge(name, dst, strength, True, (Evidence(source, node.line, kind),)))  # type: ignore[arg-type]

    if "depends_on" in svc:
        for dst, dep in svc["depends_on"].items():
            opts = dep.mapping({"condition", "required", "restart"}) if dep.value is not None else {}
            if "condition" in opts:
                opts["condition"].choice(("service_started", "service_healthy", "service_completed_successfully"))
            required = opts["required"].boolean() if "required" in opts else True
            cond = opts["condition"].value if "condition" in opts else "service_started"
            edge(dst, dep, f"compose.depends_on.{cond}", "hard" if required else "soft")
    if "links" in svc:
        for link in svc["links"].sequence():
            edge(link.string().split(":")[0], link, "compose.links")
    if "volumes_from" in svc:
        for vf in svc["volumes_from"].sequence():
            text = vf.string()
            if text.startswith("container:"):
                out.warn(source, vf.line, f"{vf.path}: {text} names a container outside the project; ignored")
                continue
            edge(text.removeprefix("service:").split(":")[0], vf, "compose.volumes_from")
    for key in ("network_mode", "pid", "ipc", "uts", "cgroup"):
        # sharing another service's namespace: Compose starts that service first
        if key in svc and isinstance(svc[key].value, str) and svc[key].value.startswith("service:"):
            edge(svc[key].value[8:], svc[key], f"compose.{key}")
    if "environment" in svc:
        for key, value in svc["environment"].items():
            if value.value is not None:
                out.config.append(ConfigValue(name, value.scalar_text(), source, value.line, value.path, "compose.environment"))


def _published_port(node: Node) -> int | None:
    for item in node.sequence():
        if isinstance(item.value, dict):
            target = item.value.get("target")
            if isinstance(target, int):
                return target
            continue
        text = item.scalar_text().split("/")[0]
        last = text.rsplit(":", 1)[-1].split("-")[0]
        if last.isdigit():
            return int(last)
    return None


def _healthcheck(node: Node) -> Check | None:
    hc = node.mapping()
    if "disable" in hc and hc["disable"].value is True or "test" not in hc:
        return None
    test = hc["test"].value
    if isinstance(test, list):
        if not test or test[0] == "NONE":
            return None
        command = " ".join(map(str, test[1:])) if test[0] in ("CMD", "CMD-SHELL") else " ".join(map(str, test))
    else:
        command = str(test)
    options: dict[str, str] = {k: str(hc[k].value) for k in ("interval", "timeout", "retries", "start_period") if k in hc}
    return Check("command", command, options)
