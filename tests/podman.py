"""A real Podman for tests: its Docker-compatible API on a private socket, and small local images.

No registry is reachable, so the test images are made here: a rootfs of Debian's static busybox
(``busybox-static``, installed by ``scripts/system-deps.sh test``) imported with ``podman
import``. They stay in Podman's storage and are only built when missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: the test image: a shell and the usual tools, CMD ["sh"]
IMAGE = "localhost/lockstep-test/busybox:1"
#: the same with ENTRYPOINT ["echo", "from-entrypoint"], to show argv replaces an entrypoint
ENTRYPOINT_IMAGE = "localhost/lockstep-test/busybox-entrypoint:1"
#: the same with USER 4321:4321, to show a container runs as its image's user
USER_IMAGE = "localhost/lockstep-test/busybox-user:1"
BUSYBOX = Path("/bin/busybox")
START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 10.0
_SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes


class PodmanUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Podman:
    socket: str  # the Docker API URL, unix:///.../podman.sock
    image: str
    entrypoint_image: str
    user_image: str


def _podman(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _is_static(path: Path) -> bool:
    """Whether an ELF executable has no program interpreter (so it runs in an empty rootfs)."""
    with path.open("rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only: all we run on
            return False
        (phoff,) = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            (p_type,) = struct.unpack("<I", f.read(4))
            if p_type == 3:  # PT_INTERP
                return False
    return True


def _rootfs_tar(dest: Path) -> Path:
    if not BUSYBOX.exists() or not _is_static(BUSYBOX):
        raise PodmanUnavailable(
            f"{BUSYBOX} is missing or not statically linked; run scripts/system-deps.sh test "
            "(it installs busybox-static)"
        )
    applets = subprocess.run(
        [str(BUSYBOX), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    tar_path = dest / "busybox-rootfs.tar"
    with tarfile.open(tar_path, "w") as tar:
        for name, mode in (("bin", 0o755), ("tmp", 0o1777), ("workspace", 0o755)):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        tar.add(BUSYBOX, "bin/busybox", filter=_root_owned)
        for applet in applets:
            if applet != "busybox":
                info = tarfile.TarInfo(f"bin/{applet}")
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, "busybox", 0o777
                tar.addfile(info)
    return tar_path


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def ensure_images(workdir: Path) -> None:
    """Build the test images unless Podman already has them."""
    wanted = {
        IMAGE: ['CMD ["sh"]'],
        ENTRYPOINT_IMAGE: ['ENTRYPOINT ["echo", "from-entrypoint"]', 'CMD ["sh"]'],
        USER_IMAGE: ["USER 4321:4321", 'CMD ["sh"]'],
    }
    missing = {ref: c for ref, c in wanted.items() if _podman("image", "exists", ref).returncode}
    if not missing:
        return
    tar_path = _rootfs_tar(workdir)
    for ref, changes in missing.items():
        args = ["--change", "ENV PATH=/bin"]
        for change in changes:
            args += ["--change", change]
        done = _podman("import", "--quiet", *args, str(tar_path), ref)
        if done.returncode != 0:
            raise PodmanUnavailable(f"podman import of {ref} failed: {done.stderr.strip()}")


def _ping(path: str) -> bool:
    """Whether the Docker API on the unix socket ``path`` answers ``GET /_ping`` with OK."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n")
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
    except OSError:
        return False
    return answer.startswith(b"HTTP/1.") and b" 200 " in answer[:16] and answer.endswith(b"OK")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(_STOP_TIMEOUT_S)


@contextlib.contextmanager
def podman_service(workdir: Path, env: dict[str, str] | None = None) -> Iterator[Podman]:
    """Run ``podman system service`` on a socket of its own until the block ends (``env``:
    variables added to its environment, e.g. ``CONTAINERS_CONF``).

    Raises ``PodmanUnavailable`` (a test failure, never a skip) when Podman cannot serve.
    """
    if shutil.which("podman") is None:
        raise PodmanUnavailable("podman is not installed; run scripts/system-deps.sh test")
    sock_dir = workdir
    if len(str(workdir / "podman.sock")) > _SOCKET_PATH_MAX:
        sock_dir = Path(tempfile.mkdtemp(prefix="lockstep-podman-"))
    sock_path = sock_dir / "podman.sock"
    log_path = workdir / "podman-service.log"
    with log_path.open("wb") as log:
        # A process group of its own, so teardown stops it and whatever it started.
        proc = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{sock_path}"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            # conmon writes a file named 'oom' into its working directory when a container is
            # killed for memory: keep it in the fixture's directory, not in the checkout
            cwd=workdir,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _ping(str(sock_path)):
            if proc.poll() is not None:
                raise PodmanUnavailable(
                    f"podman system service exited with code {proc.returncode}: "
                    f"{log_path.read_text(errors='replace').strip()[-2000:]}"
                )
            if time.monotonic() > deadline:
                raise PodmanUnavailable(
                    f"podman system service did not answer on {sock_path} within "
                    f"{START_TIMEOUT_S:g}s: {log_path.read_text(errors='replace')[-2000:]}"
                )
            time.sleep(0.05)
        ensure_images(workdir)
        yield Podman(
            socket=f"unix://{sock_path}",
            image=IMAGE,
            entrypoint_image=ENTRYPOINT_IMAGE,
            user_image=USER_IMAGE,
        )
    finally:
        _stop(proc)
        if sock_dir != workdir:
            shutil.rmtree(sock_dir, ignore_errors=True)
