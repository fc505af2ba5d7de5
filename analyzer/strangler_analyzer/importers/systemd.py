"""systemd unit files: requirement and ordering kept apart, as systemd keeps them.

``Requires=``/``BindsTo=``/``Requisite=`` make an edge hard, ``Wants=`` soft; ``After=`` orders
it (and ``Before=`` on the other unit does too). ``Requires=`` without ``After=`` is a hard
edge that does not order start-up: systemd starts both at once. Units outside the input
that a unit requires or wants become external components, with a warning. ``After=`` or
``Before=`` alone is an order, not a dependency (nothing fails or degrades with the other
unit), and only between units of the input: ``After=network-online.target`` outside the
input adds nothing. A unit found in two directories is read from the one systemd reads
first (``/etc``, then ``/run``, then ``/lib``).

Read as systemd reads a unit directory:

- drop-ins (``foo.service.d/*.conf``, and ``foo@.service.d/`` for every instance) are
  applied after the unit file in file-name order; an empty ``Key=`` resets the list;
- ``foo.target.wants/`` and ``foo.target.requires/`` hold symlinks: each is a ``Wants=`` /
  ``Requires=`` of ``foo.target`` on the unit it names, never a unit file of its own;
- a unit file that is a symlink to another unit is an alias of it; one to ``/dev/null``
  is masked (it never starts: left out, with a warning);
- a template (``getty@.service``) is no component; each instance named anywhere
  (``getty@tty1.service``) is one, with ``%i``/``%I``/``%n``/``%N``/``%p`` filled in;
- implicit dependencies: a service is ordered after its socket (``foo.socket`` or
  ``Sockets=``); unless ``DefaultDependencies=no``, services and sockets require and
  start after ``sysinit.target`` (services after ``basic.target`` too), sockets come
  before ``sockets.target``, and a target starts after what it wants or requires. These
  count only between units of the input, as ``Before=`` does.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from strangler_analyzer.importers.base import ConfigValue, Partial
from strangler_analyzer.model import Component, Edge, Evidence
from strangler_common import ConfigError, Location

UNIT_SUFFIXES = (".service", ".socket", ".target", ".mount", ".timer", ".path", ".device", ".slice", ".scope", ".swap", ".automount")
REQUIRE = {"Requires": "hard", "BindsTo": "hard", "Requisite": "hard", "Wants": "soft", "Upholds": "soft"}
LINK_DIRS = {".wants": "Wants", ".requires": "Requires", ".upholds": "Upholds"}
KNOWN_UNIT_KEYS = {"After", "Before", "Description", "Documentation", "Conflicts", "PartOf", "ConditionPathExists",
                   "StartLimitIntervalSec", "StartLimitBurst", "DefaultDependencies", "OnFailure", "IgnoreOnIsolate",
                   "AllowIsolate", "RefuseManualStart", "RefuseManualStop", "JobTimeoutSec", "JobTimeoutAction",
                   "SourcePath", "StopWhenUnneeded", "CollectMode", "FailureAction", "SuccessAction"}
Setting = tuple[str, int, str]  # value, line, the file it comes from (the unit or a drop-in)
Sections = dict[str, dict[str, list[Setting]]]


@dataclass
class UnitDir:
    """What a unit directory holds besides unit files (filled by the loader)."""

    dropins: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # unit file name -> [(path, text)]
    links: list[tuple[str, str, str, str]] = field(default_factory=list)  # (unit, Wants|Requires, dep, symlink path)
    aliases: dict[str, str] = field(default_factory=dict)  # alias file name -> unit file name
    masked: dict[str, str] = field(default_factory=dict)  # unit file name -> symlink path


def link_kind(path: Path) -> tuple[str, str] | None:
    """``(unit, key)`` when ``path`` sits in a ``unit.wants/``-style directory."""
    parent = path.parent.name
    for suffix, key in LINK_DIRS.items():
        if parent.endswith(suffix) and Path(parent[: -len(suffix)]).suffix in UNIT_SUFFIXES:
            return parent[: -len(suffix)], key
    return None


def dropin_unit(path: Path) -> str | None:
    """The unit a drop-in file (``unit.d/*.conf``) belongs to."""
    parent = path.parent.name
    if path.suffix == ".conf" and parent.endswith(".d") and Path(parent[:-2]).suffix in UNIT_SUFFIXES:
        return parent[:-2]
    return None


def unit_name(name: str) -> str:
    """``tomcat.service`` -> ``tomcat``; other unit types keep their suffix."""
    return name[: -len(".service")] if name.endswith(".service") else name


def parse_unit(text: str, source: str) -> Sections:
    """Sections -> key -> [(value, line)]; repeated keys accumulate; an empty value (a
    reset) is kept as ``("", line)`` until ``merged`` settles it with the drop-ins."""
    sections: Sections = {}
    current: dict[str, list[Setting]] | None = None
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
        current.setdefault(key, []).append((value, number, source))  # an empty value resets: applied by ``settle``
    return sections


def merged(base: Sections, dropins: Sequence[Sections]) -> Sections:
    """A unit with its drop-ins applied in order, every reset settled."""
    out: Sections = {name: {k: list(v) for k, v in keys.items()} for name, keys in base.items()}
    for d in dropins:
        for name, keys in d.items():
            section = out.setdefault(name, {})
            for k, v in keys.items():
                section.setdefault(k, []).extend(v)
    for keys in out.values():
        for k, v in keys.items():
            resets = [i for i, (value, _, _) in enumerate(v) if not value]
            if resets:
                keys[k] = v[resets[-1] + 1:]
    return out


def _instance(name: str) -> tuple[str, str, str] | None:
    """``getty@tty1.service`` -> (``getty@.service``, ``tty1``, ``getty``)."""
    stem, dot, suffix = name.rpartition(".")
    prefix, at, inst = stem.partition("@")
    if not dot or not at or not inst:
        return None
    return f"{prefix}@.{suffix}", inst, prefix


def _specifiers(text: str, full: str, inst: str, prefix: str) -> str:
    from urllib.parse import unquote

    plain = unquote(inst.replace("\\x", "%"))
    return (text.replace("%i", inst).replace("%I", plain).replace("%n", full).replace("%N", full.rpartition(".")[0])
            .replace("%p", prefix).replace("%P", prefix))


def _refs(sections: Sections) -> set[str]:
    out = set()
    for key in (*REQUIRE, "After", "Before"):
        for value, _, _ in sections.get("Unit", {}).get(key, []):
            out.update(value.split())
    for value, _, _ in sections.get("Service", {}).get("Sockets", []):
        out.update(value.split())
    return out


def read_units(files: list[tuple[str, str]], extra: UnitDir | None = None) -> Partial:
    """Read unit files given as (path, text) pairs, with what their directory says
    about them (drop-ins, ``.wants/`` links, aliases, masks)."""
    out = Partial()
    extra = extra or UnitDir()
    canon = dict(extra.aliases)  # alias -> unit, both full file names

    def resolve(full: str) -> str:
        seen = 0
        while full in canon and seen < 16:
            full, seen = canon[full], seen + 1
        return full

    for full, link in extra.masked.items():
        out.warn(link, None, f"unit {full} is masked (a symlink to /dev/null): it never starts; left out")
    texts: dict[str, tuple[str, str]] = {}
    for path, text in files:
        full = Path(path).name
        if full in extra.masked or full in canon:
            continue
        if full in texts:  # one unit in two directories: systemd reads /etc, then /run, then /lib
            kept, dropped = sorted((texts[full], (path, text)), key=lambda pt: _precedence(pt[0]))
            out.warn(dropped[0], None, f"unit {full} is also in {kept[0]}, which systemd reads first: this file is ignored")
            texts[full] = kept
            continue
        texts[full] = (path, text)
    parsed: dict[str, tuple[str, Sections]] = {}

    def load(full: str, path: str, text: str, template: str | None = None) -> None:
        base = parse_unit(text, path)
        found = (extra.dropins.get(template, []) if template is not None else []) + extra.dropins.get(full, [])
        ds = [parse_unit(t, p) for p, t in sorted(found, key=lambda pt: Path(pt[0]).name)]
        parsed[full] = (path, merged(base, ds))

    for full, (path, text) in texts.items():
        if _instance(full) is None and not full.rpartition(".")[0].endswith("@"):
            load(full, path, text)
    # instances of templates, named by any unit, link or alias; instances may name more
    wanted = {resolve(dep) for _, _, dep, _ in extra.links} | {resolve(owner) for owner, _, _, _ in extra.links}
    for _, sections in list(parsed.values()):
        wanted |= {resolve(r) for r in _refs(sections)}
    for _ in range(8):
        new = set()
        for full in sorted(wanted - set(parsed)):
            inst = _instance(full)
            if inst is None:
                continue
            template, name, prefix = inst
            source = texts.get(full) or texts.get(template)
            if source is None:
                continue
            path, text = source
            load(full, path, _specifiers(text, full, name, prefix), template)
            new |= {resolve(r) for r in _refs(parsed[full][1])}
        if not new - set(parsed) - wanted:
            break
        wanted |= new
    links: dict[str, list[tuple[str, str, str]]] = {}
    for owner, key, dep, link in extra.links:
        links.setdefault(resolve(owner), []).append((key, resolve(dep), link))
    defined = {unit_name(full) for full in parsed}
    befores: list[tuple[str, str, str, int | None, str]] = []
    records: list[tuple[str, dict[str, tuple[str, str, int | None, str]], dict[str, tuple[int | None, str, str]]]] = []
    plain: set[str] = set()  # units with DefaultDependencies=no
    for full, (path, sections) in sorted(parsed.items()):
        name = unit_name(full)
        unit = sections.get("Unit", {})
        service = sections.get("Service", {})
        ordered_after: dict[str, tuple[int | None, str, str]] = {}  # dep -> (line, source, evidence kind)
        for value, ln, src in unit.get("After", []):
            for dep in value.split():
                ordered_after.setdefault(unit_name(resolve(dep)), (ln, src, "systemd.After"))
        required: dict[str, tuple[str, str, int | None, str]] = {}
        for key, strength in REQUIRE.items():
            for value, ln, src in unit.get(key, []):
                for dep in value.split():
                    d = unit_name(resolve(dep))
                    if d not in required or strength == "hard":
                        required[d] = (strength, key, ln, src)
        for key, dep, link in links.get(full, []):
            d = unit_name(dep)
            strength = REQUIRE[key]
            if d not in required or strength == "hard":
                required[d] = (strength, f"{key} (link)", None, link)
        if not _implicit(full, name, unit, service, required, ordered_after, defined, path):
            plain.add(name)
        records.append((name, required, ordered_after))
        for value, ln, src in unit.get("Before", []):
            for other in value.split():
                befores.append((unit_name(resolve(other)), name, src, ln, "systemd.Before"))
        if full.endswith(".socket") and name not in plain:
            befores.append(("sockets.target", name, path, None, "systemd.default"))
        start = " ".join(v for v, _, _ in service.get("ExecStart", [])) or None
        kind = full.rpartition(".")[2]
        oneshot = service.get("Type", [("", 0, path)])[-1][0].strip() == "oneshot"
        out.components.append(
            Component(name=name, start=start, evidence=(Evidence(path, 1, "systemd.unit"),),
                      tier=_tier(unit.get("Description", [("", 0, path)])[0][0], name),
                      role="unit" if kind != "service" else "job" if oneshot else "service")
        )
        for key in ("Environment", "ExecStart", "ExecStartPre"):
            for value, ln, src in service.get(key, []):
                try:
                    words = shlex.split(value, posix=True) if key == "Environment" else [value]
                except ValueError:
                    out.warn(src, ln, f"[Service] {key}= cannot be split into words; not scanned")
                    continue
                for word in words:
                    out.config.append(ConfigValue(name, word, src, ln, f"[Service] {key}", "systemd"))
        for key, lines in unit.items():
            if key not in REQUIRE and key not in KNOWN_UNIT_KEYS and not key.startswith(("Condition", "Assert")):
                out.warn(lines[0][2] if lines else path, lines[0][1] if lines else None, f"[Unit] {key}= is not interpreted")
    # a target starts after what it wants or requires, unless either side has
    # DefaultDependencies=no or that unit is already ordered after the target (systemd's
    # own rule, which keeps it from making a loop)
    after = {(name, dep) for name, _, ordered_after in records for dep in ordered_after}
    after |= {(dst, src) for dst, src, _, _, _ in befores}
    for name, required, ordered_after in records:
        if name.endswith(".target") and name not in plain:
            for dep in required:
                if dep in defined and dep not in plain and (dep, name) not in after:
                    ordered_after.setdefault(dep, (None, required[dep][3], "systemd.default"))
    masked = {unit_name(m) for m in extra.masked}
    for name, required, ordered_after in records:
        for dep, (strength, key, rln, src) in required.items():
            if dep == name:
                continue
            if dep in masked:  # systemd ignores a masked Wants=; a masked requirement fails the start
                if strength == "hard":
                    out.warn(src, rln, f"{name} requires {dep}, which is masked: systemd will refuse to start {name}")
                continue
            ev = [Evidence(src, rln, f"systemd.{key.split()[0]}")]
            if dep in ordered_after:
                aln, asrc, akind = ordered_after[dep]
                ev.append(Evidence(asrc, aln, akind))
            out.edges.append(Edge(name, dep, strength, dep in ordered_after, tuple(ev)))  # type: ignore[arg-type]
        for dep, (oln, src, kind) in ordered_after.items():
            if dep not in required and dep != name and dep not in masked:
                # After= alone orders two units only when both are started: an order, not a
                # dependency (nothing fails with the other), and only between units of the input
                if dep in defined:
                    out.edges.append(Edge(name, dep, "soft", True, (Evidence(src, oln, kind),), needs=False))
    for dst_unit, src, path, bln, kind in befores:
        # ``src`` has Before=dst: dst is ordered after src, which matters only if dst is started here
        if dst_unit in defined and dst_unit != src:
            out.edges.append(Edge(dst_unit, src, "soft", True, (Evidence(path, bln, kind),), needs=False))
    for dep in sorted({e.dst for e in out.edges} - defined):
        first = next(e.evidence[0] for e in out.edges if e.dst == dep)
        out.components.append(Component(name=dep, tier="external", external=True, startup_seconds=0.0,
                                        evidence=(Evidence(first.source, first.line, "systemd.external"),)))
        out.warn(first.source, first.line, f"unit {dep} is wanted or required but not in the input; treated as external")
    return out


def _precedence(path: str) -> int:
    """systemd's unit search order: /etc before /run before /lib and /usr/lib (lower first)."""
    for rank, part in enumerate(("/etc/systemd/", "/run/systemd/", "/lib/systemd/")):
        if part in path:
            return rank
    return 3


def _implicit(full: str, name: str, unit: Mapping[str, list[Setting]], service: Mapping[str, list[Setting]],
              required: dict[str, tuple[str, str, int | None, str]], ordered_after: dict[str, tuple[int | None, str, str]],
              defined: set[str], path: str) -> bool:
    """systemd's implicit dependencies of one unit, between units of the input only;
    whether its default dependencies apply (the target rule needs every unit's answer)."""
    defaults = unit.get("DefaultDependencies", [("yes", 0, path)])[-1][0].lower() not in ("no", "false", "0")
    suffix = full.rpartition(".")[2]
    if suffix == "service":
        sockets = [s for v, _, _ in service.get("Sockets", []) for s in v.split()] or [full[: -len(".service")] + ".socket"]
        for sock in sockets:
            if unit_name(sock) in defined:
                ordered_after.setdefault(unit_name(sock), (None, path, "systemd.socket"))
                if unit_name(sock) not in required:
                    required[unit_name(sock)] = ("soft", "Sockets (implicit)", None, path)
    if not defaults:
        return False
    if suffix in ("service", "socket"):
        for target in ("sysinit.target",) + (("basic.target",) if suffix == "service" else ()):
            if target in defined:
                ordered_after.setdefault(target, (None, path, "systemd.default"))
        if "sysinit.target" in defined and "sysinit.target" not in required:
            required["sysinit.target"] = ("hard", "Requires (default)", None, path)
    return True


def _tier(description: str, name: str) -> str:
    text = f"{description} {name}".lower()
    for word, tier in (("database", "database"), ("postgres", "database"), ("mysql", "database"),
                       ("oracle", "database"), ("redis", "cache"), ("elastic", "search"),
                       ("activemq", "broker"), ("rabbitmq", "broker"), ("broker", "broker"),
                       ("ldap", "directory"), ("apache", "web"), ("httpd", "web"), ("nginx", "web")):
        if word in text:
            return tier
    return "app"
