from __future__ import annotations

import pytest

from strangler_analyzer import UnknownInputError, example_path, load_estate


def test_unknown_file_kind_is_refused(write) -> None:  # type: ignore[no-untyped-def]
    path = write("estate.docx", "x")
    with pytest.raises(UnknownInputError, match="estate.docx: unknown file kind"):
        load_estate([path])


def test_missing_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnknownInputError, match="no such file"):
        load_estate([tmp_path / "nope.yaml"])


def test_mixed_inputs_merge_into_one_graph(fixtures, write) -> None:  # type: ignore[no-untyped-def]
    inv = write("inv.yaml", "components:\n  reporting:\n    depends_on: [postgresql]\n")
    estate = load_estate([fixtures / "systemd", inv])
    assert ("reporting", "postgresql") in {e.key for e in estate.edges}


def test_config_file_attributed_by_directory_name(write, tmp_path) -> None:  # type: ignore[no-untyped-def]
    inv = write("inv.yaml", "components:\n  app: {}\n  db: {host: db01}\n")
    write("cfg/app/db.properties", "url=jdbc:mysql://db01/x\n")
    write("cfg/orphan.properties", "url=jdbc:mysql://db01/x\n")
    estate = load_estate([inv, tmp_path / "cfg"])
    assert ("app", "db") in {e.key for e in estate.edges}
    assert any("orphan.properties" in w.source and "belongs to no known component" in w.message for w in estate.warnings)


def test_input_order_does_not_matter(fixtures) -> None:  # type: ignore[no-untyped-def]
    a = load_estate([example_path("portal"), fixtures / "systemd"])
    b = load_estate([fixtures / "systemd", example_path("portal")])
    assert a.components == b.components
    assert [(e.key, e.strength, e.ordered) for e in a.edges] == [(e.key, e.strength, e.ordered) for e in b.edges]
