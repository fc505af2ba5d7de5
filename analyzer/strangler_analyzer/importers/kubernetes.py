"""Kubernetes manifests: workloads become components, Services resolve to workloads.

Start order across workloads is not expressible in Kubernetes, so its edges are found in
configuration: env values and ConfigMaps that name another Service (``ADDR: svc:3550``,
URLs, ``svc.ns.svc.cluster.local``), and init containers that wait on a host. All of them
are labelled config-derived.
"""

from __future__ import annotations

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

    workloads: list[tuple[str, Node, Node, dict[str, str]]] = []
    services: list[tuple[str, Node, dict[str, str]]] = []
    configmaps: dict[str, Node] = {}
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
            doc.fail("expected metadata.name")
        if kind in WORKLOADS:
            pod = _pod_spec(kind, doc)
            if pod is None:
                doc.fail(f"{kind} {name}: expected a pod template (spec.template.spec)")
            workloads.append((name, doc, pod, _labels(kind, doc)))
        elif kind == "Service":
            spec = fields.get("spec")
            sel = spec.mapping().get("selector") if spec else None
            services.append((name, doc, {k: v.scalar_text() for k, v in sel.items()} if sel else {}))
        elif kind == "ConfigMap":
            configmaps[name] = doc
        elif kind == "HelmRelease" or (kind == "Application" and "argoproj.io" in str(fields["apiVersion"].value if "apiVersion" in fields else "")):
            out.warn(doc.file, doc.line, f"a {kind} points at a chart or repository: analyse the rendered manifests "
                                         "(helm template NAME CHART > manifests.yaml)")
        elif kind not in IGNORED:
            out.warn(doc.file, doc.line, f"kind {kind or '(none)'} ({name}) says nothing about dependencies; ignored")

    # Service name -> workload name, by label selector.
    aliases: dict[str, set[str]] = {w[0]: set() for w in workloads}
    for sname, sdoc, selector in services:
        targets = [w for w, _, _, labels in workloads if selector and all(labels.get(k) == v for k, v in selector.items())]
        if not targets:
            out.warn(sdoc.file, sdoc.line, f"Service {sname} selects no workload in the input; ignored")
        for target in targets:
            aliases[target].add(sname.lower())

    for name, doc, pod, _ in workloads:
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
            _env(name, cf, configmaps, out)
        for init in (pod.mapping()["initContainers"].sequence() if "initContainers" in pod.mapping() else []):
            inf = init.mapping()
            words = []
            for key in ("command", "args"):
                if key in inf:
                    words += [w.scalar_text() for w in inf[key].sequence_or_one()]
            if words:
                out.config.append(ConfigValue(name, " ".join(words), init.file, init.line, f"{init.path} (init container)", "k8s.init"))
            _env(name, inf, configmaps, out)
        kind = doc.mapping()["kind"].string()
        tier, why = _tier_from(doc, pod, port)
        out.components.append(
            Component(name=name, host=name.lower(), port=port, check=check, role="job" if kind in ("Job", "CronJob") else "service",
                      tier=tier, aliases=tuple(sorted(aliases[name])),
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


def _env(owner: str, container: dict[str, Node], configmaps: dict[str, Node], out: Partial) -> None:
    for item in container["env"].sequence() if "env" in container else []:
        f = item.mapping()
        if "value" in f:
            name = f["name"].scalar_text() if "name" in f else ""
            key = f"{f['value'].path} {name}" if name else f["value"].path  # the variable's name says what it holds
            out.config.append(ConfigValue(owner, f["value"].scalar_text(), item.file, f["value"].line, key, "k8s.env"))
        ref = f.get("valueFrom")
        cmref = ref.mapping().get("configMapKeyRef") if ref else None
        if cmref:
            r = cmref.mapping()
            _configmap(owner, r["name"].string(), r["key"].string() if "key" in r else None, configmaps, out, item)
    for item in container["envFrom"].sequence() if "envFrom" in container else []:
        ref = item.mapping().get("configMapRef")
        if ref:
            _configmap(owner, ref.mapping()["name"].string(), None, configmaps, out, item)


def _configmap(owner: str, cm: str, key: str | None, configmaps: dict[str, Node], out: Partial, at: Node) -> None:
    doc = configmaps.get(cm)
    if doc is None:
        out.warn(at.file, at.line, f"{at.path}: ConfigMap {cm} is not in the input; its values were not scanned")
        return
    data = doc.mapping().get("data")
    for k, v in data.items() if data else []:
        if key is None or k == key:
            out.config.append(ConfigValue(owner, v.scalar_text(), v.file, v.line, f"ConfigMap {cm}: {k}", "k8s.configmap"))


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
