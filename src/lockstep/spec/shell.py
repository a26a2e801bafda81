"""Make ``run:`` scripts safe: every ``${{ expr }}`` becomes an environment-variable reference.

The engine sets ``LOCKSTEP_EXPR_<n>`` to the evaluated text, so a user value reaches bash as
data and never as syntax. The right reference depends on the bash quoting context at the
template, which a small lexer tracks: unquoted words get ``"${VAR}"`` (no splitting or
globbing), double quotes and expanding here-documents get ``${VAR}``, and contexts where bash
would not expand a variable (single quotes, ``$'…'``, quoted here-documents, comments) are
errors, because silently printing the variable name would be worse.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lockstep.spec.expressions import Template, find_templates

VAR_PREFIX = "LOCKSTEP_EXPR_"

# frame kinds
_CODE = "code"  # top level, $( ), ` `, <( ): unquoted command text
_DQ = "dq"
_SQ = "sq"
_ANSI = "ansi"
_PARAM = "param"  # ${ … }
_ARITH = "arith"  # $(( … )) and (( … ))
_HEREDOC = "heredoc"
_COMMENT = "comment"

_WORD_BREAK = frozenset(" \t\n;&|()<>")


@dataclass(frozen=True)
class ShellTemplate:
    """A script with templates replaced, and ``bindings``: env var name -> CEL source."""

    script: str
    bindings: dict[str, str] = field(default_factory=dict)


@dataclass
class _Frame:
    kind: str
    close: str = ""  # what ends a code frame: ")" or "`" ("" at top level)
    depth: int = 0  # open parens/braces inside this frame
    quoted_outer: bool = False  # a ${ } frame inside double quotes
    delimiter: str = ""  # here-document
    strip_tabs: bool = False
    expand: bool = True  # here-document with an unquoted delimiter


@dataclass
class _Heredoc:
    delimiter: str
    strip_tabs: bool
    expand: bool


_ERRORS = {
    _SQ: "expression inside single quotes would not be expanded; use double quotes",
    _ANSI: "expression inside $'...' would not be expanded; use double quotes",
    _COMMENT: "expression inside a shell comment; remove it or move it out of the comment",
    _ARITH: (
        "expression inside arithmetic (( )) would be evaluated as code; "
        "compute it in the expression instead, e.g. ${{ params.n * 2 }}"
    ),
}


def compile_shell(script: str) -> ShellTemplate:
    """Replace each ``${{ }}`` in a bash script by a safe variable reference.

    Raises ``ValueError`` when a template sits where bash would not expand a variable, and
    ``ExpressionError`` when a template is malformed.
    """
    templates = find_templates(script)
    if not templates:
        return ShellTemplate(script)
    return _Lexer(script, templates).run()


class _Lexer:
    def __init__(self, script: str, templates: list[Template]) -> None:
        self.s = script
        self.templates = {t.start: t for t in templates}
        self.stack = [_Frame(_CODE)]
        self.pending: list[_Heredoc] = []
        self.out: list[str] = []
        self.bindings: dict[str, str] = {}
        self.names: dict[str, str] = {}  # expression source -> variable

    def run(self) -> ShellTemplate:
        s, i, n = self.s, 0, len(self.s)
        while i < n:
            template = self.templates.get(i)
            if template is not None:
                self.out.append(self._replacement(template))
                i = template.end
                continue
            top = self.stack[-1]
            if top.kind == _HEREDOC and (i == 0 or s[i - 1] == "\n"):
                i = self._heredoc_line(i, top)
                continue
            i = self._step(i, top)
        return ShellTemplate("".join(self.out), self.bindings)

    # -- helpers

    def _emit(self, start: int, end: int) -> int:
        self.out.append(self.s[start:end])
        return end

    def _check_escaped(self, i: int) -> None:
        if i + 1 in self.templates:
            raise ValueError(
                "a backslash before ${{ }} would not escape it; "
                "to write a literal '${{' use ${{ '${{' }}"
            )

    def _replacement(self, template: Template) -> str:
        frame = self.stack[-1]
        kind = frame.kind
        if kind == _HEREDOC and not frame.expand:
            raise ValueError(
                f"expression inside a here-document with a quoted delimiter ('{frame.delimiter}')"
                " would not be expanded; unquote the delimiter"
            )
        if kind in _ERRORS:
            raise ValueError(_ERRORS[kind])
        name = self.names.get(template.source)
        if name is None:
            name = f"{VAR_PREFIX}{len(self.names)}"
            self.names[template.source] = name
            self.bindings[name] = template.source
        quoted = kind in (_DQ, _HEREDOC) or (kind == _PARAM and frame.quoted_outer)
        return f"${{{name}}}" if quoted else f'"${{{name}}}"'

    def _at_word_start(self, i: int) -> bool:
        return i == 0 or self.s[i - 1] in _WORD_BREAK

    # -- one character (or construct) in the current frame

    def _step(self, i: int, top: _Frame) -> int:
        s = self.s
        ch = s[i]
        kind = top.kind
        if kind == _SQ:
            if ch == "'":
                self.stack.pop()
            return self._emit(i, i + 1)
        if kind == _ANSI:
            if ch == "\\":
                self._check_escaped(i)
                return self._emit(i, i + 2)
            if ch == "'":
                self.stack.pop()
            return self._emit(i, i + 1)
        if kind == _COMMENT:
            if ch == "\n":
                self.stack.pop()
                return self._newline(i)
            return self._emit(i, i + 1)
        if kind == _ARITH:
            if ch == "(":
                top.depth += 1
            elif ch == ")":
                if top.depth == 0 and s.startswith("))", i):
                    self.stack.pop()
                    return self._emit(i, i + 2)
                top.depth -= 1
            return self._emit(i, i + 1)
        if ch == "\\":
            self._check_escaped(i)
            return self._emit(i, i + 2)
        if ch == "$":
            return self._dollar(i)
        if ch == "`":
            if top.kind == _CODE and top.close == "`":
                self.stack.pop()
            else:
                self.stack.append(_Frame(_CODE, close="`"))
            return self._emit(i, i + 1)
        if kind == _DQ:
            if ch == '"':
                self.stack.pop()
            return self._emit(i, i + 1)
        if kind == _HEREDOC:
            return self._emit(i, i + 1)
        if kind == _PARAM:
            if ch == "{":
                top.depth += 1
            elif ch == "}":
                if top.depth == 0:
                    self.stack.pop()
                else:
                    top.depth -= 1
            elif ch == '"':
                self.stack.append(_Frame(_DQ))
            elif ch == "'" and not top.quoted_outer:
                self.stack.append(_Frame(_SQ))
            return self._emit(i, i + 1)
        return self._code(i, top)

    def _dollar(self, i: int) -> int:
        s = self.s
        outer_dq = self.stack[-1].kind in (_DQ, _HEREDOC) or (
            self.stack[-1].kind == _PARAM and self.stack[-1].quoted_outer
        )
        if s.startswith("$((", i):
            self.stack.append(_Frame(_ARITH))
            return self._emit(i, i + 3)
        if s.startswith("$(", i):
            self.stack.append(_Frame(_CODE, close=")"))
            return self._emit(i, i + 2)
        if s.startswith("${", i) and i + 2 not in self.templates and i + 1 not in self.templates:
            self.stack.append(_Frame(_PARAM, quoted_outer=outer_dq))
            return self._emit(i, i + 2)
        if s.startswith("$'", i) and self.stack[-1].kind == _CODE:
            self.stack.append(_Frame(_ANSI))
            return self._emit(i, i + 2)
        return self._emit(i, i + 1)

    def _code(self, i: int, top: _Frame) -> int:
        s = self.s
        ch = s[i]
        if ch == "'":
            self.stack.append(_Frame(_SQ))
        elif ch == '"':
            self.stack.append(_Frame(_DQ))
        elif ch == "#" and self._at_word_start(i):
            self.stack.append(_Frame(_COMMENT))
        elif ch == "\n":
            return self._newline(i)
        elif ch in "<>" and s.startswith("(", i + 1):
            self.stack.append(_Frame(_CODE, close=")"))
            return self._emit(i, i + 2)
        elif ch == "(" and s.startswith("((", i) and self._at_word_start(i):
            self.stack.append(_Frame(_ARITH))
            return self._emit(i, i + 2)
        elif ch == "(":
            top.depth += 1
        elif ch == ")":
            if top.depth == 0 and top.close == ")":
                self.stack.pop()
            else:
                top.depth = max(top.depth - 1, 0)
        elif s.startswith("<<<", i):
            return self._emit(i, i + 3)
        elif s.startswith("<<", i):
            return self._heredoc_operator(i)
        return self._emit(i, i + 1)

    def _newline(self, i: int) -> int:
        end = self._emit(i, i + 1)
        if self.pending:
            doc = self.pending.pop(0)
            self.stack.append(
                _Frame(
                    _HEREDOC, delimiter=doc.delimiter, strip_tabs=doc.strip_tabs, expand=doc.expand
                )
            )
        return end

    # -- here-documents

    def _heredoc_operator(self, i: int) -> int:
        s, n = self.s, len(self.s)
        j = i + 2
        strip_tabs = s.startswith("-", j)
        if strip_tabs:
            j += 1
        while j < n and s[j] in " \t":
            j += 1
        start = j
        word: list[str] = []
        quoted = False
        quote = ""
        while j < n:
            if j in self.templates:
                raise ValueError("expression in a here-document delimiter is not allowed")
            ch = s[j]
            if quote:
                if ch == quote:
                    quote = ""
                else:
                    word.append(ch)
            elif ch in "'\"":
                quote, quoted = ch, True
            elif ch == "\\" and j + 1 < n:
                quoted = True
                word.append(s[j + 1])
                j += 1
            elif ch in _WORD_BREAK:
                break
            else:
                word.append(ch)
            j += 1
        if start == j:
            return self._emit(i, j)  # not a here-document bash would accept; leave it to bash
        self.pending.append(_Heredoc("".join(word), strip_tabs, expand=not quoted))
        return self._emit(i, j)

    def _heredoc_line(self, i: int, top: _Frame) -> int:
        s = self.s
        newline = s.find("\n", i)
        end = len(s) if newline < 0 else newline
        line = s[i:end]
        if (line.lstrip("\t") if top.strip_tabs else line) == top.delimiter:
            self.stack.pop()
            after = self._emit(i, min(end + 1, len(s)))
            if self.pending:
                doc = self.pending.pop(0)
                self.stack.append(
                    _Frame(
                        _HEREDOC,
                        delimiter=doc.delimiter,
                        strip_tabs=doc.strip_tabs,
                        expand=doc.expand,
                    )
                )
            return after
        if not top.expand:
            if any(i <= start < end for start in self.templates):
                raise ValueError(
                    f"expression inside a here-document with a quoted delimiter "
                    f"('{top.delimiter}') would not be expanded; unquote the delimiter"
                )
            return self._emit(i, min(end + 1, len(s)))
        return self._step(i, top)
