"""Typed reading of marked YAML values with precise errors.

``Node`` wraps one value with its file, line and key path. Accessors check the type and
raise ``ConfigError`` naming all three, what was expected and what was found, so parsers
read like the schema they implement:

>>> from strangler_common.yamlio import load_yaml_documents
>>> root = Node.root(load_yaml_documents("port: eighty\\n", "a.yaml")[0], "a.yaml")
>>> root.mapping({"port"})["port"].integer()
Traceback (most recent call last):
...
strangler_common.errors.ConfigError: a.yaml:1: port: expected an integer, found str 'eighty'
"""

from __future__ import annotations

import math

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

from strangler_common.errors import ConfigError, Location
from strangler_common.yamlio import MarkedList, MarkedMap, file_of, line_of


def _describe(value: object) -> str:
    if value is None:
        return "nothing"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


@dataclass(frozen=True, slots=True)
class Node:
    value: Any
    file: str
    path: str
    line: int | None

    @classmethod
    def root(cls, value: Any, file: str) -> Node:
        return cls(value, file, "", getattr(value, "line", 1))

    @property
    def location(self) -> Location:
        return Location(self.file, self.line, self.path or "(top level)")

    def fail(self, message: str) -> NoReturn:
        raise ConfigError(self.location, message)

    def expected(self, what: str) -> NoReturn:
        self.fail(f"expected {what}, found {_describe(self.value)}")

    def _child(self, key: str | int, value: Any) -> Node:
        parent = self.value
        cls = parent.__class__
        # the common cases, a key or item of one file's container, without the general look-ups
        vcls = value.__class__
        own = value.file if vcls is MarkedMap or vcls is MarkedList else None
        if isinstance(key, int):
            path = f"{self.path}[{key}]"
            if cls is MarkedList and not parent.item_files:
                items = getattr(parent, "item_lines", None)
                line = items[key] if items is not None and 0 <= key < len(items) else parent.line
                return Node(value, own or parent.file or self.file, path, line if line is not None else self.line)
        else:
            path = f"{self.path}.{key}" if self.path else key
            if cls is MarkedMap and not parent.key_files:
                lines = getattr(parent, "key_lines", None)
                line = lines.get(key) if lines is not None else None
                if line is None:
                    line = parent.line
                return Node(value, own or parent.file or self.file, path, line if line is not None else self.line)
        line = line_of(parent, key)
        return Node(value, file_of(parent, key, value) or self.file, path, line if line is not None else self.line)

    # -- containers -------------------------------------------------------------------
    def mapping(self, allowed: Collection[str] | None = None, what: str = "a mapping") -> dict[str, Node]:
        """The children of a mapping; keys outside ``allowed`` are an error."""
        if not isinstance(self.value, dict):
            self.expected(what)
        out: dict[str, Node] = {}
        for key, value in self.value.items():
            child = self._child(str(key), value)
            if not isinstance(key, str):
                child.fail(f"expected a string key, found {_describe(key)}")
            if allowed is not None and key not in allowed and not key.startswith("x-"):
                choices = ", ".join(sorted(allowed))
                child.fail(f"unknown key {key!r}; expected one of: {choices}")
            out[key] = child
        return out

    def items(self) -> Iterator[tuple[str, Node]]:
        return iter(self.mapping().items())

    def sequence(self, what: str = "a list") -> list[Node]:
        if not isinstance(self.value, list):
            self.expected(what)
        return [self._child(i, v) for i, v in enumerate(self.value)]

    def sequence_or_one(self) -> list[Node]:
        """A list, or a single scalar taken as a list of one (``path_prefix: /cases``)."""
        if isinstance(self.value, list):
            return self.sequence()
        return [self]

    # -- scalars ----------------------------------------------------------------------
    def string(self, what: str = "a string") -> str:
        if not isinstance(self.value, str) or not self.value:
            self.expected(what)
        return self.value

    def scalar_text(self) -> str:
        """A string, number or boolean as text (environment values, labels)."""
        if isinstance(self.value, bool):
            return "true" if self.value else "false"
        if isinstance(self.value, (str, int, float)):
            return str(self.value)
        if self.value is None:
            return ""
        self.expected("a string, number or boolean")

    def integer(self, minimum: int | None = None, maximum: int | None = None) -> int:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            self.expected("an integer")
        self._bounds(self.value, minimum, maximum)
        return self.value

    def number(self, minimum: float | None = None, maximum: float | None = None) -> float:
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)) or not math.isfinite(self.value):
            self.expected("a number")
        self._bounds(self.value, minimum, maximum)
        return float(self.value)

    def boolean(self) -> bool:
        if not isinstance(self.value, bool):
            self.expected("true or false")
        return self.value

    def choice(self, choices: Collection[str]) -> str:
        if not isinstance(self.value, str) or self.value not in choices:
            self.expected("one of " + ", ".join(sorted(choices)))
        return self.value

    def _bounds(self, value: float, minimum: float | None, maximum: float | None) -> None:
        if minimum is not None and value < minimum or maximum is not None and value > maximum:
            lo = "" if minimum is None else f"{minimum:g}"
            hi = "" if maximum is None else f"{maximum:g}"
            rng = f"from {lo} to {hi}" if lo and hi else (f"at least {lo}" if lo else f"at most {hi}")
            self.fail(f"expected a number {rng}, found {value!r}")
