"""Artifact throughput of lockstep against a plain copy on the same disk, in one invocation.

Generates TOTAL MB of random (incompressible) data in FILES files once, in a temporary
directory on the same filesystem as the lockstep home, then times:
  * the floors: `cp -r` of the directory (the reference of "vs floor"), the same followed by an
    fsync of every copy (lockstep fsyncs each blob), and `tar czf` (gzip -6) of it, since a
    directory artifact is stored as a tar.gz;
  * two components of what lockstep does, measured in this process: Python's
    `tarfile.open(mode="w:gz")` (gzip level 9 by default; lockstep samples the data and uses
    level 1, or 0 when a sample does not shrink) and SHA-256 of the data;
  * through a real `lockstep server`, one run per layout: a step whose work is `cp -r` of the
    data into its workspace and which declares it (a) as one directory artifact (tar.gz) and
    (b) as FILES single-file artifacts (each stored as itself), then a consumer step with
    `inputs: {artifacts: [...]}` that counts the placed files, and a twin of the consumer
    without inputs (the baseline of starting a step). Phases come from the worker's log
    timestamps: store = "exit code 0" -> "stored N artifact(s)" line of the producer;
    placement = (attempt start -> first line of the consumer) - (the same for its twin);
  * the download of the stored artifacts over the API (streamed, sequentially);
  * with --s3, the same lockstep phases with the artifacts in S3 (moto's server on loopback).

MB are MiB (2**20 bytes) of payload; "vs floor" is seconds / seconds of `cp -r`. It needs about
(4 + 2 x repeat) x TOTAL MB of free disk (and, with --s3, 2 x repeat x TOTAL MB of memory).

    python bench/artifact_throughput.py [--total-mb 1024] [--files 100] [--repeat 1] [--s3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._server import start_server  # noqa: E402

MB = 1024 * 1024
#: a consumer names at most this many artifacts (InputsSpec.artifacts max_length)
MAX_INPUTS = 100
#: lockstep's default LOCKSTEP_HEARTBEAT_TIMEOUT: no heartbeat is sent while artifacts are
#: stored or placed, so a phase longer than this fails the attempt as "worker lost" at defaults
DEFAULT_HEARTBEAT_S = 30.0
_CHUNK = 4 * MB

Row = tuple[str, float, list[float]]  # phase, MB, seconds of each repeat (none: it failed)


class RunFailed(Exception):
    """A lockstep run of the bench did not succeed (the table says so and goes on)."""


# -- data and floors -----------------------------------------------------------------------


def generate(dest: Path, total_mb: int, files: int) -> int:
    """FILES files of random bytes adding up to TOTAL MB; returns the byte count."""
    dest.mkdir()
    total = total_mb * MB
    for i in range(files):
        size = total // files + (total % files if i == files - 1 else 0)
        with (dest / f"f{i:04d}.bin").open("wb") as out:
            while size > 0:
                n = min(size, _CHUNK)
                out.write(os.urandom(n))
                size -= n
    return total


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def sha256_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            digest = hashlib.sha256()
            with path.open("rb") as f:
                while chunk := f.read(MB):
                    digest.update(chunk)


def floors(src: Path, scratch: Path) -> dict[str, float]:
    """Seconds of each floor and component, each on a fresh destination that is then removed."""
    dst = scratch / "copy"
    archive = scratch / "data.tar.gz"
    out: dict[str, float] = {}
    out["cp"] = timed(lambda: subprocess.run(["cp", "-r", str(src), str(dst)], check=True))
    shutil.rmtree(dst)

    def cp_fsync() -> None:
        subprocess.run(["cp", "-r", str(src), str(dst)], check=True)
        fsync_tree(dst)

    out["cp_fsync"] = timed(cp_fsync)
    shutil.rmtree(dst)
    tar = ["tar", "czf", str(archive), "-C", str(src.parent), src.name]
    out["tar_czf"] = timed(lambda: subprocess.run(tar, check=True))
    archive.unlink()

    def tarfile_gz() -> None:
        with tarfile.open(archive, "w:gz") as t:
            t.add(src, arcname=src.name)

    out["tarfile"] = timed(tarfile_gz)
    archive.unlink()
    out["sha256"] = timed(lambda: sha256_tree(src))
    return out


# -- lockstep ------------------------------------------------------------------------------


def spec(src: Path, files: int, *, per_file: bool) -> str:
    """Producer `make` (cp -r, then artifacts), consumer `use` and its input-less twin `base`."""
    names = [f"f{i:04d}" for i in range(files)]
    if per_file:
        declared = "".join(f"      {n}: data/{n}.bin\n" for n in names)
        inputs = ", ".join(f"make.{n}" for n in names)
    else:
        declared, inputs = "      data: data\n", "make.data"
    count = (
        '      echo placed\n      echo "files=$(find . -type f | wc -l)" >> "$LOCKSTEP_OUTPUTS"\n'
    )
    return (
        f"name: bench-artifacts-{'files' if per_file else 'tar'}\n"
        "steps:\n"
        "  make:\n"
        "    run: |\n"
        "      echo copy-start\n"
        f"      cp -r {shlex.quote(str(src))} data\n"
        "      echo copy-done\n"
        "    artifacts:\n"
        f"{declared}"
        "  use:\n"
        "    needs: [make]\n"
        f"    inputs: {{artifacts: [{inputs}]}}\n"
        f"    run: |\n{count}"
        "  base:\n"
        "    needs: [use]\n"
        f"    run: |\n{count}"
    )


def run_and_wait(http: httpx.Client, text: str) -> dict[str, Any]:
    run_id = http.post("/runs", json={"spec": text}).raise_for_status().json()["id"]
    while True:
        run: dict[str, Any] = http.get(f"/runs/{run_id}").raise_for_status().json()
        if run["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.1)
    if run["status"] != "succeeded":
        why = "; ".join(
            f"step {sid} ({s['attempts']} attempt(s)): {s['error']}"
            for sid, s in run["steps"].items()
            if s["error"]
        )
        raise RunFailed(f"run {run_id} {run['status']}: {why or run['error']}")
    for sid, step in run["steps"].items():
        if step["attempts"] != 1:
            print(f"warning: step {sid} of run {run_id} took {step['attempts']} attempts")
    return run


def log_times(http: httpx.Client, run_id: str, step: str) -> dict[str, datetime]:
    """When the last attempt of ``step`` logged each line, by the line's first word."""
    page = http.get(f"/runs/{run_id}/logs", params={"step": step, "limit": 10_000}).json()
    last = max(line["attempt"] for line in page["lines"])
    seen: dict[str, datetime] = {}
    for line in page["lines"]:
        if line["attempt"] == last and line["text"]:
            seen.setdefault(line["text"].split()[0], datetime.fromisoformat(line["ts"]))
    return seen


def seconds(times: dict[str, datetime], start: str, end: str) -> float:
    return (times[end] - times[start]).total_seconds()


def download(http: httpx.Client, run_id: str, names: list[str]) -> tuple[float, int]:
    """Seconds to stream each artifact of `make` to nowhere, and the bytes received."""
    received = 0
    t0 = time.perf_counter()
    for name in names:
        with http.stream("GET", f"/runs/{run_id}/artifacts/make/{name}") as resp:
            resp.raise_for_status()
            for chunk in resp.iter_raw(MB):
                received += len(chunk)
    return time.perf_counter() - t0, received


def lockstep_once(
    http: httpx.Client, src: Path, files: int, per_file: bool, total: int
) -> dict[str, float]:
    run = run_and_wait(http, spec(src, files, per_file=per_file))
    rid = run["id"]
    seen = {sid: int(run["steps"][sid]["outputs"]["files"]) for sid in ("use", "base")}
    if seen["use"] - seen["base"] != files:
        raise RunFailed(f"run {rid}: the consumer found {seen} files, expected {files} more")
    listed = http.get(f"/runs/{rid}/artifacts").json()
    if per_file and sum(a["size"] for a in listed) != total:
        raise RunFailed(f"run {rid}: stored {sum(a['size'] for a in listed)} of {total} bytes")
    make, use, base = (log_times(http, rid, s) for s in ("make", "use", "base"))
    api_s, received = download(http, rid, [a["name"] for a in listed])
    if received != sum(a["size"] for a in listed):
        raise RunFailed(f"run {rid}: downloaded {received} bytes, listed otherwise")
    return {
        "cp": seconds(make, "copy-start", "copy-done"),
        "store": seconds(make, "exit", "stored"),
        "place": seconds(use, "attempt", "placed") - seconds(base, "attempt", "placed"),
        "api": api_s,
        "stored_mb": sum(a["size"] for a in listed) / MB,
    }


@contextmanager
def server(home: Path, **env: str) -> Iterator[httpx.Client]:
    home.mkdir()
    proc, http, _ = start_server(home, **env)
    try:
        # warm-up: imports, sandbox, first workflow task, first blob
        run_and_wait(http, "name: warm\nsteps:\n  a: {run: touch x, artifacts: {x: x}}\n")
        yield http
    finally:
        http.close()
        proc.send_signal(signal.SIGINT)
        proc.wait(60)


def lockstep_rows(
    http: httpx.Client, where: str, src: Path, files: int, total: int, repeat: int
) -> list[Row]:
    mb = total / MB
    layouts = [(False, "1 dir artifact (tar.gz)")]
    if files <= MAX_INPUTS:
        layouts.append((True, f"{files} file artifacts"))
    else:
        print(f"note: {files} files > {MAX_INPUTS} inputs a step may name; per-file run skipped")
    rows: list[Row] = []
    for per_file, label in layouts:
        try:
            runs = [lockstep_once(http, src, files, per_file, total) for _ in range(repeat)]
        except RunFailed as exc:
            print(f"{where}, {label}: FAILED: {exc}")
            rows.append((f"{where} store + placement: {label}", mb, []))
            continue
        cp = statistics.median(r["cp"] for r in runs)
        stored = statistics.median(r["stored_mb"] for r in runs)
        print(f"{where}, {label}: the producer's cp -r took {cp:.2f}s; stored {stored:.1f} MB")
        rows.append((f"{where} store: {label}", mb, [r["store"] for r in runs]))
        rows.append((f"{where} placement: {label}", mb, [r["place"] for r in runs]))
        rows.append((f"{where} API download: {label}", mb, [r["api"] for r in runs]))
    return rows


# -- main ----------------------------------------------------------------------------------


def table(rows: list[Row], floor_s: float) -> str:
    lines = ["| phase | MB | seconds | MB/s | vs floor |", "|---|---:|---:|---:|---:|"]
    marked = False
    for phase, mb, times in rows:
        if not times:
            lines.append(f"| {phase} | {mb:.0f} | failed (see above) | - | - |")
            continue
        s = statistics.median(times)
        rate = f"{mb / s:.0f}" if s > 0 else "-"
        in_attempt = " store: " in phase or " placement: " in phase
        mark = " †" if in_attempt and s > DEFAULT_HEARTBEAT_S else ""
        marked = marked or bool(mark)
        lines.append(f"| {phase} | {mb:.0f} | {s:.2f}{mark} | {rate} | {s / floor_s:.2f}x |")
    if marked:
        lines.append(
            f"\n† over {DEFAULT_HEARTBEAT_S:g}s, lockstep's default heartbeat timeout: with it "
            "the attempt fails as 'worker lost' (run with --heartbeat-timeout 30 to see it)"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-mb", type=int, default=1024)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--s3", action="store_true", help="also with the artifacts in S3 (moto)")
    parser.add_argument(
        "--heartbeat-timeout",
        type=float,
        default=600,
        help="LOCKSTEP_HEARTBEAT_TIMEOUT of the bench's server, in seconds (lockstep's default, "
        "30, fails an attempt whose artifacts take longer than that to store or place)",
    )
    args = parser.parse_args()
    if args.files < 1 or args.total_mb < 1:
        parser.error("--files and --total-mb must be at least 1")

    work = Path(tempfile.mkdtemp(prefix="lockstep-bench-art-"))
    try:
        src = work / "data"
        t_gen = timed(lambda: generate(src, args.total_mb, args.files))
        total = args.total_mb * MB
        print(f"generated {args.total_mb} MB in {args.files} files in {t_gen:.2f}s under {work}")
        mb = total / MB

        measured = [floors(src, work) for _ in range(args.repeat)]
        f = {k: [m[k] for m in measured] for k in measured[0]}
        rows: list[Row] = [
            ("floor: cp -r", mb, f["cp"]),
            ("floor: cp -r, then fsync each file", mb, f["cp_fsync"]),
            ("floor: tar czf (gzip -6)", mb, f["tar_czf"]),
            ("component: Python tarfile w:gz (level 9; lockstep: 1, or 0)", mb, f["tarfile"]),
            ("component: SHA-256 (hashlib)", mb, f["sha256"]),
        ]
        beat = {"LOCKSTEP_HEARTBEAT_TIMEOUT": str(args.heartbeat_timeout)}
        with server(work / "home", **beat) as http:
            rows += lockstep_rows(http, "lockstep", src, args.files, total, args.repeat)
        if args.s3:
            from tests.s3 import CREDENTIALS, s3_server  # the tests' recipe for moto

            (work / "s3").mkdir()
            with s3_server(work / "s3") as s3:
                env = {
                    "LOCKSTEP_ARTIFACTS": f"s3://{s3.bucket}/bench",
                    "LOCKSTEP_S3_ENDPOINT": s3.endpoint,
                    **CREDENTIALS,
                    **beat,
                }
                with server(work / "home-s3", **env) as http:
                    rows += lockstep_rows(http, "S3", src, args.files, total, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{args.total_mb} MB of random data in {args.files} files, median of {args.repeat}\n")
    print(table(rows, statistics.median(f["cp"])))


if __name__ == "__main__":
    main()
