"""``${{ … }}`` templates holding CEL expressions: finding, compiling, analysing, evaluating.

This module is imported inside the Temporal workflow sandbox, so it stays pure: no I/O, no
clock, no randomness, and no global state except the compile cache (whose content is a pure
function of its key, so it cannot make a replay diverge).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from lockstep.errors import InvalidRequest
from lockstep.spec._cel import cel

#: names an expression may start with; ``item``, ``index`` and ``secrets`` are reserved
ROOTS = frozenset({"params", "steps", "run", "env", "item", "index", "secrets", "resources"})

OPEN = "${{"
CLOSE = "}}"

#: macros whose first argument is a new variable, not a reference
_MACROS = frozenset({"all", "exists", "exists_one", "existsOne", "filter", "map"})
_KEYWORDS = frozenset(
    {"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for"}
    | {"function", "if", "import", "let", "loop", "package", "namespace", "return", "var"}
    | {"void", "while"}
)
_STRING_PREFIXES = frozenset({"r", "b", "rb", "br"})
_OPERATORS = frozenset({"==", "!=", "<=", ">=", "&&", "||"})
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+[uU]?|\d*\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\d+[uU]?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "`": "`", "?": "?"}


class ExpressionError(InvalidRequest):
    """An expression is malformed or failed to evaluate. ``offset`` locates it in its text.
    The workflow's author wrote it: a request to fix (HTTP 400, exit 2)."""

    kind = "expression"

    def __init__(self, message: str, *, expression: str = "", offset: int | None = None) -> None:
        super().__init__(message)
        self.expression = expression
        self.offset = offset


@dataclass(frozen=True)
class Template:
    """One ``${{ source }}`` in a string: ``text[start:end]`` is the whole template."""

    start: int
    end: int
    source: str


@dataclass(frozen=True)
class Token:
    kind: str  # "ident", "string", "number", "op"
    value: str  # the identifier, the decoded string, the number text or the operator
    start: int
    end: int


# --------------------------------------------------------------------------- tokenizer


def _tokens(text: str, pos: int = 0) -> Iterator[Token]:
    """CEL tokens from ``pos``; lazy so template scanning stops at the closing ``}}``.

    Malformed input is tolerated where the CEL compiler will report it better; only an
    unterminated string is fatal, because it hides where the expression ends.
    """
    n = len(text)
    prev_operand = False  # a '.' after an operand is member access, else it may start a number
    while pos < n:
        ch = text[pos]
        if ch.isspace():
            pos += 1
            continue
        if text.startswith("//", pos):
            newline = text.find("\n", pos)
            pos = n if newline < 0 else newline + 1
            continue
        if ch in "'\"":
            token = _string(text, pos, pos, raw=False)
            yield token
            pos, prev_operand = token.end, True
            continue
        ident = _IDENT.match(text, pos)
        if ident:
            word = ident.group()
            end = ident.end()
            if word.lower() in _STRING_PREFIXES and end < n and text[end] in "'\"":
                token = _string(text, pos, end, raw="r" in word.lower())
            else:
                token = Token("ident", word, pos, end)
            yield token
            pos, prev_operand = token.end, True
            continue
        number = _NUMBER.match(text, pos)
        if number and (ch != "." or not prev_operand):
            yield Token("number", number.group(), pos, number.end())
            pos, prev_operand = number.end(), True
            continue
        pair = text[pos : pos + 2]
        op = pair if pair in _OPERATORS else ch
        yield Token("op", op, pos, pos + len(op))
        pos += len(op)
        prev_operand = op in ")]}"


def _string(text: str, start: int, quote_at: int, *, raw: bool) -> Token:
    quote = text[quote_at]
    delim = quote * 3 if text.startswith(quote * 3, quote_at) else quote
    pos = quote_at + len(delim)
    out: list[str] = []
    n = len(text)
    while pos < n:
        if text.startswith(delim, pos):
            return Token("string", "".join(out), start, pos + len(delim))
        ch = text[pos]
        if len(delim) == 1 and ch == "\n":
            break
        if ch == "\\" and not raw and pos + 1 < n:
            out.append(_ESCAPES.get(text[pos + 1], text[pos + 1]))
            pos += 2
            continue
        out.append(ch)
        pos += 1
    raise ExpressionError(
        f"unterminated string literal in expression starting {text[start : start + 20]!r}",
        offset=start,
    )


# --------------------------------------------------------------------------- templates


def find_templates(text: str) -> list[Template]:
    """Every ``${{ … }}`` in ``text``, in order. A ``}}`` inside a CEL string or map literal
    does not end the template; an unterminated ``${{`` raises ``ExpressionError``."""
    found: list[Template] = []
    pos = text.find(OPEN)
    while pos >= 0:
        body = pos + len(OPEN)
        depth = 0
        end = -1
        try:
            for token in _tokens(text, body):
                if token.kind != "op":
                    continue
                if token.value in "([{":
                    depth += 1
                elif token.value in ")]" and depth > 0:
                    depth -= 1
                elif token.value == "}":
                    if depth == 0 and text.startswith(CLOSE, token.start):
                        end = token.start
                        break
                    depth = max(depth - 1, 0)
        except ExpressionError as err:
            raise ExpressionError(
                f"{err.message} (in the expression at offset {pos})", offset=pos
            ) from None
        if end < 0:
            raise ExpressionError(
                f"unterminated '{OPEN}' at offset {pos}; close it with '{CLOSE}'", offset=pos
            )
        found.append(Template(pos, end + len(CLOSE), text[body:end].strip()))
        pos = text.find(OPEN, end + len(CLOSE))
    return found


def whole_template(text: str) -> Template | None:
    """The template if ``text`` is exactly one ``${{ }}`` (whitespace around allowed)."""
    if OPEN not in text:
        return None
    templates = find_templates(text)
    if len(templates) != 1:
        return None
    only = templates[0]
    if text[: only.start].strip() or text[only.end :].strip():
        return None
    return only


def condition_source(value: str | bool | None) -> str | None:
    """The CEL source of a step's ``if``: ``None`` means always run.

    ``if`` may be a YAML boolean, a bare CEL string, or one ``${{ }}`` template.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if OPEN not in value:
        return value.strip()
    only = whole_template(value)
    if only is None:
        raise ExpressionError(
            "'if' must be a single expression, e.g. ${{ params.deploy == true }}",
            expression=value,
        )
    return only.source


# --------------------------------------------------------------------------- analysis


def references(src: str) -> list[tuple[str, ...]]:
    """Member chains the expression reads, e.g. ``("steps", "prepare", "outputs", "seed")``.

    A chain stops at a method call or at an index that is not a string literal. Function
    names and variables bound by comprehension macros are not references.
    """
    return [ref.chain for ref in reference_spans(src)]


@dataclass(frozen=True)
class Reference:
    """A member chain and where it is written: ``src[start:ends[k]]`` reads ``chain[: k + 1]``."""

    chain: tuple[str, ...]
    start: int
    ends: tuple[int, ...]


def reference_spans(src: str) -> list[Reference]:
    """``references`` with their offsets in ``src``, for rewriting an expression."""
    tokens = list(_tokens(src))
    chains: list[Reference] = []
    # (paren depth at which the macro's scope closes, the variable it binds)
    scopes: list[tuple[int, str]] = []
    depth = 0
    i = 0
    n = len(tokens)

    def op_at(k: int, value: str) -> bool:
        return k < n and tokens[k].kind == "op" and tokens[k].value == value

    while i < n:
        tok = tokens[i]
        if tok.kind == "op":
            if tok.value == "(":
                depth += 1
            elif tok.value == ")":
                while scopes and scopes[-1][0] == depth:
                    scopes.pop()
                depth -= 1
            i += 1
            continue
        if tok.kind != "ident" or tok.value in _KEYWORDS:
            i += 1
            continue
        after_dot = op_at(i - 1, ".") and i >= 2 and _is_operand(tokens[i - 2])
        if after_dot:
            # a member name or a method; a macro opens a scope for its bound variable
            if tok.value in _MACROS and op_at(i + 1, "(") and _bound_var(tokens, i + 2):
                scopes.append((depth + 1, tokens[i + 2].value))
            i += 1
            continue
        if op_at(i + 1, "(") or op_at(i + 1, "{"):  # function call or message construction
            i += 1
            continue
        if any(name == tok.value for _, name in scopes):
            i += 1
            continue
        chain, ends, start = [tok.value], [tok.end], tok.start
        i += 1
        while i < n:
            if op_at(i, ".") and i + 1 < n and tokens[i + 1].kind == "ident":
                if op_at(i + 2, "("):
                    break  # method call: the chain ends at its receiver
                chain.append(tokens[i + 1].value)
                ends.append(tokens[i + 1].end)
                i += 2
            elif op_at(i, "[") and i + 2 < n and tokens[i + 1].kind == "string":
                if not op_at(i + 2, "]"):
                    break
                chain.append(tokens[i + 1].value)
                ends.append(tokens[i + 2].end)
                i += 3
            else:
                break
        chains.append(Reference(tuple(chain), start, tuple(ends)))
    return chains


def _is_operand(token: Token) -> bool:
    return token.kind != "op" or token.value in ")]}"


def _bound_var(tokens: list[Token], k: int) -> bool:
    return (
        k + 1 < len(tokens)
        and tokens[k].kind == "ident"
        and tokens[k + 1].kind == "op"
        and tokens[k + 1].value == ","
    )


def tokenize(src: str) -> list[Token]:
    """The CEL tokens of ``src`` (for shape checks such as "is this boolean")."""
    return list(_tokens(src))


def dashed_output(src: str) -> tuple[str, str] | None:
    """``(name, fixed)`` when ``src`` reads an output named with '-' as a member, e.g.
    ``steps.a.outputs.hello-param`` (CEL reads ``hello - param``): ``fixed`` is ``src`` with
    ``outputs['hello-param']`` instead."""
    tokens = tokenize(src)
    for i in range(2, len(tokens) - 2):
        dot, name = tokens[i - 1], tokens[i]
        if not (
            tokens[i - 2].value == "outputs"
            and dot.value == "."
            and name.kind == "ident"
            and tokens[i + 1].value == "-"
            and tokens[i + 1].start == name.end
        ):
            continue
        end = name.end
        k = i + 1
        while (
            k + 1 < len(tokens)
            and tokens[k].value == "-"
            and tokens[k].start == end
            and tokens[k + 1].kind in ("ident", "number")
            and tokens[k + 1].start == tokens[k].end
        ):
            end = tokens[k + 1].end
            k += 2
        if end == name.end:
            continue
        dashed = src[name.start : end]
        return dashed, f"{src[: dot.start]}['{dashed}']{src[end:]}"
    return None


# --------------------------------------------------------------------------- evaluation


@functools.lru_cache(maxsize=2048)
def _compile(src: str) -> Any:
    return cel.compile(src)


def compile_expression(src: str) -> Any:
    """A compiled CEL program for ``src``; syntax errors raise ``ExpressionError``."""
    try:
        return _compile(src)
    except ValueError as err:
        raise ExpressionError(
            f"invalid expression '{src}': {condense_cel_error(str(err))}", expression=src
        ) from None


def condense_cel_error(message: str) -> str:
    """One line out of CEL's multi-line parser report."""
    match = re.search(r"ERROR: <input>:(\d+):(\d+): (?:Syntax error: )?([^\n]*)", message)
    if not match:
        return _first_sentence(message)
    line, col, detail = match.groups()
    detail = re.sub(r"\s*expecting \{.*$", "", detail).strip()
    detail = detail.replace("mismatched input '<EOF>'", "unexpected end of expression")
    detail = detail.replace("extraneous input '<EOF>'", "unexpected end of expression")
    where = f"column {col}" if line == "1" else f"line {line}, column {col}"
    return f"{detail} at {where}"


def _first_sentence(message: str) -> str:
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    first = first.split(". ")[0].rstrip(".")
    return first[:1].lower() + first[1:]


@functools.lru_cache(maxsize=2048)
def _reads(src: str) -> tuple[frozenset[str], frozenset[str] | None]:
    """The roots ``src`` reads, and the step ids it reads (None: ``steps`` as a whole)."""
    chains = references(src)
    roots = frozenset(c[0] for c in chains)
    if any(c == ("steps",) for c in chains):
        return roots, None
    return roots, frozenset(c[1] for c in chains if c[0] == "steps")


def narrowed(src: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """Only the variables ``src`` reads: CEL converts every value it is given, and a fan-out
    evaluates its items' expressions thousands of times next to large upstream outputs."""
    roots, step_ids = _reads(src)
    narrow = {k: v for k, v in context.items() if k in roots}
    steps = narrow.get("steps")
    if step_ids is not None and isinstance(steps, Mapping):
        narrow["steps"] = {k: v for k, v in steps.items() if k in step_ids}
    return narrow


def evaluate(src: str, context: Mapping[str, Any]) -> Any:
    """The value of CEL ``src`` with ``context`` as its variables."""
    program = compile_expression(src)
    try:
        return program.execute(narrowed(src, context))
    except KeyError as err:
        detail = f"no such key {err.args[0]!r}" if err.args else "no such key"
    except Exception as err:  # the cel binding raises several types; all mean "failed"
        text = str(err)
        if text.startswith("No such overload"):
            detail = "no such overload (CEL does not convert types; use int(), double(), string())"
        else:
            detail = _first_sentence(text)
            detail = re.sub(r"^undefined variable or function: ", "undefined name ", detail)
    raise ExpressionError(f"expression '{src}': {detail}", expression=src)


def render(template: str, context: Mapping[str, Any]) -> Any:
    """Evaluate the templates in ``template``. Exactly one template (whitespace around
    allowed) yields its typed value; otherwise the results are interpolated as text."""
    if OPEN not in template:
        return template
    templates = find_templates(template)
    if len(templates) == 1:
        only = templates[0]
        if not template[: only.start].strip() and not template[only.end :].strip():
            return evaluate(only.source, context)
    parts: list[str] = []
    pos = 0
    for t in templates:
        parts.append(template[pos : t.start])
        parts.append(to_text(evaluate(t.source, context)))
        pos = t.end
    parts.append(template[pos:])
    return "".join(parts)


def to_text(value: Any) -> str:
    """How a value appears inside a string, an env var or an argv item."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list | tuple | dict):
        return json.dumps(
            value, sort_keys=False, ensure_ascii=False, separators=(",", ":"), default=str
        )
    return str(value)


_SECRET_REF = re.compile(r"^\s*\$\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\s*$")


def secret_reference(value: object) -> str | None:
    """The secret NAME when ``value`` is exactly ``${{ secrets.NAME }}``, else None.

    Secrets are only ever whole env values: the engine carries the name, the worker puts the
    value into the step's environment, and no expression ever sees it.
    """
    if not isinstance(value, str) or "secrets" not in value:
        return None
    match = _SECRET_REF.match(value)
    return match.group(1) if match else None
