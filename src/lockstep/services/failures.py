"""What a failed step last wrote to stderr, attached to its record for the run's summary
(``lockstep run``, ``lockstep runs show``), as CI services show a failing job's last lines."""

from __future__ import annotations

from lockstep.engine.states import StepStatus
from lockstep.errors import LockstepError
from lockstep.records import RunRecord
from lockstep.storage.logs import LogStore

#: at most this many failed steps get a tail, and each at most this many lines
TAIL_STEPS = 5
TAIL_LINES = 10
#: a longer line is cut (with "..."): a tail is a hint, the whole line is in the logs
TAIL_LINE_CHARS = 400


def with_stderr_tails(run: RunRecord, logs: LogStore) -> RunRecord:
    """``run`` with ``stderr_tail`` set on its first failed steps (from each one's last
    attempt); reads at most a bounded window at the end of each of their logs."""
    failed = [
        (sid, st) for sid, st in run.steps.items() if st.status == StepStatus.FAILED and st.history
    ]
    if not failed:
        return run
    steps = dict(run.steps)
    for sid, step in failed[:TAIL_STEPS]:
        try:
            lines = logs.tail(step.history[-1].log_key, "err", TAIL_LINES)
        except (LockstepError, OSError):
            continue  # the summary goes without it; `runs logs` says what is wrong
        if lines:
            steps[sid] = step.model_copy(update={"stderr_tail": [_clip(t) for t in lines]})
    return run.model_copy(update={"steps": steps})


def _clip(text: str) -> str:
    return text if len(text) <= TAIL_LINE_CHARS else text[: TAIL_LINE_CHARS - 3] + "..."
