from __future__ import annotations

import re

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


def test_libyaml_and_the_python_composer_give_the_same_marked_values() -> None:
    import yaml

    from strangler_common import yamlio

    text = ("base: &b {image: x, env: [A=1, B=2]}\nservices:\n  web:\n    <<: *b\n    image: y\n    depends_on:\n"
            "      - db\n      - cache\n  db: {image: 'postgres:16', ports: [\"5432:5432\"]}\n---\nsecond: [1, [2, {k: v}]]\n")
    assert yamlio._FastLoader is not None  # PyYAML is built with libyaml here
    text += ("---\nn: ~\nb: yes\ni: 0x1f\nf: 1.5e3\nt: 2001-12-14\nbin: !!binary aGk=\n1: int key\n"
             "s: !!set {a, b}\no: !!omap [{x: 1}]\nm: &m {k: &v [1, 2]}\nm2: *m\nv2: *v\n"
             "'<<': not a merge\nq: !!str 12\n")
    fast = yamlio._load_fast(text)
    slow = list(yaml.load_all(text, Loader=yamlio._Loader))
    assert fast[-1]["m2"] is fast[-1]["m"] and fast[-1]["v2"] is fast[-1]["m"]["k"]  # anchors shared, as PyYAML

    def marks(v: object) -> object:
        if isinstance(v, dict):
            return (getattr(v, "line", None), sorted(getattr(v, "key_lines", {}).items()), {k: marks(x) for k, x in v.items()})
        if isinstance(v, list):
            return (getattr(v, "line", None), getattr(v, "item_lines", None), [marks(x) for x in v])
        return v

    assert [marks(d) for d in fast] == [marks(d) for d in slow]
    for bad, line, message in (("a: 1\nb: 2\na: 3\n", 3, "duplicate key 'a'"),
                               ("base: &b {x: 1}\nd:\n  <<: *b\n  y: 1\n  y: 2\n", 5, "duplicate key 'y'"),
                               ("? [1, 2]\n: v\n", 1, "unhashable key"),
                               ("a: !Ref x\n", 1, "could not determine a constructor for the tag '!Ref'")):
        with pytest.raises(ConfigError, match=rf"x.yaml:{line}: .*{re.escape(message)}"):
            load_yaml_documents(bad, "x.yaml")
        with pytest.raises(yaml.MarkedYAMLError):
            list(yaml.load_all(bad, Loader=yamlio._Loader))


def test_deep_input_is_read_by_the_composer_that_stops_at_the_limit() -> None:
    from strangler_common import yamlio

    assert yamlio._shallow("a:\n  b: [1, {c: d}]\n")
    for deep in ("[" * 40 + "]" * 40, "- " * 30 + "x\n", " " * 60 + "a: 1\n"):
        assert not yamlio._shallow(deep)
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_yaml_documents("[" * 100_000, "deep.yaml")
