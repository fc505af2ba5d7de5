"""No route file can add a directive to an exported configuration (issue 21, item 1).

Every value is checked by its grammar when the route file is read (``routes check`` refuses
it at file:line), and escaped or quoted when a renderer writes it anyway. The fuzz builds
route files from a hostile alphabet: each one is refused, or exports to nginx and HAProxy
configurations whose structure (every directive, block and entry, quoted words aside) is
exactly that of the same table with harmless values; a sample is checked by ``nginx -t``
and ``haproxy -c`` too.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from strangler_proxy.config import load_routes
from strangler_proxy.errors import ProxyError, RouteConfigError
from strangler_proxy.planes.export import comment, export

NGINX_BREAKOUT = 'a" $x {}\nserver { listen 127.0.0.1:31999; location / { root /etc; autoindex on; } }\nmap "$host'


def doc(**over: Any) -> dict[str, Any]:
    """A route file with every value a renderer writes; ``over`` replaces some."""
    d: dict[str, Any] = {
        "upstreams": {"legacy": over.get("legacy", "http://127.0.0.1:8080"), "svc": "http://127.0.0.1:9000"},
        "server_names": [over.get("server_name", "portal.corp")],
        "cohort": {"key": [f"header:{over.get('cohort_header', 'x-user')}", f"cookie:{over.get('cohort_cookie', 'JSESSIONID')}"],
                   "cookie": {"name": over.get("cookie_name", "strangler_cohort")}},
        "pin": {"header": over.get("pin_header", "x-pin"), "cookie": over.get("pin_cookie", "pin"), "unsigned": True},
        "modules": {"cases": {
            "match": {"path_prefix": [over.get("prefix", "/cases")], "hosts": [over.get("host", "*.corp")],
                      "headers": {over.get("header_name", "x-api"): over.get("header_value", "2")}},
            "service": "svc", "stage": "canary", "weight": 10,
            "idempotency_key": over.get("idempotency_key", "idempotency-key"),
        }, "kb": {"match": {"path_regex": [over.get("regex", "^/kb/[0-9]+$")]}, "service": "svc", "stage": "shadow"}},
    }
    plane = over.get("plane")
    if plane == "nginx":
        d["data_plane"] = {"nginx": {"config": "/tmp/s.conf", "access_log": over.get("access_log", "/var/log/s.json"),
                                     "listen": over.get("listen", "8000")}}
    elif plane == "haproxy":
        d["data_plane"] = {"haproxy": {"config": "/tmp/h.cfg", "reload": "true",
                                       "stats_socket": over.get("stats_socket", "/run/h.sock"), "listen": over.get("listen", "8000")}}
    return d


def write(tmp: Path, d: dict[str, Any], name: str = "r.yaml") -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path


@pytest.mark.parametrize("field,value,key", [
    ("header_name", NGINX_BREAKOUT, "modules.cases.match.headers"),
    ("header_value", "2\nserver { listen 1; }", "modules.cases.match.headers"),
    ("server_name", "portal.corp;\n}server{listen 31999;", "server_names"),
    ("host", "a b", "modules.cases.match.hosts"),
    ("idempotency_key", "key\n- kind: ClusterRoleBinding", "modules.cases.idempotency_key"),
    ("cohort_header", "x\napiVersion: rbac.authorization.k8s.io/v1", "cohort.key"),
    ("cohort_cookie", "c;x", "cohort.key"),
    ("cookie_name", "c d", "cohort.cookie.name"),
    ("pin_header", "x-pin) }", "pin.header"),
    ("pin_cookie", "p{", "pin.cookie"),
    ("legacy", "http://127.0.0.1;server 10.66.66.66", "upstreams.legacy"),
    ("legacy", "http://127.0.0.1:80 backup", "upstreams.legacy"),
    ("prefix", "/cases\n}", "modules.cases.match.path_prefix"),
    ("regex", "^/kb\n}", "modules.kb.match.path_regex"),
])
def test_a_value_that_would_be_syntax_elsewhere_is_refused_at_its_line(tmp_path: Path, field: str, value: str, key: str) -> None:
    path = write(tmp_path, doc(**{field: value}))
    with pytest.raises(RouteConfigError) as err:
        load_routes(path)
    text = str(err.value)
    assert text.startswith(f"{path}:") and key in text, text


@pytest.mark.parametrize("plane,field,value", [
    ("nginx", "access_log", "/var/log/x.json;\n}server{listen 31999;root /etc;"),
    ("nginx", "access_log", "/var/log/$host"),
    ("nginx", "listen", "8000; root /etc"),
    ("haproxy", "stats_socket", "/run/h.sock level admin\nlisten x"),
    ("haproxy", "listen", "127.0.0.1:80 ssl crt /etc/shadow"),
])
def test_data_plane_paths_and_listeners_are_checked(tmp_path: Path, plane: str, field: str, value: str) -> None:
    with pytest.raises(RouteConfigError) as err:
        load_routes(write(tmp_path, doc(plane=plane, **{field: value})))
    assert f"data_plane.{plane}.{field}" in str(err.value)


def test_comment_lines_stay_comments() -> None:
    assert comment("a\nserver {}\r\u2028b") == "a\\x0aserver {}\\x0d\\x2028b"


def test_names_the_plane_cannot_carry_are_an_export_error(tmp_path: Path) -> None:
    table = load_routes(write(tmp_path, doc(header_name="x'api")))  # a valid HTTP token, not an nginx variable name
    for target in ("nginx", "haproxy"):
        with pytest.raises(ProxyError, match="cannot be carried into"):
            export(table, target)  # type: ignore[arg-type]
    export(table, "gateway-api")  # YAML carries any token: escaped by the dumper


# -- the structure of an exported configuration, quoted words aside -------------------------------------
_WORD = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|#[^\n]*|[{};]|[^\s{};"\'#]+')


def nginx_skeleton(text: str) -> list[Any]:
    """Statements as (first word, word count) with nested blocks; quoted words are 'Q'."""
    words = [w for w in _WORD.findall(text) if not w.startswith("#")]
    pos = 0

    def block() -> list[Any]:
        nonlocal pos
        out: list[Any] = []
        current: list[str] = []
        while pos < len(words):
            w = words[pos]
            pos += 1
            if w == ";":
                out.append((current[0] if current else "", len(current)))
                current = []
            elif w == "{":
                out.append((current[0] if current else "", len(current), block()))
                current = []
            elif w == "}":
                return out
            else:
                current.append("Q" if w[0] in "\"'" else w)
        return out

    return block()


def haproxy_skeleton(text: str) -> list[tuple[str, int]]:
    """Each line's keyword and word count (quoted words count one), comments out."""
    out = []
    for line in text.splitlines():
        words = [w for w in re.findall(r"'[^']*'|\"(?:\\.|[^\"\\])*\"|#.*|\S+", line) if not w.startswith("#")]
        if words:
            out.append((words[0] if words[0][0] not in "'\"" else "Q", len(words)))
    return out


HOSTILE = st.text(alphabet='ab-_.:/*;{}"\'$#\\ \n\t()|,~^%@x19[]', min_size=1, max_size=10)
FIELDS = ["header_name", "header_value", "server_name", "host", "idempotency_key", "cohort_header", "cohort_cookie", "cookie_name",
          "pin_header", "pin_cookie", "prefix", "regex", "access_log", "stats_socket"]
BENIGN = {"header_name": "x-api", "header_value": "2", "server_name": "portal.corp", "host": "*.corp", "idempotency_key": "k",
          "cohort_header": "x-user", "cohort_cookie": "JSESSIONID", "cookie_name": "strangler_cohort", "pin_header": "x-pin",
          "pin_cookie": "pin", "prefix": "/cases", "regex": "^/kb", "access_log": "/var/log/s.json", "stats_socket": "/run/h.sock"}
checked = {"nginx": 0, "haproxy": 0}


@settings(max_examples=250, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None)
@given(st.sampled_from(FIELDS), HOSTILE, st.sampled_from(["nginx", "haproxy"]))
def test_generated_route_files_are_refused_or_export_exactly_the_expected_directives(tmp_path: Path, field: str, value: str,
                                                                                      target: str) -> None:
    if field in ("prefix",):
        value = "/" + value
    try:
        table = load_routes(write(tmp_path, doc(plane=target, **{field: value}), "fuzz.yaml"))
        out = export(table, target)  # type: ignore[arg-type]
    except ProxyError:
        event("refused")
        return  # refused at its line (or a name the plane cannot carry): nothing written
    event(f"exported {field}")
    twin = export(load_routes(write(tmp_path, doc(plane=target, **{field: BENIGN[field]}), "twin.yaml")), target)  # type: ignore[arg-type]
    skeleton = nginx_skeleton if target == "nginx" else haproxy_skeleton
    assert skeleton(out.text) == skeleton(twin.text), (field, value)
    if checked[target] < 12:  # a sample through the real parser too
        checked[target] += 1
        assert real_check(tmp_path, target, out.text), (field, value)


def real_check(tmp: Path, target: str, text: str) -> bool:
    from tests.servers import NGINX_MAIN, haproxy_binary, nginx_binary

    if target == "nginx":
        include = tmp / "strangler.conf"
        include.write_text(re.sub(r'access_log "[^"]*"', f'access_log "{tmp}/s.json"', text))  # a writable place for the log
        (tmp / "nginx.conf").write_text(NGINX_MAIN.format(dir=tmp, include=include, access="off"))
        argv = [nginx_binary(), "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-t"]
    else:
        cfg = tmp / "haproxy.cfg"
        cfg.write_text(re.sub(r"stats socket '[^']*'", f"stats socket '{tmp}/h.sock'", text))
        argv = [haproxy_binary(), "-c", "-f", str(cfg)]
    done = subprocess.run(argv, capture_output=True, text=True)
    return done.returncode == 0 or print(done.stdout + done.stderr) is not None
