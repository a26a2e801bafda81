"""``uses: DEF@SELECTOR``: a published definition expanded like a blueprint file, through a
resolver (here a fake one: a table of stored versions)."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
import yaml

from lockstep.errors import SpecError
from lockstep.spec.blueprint_fetch import load_published
from lockstep.spec.blueprint_files import BlueprintUnreadable, PublishedBlueprint
from lockstep.spec.load import LoadedSpec, load_spec

ETL = """\
name: etl
params:
  type: object
  properties:
    table: {type: string}
  required: [table]
steps:
  extract:
    run: echo ${{ params.table }}
  load:
    needs: [extract]
    run: echo loaded
outputs:
  table: ${{ params.table }}
"""

#: a stored version that says it expanded ``main@2``
LOOPING = f"# blueprint y: main@2 sha256:{'0' * 64}\nname: b\nsteps:\n  y__s:\n    run: echo\n"

CALLER = """\
name: main
steps:
  first:
    uses: etl@$LIVE
    with: {table: users}
  second:
    uses: etl@1
    needs: [first]
    with: {table: orders}
  after:
    needs: [second]
    run: echo ${{ steps.second.outputs.table }}
"""


class Versions:
    """A fake registry: ``selector -> (definition, number, text)``."""

    def __init__(self, table: dict[str, tuple[str, int, str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    def read(self, selector: str) -> PublishedBlueprint:
        self.asked.append(selector)
        if selector not in self.table:
            raise BlueprintUnreadable(f"definition '{selector.split('@')[0]}' not found")
        return PublishedBlueprint(*self.table[selector])


def load(caller: str, versions: Versions, owner: str | None = None) -> LoadedSpec:
    return load_spec(caller, "main.yaml", published=versions, owner=owner)


def problems(caller: str, versions: Versions, owner: str | None = None) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load(caller, versions, owner)
    return [str(d) for d in caught.value.diagnostics]


def test_a_published_definition_is_imported_under_each_alias_and_recorded_by_number() -> None:
    versions = Versions({"etl@$LIVE": ("etl", 1, ETL), "etl@1": ("etl", 1, ETL)})
    loaded = load(CALLER, versions)
    steps = yaml.safe_load(loaded.text)["steps"]
    assert list(steps) == [
        "first__extract", "first__load", "first",
        "second__extract", "second__load", "second", "after",
    ]  # fmt: skip
    assert steps["first__extract"]["run"] == 'echo ${{ "users" }}'
    assert steps["second__extract"]["needs"] == ["first"]
    assert steps["second"]["with"] == {"table": '${{ "orders" }}'}
    digest = hashlib.sha256(ETL.encode()).hexdigest()
    # the selector is resolved once: the header names the version, not the tag
    assert f"# blueprint first: etl@1 sha256:{digest}" in loaded.text.splitlines()
    assert f"# blueprint second: etl@1 sha256:{digest}" in loaded.text.splitlines()
    assert "$LIVE" not in loaded.text


def test_a_published_blueprints_own_expansions_are_recorded_under_the_alias() -> None:
    inner = load(CALLER, Versions({"etl@$LIVE": ("etl", 1, ETL), "etl@1": ("etl", 1, ETL)}))
    caller = "name: top\nsteps:\n  m:\n    uses: main@2\n"
    loaded = load(caller, Versions({"main@2": ("main", 2, inner.text)}))
    header = [line.split(" sha256:")[0] for line in loaded.text.splitlines()[:5]]
    assert header[1:4] == [
        "# blueprint m: main@2",
        "# blueprint m__first: etl@1",
        "# blueprint m__second: etl@1",
    ]
    assert "m__first__extract" in yaml.safe_load(loaded.text)["steps"]


@pytest.mark.parametrize(
    ("caller", "table", "owner", "message"),
    [
        (
            "name: a\nsteps:\n  x:\n    uses: gone@3\n",
            {},
            None,
            "main.yaml:4:5: cannot use blueprint 'gone@3': definition 'gone' not found",
        ),
        (
            "name: a\nsteps:\n  x:\n    uses: etl@1\n    with: {table: t, tabel: u}\n",
            {"etl@1": ("etl", 1, ETL)},
            None,
            "main.yaml:5:22: blueprint 'etl@1' has no param 'tabel'; did you mean 'table'?",
        ),
        (
            "name: a\nsteps:\n  x:\n    uses: etl@1\n",
            {"etl@1": ("etl", 1, ETL)},
            None,
            "main.yaml:4:5: blueprint 'etl@1' needs param 'table'; give it under 'with'",
        ),
        (
            "name: a\nsteps:\n  x:\n    uses: main@$LIVE\n",
            {"main@$LIVE": ("main", 4, "name: main\nsteps:\n  s:\n    run: echo\n")},
            "main",
            "main.yaml:4:5: blueprint cycle: main.yaml -> main@4",
        ),
        (
            "name: a\nsteps:\n  x:\n    uses: b@1\n",
            {"b@1": ("b", 1, LOOPING)},
            "main",
            "main.yaml:4:5: blueprint cycle: main.yaml -> b@1 -> main@2",
        ),
        (
            "name: a\nsteps:\n  x:\n    uses: b@1\n",
            {"b@1": ("b", 1, "name: b\nsteps:\n  y:\n    uses: ./etl.yaml\n")},
            None,
            "b@1:4:5: published blueprint b@1 still uses the file './etl.yaml', which was not "
            "expanded when it was published",
        ),
        (
            "name: a\nsteps:\n  x:\n    uses: b@1\n",
            {"b@1": ("b", 1, "name: b\nsteps:\n  y:\n    workflow: ./kid.yaml\n")},
            None,
            "b@1:4:5: published blueprint b@1 runs the file './kid.yaml' (step 'y'), which a "
            "workflow using it cannot find; write workflow: DEF@SELECTOR there and publish it "
            "again (used at main.yaml:4:5)",
        ),
        (
            "name: a\nsteps:\n  x:\n    uses: Etl@1\n",
            {},
            None,
            "main.yaml:4:5: invalid 'uses': got 'Etl@1'",
        ),
    ],
)
def test_bad_published_uses_are_one_line_at_the_uses_line(
    caller: str, table: dict[str, tuple[str, int, str]], owner: str | None, message: str
) -> None:
    found = problems(caller, Versions(table), owner)
    assert any(m.startswith(message) for m in found), found


def test_without_a_resolver_the_use_is_refused_or_left_for_the_server() -> None:
    caller = "name: a\nsteps:\n  x:\n    uses: etl@$LIVE\n    with: {table: t}\n"
    with pytest.raises(SpecError, match="uses the published blueprint 'etl@\\$LIVE'"):
        load_spec(caller, "main.yaml")
    kept = load_spec(caller, "main.yaml", published_later=True)  # what the CLI sends on
    assert yaml.safe_load(kept.text)["steps"]["x"]["uses"] == "etl@$LIVE"


def test_the_async_loader_fetches_each_selector_once() -> None:
    versions = Versions({"etl@$LIVE": ("etl", 1, ETL), "etl@1": ("etl", 1, ETL)})
    calls: list[str] = []

    async def read(selector: str) -> PublishedBlueprint:
        calls.append(selector)
        return versions.read(selector)

    loaded = asyncio.run(load_published(read, CALLER, "main.yaml", max_bytes=1 << 20))
    assert isinstance(loaded, LoadedSpec)
    assert sorted(calls) == ["etl@$LIVE", "etl@1"]
    assert "first__load" in loaded.spec.steps
