"""Replacing secret values with ``***`` in step logs and outputs before they are stored.

A step can leak a secret in more shapes than its plain text, so each value is expanded into
the forms a shell step commonly produces: base64 (both alphabets, padded or not, and the
value's stretch inside a longer base64 string such as ``Basic base64(user:pass)``),
percent-encoding, JSON string escaping and, for multi-line values, each line on its own,
since a step printing such a value writes one log line per line.

Values shorter than ``MIN_SECRET_CHARS`` are not masked: replacing a one- or two-character
value everywhere would wreck every log while hiding nothing an attacker could not guess.

What is not caught: a value a step transforms in other ways (hex, reversed, split across two
separate prints). Masking is a safety net for accidents, not a sandbox.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET_CHARS = 4
# A slice of base64 taken from inside a longer string is matched on its own, so a short one
# would hit unrelated base64 (hashes, tokens) often; this keeps such noise rare.
_MIN_SLICE_CHARS = 6
#: longer forms are found with ``str.find`` instead of the regex (see ``Masker``)
_MAX_REGEX_FORM_CHARS = 200
_PERCENT = re.compile(r"%[0-9A-F]{2}")


def _base64_forms(data: bytes) -> set[str]:
    forms: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(data).decode("ascii")
        forms.update((whole, whole.rstrip("=")))
        # The value encoded after 0, 1 or 2 other bytes (e.g. "user:" before a password):
        # only the characters made entirely of the value's bits are the same in every
        # context, so those are the slice to look for.
        for lead in range(3):
            encoded = encode(b"\0" * lead + data).decode("ascii")
            first = (8 * lead + 5) // 6
            last = (8 * (lead + len(data))) // 6
            piece = encoded[first:last]
            if len(piece) >= _MIN_SLICE_CHARS:
                forms.add(piece)
    return forms


def _percent_forms(value: str) -> set[str]:
    forms = {quote(value), quote(value, safe=""), quote_plus(value), quote_plus(value, safe="")}
    # Python writes %2F, many other encoders %2f; both decode to the same value.
    forms |= {_PERCENT.sub(lambda m: m.group().lower(), f) for f in forms}
    return forms


def variants(value: str) -> set[str]:
    """Every form of ``value`` that ``Masker`` hides (empty for a value too short to mask)."""
    if len(value) < MIN_SECRET_CHARS:
        return set()
    data = value.encode("utf-8", errors="surrogatepass")
    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    forms |= _base64_forms(data)
    forms |= _percent_forms(value)
    if "\n" in value or "\r" in value:
        for line in value.splitlines():
            forms.update((line, line.strip()))
    return {f for f in forms if len(f) >= MIN_SECRET_CHARS}


_Trie = dict[str, "_Trie"]
_END = ""  # key marking that a form ends at this node; never a real character
#: deeper branching (only crafted values nest this far) is rendered flat, which stays correct
#: and keeps the regex compiler's recursion bounded
_MAX_BRANCH_DEPTH = 64


def _suffixes(node: _Trie) -> list[str]:
    out: list[str] = []
    path: list[str] = []
    # explicit stack: a long value would overflow recursion, and re-joining a growing
    # prefix at every character would be quadratic
    stack = [iter(sorted(node.items()))]
    while stack:
        step = next(stack[-1], None)
        if step is None:
            stack.pop()
            if path:
                path.pop()
            continue
        ch, child = step
        if ch == _END:
            out.append("".join(path))
        else:
            path.append(ch)
            stack.append(iter(sorted(child.items())))
    return out


def _render(node: _Trie, depth: int) -> str:
    """A regex matching, at any position, the longest form in ``node``'s subtree."""
    optional = _END in node
    if depth > _MAX_BRANCH_DEPTH:
        tails = sorted((s for s in _suffixes(node) if s), key=lambda s: (-len(s), s))
        branches = [re.escape(s) for s in tails]
    else:
        branches = []
        for ch, child in sorted(node.items()):
            if ch == _END:
                continue
            # a chain of single children is one literal, so nesting grows only at branches
            chain = [ch]
            while len(child) == 1 and _END not in child:
                ((ch, child),) = child.items()
                chain.append(ch)
            branches.append(re.escape("".join(chain)) + _render(child, depth + 1))
    if not branches:
        return ""
    if optional:  # greedy: try the longer forms first, end here only if none matches
        return f"(?:{'|'.join(branches)})?"
    return branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"


def _pattern(forms: Iterable[str]) -> str:
    # A prefix tree rather than a flat list of alternatives: ``re`` tries alternatives one by
    # one at every position, so sharing prefixes (a value and its encodings often share
    # many) makes the scan of a line without secrets several times faster.
    root: _Trie = {}
    for form in forms:
        node = root
        for ch in form:
            node = node.setdefault(ch, {})
        node[_END] = {}
    return _render(root, 0)


class Masker:
    """Masks a fixed set of secret values; build one per step attempt, reuse for every line.

    A text without secrets costs one regex search, but that search slows as secrets are
    added (~70 MB/s for 3, ~8 MB/s for 20), so give it the secrets the run uses, not all of
    the project's.
    """

    __slots__ = ("_count", "_long", "_pattern")

    def __init__(self, values: Iterable[str]) -> None:
        forms: set[str] = set()
        count = 0
        for value in values:
            found = variants(value)
            if found:
                count += 1
                forms |= found
        self._count = count
        # The pattern matches the longest form at a position, so a secret that starts with
        # another secret is hidden whole, not just its prefix. Long forms stay out of it:
        # compiling a regex costs ~2 s per 100 KiB of pattern, while ``str.find`` needs no
        # preparation and is fastest on exactly such long needles.
        short = [f for f in forms if len(f) <= _MAX_REGEX_FORM_CHARS]
        self._pattern = re.compile(_pattern(short)) if short else None
        self._long = tuple(sorted(forms.difference(short)))

    def __repr__(self) -> str:
        # never the values, nor the compiled pattern that spells them out
        return f"Masker({self._count} secrets)"

    def __bool__(self) -> bool:
        return self._pattern is not None or bool(self._long)

    def mask(self, text: str) -> str:
        pattern = self._pattern
        found = pattern.search(text) if pattern is not None else None
        if found is None:
            for form in self._long:
                if form in text:
                    break
            else:  # the common case: one C-level scan, no copy
                return text
        spans = self._spans(text, found)
        spans.sort()
        parts: list[str] = []
        kept = 0  # end of the text already copied or masked
        for start, end in spans:
            if end <= kept:
                continue
            if start > kept or not parts:
                parts.append(text[kept:start])
                parts.append(MASK)
            # else: overlaps or touches the previous mask, which now reaches further
            kept = end
        parts.append(text[kept:])
        return "".join(parts)

    def _spans(self, text: str, found: re.Match[str] | None) -> list[tuple[int, int]]:
        """Where forms occur; together they cover every character of every occurrence."""
        spans: list[tuple[int, int]] = []
        pattern = self._pattern
        while found is not None and pattern is not None:
            start, end = found.span()
            # Another form may start inside this match and run past it (two secrets that
            # overlap); extend over it so no tail of the second one stays visible.
            pos = start + 1
            while pos < end:
                inner = pattern.match(text, pos)
                if inner is not None and inner.end() > end:
                    end = inner.end()
                pos += 1
            spans.append((start, end))
            found = pattern.search(text, end)
        for form in self._long:
            at = text.find(form)
            while at >= 0:
                spans.append((at, at + len(form)))
                at = text.find(form, at + 1)
        return spans

    def mask_value(self, obj: Any) -> Any:
        """``obj`` with secrets masked in every string of a JSON-like structure.

        A number whose digits are a secret becomes the string ``***``: a changed type is
        better than a leaked PIN.
        """
        if not self:
            return obj
        if isinstance(obj, str):
            return self.mask(obj)
        if isinstance(obj, dict):
            return {
                (self.mask(k) if isinstance(k, str) else k): self.mask_value(v)
                for k, v in obj.items()
            }
        if isinstance(obj, list):
            return [self.mask_value(v) for v in obj]
        if isinstance(obj, tuple):
            return tuple(self.mask_value(v) for v in obj)
        if isinstance(obj, int | float) and not isinstance(obj, bool):
            text = str(obj)
            masked = self.mask(text)
            return obj if masked == text else masked
        return obj


S = TypeVar("S")
S_in = TypeVar("S_in", contravariant=True)


class LineWriter(Protocol[S_in]):
    """A log writer, as far as masking needs one (``storage.logs.LogWriter`` is one; stated
    here by shape so secrets need not import storage, which stores secrets)."""

    def write(self, stream: S_in, text: str, ts: datetime | None = None) -> int: ...

    def write_many(self, lines: Iterable[tuple[S_in, str]], ts: datetime | None = None) -> int: ...

    def write_text(self, stream: S_in, text: str, ts: datetime | None = None) -> int: ...

    def close(self) -> None: ...


class MaskingLogWriter(Generic[S]):
    """A log writer that masks every line before the wrapped writer stores it."""

    __slots__ = ("_inner", "_masker")

    def __init__(self, inner: LineWriter[S], masker: Masker) -> None:
        self._inner = inner
        self._masker = masker

    def write(self, stream: S, text: str, ts: datetime | None = None) -> int:
        return self._inner.write(stream, self._masker.mask(text), ts)

    def write_many(self, lines: Iterable[tuple[S, str]], ts: datetime | None = None) -> int:
        mask = self._masker.mask
        return self._inner.write_many(((stream, mask(text)) for stream, text in lines), ts)

    def write_text(self, stream: S, text: str, ts: datetime | None = None) -> int:
        # Masked as one block, so a multi-line secret printed whole is hidden as a whole.
        return self._inner.write_text(stream, self._masker.mask(text), ts)

    def close(self) -> None:
        self._inner.close()
