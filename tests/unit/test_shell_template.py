from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from lockstep.spec.expressions import ExpressionError
from lockstep.spec.shell import ShellTemplate, compile_shell

HOSTILE = [
    '"; curl x|sh #',
    "$(id)",
    "`id`",
    "line one\nline two\n",
    'it\'s "quoted"',
    "*",
    "  spaces   inside  ",
    "",
    "\\ back\\slash \\n",
    "$HOME ${HOME} $((1+1))",
    "EOF",
    "-n",
    "ünïcödé ✓",
]


def run_bash(template: ShellTemplate, value: str, cwd: str) -> bytes:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"}
    env.update({name: value for name in template.bindings})
    done = subprocess.run(
        ["bash", "-c", template.script], env=env, cwd=cwd, capture_output=True, check=True
    )
    return done.stdout


# scripts that print the value of ${{ params.v }} exactly, in every quoting context
SCRIPTS = [
    "printf %s ${{ params.v }}",
    'printf %s "${{ params.v }}"',
    "printf %s pre${{ params.v }}post | sed -e 's/^pre//' -e 's/post$//'",
    'printf %s "pre${{ params.v }}post" | sed -e "s/^pre//" -e "s/post$//"',
    'x=${{ params.v }}; printf %s "$x"',
    'printf %s "$(printf %s ${{ params.v }})"',
    'printf %s "`printf %s ${{ params.v }}`"',
    'printf %s "${unset_var:-${{ params.v }}}"',
    "printf %s ${unset_var:-${{ params.v }}}",
    "cat <<EOF | head -c -1\n${{ params.v }}\nEOF",
    "cat <<-EOF | head -c -1\n\t${{ params.v }}\n\tEOF",
    "cat <<'A' >/dev/null; cat <<B | head -c -1\nliteral $x\nA\n${{ params.v }}\nB",
    'f() { printf %s "$1"; }\nf ${{ params.v }} # a comment',
    "[[ ${{ params.v }} == ${{ params.v }} ]] && printf %s ${{ params.v }}",
]


# command substitution strips trailing newlines by design: those pairs are not expected
# to round-trip, so they are left out rather than skipped
EXACT = [
    (script, value)
    for script in SCRIPTS
    for value in HOSTILE
    if not (value.endswith("\n") and ("$(" in script or "`" in script))
]


@pytest.mark.parametrize(("script", "value"), EXACT)
def test_value_reaches_bash_as_exact_bytes(script: str, value: str, tmp_path: Path) -> None:
    template = compile_shell(script)
    assert template.bindings == {"LOCKSTEP_EXPR_0": "params.v"}
    assert run_bash(template, value, str(tmp_path)) == value.encode()


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_value_runs_nothing(value: str, tmp_path: Path) -> None:
    template = compile_shell("echo ${{ params.v }} > /dev/null; touch done")
    marker = tmp_path / "pwned"
    run_bash(template, value.replace("id", f"touch {marker}"), str(tmp_path))
    assert not marker.exists()
    assert (tmp_path / "done").exists()


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("echo ${{ params.a }}", 'echo "${LOCKSTEP_EXPR_0}"'),
        ('echo "a ${{ params.a }} b"', 'echo "a ${LOCKSTEP_EXPR_0} b"'),
        ("echo x${{ params.a }}y", 'echo x"${LOCKSTEP_EXPR_0}"y'),
        ('echo "it\'s ${{ params.a }}"', 'echo "it\'s ${LOCKSTEP_EXPR_0}"'),
        ("echo $(cat ${{ params.a }})", 'echo $(cat "${LOCKSTEP_EXPR_0}")'),
        ('echo "$(cat ${{ params.a }})"', 'echo "$(cat "${LOCKSTEP_EXPR_0}")"'),
        ("cat <<EOF\n${{ params.a }}\nEOF\n", "cat <<EOF\n${LOCKSTEP_EXPR_0}\nEOF\n"),
        (
            "cat <<'Q'\nno ${x}\nQ\necho ${{ params.a }}",
            "cat <<'Q'\nno ${x}\nQ\necho \"${LOCKSTEP_EXPR_0}\"",
        ),
        ("echo a # comment\necho ${{ params.a }}", 'echo a # comment\necho "${LOCKSTEP_EXPR_0}"'),
        ("echo a#b ${{ params.a }}", 'echo a#b "${LOCKSTEP_EXPR_0}"'),
        ("echo $'\\'' ${{ params.a }}", "echo $'\\'' \"${LOCKSTEP_EXPR_0}\""),
        ("echo 'a' ${{ params.a }} 'b'", "echo 'a' \"${LOCKSTEP_EXPR_0}\" 'b'"),
        ("echo no templates 'at all'", "echo no templates 'at all'"),
    ],
)
def test_replacement_depends_on_quoting(script: str, expected: str) -> None:
    assert compile_shell(script).script == expected


def test_same_expression_reuses_its_variable() -> None:
    template = compile_shell('echo ${{ params.a }} ${{params.b}} "${{ params.a }}"')
    assert template.bindings == {"LOCKSTEP_EXPR_0": "params.a", "LOCKSTEP_EXPR_1": "params.b"}
    assert template.script == (
        'echo "${LOCKSTEP_EXPR_0}" "${LOCKSTEP_EXPR_1}" "${LOCKSTEP_EXPR_0}"'
    )


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("echo '${{ params.a }}'", "expression inside single quotes would not be expanded"),
        ("echo $'${{ params.a }}'", "expression inside $'...' would not be expanded"),
        ("echo ok # ${{ params.a }}", "expression inside a shell comment"),
        ("# ${{ params.a }}\necho", "expression inside a shell comment"),
        ("cat <<'EOF'\n${{ params.a }}\nEOF", "here-document with a quoted delimiter ('EOF')"),
        ('cat <<"EOF"\n${{ params.a }}\nEOF', "here-document with a quoted delimiter"),
        ("cat <<\\EOF\n${{ params.a }}\nEOF", "here-document with a quoted delimiter"),
        ("echo $(( ${{ params.n }} + 1 ))", "expression inside arithmetic"),
        ("(( ${{ params.n }} > 1 ))", "expression inside arithmetic"),
        ("echo \\${{ params.a }}", "a backslash before ${{ }} would not escape it"),
        ("cat <<${{ params.a }}\nx\n", "here-document delimiter"),
    ],
)
def test_contexts_bash_would_not_expand_are_errors(script: str, message: str) -> None:
    with pytest.raises(ValueError, match=_escape(message)):
        compile_shell(script)


def test_unterminated_template_is_an_expression_error() -> None:
    with pytest.raises(ExpressionError, match="unterminated"):
        compile_shell("echo ${{ params.a ")


def _escape(text: str) -> str:
    return "".join("\\" + ch if ch in "$()[]{}.*+?|^\\" else ch for ch in text)
