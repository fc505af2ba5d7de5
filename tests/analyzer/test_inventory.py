from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from strangler_analyzer import InputError, example_path, load_estate
from strangler_common import ConfigError, load_yaml_file

SCHEMA = json.loads((example_path("portal").parent.parent / "schemas" / "inventory.schema.json").read_text())


def test_portal_example_reads_every_component_and_its_evidence() -> None:
    estate = load_estate([example_path("portal")])
    names = {c.name for c in estate.components}
    assert {"apache-web", "tomcat-1", "tomcat-2", "tomcat-3", "entitlements", "esb", "activemq",
            "oracle-crm", "mysql-esb", "redis-sessions", "elasticsearch", "erp", "ldap", "sso"} <= names
    edge = next(e for e in estate.edges if e.key == ("tomcat-1", "oracle-crm"))
    assert edge.strength == "hard" and edge.ordered and edge.declared
    kinds = {ev.kind for ev in edge.evidence}
    assert kinds == {"inventory", "config.file"}  # declared, and confirmed by context.xml
    assert all(ev.line for ev in edge.evidence)
    soft = next(e for e in estate.edges if e.key == ("tomcat-1", "entitlements"))
    assert soft.strength == "soft" and not soft.ordered


def test_bundled_inventory_validates_against_published_schema() -> None:
    doc = load_yaml_file(example_path("portal") / "inventory.yaml")[0]
    jsonschema.validate(json.loads(json.dumps(doc)), SCHEMA)


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("components:\n  a:\n    tier: app\n    colour: red\n", 4, "components.a.colour: unknown key 'colour'"),
        ("components:\n  a:\n    port: http\n", 3, "components.a.port: expected an integer, found str 'http'"),
        ("components:\n  a:\n    depends_on: {b: maybe}\n  b: {}\n", 3, "components.a.depends_on.b: expected one of hard, soft"),
        ("components:\n  a:\n    check: {tcp: 'x:1', http: 'http://x'}\n", 3, "expected exactly one check kind"),
        ("components:\n  a:\n    startup_seconds: -1\n", 3, "expected a number at least 0"),
    ],
)
def test_bad_inventory_names_file_line_and_key(write, body: str, line: int, message: str) -> None:  # type: ignore[no-untyped-def]
    path = write("inv.yaml", body)
    with pytest.raises(ConfigError) as exc:
        load_estate([path])
    assert exc.value.location.file == str(path)
    assert exc.value.location.line == line
    assert message in str(exc.value)
    # the schema rejects what the parser rejects
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads(json.dumps(load_yaml_file(path)[0])), SCHEMA)


def test_dependency_on_undefined_component(write) -> None:  # type: ignore[no-untyped-def]
    path = write("inv.yaml", "components:\n  a:\n    depends_on: [ghost]\n")
    with pytest.raises(InputError) as exc:
        load_estate([path])
    assert exc.value.location.line == 3
    assert "depends on undefined component 'ghost'" in str(exc.value)


def test_missing_config_file_is_named(write) -> None:  # type: ignore[no-untyped-def]
    path = write("inv.yaml", "components:\n  a:\n    config_files: [nope.properties]\n")
    with pytest.raises(ConfigError, match=r"inv.yaml:3: components.a.config_files\[0\]: cannot read config file"):
        load_estate([path])


def test_unresolved_connection_string_is_a_warning_not_dropped(write) -> None:  # type: ignore[no-untyped-def]
    path = write("inv.yaml", "components:\n  a:\n    config: {DB: 'jdbc:mysql://elsewhere:3306/x'}\n")
    estate = load_estate([path])
    assert any("elsewhere:3306" in w.message and w.line == 3 for w in estate.warnings)


def test_drift_both_ways(write) -> None:  # type: ignore[no-untyped-def]
    path = write(
        "inv.yaml",
        "components:\n"
        "  app:\n    depends_on: [db]\n    config: {CACHE: 'redis://cache:6379'}\n"
        "  db: {host: db01}\n  cache: {}\n",
    )
    estate = load_estate([path])
    assert {(d.src, d.dst, d.kind) for d in estate.drift} == {("app", "cache", "undeclared"), ("app", "db", "unconfigured")}
    inferred = next(e for e in estate.edges if e.key == ("app", "cache"))
    assert not inferred.declared and inferred.evidence[0].kind == "config.inventory"


def test_paths_are_relative_to_the_inventory(tmp_path: Path, write) -> None:  # type: ignore[no-untyped-def]
    write("conf/app.properties", "db=jdbc:postgresql://db01:5432/x\n")
    path = write("inv.yaml", "components:\n  app:\n    config_files: [conf/app.properties]\n  db: {host: db01}\n")
    estate = load_estate([path])
    edge = next(e for e in estate.edges if e.key == ("app", "db"))
    assert edge.evidence[0].source == str(tmp_path / "conf" / "app.properties") and edge.evidence[0].line == 1
