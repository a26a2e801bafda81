"""Blueprints: ``uses: ./file.yaml`` expanded into the caller before anything runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from lockstep.errors import SpecError
from lockstep.spec.blueprint_files import MAX_DEPTH, MappingFiles
from lockstep.spec.documents import load_workflow_file
from lockstep.spec.expressions import evaluate, find_templates, render
from lockstep.spec.load import LoadedSpec, load_spec

ETL = """\
name: etl
params:
  type: object
  properties:
    table: {type: string}
    rows: {type: integer, default: 3}
  required: [table]
steps:
  extract:
    run: echo ${{ params.table }} ${{ params.rows }}
    outputs: {type: object, properties: {n: {type: integer}}}
  load:
    needs: [extract]
    run: echo ${{ steps.extract.outputs.n }}
  audit:
    needs: [extract]
    run: echo audit
outputs:
  n: ${{ steps.extract.outputs.n }}
"""

CALLER = """\
name: main
params:
  type: object
  properties:
    table: {type: string}
steps:
  prep:
    run: echo prep
  first:
    uses: ./blueprints/etl.yaml
    needs: [prep]
    with:
      table: users
  second:
    uses: ./blueprints/etl.yaml
    needs: [first]
    with:
      table: ${{ params.table }}
      rows: ${{ steps.first.outputs.n }}
  after:
    needs: [second]
    run: echo ${{ steps.second.outputs.n }}
"""


def load(caller: str, files: dict[str, str], path: str = "workflow.yaml") -> LoadedSpec:
    return load_spec(caller, path, files=MappingFiles(files), path=path)


def problems(caller: str, files: dict[str, str], path: str = "workflow.yaml") -> list[str]:
    with pytest.raises(SpecError) as caught:
        load(caller, files, path)
    return [str(d) for d in caught.value.diagnostics]


def steps_of(loaded: LoadedSpec) -> dict[str, dict[str, object]]:
    data = yaml.safe_load(loaded.text)
    return data["steps"]  # type: ignore[no-any-return]


def test_steps_are_imported_under_the_alias_and_needs_wait_for_exit_steps() -> None:
    steps = steps_of(load(CALLER, {"blueprints/etl.yaml": ETL}))
    assert list(steps) == [
        "prep",
        *("first__extract", "first__load", "first__audit", "first"),
        *("second__extract", "second__load", "second__audit", "second"),
        "after",
    ]
    # the alias's needs make the entry step wait; the alias waits for every exit step
    assert steps["first__extract"]["needs"] == ["prep"]
    assert steps["first__load"]["needs"] == ["first__extract"]
    assert steps["first"] == {
        "uses": "noop",
        "needs": ["first__load", "first__audit"],
        "with": {"n": "${{ steps.first__extract.outputs.n }}"},
    }
    assert steps["second__extract"]["needs"] == ["first"]


def test_params_become_literals_or_the_callers_own_expressions() -> None:
    steps = steps_of(load(CALLER, {"blueprints/etl.yaml": ETL}))
    # a literal stays inside a template (the shell quoting of templates still applies);
    # a missing param takes the blueprint's default
    assert steps["first__extract"]["run"] == 'echo ${{ "users" }} ${{ 3 }}'
    assert steps["second__extract"]["run"] == (
        "echo ${{ params.table }} ${{ steps.first.outputs.n }}"
    )
    assert steps["second__load"]["run"] == "echo ${{ steps.second__extract.outputs.n }}"


def test_a_secret_passed_as_a_param_stays_a_whole_secret_env_value() -> None:
    blueprint = (
        "name: b\nparams: {type: object, properties: {token: {type: string}}}\n"
        "steps:\n  call:\n    run: echo\n    env:\n      TOKEN: ${{ params.token }}\n"
    )
    caller = (
        "name: main\nsteps:\n  b:\n    uses: ./b.yaml\n    with:\n"
        "      token: ${{ secrets.API_TOKEN }}\n"
    )
    steps = steps_of(load(caller, {"b.yaml": blueprint}))
    assert steps["b__call"]["env"] == {"TOKEN": "${{ secrets.API_TOKEN }}"}


def test_imported_ids_do_not_depend_on_the_rest_of_the_caller() -> None:
    before = steps_of(load(CALLER, {"blueprints/etl.yaml": ETL}))
    edited = CALLER.replace("  prep:\n    run: echo prep\n", "  zero:\n    run: 'true'\n"
                            "  prep:\n    needs: [zero]\n    run: echo prep, edited\n")  # fmt: skip
    after = steps_of(load(edited, {"blueprints/etl.yaml": ETL}))
    imported = [sid for sid in before if "__" in sid]
    assert imported and all(before[sid] == after[sid] for sid in imported)


def test_nested_blueprints_expand_recursively_and_are_recorded() -> None:
    outer = "name: outer\nsteps:\n  inner:\n    uses: ./inner.yaml\n  tail:\n    needs: [inner]\n    run: echo\n"
    inner = "name: inner\nsteps:\n  x:\n    run: echo x\n"
    loaded = load(
        "name: main\nsteps:\n  top:\n    uses: ./lib/outer.yaml\n",
        {"lib/outer.yaml": outer, "lib/inner.yaml": inner},
    )
    steps = steps_of(loaded)
    assert list(steps) == ["top__inner__x", "top__inner", "top__tail", "top"]
    assert steps["top__tail"]["needs"] == ["top__inner"]
    assert [(u.alias, u.path) for u in loaded.blueprints] == [
        ("top", "lib/outer.yaml"),
        ("top__inner", "lib/inner.yaml"),
    ]
    assert "# blueprint top__inner: lib/inner.yaml sha256:" in loaded.text


def test_a_child_file_of_a_blueprint_is_named_from_the_callers_folder() -> None:
    # the run resolves `workflow: ./x` from the caller's file: the blueprint's own children
    # (and a nested blueprint's) must still name the files beside the blueprint that wrote them
    outer = "name: outer\nsteps:\n  kid:\n    workflow: ./kid.yaml\n  in:\n    uses: ./deep/inner.yaml\n"
    inner = "name: inner\nsteps:\n  up:\n    workflow: ../tools/up.yaml\n  here:\n    workflow: ./here.yaml\n"
    files = {"lib/outer.yaml": outer, "lib/deep/inner.yaml": inner}
    steps = steps_of(load("name: m\nsteps:\n  b:\n    uses: ./lib/outer.yaml\n", files))
    assert steps["b__kid"]["workflow"] == "./lib/kid.yaml"
    assert steps["b__in__up"]["workflow"] == "./lib/tools/up.yaml"
    assert steps["b__in__here"]["workflow"] == "./lib/deep/here.yaml"
    # a caller in a folder of its own reaches them with '../'
    nested = steps_of(
        load("name: m\nsteps:\n  b:\n    uses: ../lib/outer.yaml\n", files, "flows/m.yaml")
    )
    assert nested["b__kid"]["workflow"] == "../lib/kid.yaml"
    # a path leading out of the repository is refused where the blueprint wrote it
    found = problems(
        "name: m\nsteps:\n  b:\n    uses: ./lib/outer.yaml\n",
        {"lib/outer.yaml": "name: o\nsteps:\n  k:\n    workflow: ../../kid.yaml\n"},
    )
    assert found == [
        "lib/outer.yaml:4:5: workflow: '../../kid.yaml' leads outside the repository from "
        "lib/outer.yaml; use a path inside it, or workflow: DEF@SELECTOR "
        "(used at workflow.yaml:4:5)"
    ]


def test_the_expanded_text_is_a_plain_workflow_that_loads_as_it_is() -> None:
    loaded = load(CALLER, {"blueprints/etl.yaml": ETL})
    again = load_spec(loaded.text, "workflow.yaml")  # no repository needed any more
    assert again.spec == loaded.spec and again.blueprints == ()


def test_a_workflow_without_blueprints_keeps_its_exact_text() -> None:
    text = "name: plain\nsteps:\n  a:\n    run: echo  # a comment\n"
    assert load(text, {}).text == text


def test_blueprint_settings_carry_over_to_its_steps() -> None:
    blueprint = (
        "name: b\nenv: {A: '1'}\ndefaults:\n  timeout: 5m\n  env: {B: '2'}\n"
        "steps:\n  s:\n    run: echo\n    env: {B: '3'}\n"
    )
    steps = steps_of(load("name: m\nsteps:\n  b:\n    uses: ./b.yaml\n", {"b.yaml": blueprint}))
    assert steps["b__s"]["env"] == {"A": "1", "B": "3"}
    assert steps["b__s"]["timeout"] == "5m"


# --------------------------------------------------------------------------- bad input


def use(ref: str, extra: str = "") -> str:
    return f"name: main\nsteps:\n  pre:\n    run: echo\n  etl:\n    uses: {ref}\n{extra}"


@pytest.mark.parametrize(
    ("caller", "message"),
    [
        (
            use("./nope.yaml"),
            "workflow.yaml:6:5: cannot use blueprint './nope.yaml': nope.yaml does not exist "
            "in the repository",
        ),
        (
            use("../outside.yaml"),
            "workflow.yaml:6:5: blueprint path '../outside.yaml' leads outside the repository",
        ),
        (
            use("/etc/passwd"),
            "workflow.yaml:6:5: invalid 'uses': got '/etc/passwd'; use 'noop', a blueprint",
        ),
        (
            use("etl@latest"),
            "workflow.yaml:6:5: step 'etl' uses the published blueprint 'etl@latest', which the "
            "server expands where a workflow arrives",
        ),
        (
            use("./blueprints/etl.yaml", "    with: {table: t, tabel: u}\n"),
            "workflow.yaml:7:22: blueprint './blueprints/etl.yaml' has no param 'tabel'; "
            "did you mean 'table'?",
        ),
        (
            use("./blueprints/etl.yaml"),
            "workflow.yaml:6:5: blueprint './blueprints/etl.yaml' needs param 'table'; give it "
            "under 'with'",
        ),
        (
            use("./blueprints/etl.yaml", "    with: {table: 5}\n"),
            "workflow.yaml:7:12: param 'table' of blueprint './blueprints/etl.yaml': 5 is not "
            "of type 'string'",
        ),
        (
            use("./blueprints/etl.yaml", "    with: {table: t}\n    retry: {attempts: 2}\n"),
            "workflow.yaml:8:5: a step that uses a blueprint takes only uses, with, needs, "
            "description; move 'retry' into the blueprint",
        ),
        (
            use("./blueprints/etl.yaml", "    with: {table: t}\n  etl__load:\n    run: echo\n"),
            "workflow.yaml:6:5: blueprint alias 'etl' imports step id 'etl__load', which is "
            "already a step of this file; rename the alias or that step",
        ),
        (
            use("./blueprints/etl.yaml", "    with: {table: '${{ steps.pre.outputs.t }}'}\n"),
            "workflow.yaml:7:12: expression 'steps.pre.outputs.t': step 'etl' uses steps.pre "
            "but does not need it; add 'pre' to needs",
        ),
    ],
)
def test_bad_uses_is_one_clear_line_at_the_callers_position(caller: str, message: str) -> None:
    found = problems(caller, {"blueprints/etl.yaml": ETL})
    assert any(m.startswith(message) for m in found), found


def test_an_error_inside_a_blueprint_points_at_it_and_at_the_uses_line() -> None:
    broken = ETL.replace(
        "steps.extract.outputs.n }}\n  audit", "steps.extrac.outputs.n }}\n  audit"
    )
    found = problems(use("./blueprints/etl.yaml", "    with: {table: t}\n"), {
        "blueprints/etl.yaml": broken})  # fmt: skip
    assert found == [
        "blueprints/etl.yaml:14:5: expression 'steps.extrac.outputs.n': unknown step 'extrac'; "
        "did you mean 'extract'? (used at workflow.yaml:6:5)"
    ]


def test_an_error_in_the_expanded_graph_points_into_the_blueprint() -> None:
    # valid alone, wrong once the caller's expression lands in it: the entry step is reported
    # where the blueprint wrote it, with the uses line
    blueprint = "name: b\nparams: {type: object, properties: {n: {}}}\nsteps:\n  s:\n    if: ${{ params.n }}\n    run: echo\n"
    found = problems(
        "name: m\nsteps:\n  b:\n    uses: ./b.yaml\n    with: {n: 'text ${{ run.id }}'}\n",
        {"b.yaml": blueprint},
    )
    assert len(found) == 1 and found[0].startswith("b.yaml:5:5: 'if' must be a boolean expression")
    assert found[0].endswith("(used at workflow.yaml:4:5)")


def test_two_aliases_importing_the_same_id_collide() -> None:
    one = "name: one\nsteps:\n  b__c:\n    run: echo\n"
    two = "name: two\nsteps:\n  c:\n    run: echo\n"
    caller = "name: m\nsteps:\n  a:\n    uses: ./one.yaml\n  a__b:\n    uses: ./two.yaml\n"
    assert problems(caller, {"one.yaml": one, "two.yaml": two}) == [
        "workflow.yaml:6:5: blueprint alias 'a__b' imports step id 'a__b__c', which is already "
        "the step imported by alias 'a'; rename the alias or that step"
    ]


def test_an_alias_that_shadows_an_imported_step_id_is_refused() -> None:
    one = "name: one\nsteps:\n  b:\n    run: echo\n"
    caller = "name: m\nsteps:\n  a:\n    uses: ./one.yaml\n  a__b:\n    uses: ./one.yaml\n"
    found = problems(caller, {"one.yaml": one})
    assert found == [
        "workflow.yaml:4:5: blueprint alias 'a' imports step id 'a__b', which is already a "
        "step of this file; rename the alias or that step"
    ]


def test_a_cycle_names_the_chain() -> None:
    files = {
        "bp/a.yaml": "name: a\nsteps:\n  x:\n    uses: ./b.yaml\n",
        "bp/b.yaml": "name: b\nsteps:\n  y:\n    uses: ./a.yaml\n",
    }
    assert problems("name: m\nsteps:\n  s:\n    uses: ./bp/a.yaml\n", files) == [
        "bp/b.yaml:4:5: blueprint cycle: workflow.yaml -> bp/a.yaml -> bp/b.yaml -> bp/a.yaml "
        "(used at bp/a.yaml:4:5, used at workflow.yaml:4:5)"
    ]


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    files = {
        f"l{i}.yaml": f"name: l{i}\nsteps:\n  s:\n    uses: ./l{i + 1}.yaml\n"
        for i in range(MAX_DEPTH + 2)
    }
    found = problems("name: m\nsteps:\n  s:\n    uses: ./l0.yaml\n", files)
    assert len(found) == 1 and f"blueprints nest deeper than {MAX_DEPTH} levels" in found[0]


def test_a_blueprint_cannot_carry_what_belongs_to_a_whole_run() -> None:
    blueprint = "name: b\nsteps:\n  s:\n    run: echo\nfinally:\n  t:\n    run: echo\n"
    assert problems("name: m\nsteps:\n  b:\n    uses: ./b.yaml\n", {"b.yaml": blueprint}) == [
        "b.yaml:5:1: a blueprint cannot have 'finally' (it belongs to a whole run); remove it "
        "from the blueprint (used at workflow.yaml:4:5)"
    ]


def test_blueprints_in_finally_are_refused() -> None:
    caller = "name: m\nsteps:\n  a:\n    run: echo\nfinally:\n  b:\n    uses: ./b.yaml\n"
    assert problems(caller, {"b.yaml": ETL}) == [
        "workflow.yaml:7:5: blueprints can only be used in 'steps', not in 'finally'"
    ]


def test_text_without_its_repository_cannot_use_blueprints() -> None:
    with pytest.raises(SpecError) as caught:
        load_spec("name: m\nsteps:\n  b:\n    uses: ./b.yaml\n", "workflow.yaml")
    assert str(caught.value).startswith(
        "workflow.yaml:4:5: step 'b' uses a blueprint, which is expanded only where the "
        "workflow is read from its repository"
    )


# --------------------------------------------------------------------------- files on disk


def test_a_file_on_disk_reads_its_blueprints_from_its_repository(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "etl.yaml").write_text(ETL)
    (tmp_path / "flows").mkdir()
    caller = use("../shared/etl.yaml", "    with: {table: t}\n")
    (tmp_path / "flows" / "workflow.yaml").write_text(caller)
    loaded = load_workflow_file(tmp_path / "flows")
    assert isinstance(loaded, LoadedSpec)
    assert [u.path for u in loaded.blueprints] == ["shared/etl.yaml"]


def test_a_symlink_leading_out_of_the_repository_is_refused(tmp_path: Path) -> None:
    repo, outside = tmp_path / "repo", tmp_path / "outside.yaml"
    repo.mkdir()
    (repo / ".git").mkdir()
    outside.write_text(ETL)
    os.symlink(outside, repo / "etl.yaml")
    (repo / "workflow.yaml").write_text(use("./etl.yaml", "    with: {table: t}\n"))
    with pytest.raises(SpecError) as caught:
        load_workflow_file(repo / "workflow.yaml")
    assert str(caught.value).endswith(
        "workflow.yaml:6:5: cannot use blueprint './etl.yaml': etl.yaml is a symbolic link "
        "leading outside the repository"
    )


def test_conditions_and_fan_outs_read_the_params_given() -> None:
    blueprint = (
        "name: b\nparams:\n  type: object\n  properties:\n    go: {type: boolean}\n"
        "    cases: {type: array}\nsteps:\n  s:\n    if: params.go && steps.t.status == 'succeeded'\n"
        "    needs: [t]\n    for_each: ${{ params.cases }}\n    run: echo ${{ item }}\n"
        "  t:\n    run: echo\n"
    )
    caller = "name: m\nsteps:\n  b:\n    uses: ./b.yaml\n    with: {go: true, cases: [1, 'x']}\n"
    steps = steps_of(load(caller, {"b.yaml": blueprint}))
    assert steps["b__s"]["if"] == "(true) && steps.b__t.status == 'succeeded'"
    assert steps["b__s"]["for_each"] == '${{ [1, "x"] }}'
    assert steps["b"]["needs"] == ["b__s"]


@pytest.mark.parametrize(
    "value",
    [
        '"; curl x|sh #',
        "$(id) `id`",
        "two\nlines\ttab",
        "}} and ${ x }",
        "back\\slash 'q'",
        "ü ☃ \u2028",
    ],
)
def test_a_hostile_literal_param_reaches_the_step_as_exactly_its_value(value: str) -> None:
    blueprint = (
        "name: b\nparams: {type: object, properties: {v: {type: string}}}\n"
        "steps:\n  s:\n    run: printf '%s' \"${{ params.v }}\"\n    with: {got: 'x ${{ params.v }}'}\n"
    )
    caller = (
        "name: m\nsteps:\n  b:\n    uses: ./b.yaml\n    with:\n      v: " + json.dumps(value) + "\n"
    )
    step = steps_of(load(caller, {"b.yaml": blueprint}))["b__s"]
    # still a template (bash gets it as a variable, never as script text), worth the value
    (only,) = find_templates(step["run"])
    assert evaluate(only.source, {}) == value
    assert render(step["with"]["got"], {}) == "x " + value


def test_an_expansion_over_the_size_limit_is_refused() -> None:
    blueprint = "name: b\nsteps:\n" + "".join(
        f"  s{i}:\n    run: echo {'x' * 60}\n" for i in range(20)
    )
    caller = "name: m\nsteps:\n" + "".join(f"  a{i}:\n    uses: ./b.yaml\n" for i in range(6))
    with pytest.raises(SpecError) as caught:
        load_spec(
            caller,
            "workflow.yaml",
            files=MappingFiles({"b.yaml": blueprint}),
            path="workflow.yaml",
            max_bytes=8000,
        )
    assert str(caught.value).startswith(
        "workflow.yaml: with its blueprints expanded the workflow is"
    )


def test_too_many_blueprint_bytes_stop_the_reading() -> None:
    blueprint = "name: b\nsteps:\n  s:\n    run: echo " + "x" * 3000 + "\n"
    caller = "name: m\nsteps:\n" + "".join(f"  a{i}:\n    uses: ./b.yaml\n" for i in range(5))
    with pytest.raises(SpecError) as caught:
        load_spec(
            caller,
            "workflow.yaml",
            files=MappingFiles({"b.yaml": blueprint}),
            path="workflow.yaml",
            max_bytes=4000,
        )
    assert "the blueprints used add up to more than 8000 bytes" in str(caught.value)
