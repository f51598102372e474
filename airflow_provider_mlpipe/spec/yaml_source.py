"""Reading a spec's YAML: PyYAML's safe loader, keeping the line of every mapping, key and list item.

libyaml (PyYAML's C extension) scans, parses and composes the node graph; the nodes become Python
values here, in one walk that also records lines (1-based, as editors count). The walk builds plain
strings, numbers, booleans and nulls itself and hands every other scalar tag to PyYAML's own safe
constructor, so what is refused (Python tags) and how tagged values read is PyYAML's decision.

- Booleans are YAML 1.2's ``true``/``false`` only: YAML 1.1 would also read ``yes``, ``no``, ``on``
  and ``off`` as booleans, which turns ``join: {on: " "}`` and a step called ``no`` into ``True`` and
  ``False``.
- Numbers like ``1e-3`` are floats, as in YAML 1.2 (YAML 1.1 wants ``1.0e-3``).
- A key written twice is refused (PyYAML would keep the last value); merge keys (``<<: *base``) work.
- An alias is the same Python object as its anchor, so a spec with anchors stays as small in memory
  as in YAML (alias bombs are stopped later, when values are read: see ``expressions.MAX_VALUES``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import yaml

from airflow_provider_mlpipe.exceptions import SpecError

try:  # libyaml parses several times faster; the construction, and so the safety, is the same
    from yaml import CSafeLoader as _SafeBase
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _SafeBase  # type: ignore[assignment]

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"


class YamlMap(dict[Any, Any]):
    """A YAML mapping that remembers its own line and the line of each key (1-based)."""

    __slots__ = ("key_lines", "line")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[Any, int] = {}


class YamlSeq(list[Any]):
    """A YAML sequence that remembers its own line and the line of each item (1-based)."""

    __slots__ = ("item_lines", "line")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []


class _SpecLoader(_SafeBase):
    """PyYAML's safe loader with YAML 1.2 booleans and exponent floats (see the module docstring).

    The parser asks the resolver for the tag of every scalar; a spec repeats the same few words
    (keys, step kinds, output names) many times, so plain scalars are resolved once per distinct
    value. Path resolvers are not used, so their per-node bookkeeping is skipped.
    """

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode and implicit[0]:
            return _plain_scalar_tag(value)
        return str(_SafeBase.resolve(self, kind, value, implicit))


_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
    for first, resolvers in _SafeBase.yaml_implicit_resolvers.items()
}
_SpecLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_SpecLoader.add_implicit_resolver(
    _FLOAT, re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"), list("-+0123456789")
)


@lru_cache(maxsize=4096)
def _plain_scalar_tag(value: str) -> str:
    """The tag of a plain (unquoted) scalar, by the implicit resolvers above (PyYAML's own rule)."""
    if value == "":
        resolvers = _SpecLoader.yaml_implicit_resolvers.get("", [])
    else:
        resolvers = _SpecLoader.yaml_implicit_resolvers.get(value[0], [])
    wildcard = _SpecLoader.yaml_implicit_resolvers.get(None, [])
    for tag, regexp in resolvers + wildcard:
        if regexp.match(value):
            return str(tag)
    return _STR


class _Builder:
    """Turns a composed node graph into :class:`YamlMap` / :class:`YamlSeq` and scalars."""

    def __init__(self, loader: _SpecLoader) -> None:
        self.loader = loader
        self.built: dict[int, Any] = {}  # node id -> value: an alias is its anchor's value
        self.scalars = {
            _INT: loader.construct_yaml_int,
            _FLOAT: loader.construct_yaml_float,
            _BOOL: loader.construct_yaml_bool,
        }

    def build(self, node: yaml.Node) -> Any:
        if type(node) is yaml.ScalarNode:  # immutable: an alias of a scalar needs no identity
            return node.value if node.tag == _STR else self.scalar(node)
        known = self.built.get(id(node))
        if known is not None or id(node) in self.built:
            return known
        value: Any
        if isinstance(node, yaml.MappingNode) and node.tag == _MAP:
            value = self.mapping(node)
        elif isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
            value = self.sequence(node)
        else:  # !!set, !!omap, !!pairs, or a tag the safe loader refuses
            value = self.loader.construct_object(node, deep=True)
        self.built[id(node)] = value
        return value

    def scalar(self, node: yaml.ScalarNode) -> Any:
        tag = node.tag
        if tag == _STR:
            return node.value
        if tag == _NULL:
            return None
        construct = self.scalars.get(tag)
        if construct is not None:
            return construct(node)
        return self.loader.construct_object(node, deep=True)  # !!binary, !!timestamp, or refused

    def mapping(self, node: yaml.MappingNode) -> YamlMap:
        _check_unique_keys(node)
        if any(key.tag == _MERGE for key, _ in node.value):
            self.loader.flatten_mapping(node)  # merge keys; later keys override merged ones
        mapping = YamlMap(node.start_mark.line + 1)
        self.built[id(node)] = mapping  # before the items: an alias to it inside itself resolves
        for key_node, value_node in node.value:
            key = self.build(key_node)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a scalar", key_node.start_mark
                ) from None
            mapping[key] = self.build(value_node)
            mapping.key_lines[key] = key_node.start_mark.line + 1
        return mapping

    def sequence(self, node: yaml.SequenceNode) -> YamlSeq:
        sequence = YamlSeq(node.start_mark.line + 1)
        self.built[id(node)] = sequence
        sequence.extend(self.build(child) for child in node.value)
        sequence.item_lines.extend(child.start_mark.line + 1 for child in node.value)
        return sequence


def _check_unique_keys(node: yaml.MappingNode) -> None:
    """Refuse a key written twice: PyYAML would silently keep the last value."""
    seen: dict[tuple[str, str], int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE:
            continue
        identity = (key_node.tag, key_node.value)
        if identity in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key_node.value!r} (first on line {seen[identity]})",
                key_node.start_mark,
            )
        seen[identity] = key_node.start_mark.line + 1


def read_yaml(text: str, file: str) -> Any:
    """Parse ``text`` into values that know their lines; YAML errors become :class:`SpecError`.

    :param text: the spec.
    :param file: how errors name the spec.
    """
    loader = _SpecLoader(text)
    try:
        node = loader.get_single_node()
        return None if node is None else _Builder(loader).build(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        what = "; ".join(str(part) for part in (error.context, error.problem) if part)
        raise SpecError(
            f"invalid YAML: {what}",
            file=file,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,  # 1-based, as PyYAML prints it
        ) from None
    except yaml.YAMLError as error:
        raise SpecError(f"invalid YAML: {error}", file=file) from None
    except RecursionError:
        raise SpecError("invalid YAML: nested too deeply", file=file) from None
    finally:
        loader.dispose()


def line_of_key(container: Any, key: Any, default: int | None = None) -> int | None:
    """The line of ``key`` in a loaded mapping, else of the mapping, else ``default``."""
    lines = getattr(container, "key_lines", {})
    return lines.get(key) or getattr(container, "line", None) or default


def line_of_item(container: Any, index: int, default: int | None = None) -> int | None:
    """The line of item ``index`` of a loaded list, else of the list, else ``default``."""
    lines = getattr(container, "item_lines", [])
    return (lines[index] if index < len(lines) else None) or getattr(container, "line", None) or default
