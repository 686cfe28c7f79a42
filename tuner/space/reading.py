"""YAML read with bounds: a space file, or a command-line value, never expands past what a
space can hold (aliases, self-reference, depth)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tuner.errors import UserError

MAX_YAML_NODES = 100_000  # a space file has a few hundred; aliases may not expand past this
MAX_YAML_DEPTH = 64


class _Loader(yaml.SafeLoader):
    """Numbers as YAML 1.2 reads them, and whoever writes a learning rate or a width. YAML 1.1
    (PyYAML's) reads `1e-4` as text (a number needs a dot and a signed exponent there), `010` as 8
    (octal), `0b11` as 3 and `1:30` as 90 (base 60). Here `010` is 10, `0o10` 8 and `0x10` 16;
    `0b11` and `1:30` are text, refused where a number belongs."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text = str(self.construct_scalar(node)).replace("_", "")
        sign, digits = (-1, text[1:]) if text[0] == "-" else (1, text.lstrip("+"))
        base = {"0o": 8, "0x": 16}.get(digits[:2], 10)
        return sign * int(digits[2:] if base != 10 else digits, base)


_INT, _FLOAT = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_Loader.yaml_implicit_resolvers = {  # SafeLoader's others (booleans, null, ...), without YAML 1.1's numbers
    first: [(tag, rule) for tag, rule in resolvers if tag not in (_INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
# Ints before floats: the float rule also matches "10".
_Loader.add_implicit_resolver(_INT, re.compile(r"^(?:[-+]?[0-9][0-9_]*|0o_*[0-7][0-7_]*|0x_*[0-9a-fA-F][0-9a-fA-F_]*)$"),
                              list("-+0123456789"))
_Loader.add_implicit_resolver(
    _FLOAT, re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?"
                       r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+0123456789."))
_Loader.add_constructor(_INT, _Loader.construct_yaml_int)


def safe_yaml(text: str, source: str) -> Any:
    """`yaml.safe_load`, bounded: a document whose aliases would expand past MAX_YAML_NODES
    nodes (a 'billion laughs' file of 466 bytes holds 10^9), that refers to itself or that nests
    past MAX_YAML_DEPTH levels is one line, before it is built."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, source, {}, set(), 0)
        return loader.construct_document(node)
    except RecursionError:
        raise UserError(f"{source}: YAML nested too deeply") from None
    except ValueError as e:  # Python's bound on a number's digits (4,300) when YAML builds an int
        if "limit" not in str(e):
            raise
        raise UserError(f"{source}: a number too long to read ({str(e).split(';')[0]})") from None
    finally:
        loader.dispose()


def _expanded_size(node: Any, source: str, sizes: dict[int, int], open_nodes: set[int], depth: int) -> int:
    if id(node) in sizes:
        return sizes[id(node)]
    if id(node) in open_nodes:
        raise UserError(f"{source}: a YAML alias refers to itself")
    if depth > MAX_YAML_DEPTH:
        raise UserError(f"{source}: YAML nested more than {MAX_YAML_DEPTH} levels")
    open_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        _no_repeated_key(node, source)
    children = node.value if isinstance(node, yaml.SequenceNode) else (
        [part for pair in node.value for part in pair] if isinstance(node, yaml.MappingNode) else [])
    size = 1 + sum(_expanded_size(child, source, sizes, open_nodes, depth + 1) for child in children)
    if size > MAX_YAML_NODES:
        raise UserError(f"{source}: YAML expands to more than {MAX_YAML_NODES} values (aliases?); refused")
    open_nodes.discard(id(node))
    sizes[id(node)] = size
    return size


def _no_repeated_key(node: Any, source: str) -> None:
    """YAML lets a key's second value silently replace its first (a second `name:` renames the study)."""
    seen: set[str] = set()
    for key, _ in node.value:
        if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
            if key.value in seen:
                raise UserError(f"{source}: line {key.start_mark.line + 1}: '{key.value}' is given twice in one "
                                f"mapping (the second would silently replace the first)")
            seen.add(key.value)


def parse_value(text: str, what: str = "value") -> Any:
    """A command-line value with YAML typing, plus what YAML 1.1 leaves as text: '5e-4' is 0.0005."""
    try:
        value = safe_yaml(text, what)
    except yaml.YAMLError as e:
        raise UserError(f"{what}: cannot read {text!r} ({getattr(e, 'problem', None) or type(e).__name__})") from None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value
