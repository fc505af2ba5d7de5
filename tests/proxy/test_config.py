from __future__ import annotations

import re
from pathlib import Path

import pytest

from strangler_proxy.config import load_routes
from strangler_proxy.errors import RouteConfigError

ROOT = Path(__file__).parent.parent.parent
MINIMAL = (ROOT / "routes" / "example.yaml").read_text()


def test_minimal_table_from_the_issue_works_as_is() -> None:
    table = load_routes(ROOT / "routes" / "example.yaml")
    (cases,) = table.modules
    assert (cases.name, cases.stage, cases.weight, cases.service) == ("cases", "canary", 25.0, "cases-service")
    assert cases.matches[0].path_prefix == ("/cases", "/api/cases")
    assert table.upstreams["legacy"].port == 8080


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (MINIMAL.replace("weight: 25", "weight: 250"), 10, "modules.cases.weight: expected a number from 0 to 100, found 250"),
        (MINIMAL.replace("service: cases-service", "service: nowhere"), 8, "modules.cases.service: unknown upstream 'nowhere'"),
        (MINIMAL.replace("stage: canary", "stage: halfway"), 9, "modules.cases.stage: expected one of canary, legacy, released, retired, shadow"),
        (MINIMAL.replace("  legacy: http", "  old: http"), 2, "upstreams: expected an upstream named 'legacy'"),
        (MINIMAL.replace("http://127.0.0.1:9001", "ftp://127.0.0.1:9001"), 4,
         "upstreams.cases-service: expected an http://host:port or https://host:port URL"),
        (MINIMAL.replace("http://127.0.0.1:9001", "{url: 'https://127.0.0.1:9001', tls: {ca: nowhere.pem}}"), 4,
         "upstreams.cases-service.tls.ca: file"),
        (MINIMAL.replace("http://127.0.0.1:9001", "{url: 'http://127.0.0.1:9001', tls: {verify: false}}"), 4,
         "upstreams.cases-service.tls: tls applies to https:// upstreams only"),
        (MINIMAL.replace("http://127.0.0.1:9001", "{url: 'https://127.0.0.1:9001', tls: {ca: routes.yaml}}"), 4,
         "upstreams.cases-service.tls.ca: cannot load"),
        (MINIMAL.replace("    weight: 25\n", ""), 9, "modules.cases.stage: a module in canary needs 'weight'"),
        (MINIMAL.replace("path_prefix: [/cases, /api/cases]", "path_regex: '[unclosed'"), 7, "modules.cases.match.path_regex: invalid regular expression"),
        (MINIMAL.replace("path_prefix: [/cases, /api/cases]", "path_prefix: [cases]"), 7, "expected a path starting with /"),
        (MINIMAL + "    colour: blue\n", 11, "modules.cases.colour: unknown key 'colour'"),
        (MINIMAL + "trusted_proxies: [10.0.0.0/8, 10.0.0.300/32]\n", 11,
         "trusted_proxies[1]: expected a CIDR such as 10.0.0.0/8 or an address, found '10.0.0.300/32'"),
        (MINIMAL + "  kb:\n    match: {path_prefix: /cases}\n    service: cases-service\n    stage: released\n", 12,
         "module kb claims '/cases' with the same conditions as module cases: ambiguous"),
    ],
)
def test_invalid_tables_name_file_line_and_key(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(text)
    with pytest.raises(RouteConfigError) as exc:
        load_routes(path)
    assert exc.value.location.file == str(path)
    assert exc.value.location.line == line, str(exc.value)
    assert message in str(exc.value)


def test_syntax_error_is_a_route_config_error(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("upstreams: {legacy: http://x:1\n")
    with pytest.raises(RouteConfigError, match=r"r.yaml:\d+: invalid YAML"):
        load_routes(path)


def test_long_forms(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "upstreams:\n  legacy: {url: 'http://127.0.0.1:1', connect_timeout: 0.5}\n  svc: http://127.0.0.1:2\n"
        "cohort: {key: [header:X-User-Id, client_ip]}\npin: {header: X-Side, cookie: null, unsigned: true}\nbreaker: {failures: 2, cooldown: 1.5}\n"
        "fallback: {body_limit: 1024}\n"
        "modules:\n  m:\n    match:\n      - {path: /exact, methods: [POST]}\n      - {hosts: ['*.corp'], headers: {X-Beta: '1'}}\n"
        "    service: svc\n    stage: released\n    idempotent: [PUT]\n    idempotency_key: Idempotency-Key\n    timeout: 2\n"
    )
    t = load_routes(path)
    m = t.modules[0]
    assert t.upstreams["legacy"].connect_timeout == 0.5
    assert t.cohort.sources == (("header", "x-user-id"), ("client_ip", ""))
    assert t.pin.header == "x-side" and t.pin.cookie is None
    assert (t.breaker.failures, t.breaker.cooldown, t.fallback_body_limit) == (2, 1.5, 1024)
    assert "PUT" in m.idempotent and m.idempotency_key == "idempotency-key" and m.weight == 100
    assert m.matches[1].headers == (("x-beta", "1"),)


def test_published_schema_agrees_with_the_parser(tmp_path: Path) -> None:
    import json

    import jsonschema

    from strangler_common import load_yaml_file
    from tests.cli.helpers import strangler

    schema = json.loads(strangler("schema", "routes").stdout)
    jsonschema.validate(json.loads(json.dumps(load_yaml_file(ROOT / "routes" / "example.yaml")[0])), schema)
    for bad in (MINIMAL.replace("weight: 25", "weight: 250"), MINIMAL.replace("stage: canary", "stage: halfway"),
                MINIMAL + "    colour: blue\n", MINIMAL.replace("    weight: 25\n", "")):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(json.loads(json.dumps(load_yaml_file_text(tmp_path, bad))), schema)


def load_yaml_file_text(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    from strangler_common import load_yaml_file

    path = tmp_path / "x.yaml"
    path.write_text(text)
    return load_yaml_file(path)[0]


def test_pins_need_a_secret_or_an_explicit_unsigned(tmp_path: Path) -> None:
    base = "upstreams: {legacy: 'http://127.0.0.1:1'}\n"
    for text, message in (("pin: {header: X-Side}\n", "give 'secret' or 'secret_env'"),
                          ("pin: {secret: short}\n", "at least 16 characters"),
                          ("pin: {secret_env: STRANGLER_TEST_UNSET_VARIABLE}\n", "STRANGLER_TEST_UNSET_VARIABLE is not set")):
        f = tmp_path / "r.yaml"
        f.write_text(base + text)
        with pytest.raises(RouteConfigError, match=re.escape(message)):
            load_routes(f)
    f.write_text(base)
    assert load_routes(f).pin.header is None and load_routes(f).pin.cookie is None  # off by default


def test_an_upstream_ca_bundle_is_all_it_trusts(tmp_path: Path) -> None:
    import trustme

    trustme.CA().cert_pem.write_to_path(tmp_path / "ca.pem")
    f = tmp_path / "r.yaml"
    f.write_text("upstreams:\n  legacy: {url: 'https://127.0.0.1:8443', tls: {ca: ca.pem}}\n"
                 "  svc: https://svc.internal\n")
    t = load_routes(f)
    bundle, system = t.upstreams["legacy"].tls, t.upstreams["svc"].tls
    assert bundle is not None and bundle.context is not None and system is not None and system.context is not None
    assert bundle.context.cert_store_stats()["x509_ca"] == 1  # the bundle only, not the system store besides
    assert t.upstreams["svc"].port == 443 and system.ca is None  # the system store (whatever this machine has)
    assert bundle.context.verify_mode.name == "CERT_REQUIRED" and bundle.context.check_hostname
