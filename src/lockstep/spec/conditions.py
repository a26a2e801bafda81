"""Whether a condition is visibly boolean, so a non-boolean ``if`` is caught at validation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lockstep.spec.expressions import references, tokenize

_BOOL_OPS = frozenset({"==", "!=", "<", "<=", ">", ">=", "&&", "||"})
_BOOL_METHODS = frozenset(
    {"startsWith", "endsWith", "contains", "matches", "exists", "all", "exists_one", "has"}
    | {"bool"}
)


def is_boolean(src: str, declared_boolean: Callable[[tuple[str, ...]], bool]) -> bool:
    """Whether ``src`` is visibly boolean: a literal, a comparison or logical operator at
    the top level, a boolean method, or a reference to something declared boolean."""
    tokens = tokenize(src)
    while len(tokens) >= 2 and tokens[0].value == "(" and _matching(tokens, 0) == len(tokens) - 1:
        tokens = tokens[1:-1]
    if not tokens:
        return False
    if len(tokens) == 1 and tokens[0].kind == "ident":
        return tokens[0].value in ("true", "false")
    if tokens[0].kind == "op" and tokens[0].value == "!":
        return True
    depth = 0
    for tok in tokens:
        if tok.kind == "op" and tok.value in "([{":
            depth += 1
        elif tok.kind == "op" and tok.value in ")]}":
            depth -= 1
        elif depth == 0 and (
            (tok.kind == "op" and tok.value in _BOOL_OPS)
            or (tok.kind == "ident" and tok.value == "in")
        ):
            return True
    last = tokens[-1]
    if last.kind == "op" and last.value == ")":
        opening = _opening(tokens, len(tokens) - 1)
        return opening > 0 and tokens[opening - 1].value in _BOOL_METHODS
    if all(t.kind != "op" or t.value in ".[]" for t in tokens):
        chains = references(src)
        return len(chains) == 1 and declared_boolean(chains[0])
    return False


def _matching(tokens: list[Any], start: int) -> int:
    depth = 0
    for i in range(start, len(tokens)):
        if tokens[i].kind == "op" and tokens[i].value in "([{":
            depth += 1
        elif tokens[i].kind == "op" and tokens[i].value in ")]}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _opening(tokens: list[Any], end: int) -> int:
    depth = 0
    for i in range(end, -1, -1):
        if tokens[i].kind == "op" and tokens[i].value in ")]}":
            depth += 1
        elif tokens[i].kind == "op" and tokens[i].value in "([{":
            depth -= 1
            if depth == 0:
                return i
    return -1
