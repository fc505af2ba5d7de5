"""Safe YAML loading that remembers the line of every key and list item.

PyYAML's safe loader drops positions once it builds plain Python values, yet every error a
user sees must name the line. ``MarkedMap`` and ``MarkedList`` are ``dict`` and ``list``
subclasses carrying those lines, so the rest of the code treats them as plain values.
Duplicate keys, which PyYAML silently resolves to the last one, are an error here (as in
Compose and Kubernetes). Anchors, aliases and ``<<`` merge keys work as usual.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from strangler_common.oserr import os_reason
from strangler_common.errors import ConfigError, Location


class MarkedMap(dict[str, Any]):
    """A mapping that knows its own line and the line of each key (1-based); after a merge
    of several files, ``file`` and ``key_files`` say which file each key came from."""

    line: int | None = None
    key_lines: dict[str, int]
    file: str | None = None
    key_files: dict[str, str] | None = None

    def line_of(self, key: str) -> int | None:
        return self.key_lines.get(key, self.line) if hasattr(self, "key_lines") else self.line


class MarkedList(list[Any]):
    """A sequence that knows its own line and the line of each item (1-based), and after a
    merge the file of each item (``item_files``)."""

    line: int | None = None
    item_lines: list[int]
    file: str | None = None
    item_files: list[str] | None = None

    def line_of(self, index: int) -> int | None:
        lines = getattr(self, "item_lines", [])
        return lines[index] if 0 <= index < len(lines) else self.line


def line_of(container: object, key: str | int) -> int | None:
    """The line of ``key`` inside ``container`` when it is a marked value, else ``None``."""
    if isinstance(container, MarkedMap) and isinstance(key, str):
        return container.line_of(key)
    if isinstance(container, MarkedList) and isinstance(key, int):
        return container.line_of(key)
    return getattr(container, "line", None)


def file_of(container: object, key: str | int, value: object) -> str | None:
    """The file ``container[key]`` came from, when a merge recorded it (else ``None``)."""
    own = value.file if isinstance(value, (MarkedMap, MarkedList)) else None
    if own:
        return own
    if isinstance(container, MarkedMap) and isinstance(key, str) and container.key_files:
        return container.key_files.get(key, container.file)
    if isinstance(container, MarkedList) and isinstance(key, int) and container.item_files and 0 <= key < len(container.item_files):
        return container.item_files[key]
    own_file: str | None = getattr(container, "file", None)
    return own_file


MAX_DEPTH = 100  # Kubernetes manifests nest about 20 levels; deeper is an attack or a mistake


class _Loader(yaml.SafeLoader):
    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        # stop at MAX_DEPTH: PyYAML composes recursively and scans nested flow collections in
        # quadratic time, so 100,000 '[' would otherwise take a second and end in RecursionError
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested too deeply: more than {MAX_DEPTH} levels",
                                                  self.peek_event().start_mark)  # type: ignore[no-untyped-call]
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        _flatten(self, node)


def _flatten(loader: Any, node: yaml.MappingNode) -> None:
    explicit = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
    yaml.constructor.SafeConstructor.flatten_mapping(loader, node)
    # Keys that came from ``<<`` merges are put first; overriding them is allowed.
    node._merged_count = len(node.value) - explicit  # type: ignore[attr-defined]


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Iterator[MarkedMap]:
    data = MarkedMap()
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    yield data
    loader.flatten_mapping(node)
    explicit: set[Any] = set()
    merged_from = getattr(node, "_merged_count", 0)
    for index, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "found an unhashable key", key_node.start_mark
            ) from None
        if index >= merged_from and key in explicit:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        if index >= merged_from:
            explicit.add(key)
        data[key] = loader.construct_object(value_node, deep=True)
        data.key_lines[str(key)] = key_node.start_mark.line + 1


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> Iterator[MarkedList]:
    data = MarkedList()
    data.line = node.start_mark.line + 1
    data.item_lines = [child.start_mark.line + 1 for child in node.value]
    yield data
    data.extend(loader.construct_object(child, deep=True) for child in node.value)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)

_CBase: Any = getattr(yaml, "CSafeLoader", None)  # libyaml's parser and composer, when PyYAML was built with it
_FastLoader: Any = None
if _CBase is not None:
    class _CLoader(_CBase):  # type: ignore[misc]
        """libyaml scans, parses and composes (its nodes carry marks too); the same
        constructors build the marked values. Used only for input shallow enough that
        libyaml's recursive composer cannot be driven into the ground."""

        def flatten_mapping(self, node: yaml.MappingNode) -> None:
            _flatten(self, node)

    _CLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
    _CLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
    _FastLoader = _CLoader

_STR, _MAP, _SEQ = "tag:yaml.org,2002:str", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
_MERGE_TAGS = frozenset({"tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"})
_PLAIN_SCALARS = frozenset({"tag:yaml.org,2002:null", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int",
                            "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"})


def _built(loader: Any, root: yaml.Node) -> Any:
    """The marked values of one composed document: what the constructors above build, in
    one direct recursion (no generator and no constructor lookup per node), about three
    times faster on a large file. Other tags go through the loader's own constructors."""
    memo: dict[int, Any] = {}  # anchors: an aliased collection is built once, shared as PyYAML shares it
    scalars = loader.yaml_constructors
    scalar_node, mapping_node, sequence_node = yaml.ScalarNode, yaml.MappingNode, yaml.SequenceNode

    def build(node: Any) -> Any:
        cls, tag = node.__class__, node.tag
        if cls is scalar_node:
            if tag == _STR:
                return node.value
            if tag in _PLAIN_SCALARS:
                return scalars[tag](loader, node)
            return loader.construct_object(node, deep=True)
        done = memo.get(id(node))
        if done is not None:
            return done
        if cls is mapping_node and tag == _MAP:
            data = MarkedMap()
            data.line = node.start_mark.line + 1
            key_lines: dict[str, int] = {}
            data.key_lines = key_lines
            memo[id(node)] = data
            for key_node, _ in node.value:
                if key_node.tag in _MERGE_TAGS:
                    _flatten(loader, node)
                    break
            merged_from = getattr(node, "_merged_count", 0)
            explicit: set[Any] = set()
            for index, (key_node, value_node) in enumerate(node.value):
                if key_node.__class__ is scalar_node and key_node.tag == _STR:
                    key = key_node.value
                else:
                    key = build(key_node)
                    try:
                        hash(key)
                    except TypeError:
                        raise yaml.constructor.ConstructorError(
                            None, None, "found an unhashable key", key_node.start_mark) from None
                if merged_from:
                    if index >= merged_from:
                        if key in explicit:
                            raise yaml.constructor.ConstructorError(
                                None, None, f"duplicate key {key!r}", key_node.start_mark)
                        explicit.add(key)
                elif key in data:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
                data[key] = build(value_node)
                key_lines[str(key)] = key_node.start_mark.line + 1
            return data
        if cls is sequence_node and tag == _SEQ:
            items = MarkedList()
            items.line = node.start_mark.line + 1
            items.item_lines = [child.start_mark.line + 1 for child in node.value]
            memo[id(node)] = items
            items.extend([build(child) for child in node.value])
            return items
        return loader.construct_object(node, deep=True)

    return build(root)


def _load_fast(text: str) -> list[Any]:
    loader = _FastLoader(text)
    try:
        docs = []
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                docs.append(_built(loader, node))
        return docs
    finally:
        loader.dispose()

_BRACKET = re.compile(r"[\[\]{}]")
_DEEP_LINE = re.compile(r"^ {%d,}|(?:[-?:] +){%d,}" % (MAX_DEPTH // 2, MAX_DEPTH // 4), re.M)


def _shallow(text: str) -> bool:
    """Whether no line can nest anywhere near ``MAX_DEPTH`` (indentation, ``- - -`` chains,
    flow brackets): then libyaml may compose it; otherwise the Python composer, which stops
    at ``MAX_DEPTH`` with a clear error, reads it."""
    if _DEEP_LINE.search(text):
        return False
    depth = 0
    for m in _BRACKET.finditer(text):  # brackets in quoted strings count too: safe side
        depth += 1 if m[0] in "[{" else -1
        if depth > MAX_DEPTH // 4:
            return False
    return True


def load_yaml_documents(text: str, source: str) -> list[Any]:
    """Parse every document of a YAML stream into marked values.

    >>> doc = load_yaml_documents("a:\\n  b: 1\\n", "x.yaml")[0]
    >>> doc["a"].line_of("b")
    2
    """
    try:
        if _FastLoader is not None and _shallow(text):
            return [d for d in _load_fast(text) if d is not None]
        return [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]  # noqa: S506
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigError(Location(source, line), f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(Location(source), f"invalid YAML: {str(exc).splitlines()[0] if str(exc) else exc!r}") from None
    except RecursionError:
        # PyYAML composes recursively: 100,000 '[' would otherwise be a crash, not an error
        raise ConfigError(Location(source), "invalid YAML: nested too deeply to read (a configuration file "
                                            "nests a few dozen levels at most)") from None


def load_yaml_file(path: str | Path) -> list[Any]:
    """Read and parse a YAML file; an unreadable file is a ``ConfigError`` too."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(Location(str(path)), f"cannot read file: {os_reason(exc)}") from None
    return load_yaml_documents(text, str(path))
