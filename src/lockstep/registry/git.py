"""A hardened git runner and the per-repository bare mirrors workflow files are read from.

git is always spawned with an argv list (never a shell), a fresh minimal environment, no
readable user or system config, hooks pointed at /dev/null, prompts disabled, an explicit
protocol allowlist, a timeout that kills the whole process group and a cap on what it may print.
Credentials travel in an ``http.extraHeader`` set through ``GIT_CONFIG_*`` environment
variables, so they never appear in argv (visible in ``ps``), in a mirror's config or in errors.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from lockstep.spec.git_names import GitError, RemoteUrl, mask_credentials

MiB = 1024 * 1024
_PASSTHROUGH_ENV = (
    "PATH", "TMPDIR", "http_proxy", "https_proxy", "no_proxy", "all_proxy", "HTTP_PROXY",
    "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR", "GIT_SSL_CAINFO",
)  # fmt: skip
_UNREACHABLE_HINTS = (
    "does not appear to be a git repository", "could not read from remote", "repository not found",
    "connection refused", "unable to access", "not found", "no such file", "could not resolve",
    "unable to look up", "not exported", "connection timed out", "network is unreachable",
    "unable to connect",
)  # fmt: skip
_AUTH_HINTS = (
    "authentication failed", "could not read username", "terminal prompts disabled",
    "permission denied (publickey", "returned error: 401", "returned error: 403",
)  # fmt: skip
_home: str | None = None


def _empty_home() -> str:
    # One per process rather than per call: ssh's accept-new known_hosts then lasts the process.
    global _home
    if _home is None:
        _home = tempfile.mkdtemp(prefix="lockstep-git-home-")
        atexit.register(shutil.rmtree, _home, True)
    return _home


def _base_config(allow_file: bool) -> list[str]:
    pairs = [
        ("core.hooksPath", "/dev/null"),
        ("core.fsmonitor", "false"),
        ("core.symlinks", "true"),
        ("core.protectNTFS", "true"),
        ("core.protectHFS", "true"),
        ("core.askPass", ""),
        ("credential.helper", ""),
        ("protocol.allow", "never"),
        ("protocol.https.allow", "always"),
        ("protocol.http.allow", "always"),
        ("protocol.ssh.allow", "always"),
        ("protocol.git.allow", "always"),
        ("protocol.file.allow", "always" if allow_file else "never"),
        ("submodule.recurse", "false"),
        ("fetch.recurseSubmodules", "false"),
        # auto-gc would otherwise detach and outlive our timeout and process-group kill
        ("gc.autoDetach", "false"),
        ("maintenance.autoDetach", "false"),
        ("advice.detachedHead", "false"),
        ("init.defaultBranch", "main"),
    ]
    return [arg for key, value in pairs for arg in ("-c", f"{key}={value}")]


def _environment(env_extra: dict[str, str] | None) -> dict[str, str]:
    # Built from scratch: inherited GIT_DIR, GIT_SSH, GIT_PROXY_COMMAND, … would change behaviour.
    env = {k: os.environ[k] for k in _PASSTHROUGH_ENV if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(
        HOME=_empty_home(),
        LC_ALL="C",
        LANG="C",
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="/bin/false",
        SSH_ASKPASS="/bin/false",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL="/dev/null",
        GIT_SSH_COMMAND="ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new",
        GIT_LITERAL_PATHSPECS="1",
        GIT_NO_REPLACE_OBJECTS="1",
        GIT_CEILING_DIRECTORIES=str(Path(_empty_home()).parent),
    )
    env.update(env_extra or {})
    return env


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


class _Overflow(Exception):
    pass


def _clean(text: str, redact: Sequence[str]) -> str:
    for secret in redact:
        if secret:
            text = text.replace(secret, "***")
    return mask_credentials(text)


async def _spawn(
    args: list[str],
    with_stdin: bool,
    cwd: Path | None,
    allow_file: bool,
    env_extra: dict[str, str] | None,
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "git", *_base_config(allow_file), *args,
        stdin=asyncio.subprocess.PIPE if with_stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd or _empty_home(),
        env=_environment(env_extra),
        start_new_session=True,  # its own process group, so a timeout kills ssh/helpers too
    )  # fmt: skip


async def run_git(
    args: list[str],
    *,
    cwd: Path | None,
    timeout_s: float,
    env_extra: dict[str, str] | None = None,
    max_output: int = 16 * MiB,
    allow_file: bool = False,
    display: str = "",
    redact: Sequence[str] = (),
    stdin: bytes | None = None,
    abort_check: Callable[[], str | None] | None = None,
) -> bytes:
    """Run ``git <hardening config> <args>`` and return its stdout; ``GitError`` on any failure.

    ``display`` names the remote or mirror in messages; ``redact`` lists strings (tokens) to
    blank out of git's stderr; ``abort_check`` is polled (in a thread) every 0.25 s and may return
    a message to kill git early, e.g. when a fetch outgrows its size cap.
    """
    where = display or "the local mirror"
    sub = next((a for a in args if not a.startswith("-")), "git")
    try:
        proc = await _spawn(args, stdin is not None, cwd, allow_file, env_extra)
    except OSError as exc:
        raise GitError(f"cannot run git ({exc.strerror}); install git 2.31 or newer on this host",
                       reason="unavailable") from None  # fmt: skip
    out = bytearray()
    err = bytearray()

    async def pump_out() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            out.extend(chunk)
            if len(out) > max_output:
                raise _Overflow

    async def pump_err() -> None:
        assert proc.stderr is not None
        while chunk := await proc.stderr.read(65536):
            err.extend(chunk)
            del err[:-8192]

    async def feed() -> None:
        if proc.stdin is not None and stdin is not None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                proc.stdin.write(stdin)
                await proc.stdin.drain()
                proc.stdin.close()

    async def watch() -> str:
        while True:
            await asyncio.sleep(0.25)
            if abort_check is not None and (why := await asyncio.to_thread(abort_check)):
                return why

    io = asyncio.gather(pump_out(), pump_err(), feed())
    watcher = asyncio.ensure_future(watch()) if abort_check is not None else None
    try:
        async with asyncio.timeout(timeout_s):
            waiting: set[asyncio.Future[Any]] = {io}
            if watcher is not None:
                waiting.add(watcher)
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if watcher is not None and watcher.done():
                raise GitError(watcher.result(), reason="too-large")
            await io
            code = await proc.wait()
    except TimeoutError:
        raise GitError(
            f"git timed out after {timeout_s:g}s talking to {where}; check that the "
            "server is reachable or raise the timeout",
            reason="timeout",
        ) from None
    except _Overflow:
        raise GitError(
            f"git {sub} output from {where} exceeded {max_output} bytes", reason="too-large"
        ) from None
    finally:
        if proc.returncode is None:
            _kill_group(proc)
            await proc.wait()
        io.cancel()
        if io.done() and not io.cancelled():
            io.exception()  # already handled above; stops asyncio logging it as unretrieved
        if watcher is not None:
            watcher.cancel()
    if code != 0:
        raise git_failure(sub, where, err.decode("utf-8", "replace"), redact)
    return bytes(out)


def git_failure(sub: str, where: str, stderr: str, redact: Sequence[str]) -> GitError:
    lines = [ln.strip() for ln in _clean(stderr, redact).splitlines() if ln.strip()]
    last = next((ln for ln in reversed(lines) if not ln.lower().startswith("hint:")), "")
    for prefix in ("fatal: ", "error: "):
        last = last.removeprefix(prefix)
    detail = " ".join(last.split())[:300] or "no error output"
    low = stderr.lower()
    if any(h in low for h in _AUTH_HINTS):
        return GitError(f"git {sub} was refused by {where}: {detail}; check the repository's "
                        "credentials secret", reason="auth")  # fmt: skip
    if sub in ("fetch", "ls-remote") and any(h in low for h in _UNREACHABLE_HINTS):
        return GitError(f"repository {where} is unreachable: {detail}; check the URL and that "
                        "the repository still exists", reason="unreachable")  # fmt: skip
    return GitError(f"git {sub} failed for {where}: {detail}")


def auth_env(remote: RemoteUrl, auth_url: str | None) -> tuple[dict[str, str], list[str]]:
    """Turn an authenticated URL into an Authorization header passed through the environment."""
    if auth_url is None:
        return {}, []
    parts = urlsplit(auth_url)
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    bare = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    if remote.scheme not in ("https", "http"):
        raise GitError(
            f"credentials are only supported for https remotes, not {remote.display}; "
            "drop --credentials or use an https URL",
            reason="invalid-credentials",
        )
    if bare != remote.url or not user or not password:
        raise GitError(f"the authenticated URL does not match {remote.display}; build it with "
                       "RemoteUrl.with_credentials", reason="invalid-credentials")  # fmt: skip
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    env = {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
    }
    return env, [password, basic, parts.password or ""]


async def ls_remote(
    remote: RemoteUrl,
    *,
    auth_url: str | None = None,
    allow_file: bool = False,
    timeout_s: float = 30,
) -> dict[str, str]:
    """Branches and tags of ``remote`` as full ref name -> commit SHA (annotated tags peeled).

    The cheap poll: one ref advertisement, no objects transferred.
    """
    env, redact = auth_env(remote, auth_url)
    raw = await run_git(
        ["ls-remote", "--heads", "--tags", "--", remote.url],
        cwd=None, timeout_s=timeout_s, env_extra=env, allow_file=allow_file,
        display=remote.display, redact=redact,
    )  # fmt: skip
    refs: dict[str, str] = {}
    peeled: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").splitlines():
        sha, _, name = line.partition("\t")
        if not name.startswith(("refs/heads/", "refs/tags/")):
            continue
        if name.endswith("^{}"):
            peeled[name[:-3]] = sha
        else:
            refs[name] = sha
    refs.update(peeled)
    return refs
