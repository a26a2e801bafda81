"""How long the CLI takes to read records without a server, against its own start-up floor.

Times (median of R runs each, default 5) `lockstep version` (the floor: interpreter, Typer,
settings), and on a home with no server: `runs list` on a fresh directory (no home yet),
`runs list` on a home holding N runs (default 20), `runs show` of one of them and of an
unknown id. A read must not start the engine; the target is 1 s for each read.

Beside the wall time it prints the CPU time (user + system) of each command: on a machine
that others load, the wall time grows with their load, while the CPU time stays close to
what a quiet machine's wall time would be.

    python bench/cli_reads.py [--runs 20] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent / "lockstep"
TARGET_S = 1.0


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKSTEP_")}
    return {**env, "LOCKSTEP_HOME": str(home)}


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _timed(args: list[str], env: dict[str, str], cwd: Path, repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``lockstep ARGS``."""
    walls, cpus = [], []
    for _ in range(repeat):
        started, cpu = time.perf_counter(), _cpu()
        # an unknown id exits 1: what is timed is the answer, whatever it is
        subprocess.run([str(BIN), *args], env=env, cwd=cwd, check=False, capture_output=True)
        walls.append(time.perf_counter() - started)
        cpus.append(_cpu() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home = root / "home"
        wf = root / "wf" / "workflow.yaml"
        wf.parent.mkdir()
        wf.write_text("name: bench\nsteps:\n  a: {uses: noop}\n")
        for _ in range(args.runs):
            subprocess.run(
                [str(BIN), "run", str(wf), "--json"],
                env=_env(home),
                check=True,
                capture_output=True,
            )
        listed = subprocess.run(
            [str(BIN), "runs", "list", "--json"], env=_env(home), capture_output=True, check=True
        )
        run_id = json.loads(listed.stdout)[0]["id"]
        fresh = root / "fresh"
        fresh.mkdir()
        unknown = ["runs", "show", "rzzzzzzzzzzzzzzzz"]
        rows = [
            ("lockstep version (floor)", _timed(["version"], _env(home), root, args.repeat)),
            (
                "runs list, fresh directory",
                _timed(["runs", "list"], _env(fresh / ".lockstep"), fresh, args.repeat),
            ),
            (
                f"runs list, {args.runs} runs",
                _timed(["runs", "list"], _env(home), root, args.repeat),
            ),
            ("runs show ID", _timed(["runs", "show", run_id], _env(home), root, args.repeat)),
            ("runs show UNKNOWN", _timed(unknown, _env(home), root, args.repeat)),
        ]
    floor = rows[0][1][0]
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'command':32} {'median s':>9} {'vs floor':>9} {'target':>7} {'cpu s':>7}")
    for name, (secs, cpu) in rows:
        verdict = "" if name.endswith("(floor)") else ("ok" if secs <= TARGET_S else "over")
        print(f"{name:32} {secs:9.2f} {secs / floor:8.1f}x {verdict:>7} {cpu:7.2f}")


if __name__ == "__main__":
    main()
