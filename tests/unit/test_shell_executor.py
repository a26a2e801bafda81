from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from lockstep.engine.types import StepTask, Workspace
from lockstep.executors.attempt import run_attempt
from lockstep.executors.base import WorkerTools
from lockstep.executors.registry import executor_for
from lockstep.executors.workspace import WorkspaceManager
from lockstep.storage.blobs import DirectoryBlobStore
from lockstep.storage.logs import DirectoryLogStore
from lockstep.storage.snapshots import snapshot_directory
from tests.harness import await_for

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


class Env:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = DirectoryBlobStore(root / "blobs")
        self.workspaces = WorkspaceManager(root / "ws", self.blobs)
        self.logs = DirectoryLogStore(root / "logs")

    def task(self, argv: list[str] | str, **kw: Any) -> StepTask:
        if isinstance(argv, str):
            argv = ["bash", "-c", argv]
        fields: dict[str, Any] = {
            "run_id": "run1",
            "step_id": "prepare",
            "attempt": 1,
            "argv": argv,
            "env": {},
            "workspace": Workspace(),
            "timeout_s": 10.0,
            "outputs_schema": None,
            "log_key": "run1/prepare/1",
        }
        fields.update(kw)
        return StepTask(**fields)

    async def run(self, task: StepTask, **kw: Any) -> Any:
        kw.setdefault("kill_grace_s", 0.5)
        tools = WorkerTools("host-42", self.logs, self.workspaces, **kw)
        return await run_attempt(task, executor_for(task), tools)

    def log(self, key: str = "run1/prepare/1") -> list[tuple[str, str]]:
        page = self.logs.read(key, limit=10_000)
        return [(line.stream, line.text) for line in page.lines]

    def snapshot(self, files: dict[str, str]) -> str:
        src = self.root / "project"
        for name, text in files.items():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_text(text)
        digest = snapshot_directory(src, self.root / "snap.tar.gz")
        key = f"snapshots/{digest}.tar.gz"
        self.blobs.put_file(key, self.root / "snap.tar.gz")
        return key

    def attempts_left(self) -> list[Path]:
        attempts = self.workspaces.root / "attempts"
        return list(attempts.iterdir()) if attempts.exists() else []


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


async def test_success_with_json_outputs(env: Env) -> None:
    schema = {"type": "object", "properties": {"seed": {"type": "integer"}}}
    task = env.task(
        'echo working; echo \'{"seed": 42, "cases": ["leo"]}\' > "$LOCKSTEP_OUTPUTS"',
        outputs_schema=schema,
        attempt=2,
        log_key="run1/prepare/2",
    )
    result = await env.run(task)
    assert result.ok, result
    assert result.outputs == {"seed": 42, "cases": ["leo"]}
    assert (result.exit_code, result.error, result.timed_out) == (0, None, False)
    assert result.worker == "host-42"
    assert ISO_UTC.fullmatch(result.started_at) and ISO_UTC.fullmatch(result.finished_at)
    assert result.started_at <= result.finished_at
    log = env.log("run1/prepare/2")
    assert log[0] == ("sys", "attempt 2 on worker host-42")
    assert log[1] == ("out", "working")
    assert re.fullmatch(r"exit code 0 in \d+\.\ds", log[2][1]) and log[2][0] == "sys"
    assert env.attempts_left() == []  # attempt dir and outputs dir are gone


async def test_key_value_outputs(env: Env) -> None:
    script = 'printf "n=3\\nname=hello world\\nflag=true\\nv=1.10\\n" >> "$LOCKSTEP_OUTPUTS"'
    result = await env.run(env.task(script))
    assert result.ok
    assert result.outputs == {"n": "3", "name": "hello world", "flag": "true", "v": "1.10"}
    # the step's outputs schema reaches the worker and types what it declares
    typed = {
        "type": "object",
        "properties": {"n": {"type": "integer"}, "flag": {"type": "boolean"}},
    }
    result = await env.run(env.task(script, outputs_schema=typed))
    assert result.ok
    assert result.outputs == {"n": 3, "name": "hello world", "flag": True, "v": "1.10"}


@pytest.mark.parametrize(
    ("script", "schema", "error"),
    [
        (
            'echo "seed=abc" > "$LOCKSTEP_OUTPUTS"',
            {"type": "object", "properties": {"seed": {"type": "integer"}}},
            "$LOCKSTEP_OUTPUTS line 1: output 'seed' must be an integer (its type in the "
            "step's outputs schema)",
        ),
        (
            'echo \'{"seed": "abc"}\' > "$LOCKSTEP_OUTPUTS"',
            {"type": "object", "properties": {"seed": {"type": "integer"}}},
            "step 'prepare' output /seed: must be of type integer",
        ),
        (
            'printf "ok=1\\nnot a pair\\n" > "$LOCKSTEP_OUTPUTS"',
            None,
            "$LOCKSTEP_OUTPUTS line 2: expected key=value",
        ),
        (
            'head -c 2000000 /dev/zero | tr "\\0" x | sed "s/^/v=/" > "$LOCKSTEP_OUTPUTS"',
            None,
            "$LOCKSTEP_OUTPUTS is larger than 1 MiB; write large results to a file and "
            "declare it as an artifact",
        ),
    ],
)
async def test_bad_outputs_fail_the_step(
    env: Env, script: str, schema: dict[str, Any] | None, error: str
) -> None:
    result = await env.run(env.task(script, outputs_schema=schema))
    assert (result.ok, result.exit_code, result.error, result.outputs) == (False, 0, error, {})
    assert ("sys", error) in env.log()


async def test_environment_is_exact_and_minimal(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_SECRET", "must-not-leak")
    hostile = {
        "A": '"; curl x|sh #',
        "B": "$(id) `id`",
        "C": "two\nlines",
        "D": "x=y=z",
        "LOCKSTEP_OUTPUTS": "/tmp/elsewhere",  # a task cannot redirect outputs
    }
    # /proc/self/environ is the block the process was started with, before any interpreter
    # adjusts its own environment.
    code = (
        "import json; raw = open('/proc/self/environ', 'rb').read().decode();"
        "print(json.dumps([kv.split('=', 1) for kv in raw.split('\\0')[:-1]]))"
    )
    task = env.task([sys.executable, "-c", code], env=hostile, attempt=3, log_key="run1/prepare/3")
    result = await env.run(task)
    assert result.ok, result
    pairs = json.loads(env.log("run1/prepare/3")[1][1])
    seen = dict(pairs)
    assert len(seen) == len(pairs)  # each variable exactly once
    workspace = seen["LOCKSTEP_WORKSPACE"]
    outputs = seen["LOCKSTEP_OUTPUTS"]
    expected = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    expected |= {k: v for k, v in hostile.items() if k != "LOCKSTEP_OUTPUTS"}
    expected |= {
        "LOCKSTEP_OUTPUTS": outputs,
        "LOCKSTEP_RUN_ID": "run1",
        "LOCKSTEP_STEP_ID": "prepare",
        "LOCKSTEP_ATTEMPT": "3",
        "LOCKSTEP_WORKSPACE": workspace,
    }
    assert seen == expected
    assert outputs != "/tmp/elsewhere"
    assert not Path(outputs).is_relative_to(workspace)
    assert Path(workspace).parent == env.workspaces.root / "attempts"


async def test_cwd_is_the_private_workspace_copy(env: Env) -> None:
    key = env.snapshot({"data.txt": "orig", "sub/x.txt": "x"})
    result = await env.run(
        env.task('[ "$PWD" = "$LOCKSTEP_WORKSPACE" ] && cat data.txt', workspace=Workspace(key))
    )
    assert result.ok, env.log()
    assert ("out", "orig") in env.log()


async def test_parallel_attempts_never_see_each_others_writes(env: Env) -> None:
    key = env.snapshot({"data.txt": "orig"})
    script = (
        'echo "$LOCKSTEP_ATTEMPT" >> data.txt; touch "mine-$LOCKSTEP_ATTEMPT"; '
        "while [ $(ls mine-* 2>/dev/null | wc -l) -lt 1 ]; do :; done; "
        'echo "content=$(tr "\\n" , < data.txt)" > "$LOCKSTEP_OUTPUTS"; '
        'echo "files=$(ls | tr "\\n" ,)" >> "$LOCKSTEP_OUTPUTS"'
    )
    tasks = [
        env.task(script, attempt=i, workspace=Workspace(key), log_key=f"run1/prepare/{i}")
        for i in range(1, 5)
    ]
    results = await asyncio.gather(*(env.run(t) for t in tasks))
    for i, result in enumerate(results, start=1):
        assert result.ok, env.log(f"run1/prepare/{i}")
        assert result.outputs == {"content": f"orig{i},", "files": f"data.txt,mine-{i},"}
    again = await env.run(env.task("cat data.txt", workspace=Workspace(key)))
    assert again.ok and env.log()[-2] == ("out", "orig")


@pytest.mark.parametrize(
    ("script", "exit_code", "error"),
    [
        ("exit 3", 3, "exited with code 3"),
        ("kill -KILL $$", 137, "killed by signal SIGKILL"),
    ],
)
async def test_failing_step(env: Env, script: str, exit_code: int, error: str) -> None:
    result = await env.run(env.task(f"echo '{{\"x\": 1}}' > $LOCKSTEP_OUTPUTS; {script}"))
    assert (result.ok, result.exit_code, result.error, result.outputs) == (
        False,
        exit_code,
        error,
        {},
    )
    assert env.attempts_left() == []


async def test_command_not_found(env: Env) -> None:
    result = await env.run(env.task(["no-such-tool-xyz", "--flag"]))
    assert not result.ok and result.exit_code is None
    assert result.error == "cannot start 'no-such-tool-xyz': No such file or directory"
    assert env.log()[-1] == ("sys", f"{result.error} (0.0s)")


async def test_timeout(env: Env) -> None:
    result = await env.run(env.task("trap '' TERM; sleep 100 & sleep 100", timeout_s=1.0))
    assert (result.ok, result.timed_out, result.error) == (False, True, "timed out after 1s")
    assert env.attempts_left() == []


async def test_cancellation_propagates_after_killing_the_step(env: Env) -> None:
    marker = env.root / "pgid"
    task = asyncio.create_task(env.run(env.task(f"echo $$ > {marker}; sleep 100", timeout_s=None)))
    await await_for(lambda: marker.exists() and marker.read_text().strip(), timeout=5)
    pgid = int(marker.read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(ProcessLookupError):
        os.kill(pgid, 0)  # the direct child was ours, so it has been reaped
    assert env.attempts_left() == []
    assert env.log()[-1] == ("sys", "cancelled")


class _BrokenBlobs(DirectoryBlobStore):
    def open(self, key: str) -> BinaryIO:
        raise RuntimeError("disk on fire\nTraceback (most recent call last): ...")


async def test_internal_errors_become_one_line_results(env: Env) -> None:
    missing = await env.run(env.task("true", workspace=Workspace("snapshots/gone")))
    assert (missing.ok, missing.error) == (False, "blob 'snapshots/gone' not found")

    broken = WorkspaceManager(env.root / "ws2", _BrokenBlobs(env.root / "blobs"))
    task = env.task("true", workspace=Workspace("snapshots/x"))
    result = await run_attempt(task, executor_for(task), WorkerTools("w", env.logs, broken))
    assert not result.ok
    assert result.error == (
        "internal error: RuntimeError: disk on fire Traceback (most recent call last): ..."
    )
    assert result.worker == "w" and result.finished_at

    bad_key = await env.run(env.task("true", log_key="../escape"))
    assert not bad_key.ok and bad_key.error and bad_key.error.startswith("invalid log key")
