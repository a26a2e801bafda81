from __future__ import annotations

from typing import Any

import pytest

from lockstep.spec.expressions import (
    ExpressionError,
    Template,
    compile_expression,
    condition_source,
    evaluate,
    find_templates,
    references,
    render,
    to_text,
)

CTX: dict[str, Any] = {
    "params": {"n": 3, "name": "orbit", "cases": ["leo", "geo"], "deploy": True},
    "steps": {"prepare": {"outputs": {"seed": 42}, "status": "succeeded"}},
    "run": {"id": "r-1", "sha": "abc", "status": "running"},
    "env": {"HOME": "/home/x"},
}


@pytest.mark.parametrize(
    ("text", "sources"),
    [
        ("no templates here", []),
        ("${{ params.n }}", ["params.n"]),
        ("a ${{params.n}} b ${{ run.id }} c", ["params.n", "run.id"]),
        ("${{ '}}' + params.name }}", ["'}}' + params.name"]),
        ('${{ "a}}b" }}', ['"a}}b"']),
        ("${{ {'k': {'v': 1}} }}", ["{'k': {'v': 1}}"]),
        ("${{ '''multi }} line''' }}", ["'''multi }} line'''"]),
        ("${{ r'\\' }}", ["r'\\'"]),
        ("${{ 'it\\'s }}' }}", ["'it\\'s }}'"]),
        ("$ {{ not a template }}", []),
    ],
)
def test_find_templates(text: str, sources: list[str]) -> None:
    assert [t.source for t in find_templates(text)] == sources


def test_find_templates_offsets() -> None:
    text = "x ${{ params.n }} y"
    (template,) = find_templates(text)
    assert template == Template(2, 17, "params.n")
    assert text[template.start : template.end] == "${{ params.n }}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("echo ${{ params.n", "unterminated '${{' at offset 5; close it with '}}'"),
        ("${{ 'abc }}", "unterminated string literal"),
        ("ok ${{ a }} then ${{ b", "unterminated '${{' at offset 17"),
    ],
)
def test_find_templates_unterminated(text: str, message: str) -> None:
    with pytest.raises(
        ExpressionError, match="^" + message.replace("$", r"\$").replace("{", r"\{")
    ):
        find_templates(text)


@pytest.mark.parametrize(
    ("src", "chains"),
    [
        ("params.duration_s", [("params", "duration_s")]),
        ("steps.prepare.outputs.seed + 1", [("steps", "prepare", "outputs", "seed")]),
        ("params['a'].b", [("params", "a", "b")]),
        ('steps["x-y"].outputs["k"]', [("steps", "x-y", "outputs", "k")]),
        ("params.list[params.i].z", [("params", "list"), ("params", "i")]),
        ("params.items[0].z", [("params", "items")]),
        ("params.name.startsWith('o')", [("params", "name")]),
        ("size(params.cases) > 0", [("params", "cases")]),
        ("params.cases.map(c, c + run.id)", [("params", "cases"), ("run", "id")]),
        ("params.cases.all(x, x != '')", [("params", "cases")]),
        ("params.cases.exists_one(x, x == 'leo')", [("params", "cases")]),
        ("params.cases.filter(x, x.size() > 2)", [("params", "cases")]),
        ("[1, 2].map(x, x * 2).exists(y, y > x)", [("x",)]),
        ("'params.n' + \"steps.a\" + r'run.id' + b'env'", []),
        ("'''params''' + \"\"\"steps\"\"\"", []),
        ("true && null == null || 'x' in ['x']", []),
        ("has(params.deploy)", [("params", "deploy")]),
        ("int(env.N) + double(params.n)", [("env", "N"), ("params", "n")]),
        ("foo.bar", [("foo", "bar")]),
        (".params.n", [("params", "n")]),
        ("params.n // a comment naming steps.x\n + 1", [("params", "n")]),
    ],
)
def test_references(src: str, chains: list[tuple[str, ...]]) -> None:
    assert references(src) == chains


@pytest.mark.parametrize(
    ("src", "value"),
    [
        ("params.n + 1", 4),
        ("params.name + '-' + run.id", "orbit-r-1"),
        ("steps.prepare.outputs.seed", 42),
        ("params.cases", ["leo", "geo"]),
        ("params.deploy && steps.prepare.status == 'succeeded'", True),
        ("size(params.cases)", 2),
        ("params.cases.map(c, c + '!')", ["leo!", "geo!"]),
        ("null", None),
    ],
)
def test_evaluate(src: str, value: Any) -> None:
    assert evaluate(src, CTX) == value


@pytest.mark.parametrize(
    ("src", "message"),
    [
        ("params.x + 1", "expression 'params.x + 1': no such key 'x'"),
        ("nothing.here", "expression 'nothing.here': undefined name 'nothing'"),
        ("params.n + 'a'", "expression 'params.n + 'a'': no such overload"),
        ("params.n / 0", "expression 'params.n / 0': division by zero"),
        ("params.n +", "invalid expression 'params.n +': unexpected end of expression at column"),
        ("(params.n", "invalid expression '(params.n': "),
    ],
)
def test_evaluate_errors_are_one_line(src: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluate(src, CTX)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_compile_is_cached() -> None:
    assert compile_expression("params.n * 2") is compile_expression("params.n * 2")


@pytest.mark.parametrize(
    ("template", "value"),
    [
        ("plain text", "plain text"),
        ("${{ params.n }}", 3),
        ("  ${{ params.cases }}\n", ["leo", "geo"]),
        ("${{ params.deploy }}", True),
        ("n=${{ params.n }}", "n=3"),
        ("${{ params.n }}${{ params.n }}", "33"),
        ("cases=${{ params.cases }}", 'cases=["leo","geo"]'),
        ("ok=${{ params.deploy }} none=${{ null }}.", "ok=true none=."),
        ("${{ '${{' }} literal", "${{ literal"),
    ],
)
def test_render(template: str, value: Any) -> None:
    assert render(template, CTX) == value


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("s", "s"),
        (True, "true"),
        (False, "false"),
        (None, ""),
        (3, "3"),
        (2.5, "2.5"),
        ([1, "ü"], '[1,"ü"]'),
        ({"b": 1, "a": [True]}, '{"b":1,"a":[true]}'),
    ],
)
def test_to_text(value: Any, text: str) -> None:
    assert to_text(value) == text


@pytest.mark.parametrize(
    ("value", "source"),
    [
        (None, None),
        (True, "true"),
        (False, "false"),
        ("params.deploy", "params.deploy"),
        ("${{ params.n > 1 }}", "params.n > 1"),
        ("  ${{ params.n > 1 }}  ", "params.n > 1"),
    ],
)
def test_condition_source(value: str | bool | None, source: str | None) -> None:
    assert condition_source(value) == source


def test_condition_source_rejects_mixed_text() -> None:
    with pytest.raises(ExpressionError, match="'if' must be a single expression"):
        condition_source("${{ a }} and ${{ b }}")
