"""The per-attempt supervisor: the parent of a step's processes, and the only thing that ends them.

Run as a script (``python -I -S supervisor.py CTL_FD DRAIN_S DEADLINE UNSET -- argv...``), it
forks the step's command (in a session of its own) and stays its parent. It is a child
subreaper (``PR_SET_CHILD_SUBREAPER``), so whatever the step starts — a ``setsid`` daemon, a
double fork, ``nohup … &`` — is adopted by it when its own parent goes, and is killed with the
attempt instead of being inherited by init:

- when the main process exits, leftovers get ``DRAIN_S`` seconds, then SIGKILL;
- ``term`` / ``kill`` lines on the control pipe send SIGTERM / SIGKILL to every descendant;
- end of file on the control pipe means the worker is gone (however it died): SIGKILL all;
- ``deadline T`` lines move a deadline on CLOCK_MONOTONIC (the worker's ``time.monotonic()``),
  set from the last heartbeat the server acknowledged. When it passes, the worker is frozen or
  cut off and the engine is about to start the step elsewhere: SIGKILL all, before that.

It exits only when no descendant is left, with the main process's status (a signal death is
reproduced as one). Only the standard library is imported, for a fast start.

``supervisor.py --container URL CID CTL_FD DEADLINE`` watches a container step instead: its
processes belong to the container runtime, so on the same deadline, or at end of file on the
control pipe, it kills container CID through the Docker API at URL (at end of file, the worker
being gone, it removes it too: nobody is left to); a ``done`` line ends it quietly.
"""

from __future__ import annotations

import os
import select
import sys
import time

_PR_SET_CHILD_SUBREAPER = 36
_SIGKILL = 9
_SIGTERM = 15
_POLL_S = 0.05
#: exit status when the deadline passed: the attempt is lost (the worker checks its own clock)
LOST_EXIT = 125


_libc = None  # loaded once by a zygote, before it forks supervisors


def _subreaper() -> None:
    global _libc
    if _libc is None:
        import ctypes

        _libc = ctypes.CDLL(None, use_errno=True)
    _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):  # noqa: PTH208 - pathlib would slow the start
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            tree.setdefault(int(fields[1]), []).append(int(name))
    return tree


def descendants(root: int) -> list[int]:
    """Every process below ``root``, parents before children."""
    tree = _children_of()
    found: list[int] = []
    todo = list(tree.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(tree.get(pid, []))
    return found


def _signal_all(sig: int) -> None:
    for pid in descendants(os.getpid()):
        try:  # noqa: SIM105 - contextlib would slow the start
            os.kill(pid, sig)
        except OSError:
            pass


def _reap(main: int, status: int | None) -> tuple[int | None, bool]:
    """Collect exited children; (the main process's wait status if known, any child left)."""
    while True:
        try:
            pid, st = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status, False
        if pid == 0:
            return status, True
        if pid == main:
            status = st


def _exit_like(status: int) -> None:
    if os.WIFSIGNALED(status):
        import resource
        import signal

        sig = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if sig != _SIGKILL:
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


def _exec(argv: list[str], unset: list[str], env: dict[str, str] | None) -> None:
    """Become the step's command with exactly the environment the worker gave (``env``, or
    this process's own when it was started with it)."""
    import _signal  # type: ignore[import-not-found]  # signal would import enum: slower

    # What Python set up for itself must not reach the step: ignored signals survive exec,
    # and locale coercion (PEP 538) adds LC_CTYPE when the environment had none.
    for sig in (_signal.SIGPIPE, _signal.SIGXFSZ):
        _signal.signal(sig, _signal.SIG_DFL)
    for name in unset:
        os.environ.pop(name, None)
    os.setsid()  # the step's own group: its "kill 0" cannot reach this supervisor
    if env is not None:
        os.execvpe(argv[0], argv, env)  # noqa: S606 - the step's own argv, as given
    os.execvp(argv[0], argv)  # noqa: S606 - the step's own argv, as given


def _read_orders(ctl: int, pending: bytes) -> tuple[list[tuple[str, str]], bytes, bool]:
    """The whole order lines (``word arg``) now readable on the control pipe, the start of
    a line still to come, and whether the pipe reached its end (the worker is gone)."""
    data = os.read(ctl, 4096)
    *lines, pending = (pending + data).split(b"\n")
    orders = []
    for line in lines:
        word, _, arg = line.decode().partition(" ")
        orders.append((word, arg))
    return orders, pending, not data


def supervise(
    ctl: int,
    drain_s: float,
    deadline: float,
    unset: list[str],
    argv: list[str],
    env: dict[str, str] | None = None,
    report: int = -1,
) -> None:
    """Run ``argv`` and outlive everything it starts. With ``report`` (a zygote's child), the
    outcome is written there as ``exit CODE`` (a signal death as ``-N``) instead of reproduced
    by this process's own exit status, which only the zygote could read."""
    _subreaper()
    main = os.fork()
    if main == 0:
        try:
            os.close(ctl)
            if report >= 0:
                os.close(report)
            _exec(argv, unset, env)
        except (OSError, ValueError) as exc:
            why = getattr(exc, "strerror", None) or exc
            os.write(2, f"cannot start {argv[0]!r}: {why}\n".encode())
        finally:
            os._exit(127)
    # readable once the main process has exited: no polling while the step runs
    exited = os.pidfd_open(main)
    status: int | None = None
    drain_until = 0.0
    killing = lost = False
    pending = b""
    while True:
        status, left = _reap(main, status)
        if not left:  # orphans are adopted by us: no child means no descendant at all
            break
        now = time.monotonic()
        if status is not None and not drain_until:
            drain_until = now + drain_s
        if not killing and (now >= deadline or (drain_until and now >= drain_until)):
            killing, lost = True, now >= deadline
        if killing:
            _signal_all(_SIGKILL)
        wait = _POLL_S if killing or drain_until else max(0.0, deadline - now)
        watched = [fd for fd in (ctl, -1 if drain_until else exited) if fd >= 0]
        ready = select.select(watched, [], [], min(wait, 3600.0))[0]
        if ctl in ready:
            orders, pending, gone = _read_orders(ctl, pending)
            if gone:  # the worker is gone, however it died
                os.close(ctl)
                ctl, killing = -1, True
            for word, arg in orders:
                if word == "deadline":
                    deadline = float(arg)
                elif word == "term":
                    _signal_all(_SIGTERM)
                elif word == "kill":
                    killing = True
    final = status if status is not None else _SIGKILL
    if report >= 0:
        code = LOST_EXIT if lost else os.waitstatus_to_exitcode(final)
        _say(report, f"exit {code}")
        os._exit(0)
    if lost:
        os._exit(LOST_EXIT)
    _exit_like(final)


def _say(fd: int, line: str) -> None:
    try:  # noqa: SIM105 - contextlib would slow the start
        os.write(fd, line.encode() + b"\n")
    except OSError:  # the worker is gone: nobody to tell
        pass


#: the largest request a zygote takes (argv and environment as JSON); bigger ones are spawned
#: the slow way by the worker
ZYGOTE_MAX_REQUEST = 192 * 1024


def zygote(sock_fd: int) -> None:
    """Fork a supervisor for each request on ``sock_fd`` (a SOCK_SEQPACKET socket to the
    worker): the interpreter starts once per worker instead of once per attempt. A request is
    JSON (argv, env, cwd, drain, deadline) with four descriptors: the step's stdout and stderr,
    the control pipe's read end and a report pipe, on which the child says ``started`` (or
    ``nostart ERRNO``) and at the end ``exit CODE``. The zygote ends when the worker does (end
    of file); its children do not depend on it."""
    import ctypes
    import json
    import signal
    import socket

    global _libc
    _libc = ctypes.CDLL(None, use_errno=True)
    sock = socket.socket(fileno=sock_fd)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps our children
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, ZYGOTE_MAX_REQUEST, 4)
        except OSError:
            break
        if not msg:
            break
        if len(fds) == 4 and os.fork() == 0:
            try:
                sock.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                _zygote_child(json.loads(msg), *fds)
            finally:
                os._exit(126)
        for fd in fds:
            os.close(fd)
    os._exit(0)


def _zygote_child(req: dict, out: int, err: int, ctl: int, report: int) -> None:  # type: ignore[type-arg]
    os.setsid()  # as the worker's own spawns are: no terminal, no signals of the zygote's group
    null = os.open(os.devnull, os.O_RDONLY)
    for fd, target in ((null, 0), (out, 1), (err, 2)):
        os.dup2(fd, target)
        os.close(fd)
    if "container" in req:  # a container step's watchdog
        _say(report, "started")
        url, cid = req["container"]
        watch_container(url, cid, ctl, req["deadline"])
        _say(report, "exit 0")
        os._exit(0)
    try:
        os.chdir(req["cwd"])
    except OSError as exc:
        _say(report, f"nostart {exc.errno}")
        os._exit(0)
    _say(report, "started")
    supervise(ctl, req["drain"], req["deadline"], [], req["argv"], req["env"], report)


def _docker_kill(url: str, cid: str, remove: bool = False) -> None:
    import http.client
    import socket

    class _Unix(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(self.timeout)
            self.sock.connect(url.removeprefix("unix://"))

    if url.startswith("unix://"):
        conn: http.client.HTTPConnection = _Unix("localhost", timeout=30)
    else:  # tcp://host:port or http://host:port (a TLS endpoint is not reached from here)
        conn = http.client.HTTPConnection(url.split("://", 1)[-1].rstrip("/"), timeout=30)
    try:
        conn.request("POST", f"/containers/{cid}/kill?signal=KILL")
        conn.getresponse().read()
        if remove:
            conn.close()  # a connection of its own (it opens again on the request)
            conn.request("DELETE", f"/containers/{cid}?force=1&v=1")
            conn.getresponse().read()
    except OSError as exc:
        os.write(2, f"supervisor: cannot kill container {cid[:12]}: {exc}\n".encode())
    finally:
        conn.close()


def watch_container(url: str, cid: str, ctl: int, deadline: float) -> None:
    pending, gone = b"", False
    while True:
        wait = deadline - time.monotonic()
        if wait <= 0 or not select.select([ctl], [], [], min(wait, 3600.0))[0]:
            if time.monotonic() >= deadline:
                break
            continue
        orders, pending, gone = _read_orders(ctl, pending)
        if gone:  # the worker is gone, however it died
            break
        for word, arg in orders:
            if word == "deadline":
                deadline = float(arg)
            elif word == "done":
                return
    _docker_kill(url, cid, remove=gone)
    os._exit(LOST_EXIT)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--zygote"]:
        zygote(int(sys.argv[2]))
    if sys.argv[1:2] == ["--container"]:
        url, cid, ctl_fd, until = sys.argv[2:]
        watch_container(url, cid, int(ctl_fd), float(until))
        sys.exit(0)
    ctl_fd, drain, until, unset, sep, *command = sys.argv[1:]
    if sep != "--" or not command:
        sys.exit("usage: supervisor.py CTL_FD DRAIN_S DEADLINE UNSET -- argv...")
    names = [name for name in unset.split(",") if name]
    supervise(int(ctl_fd), float(drain), float(until), names, command)
