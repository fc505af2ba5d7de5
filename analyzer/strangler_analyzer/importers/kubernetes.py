"""Kubernetes manifests: workloads become components, Services resolve to workloads.

Start order across workloads is not expressible in Kubernetes, so its edges are found in
configuration: env values and ConfigMaps that name another Service (``ADDR: svc:3550``,
URLs, ``svc.ns.svc.cluster.local``), and init containers that wait on a host. All of them
are labelled config-derived.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from strangler_analyzer.importers.base import TIER_LABELS, ConfigValue, Partial, infer_tier
from strangler_analyzer.model import Check, Component, Evidence
from strangler_common import Node

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
IGNORED = {
    "Namespace", "Ingress", "ServiceAccount", "Role", "RoleBinding", "ClusterRole",
    "ClusterRoleBinding", "PersistentVolumeClaim", "PersistentVolume", "Secret",
    "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy", "StorageClass",
}


def _pod_spec(kind: str, doc: Node) -> Node | None:
    spec = doc.mapping().get("spec")
    if spec is None:
        return None
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = spec.mapping().get("jobTemplate")
        spec = spec.mapping().get("spec") if spec else None
        if spec is None:
            return None
    template = spec.mapping().get("template")
    return template.mapping().get("spec") if template else None


def _labels(kind: str, doc: Node) -> dict[str, str]:
    spec = doc.mapping().get("spec")
    if kind == "Pod":
        meta = doc.mapping().get("metadata")
    else:
        tpl = spec.mapping().get("template") if spec else None
        if kind == "CronJob" and spec:
            jt = spec.mapping().get("jobTemplate")
            jspec = jt.mapping().get("spec") if jt else None
            tpl = jspec.mapping().get("template") if jspec else None
        meta = tpl.mapping().get("metadata") if tpl else None
    labels = meta.mapping().get("labels") if meta else None
    return {k: v.scalar_text() for k, v in labels.items()} if labels else {}


def read_kubernetes(docs: Sequence[tuple[str, Any]]) -> Partial:
    """Read manifests from (source, document) pairs; ``List`` documents are unpacked."""
    out = Partial()
    flat: list[Node] = []
    for source, doc in docs:
        node = Node.root(doc, source)
        if isinstance(doc, dict) and doc.get("kind") == "List":
            flat += node.mapping()["items"].sequence() if "items" in doc else []
        else:
            flat.append(node)

    # the same object (kind, namespace, name) in two files: the last wins, as kubectl apply
    latest: dict[tuple[str, str, str], Node] = {}
    for doc in flat:
        object_key = _object_key(doc)
        if object_key[2] and object_key in latest:
            before = latest[object_key]
            out.warn(before.file, before.line, f"{object_key[0]} {object_key[2]} (namespace {object_key[1]}) is defined again "
                                               f"at {doc.file}:{doc.line}: the later one is read, as kubectl apply would")
        latest[object_key] = doc
    flat = [d for d in flat if not _is_shadowed(d, latest)]

    workloads: list[tuple[str, Node, Node, dict[str, str]]] = []
    services: list[tuple[str, Node, dict[str, str]]] = []
    configmaps: dict[tuple[str, str], Node] = {}
    for doc in flat:
        fields = doc.mapping()
        kind = fields["kind"].string() if "kind" in fields else ""
        meta = fields.get("metadata")
        name = meta.mapping()["name"].string() if meta and "name" in meta.mapping() else None
        if kind == "Kustomization":
            out.warn(doc.file, doc.line, "a kustomization, not manifests: analyse its output instead "
                                         "(kubectl kustomize DIR > manifests.yaml)")
            continue
        if name is None:
            out.warn(doc.file, doc.line, f"a {kind or 'document'} without metadata.name: left out")
            continue
        if kind in WORKLOADS:
            pod = _pod_spec(kind, doc)
            if pod is None:
                out.warn(doc.file, doc.line, f"{kind} {name}: no pod template (spec.template.spec): left out")
                continue
            workloads.append((name, doc, pod, _labels(kind, doc)))
        elif kind == "Service":
            spec = fields.get("spec")
            sel = spec.mapping().get("selector") if spec else None
            services.append((name, doc, {k: v.scalar_text() for k, v in sel.items()} if sel else {}))
        elif kind == "ConfigMap":
            configmaps[(_namespace(doc), name)] = doc
        elif kind == "Component" and "dapr.io" in str(fields["apiVersion"].value if "apiVersion" in fields else ""):
            _dapr(doc, name, out)
        elif kind == "HelmRelease" or (kind == "Application" and "argoproj.io" in str(fields["apiVersion"].value if "apiVersion" in fields else "")):
            out.warn(doc.file, doc.line, f"a {kind} points at a chart or repository: analyse the rendered manifests "
                                         "(helm template NAME CHART > manifests.yaml)")
        elif kind not in IGNORED:
            out.warn(doc.file, doc.line, f"kind {kind or '(none)'} ({name}) says nothing about dependencies; ignored")

    # a workload's component name: its own, or name.namespace where two namespaces share it
    counts: dict[str, int] = {}
    for name, doc, _, _ in workloads:
        counts[name] = counts.get(name, 0) + 1
    ident = {id(doc): name if counts[name] == 1 else f"{name}.{_namespace(doc)}" for name, doc, _, _ in workloads}

    # Service name -> workload, by label selector, in the Service's own namespace; a
    # Service answers to svc, svc.ns, svc.ns.svc and svc.ns.svc.cluster.local
    aliases: dict[int, set[str]] = {id(doc): set() for _, doc, _, _ in workloads}
    for sname, sdoc, selector in services:
        ns = _namespace(sdoc)
        targets = [doc for _, doc, _, labels in workloads
                   if selector and _namespace(doc) == ns and all(labels.get(k) == v for k, v in selector.items())]
        if not targets:
            out.warn(sdoc.file, sdoc.line, f"Service {sname} selects no workload in namespace {ns} in the input; ignored")
        low = sname.lower()
        for target in targets:
            aliases[id(target)] |= {low, f"{low}.{ns}", f"{low}.{ns}.svc", f"{low}.{ns}.svc.cluster.local"}

    for _, doc, pod, _ in workloads:
        name = ident[id(doc)]
        ns = _namespace(doc)
        volumes = pod.mapping().get("volumes")
        for vol in volumes.sequence() if volumes else []:  # ConfigMaps mounted as files: scanned like env values
            cm = vol.value.get("configMap") if isinstance(vol.value, dict) else None
            if isinstance(cm, dict) and isinstance(cm.get("name"), str):
                _configmap(name, ns, cm["name"], None, configmaps, out, vol)
        containers = pod.mapping().get("containers")
        port, check = None, None
        for c in containers.sequence() if containers else []:
            cf = c.mapping()
            if port is None and "ports" in cf:
                first = cf["ports"].sequence()
                if first and "containerPort" in first[0].mapping():
                    port = first[0].mapping()["containerPort"].integer(1, 65535)
            if check is None:
                probe = cf.get("readinessProbe") or cf.get("startupProbe")
                check = _probe(probe, name, port) if probe else None
            _env(name, ns, cf, configmaps, out)
            _words(name, cf, out, c)
        for init in (pod.mapping()["initContainers"].sequence() if "initContainers" in pod.mapping() else []):
            inf = init.mapping()
            words = []
            for key in ("command", "args"):
                if key in inf:
                    words += [w.scalar_text() for w in inf[key].sequence_or_one()]
            if words:
                out.config.append(ConfigValue(name, " ".join(words), init.file, init.line, f"{init.path} (init container)", "k8s.init"))
            _env(name, ns, inf, configmaps, out)
        kind = doc.mapping()["kind"].string()
        tier, why = _tier_from(doc, pod, port)
        listed = containers.sequence() if containers else []
        image = listed[0].value.get("image") if listed and isinstance(listed[0].value, dict) else None
        out.components.append(
            Component(name=name, host=name.lower(), port=port, check=check, role="job" if kind in ("Job", "CronJob") else "service",
                      tier=tier, aliases=tuple(sorted(aliases[id(doc)] - {name.lower()})), namespace=ns,
                      image=image if isinstance(image, str) else None,
                      evidence=(Evidence(doc.file, doc.line, f"k8s.{kind}"),)
                      + ((Evidence(doc.file, doc.line, "tier", why),) if tier != "app" else ()))
        )
    return out


def _tier_from(doc: Node, pod: Node, port: int | None) -> tuple[str, str]:
    """The tier from the workload's evidence: a ``strangler.io/tier`` annotation, the
    containers' images, then their environment keys and ports."""
    annotations: dict[str, object] = {}
    for holder in (doc, pod):
        meta = holder.value.get("metadata") if isinstance(holder.value, dict) else None
        if isinstance(meta, dict) and isinstance(meta.get("annotations"), dict):
            annotations.update(meta["annotations"])
    override = next((str(annotations[k]) for k in TIER_LABELS if k in annotations), None)
    images: list[str] = []
    env_keys: list[str] = []
    ports: list[int] = [port] if port else []
    containers = pod.mapping().get("containers")
    for c in containers.sequence() if containers else []:
        f = c.value if isinstance(c.value, dict) else {}
        if isinstance(f.get("image"), str):
            images.append(f["image"])
        env_keys += [str(e.get("name")) for e in f.get("env") or () if isinstance(e, dict)]
        ports += [p["containerPort"] for p in f.get("ports") or () if isinstance(p, dict) and isinstance(p.get("containerPort"), int)]
    for image in images:
        tier, why = infer_tier(image, override=override)
        if tier != "app":
            return tier, why
    return infer_tier(env_keys=env_keys, ports=ports, override=override)


_DEP_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def _expand(value: str, earlier: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)``: the container's earlier env entries; ``$$`` is a ``$``; an
    unknown ``$(VAR)`` stays as written, as the kubelet leaves it."""
    return _DEP_VAR.sub(lambda m: "$" if m[0] == "$$" else earlier.get(m[1], m[0]), value)


def _env(owner: str, ns: str, container: dict[str, Node], configmaps: dict[tuple[str, str], Node], out: Partial) -> None:
    earlier: dict[str, str] = {}
    for item in container["env"].sequence() if "env" in container else []:
        f = item.mapping()
        if "value" in f:
            name = f["name"].scalar_text() if "name" in f else ""
            key = f"{f['value'].path} {name}" if name else f["value"].path  # the variable's name says what it holds
            value = _expand(f["value"].scalar_text(), earlier)
            if name:
                earlier[name] = value
            out.config.append(ConfigValue(owner, value, item.file, f["value"].line, key, "k8s.env"))
        ref = f.get("valueFrom")
        cmref = ref.mapping().get("configMapKeyRef") if ref else None
        if cmref:
            r = cmref.mapping()
            _configmap(owner, ns, r["name"].string(), r["key"].string() if "key" in r else None, configmaps, out, item)
    for item in container["envFrom"].sequence() if "envFrom" in container else []:
        ref = item.mapping().get("configMapRef")
        if ref:
            _configmap(owner, ns, ref.mapping()["name"].string(), None, configmaps, out, item)


def _words(owner: str, container: dict[str, Node], out: Partial, at: Node) -> None:
    """A container's ``command`` and ``args``: endpoints named on the command line count."""
    for key in ("command", "args"):
        for word in container[key].sequence_or_one() if key in container else []:
            if isinstance(word.value, str):
                out.config.append(ConfigValue(owner, word.value, word.file, word.line, f"{at.path}.{key}", "k8s.args"))


def _configmap(owner: str, ns: str, cm: str, key: str | None, configmaps: dict[tuple[str, str], Node], out: Partial,
               at: Node) -> None:
    doc = configmaps.get((ns, cm))
    if doc is None:
        out.warn(at.file, at.line, f"{at.path}: ConfigMap {cm} (namespace {ns}) is not in the input; its values were not scanned")
        return
    data = doc.mapping().get("data")
    for k, v in data.items() if data else []:
        if key is None or k == key:
            text = v.scalar_text()
            # a mounted file holds many lines: each is scanned (Grafana datasources, collector exporters)
            for i, line in enumerate(text.splitlines() or [text]):
                if line.strip():
                    out.config.append(ConfigValue(owner, line, v.file, (v.line or 0) + (i + 1 if "\n" in text else 0) or None,
                                                  f"ConfigMap {cm}: {k}", "k8s.configmap"))


def _meta(doc: Node) -> dict[str, Any]:
    value = doc.value if isinstance(doc.value, dict) else {}
    meta = value.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _namespace(doc: Node) -> str:
    ns = _meta(doc).get("namespace")
    return str(ns) if ns else "default"


def _object_key(doc: Node) -> tuple[str, str, str]:
    kind = doc.value.get("kind", "") if isinstance(doc.value, dict) else ""
    return str(kind), _namespace(doc), str(_meta(doc).get("name", ""))


def _is_shadowed(doc: Node, latest: dict[tuple[str, str, str], Node]) -> bool:
    key = _object_key(doc)
    return bool(key[2]) and latest.get(key) is not doc


def _dapr(doc: Node, name: str, out: Partial) -> None:
    """A dapr Component names the infrastructure its sidecars reach (a state store, a
    broker); which app uses it is the sidecar's business: said, not made an edge."""
    value = doc.value if isinstance(doc.value, dict) else {}
    spec = value.get("spec")
    for item in (spec.get("metadata") if isinstance(spec, dict) else None) or ():
        if isinstance(item, dict) and isinstance(item.get("value"), str) and ":" in item["value"]:
            out.warn(doc.file, doc.line, f"dapr Component {name} names {item['value']!r} ({item.get('name')}): its apps reach "
                                         "it through their dapr sidecars; not an edge")


def _probe(probe: Node, name: str, port: int | None) -> Check | None:
    p = probe.mapping()
    opts = {}
    if "timeoutSeconds" in p:
        opts["timeout"] = str(p["timeoutSeconds"].value)
    if "httpGet" in p:
        g = p["httpGet"].mapping()
        scheme = g["scheme"].scalar_text().lower() if "scheme" in g else "http"
        gport = g["port"].scalar_text() if "port" in g else str(port or 80)
        path = g["path"].scalar_text() if "path" in g else "/"
        return Check("http", f"{scheme}://{name}:{gport}{path}", opts)
    if "tcpSocket" in p:
        t = p["tcpSocket"].mapping()
        return Check("tcp", f"{name}:{t['port'].scalar_text() if 'port' in t else port}", opts)
    if "exec" in p:
        cmd = p["exec"].mapping().get("command")
        return Check("command", " ".join(w.scalar_text() for w in cmd.sequence_or_one()) if cmd else "true", opts)
    return None
