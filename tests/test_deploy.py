"""The deployment files: the Kubernetes manifests against the Kubernetes schemas and against
strangler itself (its route file parses, its arguments are the CLI's, its probes are the
proxy's), and the Dockerfile's build context (an image build where a Docker engine runs)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from strangler_cli.main import build_parser
from strangler_proxy.config import load_routes

pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").rglob("*.yaml"))
KUBERNETES_VERSIONS = ("1.30.0", "1.33.0")  # a supported release and a recent one
VERSION = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)[1]  # type: ignore[index]


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def strangler_containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] != "Deployment":
        return []
    return [c for c in doc["spec"]["template"]["spec"]["containers"] if c["image"].startswith("strangler:")]


def test_there_are_manifests_for_the_sidecar_and_the_standalone_deployment() -> None:
    assert {p.parent.name for p in MANIFESTS} == {"sidecar", "standalone"}


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: f"{p.parent.name}/{p.name}")
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_are_valid_kubernetes(path: Path, version: str) -> None:
    for doc in docs(path):
        kubernetes_validate.validate(doc, version, strict=True)  # raises on any unknown or mistyped field


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_manifests_agree_with_strangler(path: Path, tmp_path: Path) -> None:
    found = docs(path)
    routes = [d["data"]["routes.yaml"] for d in found if d["kind"] == "ConfigMap"]
    assert len(routes) == 1
    (tmp_path / "routes.yaml").write_text(routes[0])
    load_routes(tmp_path / "routes.yaml")  # the route file shipped is one the proxy accepts
    schema = json.loads((ROOT / "proxy" / "strangler_proxy" / "schemas" / "routes.schema.json").read_text())
    jsonschema.validate(yaml.safe_load(routes[0]), schema)  # and the published schema too
    containers = [c for d in found for c in strangler_containers(d)]
    assert containers
    for c in containers:
        assert c["image"] == f"strangler:{VERSION}"
        env = {e["name"] for e in c.get("env", [])}
        args = [re.sub(r"\$\((\w+)\)", lambda m: "postgresql://u@db/x" if m[1] in env else m[0], a) for a in c["args"]]
        assert not [a for a in args if "$(" in a]  # every $(VAR) is one the container defines
        parsed = build_parser("proxy").parse_args(args)
        assert parsed.routes == Path("/etc/strangler/routes.yaml")
        assert "STRANGLER_ADMIN_TOKEN" in env and parsed.admin_token is None  # the token from a Secret, not argv
        assert parsed.admin.startswith("127.0.0.1:")  # the admin API stays on the Pod's loopback
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert parsed.listen == ("0.0.0.0", ports["http"])
        assert c["readinessProbe"]["httpGet"] == {"path": f"{parsed.health_path}/readyz", "port": "http"}
        assert c["livenessProbe"]["httpGet"] == {"path": f"{parsed.health_path}/healthz", "port": "http"}
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert c["securityContext"]["readOnlyRootFilesystem"] and "/tmp" in mounts  # writable where it writes
        assert Path(parsed.local_state or parsed.state).parent.as_posix() in mounts
    for d in found:
        if d["kind"] == "Deployment":
            spec = d["spec"]["template"]["spec"]
            assert spec["securityContext"]["runAsNonRoot"] is True
            drain = max(float(build_parser("proxy").parse_args(c["args"]).drain_timeout) for c in strangler_containers(d))
            assert spec["terminationGracePeriodSeconds"] > drain + 5  # preStop sleep + drain fit in the grace period


def _dockerfile() -> tuple[list[tuple[str, str]], str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    instructions = [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]
    return instructions, text


def test_the_dockerfile_runs_strangler_as_a_non_root_user() -> None:
    instructions, _ = _dockerfile()
    final = instructions[max(i for i, (op, _) in enumerate(instructions) if op == "FROM"):]
    user = [arg for op, arg in final if op == "USER"]
    assert user and user[-1] not in ("0", "root")
    entry = [arg for op, arg in final if op == "ENTRYPOINT"]
    assert entry == ['["strangler"]']
    (cmd,) = [arg for op, arg in final if op == "CMD"]
    parsed = build_parser("proxy").parse_args(yaml.safe_load(cmd))
    assert parsed.listen[0] == "0.0.0.0" and parsed.admin.startswith("127.0.0.1:")


def test_the_docker_build_context_holds_everything_the_build_needs(tmp_path: Path) -> None:
    """What the build stage copies is enough to build the wheel (the locustfile link resolves)."""
    instructions, _ = _dockerfile()
    context = tmp_path / "context"
    for op, arg in instructions:
        if op == "COPY" and not arg.startswith("--from"):
            *sources, dest = shlex.split(arg)
            for src in sources:
                target = context / (dest.rstrip("/") if dest not in ("./", ".") else src)
                target.parent.mkdir(parents=True, exist_ok=True)
                if (ROOT / src).is_dir():
                    shutil.copytree(ROOT / src, target, symlinks=True,
                                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
                else:
                    shutil.copy2(ROOT / src, target)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(context), "--no-deps", "-q", "-w", str(tmp_path / "w")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (wheel,) = (tmp_path / "w").glob("strangler-*.whl")
    import zipfile

    assert "strangler_cli/loadtest_assets/locustfile.py" in zipfile.ZipFile(wheel).namelist()


def test_the_image_builds_and_runs_where_a_docker_engine_runs(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not installed: the image build is not tested on this machine")
    info = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        pytest.skip("no Docker engine answers here (only the client is installed): the image build is not tested on "
                    "this machine; the build context and the Dockerfile's instructions are tested above")
    tag = f"strangler-test:{VERSION}"
    build = subprocess.run([docker, "build", "-t", tag, str(ROOT)], capture_output=True, text=True, timeout=1200)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    run = subprocess.run([docker, "run", "--rm", tag, "--version"], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == f"strangler {VERSION}"
    user = subprocess.run([docker, "run", "--rm", "--entrypoint", "id", tag, "-u"], capture_output=True, text=True, timeout=120)
    assert user.stdout.strip() == "10001"
