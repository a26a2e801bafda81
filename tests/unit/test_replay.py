"""Runs in flight survive an upgrade: a history recorded by an earlier version of lockstep
replays under this one without a non-determinism error (each change to the interpreter's
decisions is behind ``workflow.patched``). The histories are real runs, recorded with
``tests/histories/record.py``; each folder is named for the version that recorded them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from lockstep.engine.fanout import FanOutWorkflow
from lockstep.engine.machine import MachineWorkflow
from lockstep.engine.payloads import DATA_CONVERTER
from lockstep.engine.workflow import RunWorkflow

HISTORIES = sorted((Path(__file__).parents[1] / "histories").glob("*/*.json"))


def test_histories_of_more_than_one_version_are_kept() -> None:
    assert len({path.parent.name for path in HISTORIES}) >= 2


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_a_recorded_run_replays_under_this_version(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(
        workflows=[RunWorkflow, MachineWorkflow, FanOutWorkflow],
        data_converter=DATA_CONVERTER,
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    result = asyncio.run(replayer.replay_workflow(history, raise_on_replay_failure=False))
    assert result.replay_failure is None, result.replay_failure
