from __future__ import annotations

from pathlib import Path

import pytest

from strangler_analyzer import example_path, load_estate
from strangler_common import ConfigError


def edges(estate):  # type: ignore[no-untyped-def]
    return {e.key: e for e in estate.edges}


def test_shop_example_merges_override_and_reads_every_form() -> None:
    estate = load_estate([example_path("shop-compose")])
    e = edges(estate)
    assert ("cart", "mq") in e  # added by compose.override.yaml, merged by key
    assert e[("cart", "db")].evidence[0].kind == "compose.depends_on.service_healthy"
    assert e[("catalog", "db")].strength == "hard"  # short form
    assert e[("worker", "cart")].evidence[0].kind in {"compose.network_mode", "compose.volumes_from"}
    assert e[("worker", "mq")].evidence[0].kind == "compose.links"
    assert ("storefront", "search") not in e  # profile inactive
    assert {c.name for c in estate.components} == {"web", "storefront", "catalog", "cart", "db", "mq", "worker"}
    assert any("search left out" in w.message for w in estate.warnings)
    db = estate.component("db")
    assert db is not None and db.tier == "database" and db.check is not None and db.check.target == "pg_isready -U shop"


def test_profiles_activate_services_and_soft_required_false() -> None:
    estate = load_estate([example_path("shop-compose")], profiles=["search", "debug"])
    e = edges(estate)
    assert e[("storefront", "search")].strength == "soft"
    assert ("adminer", "db") in e


def test_interpolation_uses_env_file_and_defaults(write, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("DBHOST", raising=False)
    monkeypatch.delenv("CACHE_PORT", raising=False)
    compose = write("c/compose.yaml", (
        "services:\n"
        "  app:\n    image: app\n    environment:\n"
        "      DB: jdbc:postgresql://${DBHOST}:5432/x\n"
        "      CACHE: redis://cache:${CACHE_PORT:-6379}\n"
        "      PRICE: $$5\n"
        "  database: {image: postgres}\n  cache: {image: redis}\n"
    ))
    env = write("vars.env", "DBHOST=database\n")
    estate = load_estate([compose], env_file=env)
    e = edges(estate)
    assert ("app", "database") in e and ("app", "cache") in e
    assert not e[("app", "database")].declared


def test_required_variable_missing_is_an_error_with_line(write, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("NEEDED", raising=False)
    compose = write("compose.yaml", "services:\n  app:\n    image: app\n    environment:\n      X: ${NEEDED:?set NEEDED}\n")
    with pytest.raises(ConfigError) as exc:
        load_estate([compose])
    assert exc.value.location.line == 5 and "required variable NEEDED" in str(exc.value)


def test_files_merge_in_given_order(write) -> None:  # type: ignore[no-untyped-def]
    a = write("a.yml", "services:\n  app: {image: a, depends_on: [db]}\n  db: {image: postgres}\n  mq: {image: rabbitmq}\n")
    b = write("b.yml", "services:\n  app:\n    depends_on:\n      mq: {condition: service_started, required: false}\n")
    e = edges(load_estate([a, b]))
    assert e[("app", "db")].strength == "hard" and e[("app", "mq")].strength == "soft"


def test_undefined_service_is_an_error(write) -> None:  # type: ignore[no-untyped-def]
    path = write("compose.yaml", "services:\n  app:\n    image: a\n    depends_on: [ghost]\n")
    with pytest.raises(ConfigError, match=r"compose.yaml:4: .*undefined service 'ghost'"):
        load_estate([path])


def test_unknown_service_key_is_an_error_unless_lenient(write) -> None:  # type: ignore[no-untyped-def]
    """Issue 23, item 2: 'depends_onn:' changed the waves with only a warning at the bottom."""
    path = write("compose.yaml", "services:\n  app:\n    image: a\n    depends_onn: [db]\n  db: {image: postgres}\n")
    with pytest.raises(ConfigError, match=r"compose.yaml:4: services.app.depends_onn: key 'depends_onn' is not part of "
                                          r"the Compose spec \(did you mean 'depends_on'\?\); --lenient"):
        load_estate([path])
    estate = load_estate([path], lenient=True)
    assert any("'depends_onn' is not part of the Compose spec" in w.message and w.line == 4 for w in estate.warnings)


@pytest.mark.parametrize("text, found", [
    ("", "an empty file"), ("hello: world\n", "top-level keys hello"),
    ("service:\n  app: {image: a}\n", "top-level keys service (did you mean 'services:'?)"),
])
def test_a_named_file_that_is_no_estate_is_an_error(write, text: str, found: str) -> None:  # type: ignore[no-untyped-def]
    from strangler_analyzer.errors import AnalyzerError

    path = write("x.yaml", text)
    with pytest.raises(AnalyzerError) as err:
        load_estate([path])
    assert "x.yaml:1: expected a Compose file ('services:')" in str(err.value) and str(err.value).endswith("found " + found)


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    from strangler_analyzer.errors import AnalyzerError

    (tmp_path / "empty").mkdir()
    with pytest.raises(AnalyzerError, match="nothing the analyzer reads"):
        load_estate([tmp_path / "empty"])


def test_bad_condition_names_its_key(write) -> None:  # type: ignore[no-untyped-def]
    path = write("compose.yaml", "services:\n  app:\n    image: a\n    depends_on:\n      db: {condition: whenever}\n  db: {image: x}\n")
    with pytest.raises(ConfigError, match=r"services.app.depends_on.db.condition: expected one of"):
        load_estate([path])


def test_directory_reads_compose_before_override(tmp_path: Path, write) -> None:  # type: ignore[no-untyped-def]
    write("d/docker-compose.override.yml", "services:\n  app: {image: over}\n")
    write("d/docker-compose.yml", "services:\n  app: {image: postgres}\n")
    estate = load_estate([tmp_path / "d"])
    assert estate.component("app").tier == "app"  # type: ignore[union-attr]


@pytest.mark.parametrize("image,tier", [
    ("mcr.microsoft.com/mssql/server:2022-latest", "database"), ("container-registry.oracle.com/database/enterprise", "database"),
    ("mariadb:11", "database"), ("mongo:7", "database"), ("confluentinc/cp-kafka:7.5.0", "broker"), ("rabbitmq:3-management", "broker"),
    ("zookeeper:3.9", "broker"), ("docker.elastic.co/elasticsearch/elasticsearch:8.11.0", "search"), ("osixia/openldap:1.5.0", "directory"),
    ("minio/minio", "storage"), ("eclipse-mosquitto", "broker"), ("jaegertracing/all-in-one", "monitoring"), ("hashicorp/vault", "directory"),
    ("apache/airflow", "app"), ("apache/kafka", "broker"), ("ghcr.io/acme/cases-api:1.4", "app"), ("localhost:5000/orders-service", "app"),
])
def test_tiers_from_images(image: str, tier: str) -> None:
    from strangler_analyzer.importers.base import tier_from_image

    assert tier_from_image(image) == tier


def test_infrastructure_images_are_never_extraction_candidates(write) -> None:  # type: ignore[no-untyped-def]
    from strangler_analyzer import analyze

    path = write("compose.yaml", "services:\n  sql: {image: 'mcr.microsoft.com/mssql/server:2022-latest'}\n"
                                 "  mq: {image: eclipse-mosquitto}\n  traces: {image: jaegertracing/all-in-one}\n"
                                 "  orders: {image: 'ghcr.io/acme/orders:1', ports: ['8080'], depends_on: [sql, mq, traces]}\n")
    result = analyze(load_estate([path]))
    assert [c.component for c in result.candidates] == ["orders"]


def test_sharing_a_namespace_with_a_service_is_a_dependency(write) -> None:  # type: ignore[no-untyped-def]
    path = write("compose.yaml", "services:\n  app: {image: example/app}\n"
                                 "  sidecar:\n    image: example/sidecar\n    pid: 'service:app'\n    ipc: 'service:app'\n"
                                 "  probe:\n    image: example/probe\n    uts: 'service:app'\n    cgroup: host\n    network_mode: 'service:sidecar'\n")
    estate = load_estate([path])
    edges = {e.key: e for e in estate.edges}
    assert {k for k in edges} == {("sidecar", "app"), ("probe", "app"), ("probe", "sidecar")}
    assert {ev.kind for ev in edges[("sidecar", "app")].evidence} == {"compose.pid", "compose.ipc"}
    assert all(e.ordered and e.strength == "hard" for e in estate.edges)
    assert not [w for w in estate.warnings if "pid" in w.message or "uts" in w.message or "cgroup" in w.message]


def test_env_file_is_read_as_compose_reads_it(write) -> None:  # type: ignore[no-untyped-def]
    compose = write("compose.yaml", """\
services:
  db: {image: postgres:16}
  cache: {image: redis:7}
  mq: {image: rabbitmq:3}
  app:
    image: example/app
    env_file:
      - app.env
      - {path: missing.env, required: false}
    environment:
      QUEUE_HOST: db
""")
    write("app.env", "# the app's settings\nDB_HOST=db # inline comment\nCACHE_URL=\"redis://cache:6379/0\"\n"
                     "export QUEUE_HOST=mq\nPLAIN='single quoted # not a comment'\nthis line is broken\n")
    estate = load_estate([compose])
    e = edges(estate)
    assert any(ev.source.endswith("app.env") and ev.line == 2 for ev in e[("app", "db")].evidence)
    assert any(ev.source.endswith("app.env") and ev.line == 3 for ev in e[("app", "cache")].evidence)
    assert ("app", "mq") not in e  # environment: wins over env_file for QUEUE_HOST
    assert any(w.source.endswith("app.env") and w.line == 6 for w in estate.warnings)
    write("compose.yaml", compose.read_text().replace("app.env\n", "nowhere.env\n", 1))
    with pytest.raises(ConfigError, match=r"compose.yaml:\d+: .*env_file.*nowhere.env not found"):
        load_estate([compose])


def test_extends_same_file_and_other_file_with_evidence_in_the_base(write) -> None:  # type: ignore[no-untyped-def]
    write("common.yml", """\
services:
  java-base:
    image: example/jre
    depends_on: [config-server]
    environment:
      LOG_HOST: logs
""")
    compose = write("compose.yaml", """\
services:
  config-server: {image: example/config}
  logs: {image: example/logs}
  db: {image: postgres:16}
  base:
    extends: {file: common.yml, service: java-base}
    depends_on: [db]
  orders:
    extends: base
    environment:
      DB_HOST: db
""")
    estate = load_estate([compose.parent])
    e = edges(estate)
    assert {("orders", "config-server"), ("orders", "db"), ("base", "config-server"), ("orders", "logs")} <= set(e)
    assert "java-base" not in {c.name for c in estate.components}  # a base in another file is no service here
    cs = e[("orders", "config-server")].evidence[0]
    assert cs.source.endswith("common.yml") and cs.line == 4  # inherited: cited where it is written
    assert e[("orders", "db")].evidence[0].source.endswith("compose.yaml")


def test_include_brings_services_of_other_files(write) -> None:  # type: ignore[no-untyped-def]
    write("infra/compose.yaml", "services:\n  db:\n    image: postgres:${PG_VERSION}\n")
    write("infra/.env", "PG_VERSION=16\n")
    compose = write("compose.yaml", "include:\n  - infra/compose.yaml\nservices:\n  app:\n    image: x\n    depends_on: [db]\n")
    estate = load_estate([compose.parent])
    assert ("app", "db") in edges(estate)
    db = estate.component("db")
    assert db is not None and db.tier == "database" and db.evidence[0].source.endswith("infra/compose.yaml")
    assert not any("PG_VERSION" in w.message for w in estate.warnings)  # the included file's own .env


def test_compose_profiles_from_env_file_unless_profiles_are_given(write) -> None:  # type: ignore[no-untyped-def]
    compose = write("compose.yaml", """\
services:
  app: {image: x, depends_on: {debug: {condition: service_started, required: false}}}
  debug: {image: y, profiles: [debug]}
  search: {image: elasticsearch:8, profiles: [search]}
""")
    write(".env", "COMPOSE_PROFILES=debug\n")
    names = {c.name for c in load_estate([compose]).components}
    assert "debug" in names and "search" not in names
    names = {c.name for c in load_estate([compose], profiles=["search"]).components}
    assert "search" in names and "debug" not in names


def test_evidence_cites_the_file_and_line_of_each_merged_value(write) -> None:  # type: ignore[no-untyped-def]
    base = write("compose.yaml", "services:\n  db: {image: postgres:16}\n  mq: {image: rabbitmq:3}\n"
                                 "  app:\n    image: x\n    depends_on: [db]\n")
    write("compose.override.yaml", "services:\n  app:\n    environment:\n      MQ_HOST: mq\n    depends_on:\n      - mq\n")
    estate = load_estate([base.parent])
    e = edges(estate)
    assert (e[("app", "db")].evidence[0].source, e[("app", "db")].evidence[0].line) == (str(base), 6)
    mq = [(Path(ev.source).name, ev.line) for ev in e[("app", "mq")].evidence]
    assert ("compose.override.yaml", 6) in mq and ("compose.override.yaml", 4) in mq
    app = estate.component("app")
    assert app is not None and app.evidence[0].source == str(base)


def test_escaped_dollars_are_read_once_in_shared_and_extended_values(write, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    # values are interpolated in place: a base service read again for ``extends`` and a block
    # shared through an anchor must not be interpolated twice ($$X -> $X -> unset X)
    for name in ("ESCAPED_NOT_SET", "REALLY_NOT_SET"):
        monkeypatch.delenv(name, raising=False)
    compose = write("compose.yaml", """\
x-env: &env
  PRICE: $$ESCAPED_NOT_SET
services:
  base:
    image: example/app
    environment: *env
    command: echo $$ESCAPED_NOT_SET $REALLY_NOT_SET
  child:
    extends: base
  other:
    image: example/app
    environment: *env
""")
    estate = load_estate([compose])
    messages = [w.message for w in estate.warnings]
    assert not [m for m in messages if "ESCAPED_NOT_SET" in m]
    assert [m for m in messages if "variable REALLY_NOT_SET is not set" in m]
