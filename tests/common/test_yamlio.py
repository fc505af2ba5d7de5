from __future__ import annotations

import pytest

from strangler_common import ConfigError, Node, load_yaml_documents


def test_lines_of_keys_and_items() -> None:
    doc = load_yaml_documents("a:\n  b: 1\n  c:\n    - x\n    - y\n", "f.yaml")[0]
    assert doc.line_of("a") == 1
    assert doc["a"].line_of("c") == 3
    assert doc["a"]["c"].line_of(1) == 5


def test_duplicate_key_is_an_error_with_its_line() -> None:
    with pytest.raises(ConfigError) as exc:
        load_yaml_documents("a: 1\nb: 2\na: 3\n", "f.yaml")
    assert exc.value.location.line == 3
    assert "duplicate key 'a'" in str(exc.value)


def test_merge_keys_may_be_overridden() -> None:
    doc = load_yaml_documents("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n", "f.yaml")[0]
    assert dict(doc["d"]) == {"x": 1, "y": 3}


def test_syntax_error_names_file_and_line() -> None:
    with pytest.raises(ConfigError) as exc:
        load_yaml_documents("a: [1, 2\nb: 3\n", "bad.yaml")
    assert str(exc.value).startswith("bad.yaml:")
    assert exc.value.location.line is not None


def test_reader_errors_name_key_path_expected_and_found() -> None:
    doc = load_yaml_documents("modules:\n  cases:\n    weight: 150\n", "r.yaml")[0]
    node = Node.root(doc, "r.yaml").mapping()["modules"].mapping()["cases"].mapping()["weight"]
    with pytest.raises(ConfigError) as exc:
        node.integer(0, 100)
    assert str(exc.value) == "r.yaml:3: modules.cases.weight: expected a number from 0 to 100, found 150"


def test_reader_rejects_unknown_keys_listing_the_allowed_ones() -> None:
    doc = load_yaml_documents("a: 1\nbogus: 2\n", "r.yaml")[0]
    with pytest.raises(ConfigError, match=r"r.yaml:2: bogus: unknown key 'bogus'; expected one of: a, b"):
        Node.root(doc, "r.yaml").mapping({"a", "b"})
