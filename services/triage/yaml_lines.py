"""Configuration files read as YAML node trees, so every complaint names its file and line.

PyYAML's loaders return plain dicts and lists that forget where each value was written, and
silently keep the last of two duplicate keys. Composing the file into nodes instead keeps each
value's position (`start_mark`), and composing never builds Python objects from tags, so it is as
safe as `yaml.safe_load`."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

NULL_TAG = "tag:yaml.org,2002:null"
BOOL_TAG = "tag:yaml.org,2002:bool"

Choice = TypeVar("Choice", bound=str)


@dataclass(frozen=True)
class YamlFile:
    """One configuration file; its problems raise `error` with '<file>:<line>: <what is wrong>'."""

    path: Path
    error: type[ValueError]

    def root(self) -> MappingNode:
        """The file's top-level mapping."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeError) as exc:
            raise self.error(f"{self.path}: cannot read it: {exc}") from None
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else 1
            problem = ", ".join(part for part in (exc.context, exc.problem) if part)
            raise self.error(f"{self.path}:{line}: not valid YAML: {problem}") from None
        except ReaderError as exc:  # a character YAML does not allow
            line = text.count("\n", 0, exc.position) + 1
            raise self.error(f"{self.path}:{line}: not valid YAML: {exc.reason}") from None
        if node is None:
            raise self.error(f"{self.path}:1: the file is empty")
        if not isinstance(node, MappingNode):
            self.fail(node, "the file must be a mapping of names to values")
        return node

    def fail(self, node: Node, message: str) -> NoReturn:
        raise self.error(f"{self.path}:{node.start_mark.line + 1}: {message}")

    def mapping(
        self, node: Node, what: str, *, required: Collection[str], optional: Collection[str] = ()
    ) -> dict[str, Node]:
        """The mapping's values by key; a missing, unknown or repeated key is an error, so a typo
        cannot pass for a key that was simply left out."""
        allowed = [*required, *optional]
        if not isinstance(node, MappingNode):
            self.fail(node, f"{what} must be a mapping with the keys {', '.join(allowed)}")
        values: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = self.text(key_node, f"a key in {what}")
            name = f"{what}.{key}" if what else key
            if key not in allowed:
                self.fail(key_node, f"unknown key {name}: expected one of {', '.join(allowed)}")
            if key in values:
                self.fail(key_node, f"{name} is given twice")
            values[key] = value_node
        missing = [key for key in required if key not in values]
        if missing:
            self.fail(node, f"{what or 'the file'} is missing {', '.join(missing)}")
        return values

    def sequence(self, node: Node, what: str) -> list[Node]:
        if not isinstance(node, SequenceNode):
            self.fail(node, f"{what} must be a list")
        return list(node.value)

    def text(self, node: Node, what: str) -> str:
        """A scalar as written (an empty value is ''), whatever type YAML would give it."""
        if not isinstance(node, ScalarNode):
            self.fail(node, f"{what} must be a single value, not a list or mapping")
        if "\x00" in str(node.value):  # PostgreSQL refuses NUL in text: refuse it here, at start
            self.fail(node, f"{what} must not contain NUL characters")
        return "" if node.tag == NULL_TAG else str(node.value)

    def boolean(self, node: Node, what: str) -> bool:
        if not isinstance(node, ScalarNode) or node.tag != BOOL_TAG:
            self.fail(node, f"{what} must be true or false")
        return str(node.value).lower() in ("true", "yes", "on")

    def choice(self, node: Node, what: str, options: Sequence[Choice]) -> Choice:
        value = self.text(node, what)
        for option in options:
            if value == option:
                return option
        self.fail(node, f"{what} must be one of {', '.join(options)}, not {value!r}")
