"""Compose's environment as Compose reads it (issue 22, items 1-4, 6, 7): .env comments,
bare keys, values built from other variables, nested interpolation, the other names a
service answers to, and a shared env_file on a database."""

from __future__ import annotations

from pathlib import Path

import pytest

from strangler_analyzer import load_estate
from strangler_analyzer.importers.envfiles import read_env
from strangler_analyzer.importers.interpolate import Interpolation, interpolate

APP = "services:\n  app:\n    image: shop/app\n{env}  quote: {{image: shop/quote}}\n  db: {{image: postgres:16}}\n  cache: {{image: redis:7}}\n"


def edges(estate):  # type: ignore[no-untyped-def]
    return {(e.src, e.dst): e for e in estate.edges}


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("QUOTE_ADDR", "QUOTE_PORT", "CACHE_URL", "CACHEHOST", "X", "Y", "DB_HOST"):
        monkeypatch.delenv(name, raising=False)


def test_env_comments_blank_lines_and_export_say_nothing_and_lines_are_right(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("# the shop's settings\n\n\nQUOTE_PORT=8080\n  # indented comment\nexport B=\"x y\" # inline\n\nC=${QUOTE_PORT}/q\n")
    values, lines, problems = read_env(path, {})
    assert values == {"QUOTE_PORT": "8080", "B": "x y", "C": "8080/q"} and problems == []
    assert lines == {"QUOTE_PORT": 4, "B": 6, "C": 8}


def test_a_project_with_a_commented_env_analyses_and_env_file_comments_are_silent(write) -> None:  # type: ignore[no-untyped-def]
    write("p/.env", "# ports\nQUOTE_PORT=8080\n# the address, built from the port\nQUOTE_ADDR=http://quote:${QUOTE_PORT}\n")
    write("p/app.env", "# app settings\n\nCACHE=redis://cache:6379\n")
    compose = write("p/compose.yaml", APP.format(env="    env_file: app.env\n    environment: [QUOTE_ADDR]\n"))
    estate = load_estate([compose])
    e = edges(estate)
    assert ("app", "quote") in e and ("app", "cache") in e  # a bare key, from .env, expanded from another key
    assert [w for w in estate.warnings if "app.env" in w.source or ".env" in w.source] == []


def test_bare_environment_keys_take_the_shell_value(write, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("QUOTE_ADDR", "http://quote:9000")
    compose = write("s/compose.yaml", APP.format(env="    environment:\n      QUOTE_ADDR:\n"))
    assert ("app", "quote") in edges(load_estate([compose]))


def test_nested_interpolation_and_unknown_forms(write, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CACHEHOST", "cache")
    compose = write("n/compose.yaml", APP.format(env="    environment:\n      CACHE: ${CACHE_URL:-redis://${CACHEHOST}:6379}\n"
                                                     "      QUOTE: ${X:-${Y:-http://quote:9200}}\n      ODD: ${A B}\n"))
    estate = load_estate([compose])
    assert {("app", "cache"), ("app", "quote")} <= set(edges(estate))
    assert any("'${A B}' is not an interpolation Compose knows" in w.message for w in estate.warnings)
    assert interpolate("${A:+x${B:-y}z}", {"A": "1"}.get) == "xyz"
    with pytest.raises(Interpolation, match="required variable Q is missing a value: set Q"):
        interpolate("${Q:?set ${WHAT:-Q}}", {}.get)


def test_container_name_hostname_and_network_aliases_name_their_service(write) -> None:  # type: ignore[no-untyped-def]
    compose = write("a/compose.yaml", (
        "services:\n  app:\n    image: shop/app\n    environment:\n      DB_HOST: app_postgres\n"
        "      CACHE: redis://sessions:6379\n      Q: http://quote-svc:8080\n"
        "  db: {image: postgres:16, container_name: app_postgres}\n"
        "  cache:\n    image: redis:7\n    networks:\n      back: {aliases: [sessions]}\n"
        "  quote: {image: shop/quote, hostname: quote-svc}\nnetworks: {back: {}}\n"))
    assert {("app", "db"), ("app", "cache"), ("app", "quote")} <= set(edges(load_estate([compose])))


def test_a_database_handed_the_app_env_file_gets_no_edge_from_it(write) -> None:  # type: ignore[no-untyped-def]
    write("d/shared.env", "CACHE_URL=redis://cache:6379\nDATABASE_URL=postgresql://db:5432/shop\n")
    compose = write("d/compose.yaml", (
        "services:\n  app: {image: shop/app, env_file: shared.env}\n"
        "  db: {image: postgres:16, env_file: shared.env}\n  cache: {image: redis:7}\n"))
    estate = load_estate([compose])
    e = edges(estate)
    assert ("app", "cache") in e and ("app", "db") in e and ("db", "cache") not in e
    assert any("db is a database: the connection strings of its env_file" in w.message for w in estate.warnings)


def test_telemetry_endpoints_are_soft_non_ordering_edges(write) -> None:  # type: ignore[no-untyped-def]
    """Issue 22, item 17: no application blocks its start on its trace collector or Sentry."""
    services = "".join(
        f"  app{i}:\n    image: shop/app{i}\n    environment:\n      OTEL_EXPORTER_OTLP_ENDPOINT: http://collector:4318\n"
        f"      SENTRY_DSN: https://key@sentry:9000/2\n      STATSD: statsd-exporter:8125\n      DB: postgresql://db:5432/x\n"
        for i in range(3))
    compose = write("t/compose.yaml", "services:\n" + services + "  collector:\n    image: otel/opentelemetry-collector\n"
                    "    environment: {DB: 'postgresql://db:5432/traces'}\n  sentry: {image: sentry}\n"
                    "  statsd-exporter: {image: prom/statsd-exporter}\n  db: {image: postgres:16}\n")
    from strangler_analyzer import analyze

    estate = load_estate([compose])
    e = edges(estate)
    for i in range(3):
        for dst in ("collector", "sentry", "statsd-exporter"):
            assert e[(f"app{i}", dst)].strength == "soft" and not e[(f"app{i}", dst)].ordered
        assert e[(f"app{i}", "db")].strength == "hard"
    assert e[("collector", "db")].strength == "hard"  # a service named collector keeps its own hard edges
    waves = analyze(estate).waves.waves
    assert len(waves) == 2  # db, then everything else: the collector adds no wave


def test_a_folder_reads_what_docker_compose_reads_there(write) -> None:  # type: ignore[no-untyped-def]
    """Issue 22, item 5: compose.yaml and its override; alternatives are warnings, not merged."""
    write("f/compose.yaml", "services:\n  app: {image: shop/app, depends_on: [db]}\n  db: {image: postgres:16}\n")
    write("f/compose.override.yaml", "services:\n  app: {environment: {CACHE: 'redis://cache:6379'}}\n  cache: {image: redis:7}\n")
    write("f/compose.prod.yaml", "services:\n  app: {depends_on: [vault]}\n  vault: {image: vault}\n")
    write("f/sub/docker-compose.yml", "services:\n  other: {image: other}\n")
    folder = write("f/compose.yaml", "services:\n  app: {image: shop/app, depends_on: [db]}\n  db: {image: postgres:16}\n").parent
    estate = load_estate([folder])
    assert {c.name for c in estate.components} == {"app", "db", "cache"}
    said = [w for w in estate.warnings if "docker compose does not read" in w.message]
    assert sorted(Path(w.source).name for w in said) == ["compose.prod.yaml", "docker-compose.yml"]
    e = load_estate([folder / "compose.yaml", folder / "compose.prod.yaml"])  # named: read, merged in order
    assert {c.name for c in e.components} == {"app", "db", "vault"}
