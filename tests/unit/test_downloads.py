"""What a download answers: ``Content-Disposition`` that no file name can break, and a run's
graph as the web UI draws it (blueprint steps, fan-out, finally, a state machine's cycle)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import pytest

from lockstep.api.streams import attachment
from lockstep.services.run_graph import graph_of


@pytest.mark.parametrize(
    "name",
    ['a"b.txt', "x\r\nSet-Cookie: y=1", "rapport-été.csv", "<img src=x onerror=alert(1)>.html", ""],
)
def test_an_attachment_header_keeps_any_file_name_inside_it(name: str) -> None:
    value = attachment(name)
    assert value.startswith('attachment; filename="')
    assert "\r" not in value and "\n" not in value and value.isascii()
    assert value.count('"') == 2  # the fallback's own quotes: nothing in the name closes them
    assert unquote(value.split("filename*=UTF-8''", 1)[1]) == name  # the exact name, encoded


def test_a_graph_names_needs_kinds_fan_outs_and_finally_steps() -> None:
    spec = """\
name: g
steps:
  a: {run: echo a}
  b: {needs: [a], for_each: [1, 2], run: echo b}
  c: {needs: [a, b], approval: {message: ok?}}
finally:
  z: {run: echo z}
"""
    steps = graph_of(spec)["steps"]
    assert steps["b"] == {"needs": ["a"], "kind": "shell", "finally": False, "fan_out": True}
    assert steps["c"]["needs"] == ["a", "b"] and steps["c"]["kind"] == "approval"
    assert steps["z"]["finally"] is True


def test_a_state_machines_graph_leads_from_each_step_to_where_it_may_go() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "statemachine" / "workflow.json"
    graph = graph_of(example.read_text())
    assert graph["dialect"] == "machine" and graph["start"] == "computeTotal"
    steps = graph["steps"]
    assert steps["computeTotal"]["needs"] == []
    # scoreOrder loops on itself while pending (a cycle the UI's layout must cut), then finishes
    assert sorted(steps["scoreOrder"]["needs"]) == ["computeTotal", "scoreOrder"]
    assert steps["finish"]["needs"] == ["scoreOrder"]
