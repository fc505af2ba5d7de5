"""Docker Compose files, read the way ``docker compose -f a.yml -f b.yml --profile p`` reads them.

- several files merge in order: mappings by key (``depends_on`` and ``environment`` too,
  after their list forms are normalised), scalars override, lists of strings append; every
  value keeps the file and line it came from, so evidence cites the right file;
- ``include:`` brings in other files' services (each interpolated with its own ``.env``);
  ``extends:`` (same file or ``file:``) starts from the base service with the same merge
  rules, inherited values citing the base; files only included or extended from are not
  project files of their own when a whole folder is given;
- ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, ``$VAR`` and ``$$``
  interpolation from the process environment over an env file (``.env`` by default);
  ``env_file:`` read with python-dotenv's rules (quotes, inline comments, ``export``),
  ``environment:`` winning for a key set in both;
- services whose ``profiles`` are all inactive are left out, as Compose leaves them out;
  ``COMPOSE_PROFILES`` (environment over ``.env``) when no ``--profile`` is given;
- ``depends_on`` short and long form (``required: false`` is soft; the condition is kept,
  and ``up`` waits for a ``service_completed_successfully`` job to exit 0), ``links``,
  ``volumes_from``, ``network_mode``/``pid``/``ipc``/``uts``/``cgroup: service:X``; a
  healthcheck becomes a readiness check. Any other key outside the spec is a warning.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from dataclasses import replace
from typing import Any, cast

from strangler_analyzer.importers.base import TIER_LABELS, ConfigValue, Partial, infer_tier
from strangler_analyzer.importers.envfiles import read_env
from strangler_analyzer.importers.interpolate import Interpolation, interpolate
from strangler_analyzer.model import INFRASTRUCTURE_TIERS, Check, Component, Edge, Evidence
from strangler_common import MarkedList, MarkedMap, Node, load_yaml_file

TOP_KEYS = {"version", "name", "services", "networks", "volumes", "configs", "secrets", "include", "models"}
#: service keys of the Compose spec that say nothing about dependencies
IGNORED_KEYS = {
    "image", "build", "command", "entrypoint", "container_name", "hostname", "domainname",
    "restart", "deploy", "volumes", "networks", "labels", "logging", "ulimits", "user",
    "working_dir", "cap_add", "cap_drop", "privileged", "stdin_open", "tty", "init",
    "platform", "pull_policy", "read_only", "secrets", "configs", "security_opt",
    "shm_size", "stop_grace_period", "stop_signal", "sysctls", "tmpfs", "devices", "dns",
    "dns_search", "extra_hosts", "expose", "mem_limit", "cpus", "cpu_shares",
    "mem_reservation", "scale", "annotations", "attach", "develop", "external_links",
    "group_add", "isolation", "mac_address", "oom_score_adj", "userns_mode", "runtime",
    "storage_opt", "cgroup_parent", "device_cgroup_rules", "credential_spec",
    "blkio_config", "cpu_count", "cpu_percent", "cpu_period", "cpu_quota", "cpu_rt_period",
    "cpu_rt_runtime", "cpuset", "memswap_limit", "mem_swappiness", "oom_kill_disable",
    "pids_limit", "gpus", "post_start", "pre_stop", "use_api_socket", "provider", "models",
    "label_file",
}
INTERPRETED_KEYS = {
    "depends_on", "links", "volumes_from", "network_mode", "pid", "ipc", "uts", "cgroup", "healthcheck",
    "environment", "profiles", "ports", "env_file", "extends",
}


def read_env_file(path: Path, partial: Partial | None = None) -> dict[str, str]:
    """The interpolation variables of a project's ``.env``, as Compose reads them: comments
    and blank lines skipped, values expanded from earlier keys and the shell."""
    values, _, problems = read_env(path, os.environ, strict=True)
    for line, message in problems:
        if partial is not None:
            partial.warn(str(path), line, message)
    return values


class _Interpolator:
    def __init__(self, env: Mapping[str, str], partial: Partial) -> None:
        self.env = env
        self.partial = partial
        self._done: dict[int, object] = {}

    def text(self, value: str, node: Node) -> str:
        def warn(message: str) -> None:
            self.partial.warn(node.file, node.line, f"{node.path}: {message}")

        try:
            return interpolate(value, self.env.get, warn)
        except Interpolation as exc:
            node.fail(str(exc))
            raise  # not reached: fail raises

    def walk(self, value: Any, node: Node) -> Any:
        """``value`` with every string interpolated, containers marked with their file.
        Marked containers are changed in place (each once: a service read again as the
        base of an ``extends`` is not interpolated twice, so ``$$`` stays ``$``); only
        strings holding a ``$`` are looked at twice."""
        if isinstance(value, str):
            return self.text(value, node) if "$" in value else value
        if isinstance(value, (MarkedMap, MarkedList)):
            if id(value) in self._done:
                return value
            self._done[id(value)] = value  # kept alive: its id must not be reused while we look
            if value.file is None:
                value.file = node.file
            if isinstance(value, MarkedMap):
                for k, v in value.items():
                    if isinstance(v, str):
                        if "$" in v:
                            value[k] = self.text(v, node._child(str(k), v))
                    elif isinstance(v, (dict, list)):
                        value[k] = self.walk(v, node._child(str(k), v))
            else:
                for i, v in enumerate(value):
                    if isinstance(v, str):
                        if "$" in v:
                            value[i] = self.text(v, node._child(i, v))
                    elif isinstance(v, (dict, list)):
                        value[i] = self.walk(v, node._child(i, v))
            return value
        if isinstance(value, dict):  # not from our loader: a marked copy
            out = MarkedMap()
            out.line, out.key_lines, out.file = node.line, {}, node.file
            out.update(value)
            return self.walk(out, node)
        if isinstance(value, list):
            lst = MarkedList(value)
            lst.line, lst.item_lines, lst.file = node.line, [], node.file
            return self.walk(lst, node)
        return value


def _as_map(node: Node, kind: str) -> MarkedMap:
    """Normalise list forms (``depends_on: [a]``, ``environment: [K=V]``) to mappings."""
    if isinstance(node.value, dict):
        return cast(MarkedMap, node.value)
    out = MarkedMap()
    out.line, out.key_lines, out.file = node.line, {}, node.file
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


def _file_of_key(m: Any, k: str) -> str | None:
    files = getattr(m, "key_files", None)
    return (files.get(k) if files else None) or getattr(m, "file", None)


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = MarkedMap(base)
        out.line = getattr(base, "line", None)
        out.key_lines = {**getattr(base, "key_lines", {}), **getattr(over, "key_lines", {})}
        out.file = getattr(base, "file", None)
        out.key_files = {**(getattr(base, "key_files", None) or {k: out.file for k in base if out.file}),
                         **{k: f for k in over if (f := _file_of_key(over, k))}}
        for k, v in over.items():
            # command-like lists replace rather than append (Compose merge rules)
            out[k] = _merge(base[k], v) if k in base and k not in _REPLACED else v
        return out
    if isinstance(base, list) and isinstance(over, list):
        out_l = MarkedList(base)
        out_l.line, out_l.item_lines = getattr(base, "line", None), list(getattr(base, "item_lines", []))
        out_l.file = getattr(base, "file", None)
        out_l.item_files = list(getattr(base, "item_files", None) or [out_l.file or ""] * len(base))
        for i, v in enumerate(over):
            if v not in out_l:
                out_l.append(v)
                out_l.item_lines.append((over.line_of(i) if isinstance(over, MarkedList) else None) or 0)
                out_l.item_files.append(getattr(over, "file", None) or "")
        return out_l
    return over


def _project_env(directory: Path, env_file: Path | None, partial: Partial) -> dict[str, str]:
    env: dict[str, str] = {}
    if env_file is not None:
        env.update(read_env_file(env_file, partial))
    elif (directory / ".env").is_file():
        env.update(read_env_file(directory / ".env", partial))
    env.update(os.environ)
    return env


MAX_NESTING = 10  # include and extends chains deeper than this are an error (or a loop)


def _services_of(source: str, doc: object, interp: _Interpolator, out: Partial, depth: int = 0) -> dict[str, Any]:
    """The services one Compose file defines: its ``include``s first, then its own, each
    with its ``extends`` resolved; every value marked with the file and line it came from."""
    root = Node.root(doc, source)
    top = root.mapping(TOP_KEYS)
    result: dict[str, Any] = {}
    if "include" in top:
        if depth >= MAX_NESTING:
            top["include"].fail(f"includes nest deeper than {MAX_NESTING} levels")
        for item in top["include"].sequence():
            spec = item.mapping({"path", "env_file", "project_directory"}) if isinstance(item.value, dict) else {"path": item}
            paths = [n.string("a path") for n in spec["path"].sequence_or_one()] if "path" in spec else item.fail("include needs a path")
            base = Path(source).parent
            project = base / spec["project_directory"].string() if "project_directory" in spec else None
            env_files = [base / n.string() for n in spec["env_file"].sequence_or_one()] if "env_file" in spec else []
            for rel in paths:
                included = base / rel
                if not included.is_file():
                    item.fail(f"included file {included} not found")
                env = _project_env(project or included.parent, env_files[0] if env_files else None, out)
                for extra in env_files[1:]:
                    env.update(read_env_file(extra, out))
                docs = load_yaml_file(included)
                for name, value in _services_of(str(included), docs[0], _Interpolator(env, out), out, depth + 1).items():
                    if name in result:
                        item.fail(f"service {name} is defined by more than one included file")
                    result[name] = value
    if "services" not in top:
        return result
    raw = top["services"].mapping()
    for name, snode in raw.items():
        if name in result:
            snode.fail(f"service {name} is already defined by an included file (Compose refuses the conflict)")
        result[name] = _extended(name, snode, raw, interp, out, depth)
    return result


def _normalised(snode: Node, interp: _Interpolator) -> Any:
    if not isinstance(snode.value, dict):
        snode.expected("a service definition")
    value = interp.walk(snode.value, snode)
    node = Node(value, snode.file, snode.path, snode.line)
    for key in ("depends_on", "environment"):
        if key in value and not isinstance(value[key], dict):
            value[key] = _as_map(node._child(key, value[key]), key)
    return value


def _extended(name: str, snode: Node, siblings: Mapping[str, Node], interp: _Interpolator, out: Partial, depth: int) -> Any:
    """A service with ``extends`` resolved: the base service (same file or ``file:``),
    itself resolved, overridden by this one with the merge rules of several files."""
    value = _normalised(snode, interp)
    if "extends" not in value:
        return value
    svc = snode.mapping(what="a service definition")
    if depth >= MAX_NESTING:
        svc["extends"].fail(f"extends chains deeper than {MAX_NESTING} services (a loop?)")
    ext = svc["extends"]
    spec = ext.mapping({"service", "file"}) if isinstance(ext.value, dict) else {"service": ext}
    if "service" not in spec:
        ext.fail("extends needs 'service'")
    base_name = spec["service"].string("a service name")
    if "file" in spec:
        other = Path(snode.file).parent / spec["file"].string("a path")
        if not other.is_file():
            spec["file"].fail(f"file {other} not found")
        docs = load_yaml_file(other)
        other_top = Node.root(docs[0], str(other)).mapping(TOP_KEYS)
        pool: Mapping[str, Node] = other_top["services"].mapping() if "services" in other_top else {}
    else:
        pool = siblings
    if base_name not in pool:
        spec["service"].fail(f"extends unknown service {base_name!r}; defined: {', '.join(sorted(pool)) or 'none'}")
    if base_name == name and "file" not in spec:
        spec["service"].fail(f"service {name} extends itself")
    base = _extended(base_name, pool[base_name], pool, interp, out, depth + 1)
    own = MarkedMap({k: v for k, v in value.items() if k != "extends"})
    own.line, own.key_lines, own.file = value.line, value.key_lines, value.file
    merged = _merge(base, own)
    merged.line, merged.file = own.line, own.file  # the service is where it is written; inherited keys cite the base
    return merged


def _referenced(docs: Sequence[tuple[str, object]]) -> set[Path]:
    """Files the others include or extend from (a folder given whole holds them too)."""
    out: set[Path] = set()
    for source, doc in docs:
        if not isinstance(doc, dict):
            continue
        base = Path(source).parent
        for item in doc.get("include") or []:
            paths = item.get("path") if isinstance(item, dict) else item
            for rel in paths if isinstance(paths, list) else [paths]:
                if isinstance(rel, str):
                    out.add((base / rel).resolve())
        for svc in (doc.get("services") or {}).values():
            ext = svc.get("extends") if isinstance(svc, dict) else None
            if isinstance(ext, dict) and isinstance(ext.get("file"), str):
                out.add((base / ext["file"]).resolve())
    return out


def read_compose(
    docs: Sequence[tuple[str, object]], profiles: Sequence[str] = (), env_file: Path | None = None, lenient: bool = False
) -> Partial:
    """Read one Compose project from its files, in ``-f`` order."""
    out = Partial()
    env = _project_env(Path(docs[0][0]).parent, env_file, out)
    interp = _Interpolator(env, out)
    if not profiles and env.get("COMPOSE_PROFILES"):  # as Compose: the variable when no --profile is given
        profiles = [p.strip() for p in env["COMPOSE_PROFILES"].split(",") if p.strip()]

    services: dict[str, Any] = {}
    where: dict[str, str] = {}
    referenced = _referenced(docs)
    for source, doc in docs:
        if Path(source).resolve() in referenced:
            continue  # read where it is included or extended from, not as a project file of its own
        for name, value in _services_of(source, doc, interp, out).items():
            services[name] = _merge(services[name], value) if name in services else value
            where.setdefault(name, getattr(value, "file", None) or source)

    active = set(profiles)
    enabled = {
        n for n, s in services.items()
        if not isinstance(s, dict) or not s.get("profiles") or active & set(map(str, s["profiles"]))
    }
    defined = set(services)
    for name in sorted(services):
        source = where[name]
        snode = Node(services[name], source, f"services.{name}", getattr(services[name], "line", None))
        if name not in enabled:
            out.warn(source, snode.line, f"service {name} left out: its profiles {list(services[name]['profiles'])} are not active")
            continue
        _service(name, snode, enabled, defined, out, env, lenient)
    # a service others wait to complete (service_completed_successfully) is a one-shot job
    jobs = {e.dst for e in out.edges if any(ev.kind == "compose.depends_on.service_completed_successfully" for ev in e.evidence)}
    out.components = [replace(c, role="job") if c.name in jobs else c for c in out.components]
    return out


def _tier_label(svc: dict[str, Node]) -> str | None:
    """``labels: {strangler.tier: database}`` (or the list form ``strangler.tier=database``)."""
    labels = svc["labels"].value if "labels" in svc else None
    if isinstance(labels, dict):
        return next((str(labels[k]) for k in TIER_LABELS if k in labels), None)
    if isinstance(labels, list):
        for item in labels:
            key, _, value = str(item).partition("=")
            if key in TIER_LABELS:
                return value
    return None


def _env_keys(svc: dict[str, Node]) -> list[str]:
    env = svc["environment"].value if "environment" in svc else None
    if isinstance(env, dict):
        return [str(k) for k in env]
    return [str(item).split("=", 1)[0] for item in env] if isinstance(env, list) else []


def _ports(svc: dict[str, Node]) -> list[int]:
    """Container ports: ``ports:`` targets and ``expose:``."""
    out: list[int] = []
    for key in ("ports", "expose"):
        for item in (svc[key].value if key in svc else None) or ():
            target = item.get("target") if isinstance(item, dict) else str(item).split("/")[0].rsplit(":", 1)[-1].split("-")[0]
            if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
                out.append(int(target))
    return out


def _aliases(name: str, svc: dict[str, Node]) -> tuple[str, ...]:
    """Other names the service answers to on the project's networks: its container name,
    its hostname, and its network aliases."""
    out: list[str] = []
    for key in ("container_name", "hostname"):
        if key in svc and isinstance(svc[key].value, str):
            out.append(svc[key].value.lower())
    nets = svc["networks"].value if "networks" in svc else None
    if isinstance(nets, dict):
        for spec in nets.values():
            if isinstance(spec, dict) and isinstance(spec.get("aliases"), list):
                out += [str(a).lower() for a in spec["aliases"]]
    return tuple(a for a in dict.fromkeys(out) if a != name.lower())


def _service(name: str, snode: Node, enabled: set[str], defined: set[str], out: Partial,
             env: Mapping[str, str] | None = None, lenient: bool = False) -> None:
    svc = snode.mapping(what="a service definition")
    source = snode.file
    for key, node in svc.items():
        if key not in IGNORED_KEYS and key not in INTERPRETED_KEYS and not key.startswith("x-"):
            close = difflib.get_close_matches(key, sorted(IGNORED_KEYS | INTERPRETED_KEYS), 1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            if not lenient:  # docker compose refuses it too: a typo would change the waves unseen
                node.fail(f"key {key!r} is not part of the Compose spec{hint}; --lenient reads on without it")
            out.warn(node.file, node.line, f"{node.path}: key {key!r} is not part of the Compose spec{hint}; ignored")
    image = svc["image"].scalar_text() if "image" in svc else ""
    port = _published_port(svc["ports"]) if "ports" in svc else None
    check = _healthcheck(svc["healthcheck"]) if "healthcheck" in svc else None
    tier, why = infer_tier(image, check.target if check else "", _env_keys(svc), _ports(svc), _tier_label(svc))
    out.components.append(
        Component(name=name, tier=tier, host=name, port=port or next(iter(_ports(svc)), None), check=check,
                  aliases=_aliases(name, svc), image=image or None,
                  evidence=(Evidence(source, snode.line, "compose.service"),)
                  + ((Evidence(source, snode.line, "tier", why),) if tier != "app" else ()))
    )

    def edge(dst: str, node: Node, kind: str, strength: str = "hard") -> None:
        if dst not in defined:
            node.fail(f"service {name} depends on undefined service {dst!r}")
        if dst not in enabled:
            out.warn(node.file, node.line, f"{node.path}: {name} depends on {dst}, whose profiles are not active; edge left out")
            return
        out.edges.append(Edge(name, dst, strength, True, (Evidence(node.file, node.line, kind),)))  # type: ignore[arg-type]

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
                out.warn(vf.file, vf.line, f"{vf.path}: {text} names a container outside the project; ignored")
                continue
            edge(text.removeprefix("service:").split(":")[0], vf, "compose.volumes_from")
    for key in ("network_mode", "pid", "ipc", "uts", "cgroup"):
        # sharing another service's namespace: Compose starts that service first
        if key in svc and isinstance(svc[key].value, str) and svc[key].value.startswith("service:"):
            edge(svc[key].value[8:], svc[key], f"compose.{key}")
    environment = dict(svc["environment"].items()) if "environment" in svc else {}
    shell = env or {}
    for key, value in environment.items():
        if value.value is not None:
            out.config.append(ConfigValue(name, value.scalar_text(), value.file, value.line, value.path, "compose.environment"))
        elif key in shell:  # a bare key: the value comes from the shell and .env, as Compose does
            out.config.append(ConfigValue(name, shell[key], value.file, value.line, value.path, "compose.environment"))
    if "env_file" in svc:
        if tier in INFRASTRUCTURE_TIERS:
            # a database or cache handed the application's env file does not act on its
            # connection strings: no start-up edge from it (its own 'environment:' counts)
            node = svc["env_file"]
            out.warn(node.file, node.line, f"{node.path}: {name} is a {tier}: the connection strings of its env_file "
                                           "give it no start-up dependency")
        else:
            _env_files(name, svc["env_file"], set(environment), out, shell)


def _env_files(name: str, node: Node, overridden: set[str], out: Partial, env: Mapping[str, str]) -> None:
    """``env_file:`` entries (a path, a list of paths or of ``{path, required}``), read as
    Compose reads them; ``environment:`` wins for a key set in both."""
    seen: dict[str, ConfigValue] = {}
    for item in node.sequence_or_one():
        spec = item.mapping({"path", "required", "format"}) if isinstance(item.value, dict) else {"path": item}
        if "path" not in spec:
            item.fail("env_file entries need a path")
        path = Path(item.file).parent / spec["path"].string("a path")
        required = spec["required"].boolean() if "required" in spec else True
        if not path.is_file():
            if required:
                spec["path"].fail(f"env file {path} not found")
            continue
        values, lines, problems = read_env(path, env, strict=False)
        for line, message in problems:
            out.warn(str(path), line, message)
        for key, value in values.items():
            if key not in overridden:
                seen[key] = ConfigValue(name, value, str(path), lines[key], f"{node.path} {key}", "compose.env_file")
    out.config.extend(seen.values())


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
    options: dict[str, str] = {}
    for key in ("interval", "timeout", "start_period", "start_interval"):
        if key in hc:
            seconds = duration(hc[key].scalar_text())
            if seconds is None:
                hc[key].fail(f"expected a duration such as 5s, 1m30s or 500ms, found {hc[key].value!r}")
            options[key] = f"{seconds:g}"
    if "retries" in hc:
        options["retries"] = str(hc["retries"].integer(0))
    return Check("command", command, options)


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration(text: str) -> float | None:
    """Seconds in a Compose duration (Go's syntax: ``1m30s``, ``500ms``, ``2h``; a bare number
    is seconds), or None if it is not one.

    >>> duration("1m30s"), duration("300ms"), duration("5"), duration("5 s")
    (90.0, 0.3, 5.0, None)
    """
    text = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            return None
        total += float(m[1]) * _UNITS[m[2]]
        pos = m.end()
    return total if pos == len(text) and pos else None
