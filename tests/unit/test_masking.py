"""Masker: every stored form of a secret becomes ``***``; everything else is left alone."""

from __future__ import annotations

import base64
import json
import random
import re
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from lockstep.secrets import masking
from lockstep.secrets.masking import MASK, Masker, MaskingLogWriter, variants
from lockstep.storage.logs import DirectoryLogStore

SECRET = "p@ss/w0rd+key=?&"  # URL- and base64-hostile characters on purpose


def _b64_forms(value: str) -> list[str]:
    data = value.encode()
    out = []
    for enc in (base64.b64encode, base64.urlsafe_b64encode):
        text = enc(data).decode()
        out += [text, text.rstrip("=")]
    return out


def test_plain_value_is_masked_and_other_text_is_untouched() -> None:
    m = Masker([SECRET])
    assert m.mask(f"login with {SECRET} now") == "login with *** now"
    assert m.mask(f"{SECRET}{SECRET}") == MASK
    unrelated = "nothing to see: p@ss/w0rd (almost), key=? & 100% fine \u00e9"
    assert m.mask(unrelated) is unrelated  # no copy when there is nothing to hide
    assert m.mask("") == ""


@pytest.mark.parametrize("value", [SECRET, "abcd", "\u00e9t\u00e9-\u6f22\u5b57-secret", "a" * 50])
def test_base64_forms_are_masked(value: str) -> None:
    m = Masker([value])
    forms = _b64_forms(value)
    assert len(set(forms)) >= 2
    for form in forms:
        assert m.mask(f"x {form} y") == "x *** y", form


def test_base64_inside_a_longer_encoding_is_masked() -> None:
    # e.g. an Authorization: Basic header, at every alignment of the secret in the stream
    m = Masker([SECRET])
    for user in ("u", "us", "usr", "user", "admin"):
        header = base64.b64encode(f"{user}:{SECRET}".encode()).decode()
        masked = m.mask(f"Authorization: Basic {header}")
        assert MASK in masked
        left = masked.removeprefix("Authorization: Basic ").replace(MASK, "")
        assert len(left) <= 10  # only the user part and a partial character stay


@pytest.mark.parametrize(
    "encode",
    [
        quote,
        lambda v: quote(v, safe=""),
        quote_plus,
        lambda v: re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quote(v, safe="")),
    ],
)
def test_url_encoded_forms_are_masked(encode: object) -> None:
    assert callable(encode)
    form = encode(SECRET)
    assert form != SECRET
    assert Masker([SECRET]).mask(f"GET /?token={form} HTTP/1.1") == "GET /?token=*** HTTP/1.1"


def test_multiline_value_is_masked_whole_and_line_by_line() -> None:
    value = "-----BEGIN KEY-----\nMIIEvQIBADANBgkq\r\nhkiG9w0BAQEFAASC\n-----END KEY-----"
    m = Masker([value])
    assert m.mask(f"key: {value} done") == "key: *** done"
    for line in value.splitlines():
        assert m.mask(line) == MASK
    # as json.dumps or a log writer would escape it
    assert m.mask(json.dumps({"k": value})) == '{"k": "***"}'
    # a trivial line of a multi-line value is not masked everywhere
    m2 = Masker(["abcdefgh\nok\nijklmnop"])
    assert m2.mask("ok") == "ok"
    assert m2.mask("abcdefgh") == MASK


def test_overlapping_secrets_are_masked_whole() -> None:
    m = Masker(["abcd", "abcdefgh", "efghijkl"])
    assert m.mask("abcdefgh") == MASK  # not "***efgh"
    assert m.mask("xx abcdefghijkl yy") == "xx *** yy"  # overlap of two secrets
    assert m.mask("abcd and abcdefgh and efghijkl") == "*** and *** and ***"
    assert Masker(["abcdefgh", "abcd"]).mask("abcdefg") == "***efg"


def test_regex_metacharacters_are_literal() -> None:
    value = r".*+?^$()[]{}|\x"
    m = Masker([value])
    assert m.mask(f"a{value}b") == "a***b"
    assert m.mask("anything at all") == "anything at all"
    assert Masker(["a.c.e.g"]).mask("abcdefg") == "abcdefg"


def test_short_and_empty_values_are_ignored() -> None:
    m = Masker(["", "a", "ab", "abc"])
    assert not m
    assert m.mask("a ab abc") == "a ab abc"
    assert Masker(["abcd"]).mask("abc abcd") == "abc ***"


def test_mask_value_walks_json_like_outputs() -> None:
    m = Masker([SECRET, "123456"])
    out = m.mask_value(
        {
            "token": SECRET,
            "nested": [{"url": f"https://x/?t={quote(SECRET, safe='')}"}, 7, None, True],
            "pin": 123456,
            "ratio": 0.5,
            SECRET: "key",
            "t": (SECRET, "ok"),
        }
    )
    assert out == {
        "token": MASK,
        "nested": [{"url": "https://x/?t=***"}, 7, None, True],
        "pin": MASK,
        "ratio": 0.5,
        MASK: "key",
        "t": (MASK, "ok"),
    }
    assert SECRET not in json.dumps(out)
    plain = {"a": [1, "b"]}
    assert Masker([]).mask_value(plain) is plain


def test_repr_does_not_show_values() -> None:
    m = Masker([SECRET])
    assert SECRET not in repr(m) and "w0rd" not in repr(m)


def test_log_writer_stores_no_secret(tmp_path: Path) -> None:
    store = DirectoryLogStore(tmp_path)
    value = "hunter2-\nsecond-line-of-it"
    m = Masker([value, SECRET])
    w = MaskingLogWriter(store.writer("run/step/1"), m)
    w.write("out", f"token={SECRET}")
    w.write_many([("err", base64.b64encode(SECRET.encode()).decode()), ("out", "fine")])
    w.write_text("out", f"begin\n{value}\nend")
    w.write_text("out", "hunter2-\nsecond-line-of-it")
    w.close()
    data = (tmp_path / "run" / "step" / "1.log").read_bytes()
    for form in (SECRET, "hunter2", "second-line", *_b64_forms(SECRET)):
        assert form.encode() not in data
    texts = [line.text for line in store.read("run/step/1").lines]
    assert texts[:4] == ["token=***", "***", "fine", "begin"]
    assert "end" in texts


def _reference(values: list[str], text: str) -> str:
    """Mask by brute force: every character covered by any occurrence of any form."""
    covered = [False] * len(text)
    for form in set().union(*(variants(v) for v in values)):
        at = text.find(form)
        while at != -1:
            covered[at : at + len(form)] = [True] * len(form)
            at = text.find(form, at + 1)
    out, i = [], 0
    while i < len(text):
        if covered[i]:
            while i < len(text) and covered[i]:
                i += 1
            out.append(MASK)
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


@pytest.mark.parametrize("regex_limit", [masking._MAX_REGEX_FORM_CHARS, 6])
def test_agrees_with_brute_force(monkeypatch: pytest.MonkeyPatch, regex_limit: int) -> None:
    # with a low limit most forms take the str.find path, so both paths are checked
    monkeypatch.setattr(masking, "_MAX_REGEX_FORM_CHARS", regex_limit)
    rng = random.Random(7)
    alphabet = "ab+/=%\n c"
    for _ in range(200):
        values = ["".join(rng.choices(alphabet, k=rng.randint(1, 9))) for _ in range(3)]
        pieces = [
            rng.choice(values) if rng.random() < 0.6 else "".join(rng.choices(alphabet, k=3))
            for _ in range(5)
        ]
        text = "".join(pieces)
        assert Masker(values).mask(text) == _reference(values, text), (values, text)


def test_deeply_nested_values_still_compile() -> None:
    # each value branches off the previous one: far deeper nesting than real values produce
    values = ["a" * n for n in range(4, 90)] + ["aaaa" + "b" * n for n in range(90)]
    m = Masker(values)
    assert m.mask("x" + "a" * 80 + "b" * 3 + "y") == "x***y"
    assert m.mask("x" + "a" * 4 + "b" * 85 + "y") == "x***y"


def test_long_values_are_masked_and_build_fast() -> None:
    long_value = "".join(random.Random(3).choices("abcdefghij+/=", k=64 * 1024))
    key = "\n".join(["-----BEGIN KEY-----", *(["Zm9vYmFyYmF6cXV4" * 4] * 30), "-----END KEY-----"])
    m = Masker([long_value, key, "short-one"])
    encoded = base64.urlsafe_b64encode(long_value.encode()).decode().rstrip("=")
    assert m.mask(f"<{long_value}>") == "<***>"
    assert m.mask(f"<{encoded}>") == "<***>"
    assert m.mask(f"<{quote(long_value, safe='')}>") == "<***>"
    assert m.mask(f"a {key} b short-one") == "a *** b ***"
    # a short secret inside a long one's occurrence does not split the mask
    assert m.mask(long_value[:10] + "short-one" + long_value) == long_value[:10] + "***"
    assert m.mask("unrelated") == "unrelated"
