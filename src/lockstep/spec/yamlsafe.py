"""Safe YAML loading that keeps positions: plain data only, bounded in size, depth and nodes.

We compose nodes ourselves from the parser's event stream instead of calling
``yaml.compose``: libyaml's composer recurses in C and crashes the process on deeply nested
input (``"[" * 100_000`` fits in the size cap), and PyYAML's overflows Python's stack. An
iterative composer can stop at the depth limit before reading further.

Scalars are resolved with the YAML 1.2 core schema, not PyYAML's YAML 1.1 rules, so ``no``,
``on`` and ``1:30`` stay strings instead of becoming ``False``, ``True`` and ``90``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    MappingEndEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from lockstep.errors import Diagnostic, SpecError

MAX_BYTES = 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 200

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_T = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = _T + "str", _T + "int", _T + "float", _T + "bool", _T + "null"
SEQ, MAP, MERGE = _T + "seq", _T + "map", _T + "merge"
_SCALAR_TAGS = frozenset({STR, INT, FLOAT, BOOL, NULL})

_NULL_RE = re.compile(r"~|null|Null|NULL|")
_BOOL_RE = re.compile(r"true|True|TRUE|false|False|FALSE")
_INT_RE = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT_RE = re.compile(
    r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)
# characters YAML forbids in a stream; checked up front for a precise position
_FORBIDDEN = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

Position = tuple[int, int]


@dataclass(frozen=True)
class YamlDocument:
    """Plain data plus where each part of it was written (1-based line, column).

    ``positions`` maps a JSON pointer to the position of its mapping key (for mapping
    entries) or of the item (for sequence items): where an error about that entry belongs.
    ``value_positions`` maps the same pointers to where the value itself starts.
    """

    data: Any
    positions: dict[str, Position]
    value_positions: dict[str, Position]


def escape_pointer(key: str) -> str:
    """One RFC 6901 reference token."""
    return key.replace("~", "~0").replace("/", "~1")


def pointer(*parts: str | int) -> str:
    return "".join("/" + escape_pointer(str(part)) for part in parts)


def nearest_position(positions: dict[str, Position], ptr: str) -> Position:
    """Where ``ptr`` was written, or its nearest written parent (a missing key's mapping)."""
    while True:
        found = positions.get(ptr)
        if found is not None:
            return found
        if not ptr:
            return (0, 0)
        ptr = ptr.rsplit("/", 1)[0]


class _Fail(Exception):
    def __init__(self, message: str, mark: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = mark.line + 1 if mark is not None else 0
        self.col = mark.column + 1 if mark is not None else 0


def decode(data: str | bytes, file: str = "<input>", *, max_bytes: int = MAX_BYTES) -> str:
    """The text of ``data``, checked for size (before anything else) and UTF-8."""
    if isinstance(data, str):
        if len(data) > max_bytes:  # every character takes at least one byte
            _raise(file, _too_large(len(data.encode("utf-8", "replace")), max_bytes))
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError as err:
            _raise(file, f"text contains an unencodable character at offset {err.start}")
    else:
        raw = data
    if len(raw) > max_bytes:
        _raise(file, _too_large(len(raw), max_bytes))
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        offset = err.start + (len(data) - len(raw) if isinstance(data, bytes) else 0)
        line = raw.count(b"\n", 0, err.start) + 1
        col = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise SpecError(
            [
                Diagnostic(
                    f"invalid UTF-8 byte 0x{raw[err.start]:02x} at byte offset {offset}; "
                    "save the file as UTF-8",
                    file,
                    line,
                    col,
                )
            ]
        ) from None
    bad = _FORBIDDEN.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        col = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        code = f"U+{ord(bad.group()):04X}"
        raise SpecError(
            [Diagnostic(f"control character {code} is not allowed in YAML", file, line, col)]
        )
    return text


def _too_large(size: int, limit: int) -> str:
    return f"file is too large ({size} bytes; the limit is {limit} bytes)"


def _raise(file: str, message: str) -> Any:
    raise SpecError([Diagnostic(message, file)])


def load_yaml(
    data: str | bytes,
    file: str = "<input>",
    *,
    max_bytes: int = MAX_BYTES,
    max_nodes: int = MAX_NODES,
    max_depth: int = MAX_DEPTH,
) -> YamlDocument:
    """Parse one YAML document into plain data; every problem raises ``SpecError``."""
    return parse_text(
        decode(data, file, max_bytes=max_bytes), file, max_nodes=max_nodes, max_depth=max_depth
    )


def parse_text(
    text: str, file: str = "<input>", *, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH
) -> YamlDocument:
    """Parse already decoded text (see ``decode``)."""
    try:
        root = _compose(text, max_depth, max_nodes)
        converter = _Converter(max_nodes, max_depth)
        if root is None:
            return YamlDocument(None, {"": (1, 1)}, {"": (1, 1)})
        data = converter.convert(root, "", 0)
    except _Fail as err:
        raise SpecError([Diagnostic(err.message, file, err.line, err.col)]) from None
    except RecursionError:  # pragma: no cover - depth is capped first; kept as a backstop
        raise SpecError([Diagnostic("nesting too deep", file)]) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        message = f"invalid YAML: {err.problem or err.context or 'syntax error'}"
        if err.context and err.context_mark and mark and err.context_mark.line != mark.line:
            message += f" ({err.context} at line {err.context_mark.line + 1})"
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise SpecError([Diagnostic(message, file, line, col)]) from None
    except yaml.YAMLError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "syntax error"
        raise SpecError([Diagnostic(f"invalid YAML: {first}", file)]) from None
    start = (root.start_mark.line + 1, root.start_mark.column + 1)
    converter.positions.setdefault("", start)
    converter.values.setdefault("", start)
    return YamlDocument(data, converter.positions, converter.values)


# --------------------------------------------------------------------------- composing


def _compose(text: str, max_depth: int, max_nodes: int) -> Node | None:
    try:
        return _compose_with(_Loader, text, max_depth, max_nodes)
    except yaml.MarkedYAMLError as err:
        # Some libyaml builds refuse deep nesting on their own, in a scanner that reads ahead:
        # the error comes before our depth check saw an event, at another place. Compose the
        # text up to that place with the pure-Python parser, which reaches our limit first.
        mark = err.problem_mark
        if mark is None or "nesting depth" not in str(err.problem) or _Loader is yaml.SafeLoader:
            raise
        try:
            _compose_with(yaml.SafeLoader, text[: mark.index], max_depth, max_nodes)
        except _Fail:
            raise
        except yaml.YAMLError:
            pass
        raise _Fail(f"nesting too deep (more than {max_depth} levels)", mark) from None


def _compose_with(loader_class: Any, text: str, max_depth: int, max_nodes: int) -> Node | None:
    loader = loader_class(text)
    try:
        loader.get_event()  # stream start
        if loader.check_event(StreamEndEvent):
            return None
        loader.get_event()  # document start
        root = _compose_document(loader, max_depth, max_nodes)
        loader.get_event()  # document end
        if not loader.check_event(StreamEndEvent):
            raise _Fail(
                "a workflow file must hold one YAML document; remove the '---' separator",
                loader.peek_event().start_mark,
            )
        return root
    finally:
        loader.dispose()


def _compose_document(loader: Any, max_depth: int, max_nodes: int) -> Node:
    anchors: dict[str, Node] = {}
    # expanded size of each finished node (aliases counted in full), so an alias bomb is
    # refused here in microseconds instead of during expansion
    sizes: dict[int, int] = {}
    # open collections: the node, its anchor, and its children in order
    stack: list[tuple[Node, str | None, list[Node]]] = []
    while True:
        event: Any = loader.get_event()
        # libyaml and PyYAML marks differ in type but not in the fields we read
        start: Any = event.start_mark
        end: Any = event.end_mark
        node: Node
        if isinstance(event, AliasEvent):
            found = anchors.get(str(event.anchor))
            if found is None:
                raise _Fail(
                    f"alias '*{event.anchor}' has no anchor '&{event.anchor}' before it "
                    "(recursive aliases are not allowed)",
                    event.start_mark,
                )
            node = found
        elif isinstance(event, ScalarEvent):
            node = ScalarNode(_scalar_tag(event), event.value, start, end, event.style)
            if event.anchor is not None:
                anchors[event.anchor] = node
        elif isinstance(event, CollectionStartEvent):
            if len(stack) >= max_depth:
                raise _Fail(f"nesting too deep (more than {max_depth} levels)", event.start_mark)
            is_seq = isinstance(event, SequenceStartEvent)
            tag = _collection_tag(event, SEQ if is_seq else MAP)
            cls = SequenceNode if is_seq else MappingNode
            stack.append((cls(tag, [], start, None), event.anchor, []))
            continue
        elif isinstance(event, SequenceEndEvent | MappingEndEvent):
            node, anchor, children = stack.pop()
            if isinstance(node, MappingNode):
                node.value = list(zip(children[0::2], children[1::2], strict=True))
            else:
                node.value = children
            node.end_mark = end
            size = 1 + sum(sizes.get(id(child), 1) for child in children)
            if size > max_nodes:
                raise _Fail(
                    f"too many nodes (alias expansion?); the limit is {max_nodes}",
                    node.start_mark,
                )
            sizes[id(node)] = size
            if anchor is not None:
                anchors[anchor] = node
        else:  # pragma: no cover - the parser emits nothing else inside a document
            raise _Fail(f"unexpected YAML event {type(event).__name__}", event.start_mark)
        if not stack:
            return node
        stack[-1][2].append(node)


def _show_tag(tag: str) -> str:
    return "!!" + tag[len(_T) :] if tag.startswith(_T) else tag


def _not_allowed(tag: str, mark: Any) -> _Fail:
    # `if: !params.deploy` parses as a local tag; say how to keep the '!' as text
    hint = "" if tag.startswith(_T) else "; quote the value if the '!' is part of the text"
    return _Fail(
        f"tag '{_show_tag(tag)}' is not allowed; only plain YAML data "
        f"(strings, numbers, booleans, null, lists, mappings) is accepted{hint}",
        mark,
    )


def _scalar_tag(event: ScalarEvent) -> str:
    tag = event.tag
    if tag is None:
        return _resolve_plain(event.value) if event.implicit[0] else STR
    if tag == "!":  # the non-specific tag: a string
        return STR
    if tag not in _SCALAR_TAGS:
        raise _not_allowed(tag, event.start_mark)
    return str(tag)


def _collection_tag(event: CollectionStartEvent, default: str) -> str:
    tag = event.tag
    if tag is None or tag == "!":
        return default
    if tag != default:
        raise _not_allowed(tag, event.start_mark)
    return default


def _resolve_plain(value: str) -> str:
    if value == "<<":
        return MERGE
    for pattern, tag in ((_NULL_RE, NULL), (_BOOL_RE, BOOL), (_INT_RE, INT), (_FLOAT_RE, FLOAT)):
        if pattern.fullmatch(value):
            return tag
    return STR


def _scalar_value(node: ScalarNode) -> Any:
    tag, text = node.tag, str(node.value)
    if tag == STR:
        return text
    if tag == NULL and _NULL_RE.fullmatch(text):
        return None
    if tag == BOOL and _BOOL_RE.fullmatch(text):
        return text.lower() == "true"
    if tag == INT and _INT_RE.fullmatch(text):
        if text.startswith(("0o", "0x")):
            return int(text[2:], 8 if text[1] == "o" else 16)
        return int(text, 10)
    if tag == FLOAT and (_FLOAT_RE.fullmatch(text) or _INT_RE.fullmatch(text)):
        lowered = text.lower()
        if lowered.endswith(".nan"):
            return math.nan
        if lowered.endswith(".inf"):
            return -math.inf if text.startswith("-") else math.inf
        return float(text)
    kind = {NULL: "null", BOOL: "boolean", INT: "integer", FLOAT: "number"}.get(tag, tag)
    raise _Fail(f"'{text}' is not a valid {kind} for tag '{_show_tag(tag)}'", node.start_mark)


# --------------------------------------------------------------------------- converting


def _pos(node: Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _Converter:
    """Nodes to plain data. Aliases are expanded (so every visit counts toward the node
    cap, which is what stops a billion-laughs document) and depth is checked again, since
    aliases can nest deeper than the text does."""

    def __init__(self, max_nodes: int, max_depth: int) -> None:
        self.max_nodes = max_nodes
        self.max_depth = max_depth
        self.count = 0
        self.positions: dict[str, Position] = {}
        self.values: dict[str, Position] = {}

    def convert(self, node: Node, ptr: str, depth: int) -> Any:
        self.count += 1
        if self.count > self.max_nodes:
            raise _Fail(
                f"too many nodes (alias expansion?); the limit is {self.max_nodes}",
                node.start_mark,
            )
        self.values[ptr] = _pos(node)
        if isinstance(node, ScalarNode):
            if node.tag == MERGE:
                return "<<"  # a '<<' that is not a mapping key is just text
            return _scalar_value(node)
        if depth >= self.max_depth:
            raise _Fail(f"nesting too deep (more than {self.max_depth} levels)", node.start_mark)
        if isinstance(node, SequenceNode):
            items = []
            for index, child in enumerate(node.value):
                child_ptr = f"{ptr}/{index}"
                self.positions[child_ptr] = _pos(child)
                items.append(self.convert(child, child_ptr, depth + 1))
            return items
        if not isinstance(node, MappingNode):  # pragma: no cover - composer makes no others
            raise _Fail("unexpected YAML node", node.start_mark)
        return self._mapping(node, ptr, depth)

    def _mapping(self, node: MappingNode, ptr: str, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == MERGE:
                merges.append(value_node)
                continue
            key = self._key(key_node)
            if key in result:
                raise _Fail(f"duplicate key '{key}'; each key may appear once", key_node.start_mark)
            child_ptr = f"{ptr}/{escape_pointer(key)}"
            self.positions[child_ptr] = _pos(key_node)
            result[key] = self.convert(value_node, child_ptr, depth + 1)
        for merge in merges:
            sources = merge.value if isinstance(merge, SequenceNode) else [merge]
            for source in sources:
                self._merge(result, source, ptr, depth)
        return result

    def _key(self, node: Node) -> str:
        self.count += 1
        if isinstance(node, ScalarNode) and node.tag == STR:
            return str(node.value)
        if isinstance(node, ScalarNode):
            raise _Fail(
                f'mapping key {node.value!r} is not a string; quote it: "{node.value}"',
                node.start_mark,
            )
        raise _Fail("mapping keys must be strings, not lists or mappings", node.start_mark)

    def _merge(self, result: dict[str, Any], source: Node, ptr: str, depth: int) -> None:
        """``<<: *defaults``: copy entries that the mapping does not set itself."""
        if not isinstance(source, MappingNode):
            raise _Fail("'<<' (merge) needs a mapping or a list of mappings", source.start_mark)
        saved = self.positions, self.values
        self.positions, self.values = {}, {}
        try:
            merged = self._mapping(source, ptr, depth)
        finally:
            moved, moved_values = self.positions, self.values
            self.positions, self.values = saved
        for key, value in merged.items():
            if key in result:
                continue
            result[key] = value
            child_ptr = f"{ptr}/{escape_pointer(key)}"
            for table, target in ((moved, self.positions), (moved_values, self.values)):
                for p, pos in table.items():
                    if p == child_ptr or p.startswith(child_ptr + "/"):
                        target[p] = pos
