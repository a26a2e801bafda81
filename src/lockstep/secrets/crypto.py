"""Encryption of secret values at rest, each ciphertext bound to its (project, name).

Every row gets its own Fernet key, derived with HKDF from the master key and the row's
identity, so a ciphertext copied into another row (or another project) fails its HMAC check
instead of decrypting to a value its new owner was never given.
"""

from __future__ import annotations

import base64
import os
import re
import struct
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from lockstep.errors import ConfigError, Conflict, InvalidRequest

KEY_FILE = "secret.key"
#: stored in front of every ciphertext so a later scheme (or key rotation) can tell rows apart
_VERSION = "v1:"
_SALT = b"lockstep-secrets-v1"
_GENERATE = (
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)
# A Fernet key is 32 bytes in urlsafe base64; checked strictly because the stdlib decoder
# silently drops stray characters, which would hide a mangled copy-paste.
_KEY_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}=?")
_MAX_KEY_FILE_BYTES = 1024


class SecretError(Conflict):
    """A stored secret cannot be decrypted (key changed, row tampered with, or moved): the
    secret is there but unusable until it is set again (HTTP 409, exit 1)."""

    kind = "secret-unreadable"

    def __init__(self, message: str, *, project: str, name: str) -> None:
        super().__init__(message)
        self.project = project
        self.name = name


def _row_info(project: str, name: str) -> bytes:
    # Length-prefixed so ("a\0b", "c") and ("a", "b\0c") can never derive the same key.
    parts = [p.encode("utf-8", errors="surrogatepass") for p in (project, name)]
    return b"lockstep-secret" + b"".join(struct.pack(">I", len(p)) + p for p in parts)


def _parse_key(text: str) -> bytes | None:
    text = text.strip()
    if not _KEY_SHAPE.fullmatch(text):
        return None
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return raw if len(raw) == 32 else None


class SecretBox:
    """Encrypts and decrypts secret values with one master key. Never shows the key."""

    __slots__ = ("_master",)

    def __init__(self, master: bytes) -> None:
        if len(master) != 32:
            raise ValueError("a SecretBox master key is 32 bytes")
        self._master = master

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    @classmethod
    def generate(cls) -> SecretBox:
        return cls(os.urandom(32))

    @classmethod
    def from_settings(cls, secret_key: str | None, home: Path) -> SecretBox:
        """The box for ``LOCKSTEP_SECRET_KEY`` when set, else for ``home/secret.key``.

        Several servers or workers sharing one database must share the key, which is what
        the environment variable is for; the key file suits a single machine.
        """
        if secret_key is not None:
            master = _parse_key(secret_key)
            if master is None:
                raise ConfigError(
                    f"LOCKSTEP_SECRET_KEY is not a valid key; generate one with `{_GENERATE}`"
                )
            return cls(master)
        return cls(_load_or_create(home / KEY_FILE))

    def _fernet(self, project: str, name: str) -> Fernet:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_row_info(project, name)
        ).derive(self._master)
        return Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, project: str, name: str, value: str) -> str:
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError:
            # from None: the chained exception would carry the whole value in ``.object``
            raise InvalidRequest(
                f"secret '{name}' is not valid Unicode text; send it as UTF-8"
            ) from None
        return _VERSION + self._fernet(project, name).encrypt(data).decode("ascii")

    def decrypt(self, project: str, name: str, ciphertext: str) -> str:
        if not ciphertext.startswith(_VERSION):
            raise _unreadable(project, name)
        token = ciphertext[len(_VERSION) :].encode("ascii", errors="replace")
        try:
            return self._fernet(project, name).decrypt(token).decode("utf-8")
        except (InvalidToken, UnicodeDecodeError):
            raise _unreadable(project, name) from None


def _unreadable(project: str, name: str) -> SecretError:
    return SecretError(
        f"secret '{name}' in project '{project}' cannot be decrypted (the secret key changed "
        f"or the stored value was altered); set it again with `lockstep secrets set {name}`",
        project=project,
        name=name,
    )


def _read_key_file(path: Path) -> bytes | None:
    """The key in ``path``, or None when there is no such file yet."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the secret key {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        # fstat on the open descriptor: the mode we check is the file we read
        if os.name != "nt" and st.st_mode & 0o077:
            raise ConfigError(
                f"the secret key {path} is accessible to other users; run `chmod 600 {path}`"
            )
        data = os.read(fd, _MAX_KEY_FILE_BYTES)
    except OSError as exc:
        raise ConfigError(f"cannot read the secret key {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    master = _parse_key(data.decode("ascii", errors="replace"))
    if master is None:
        raise ConfigError(
            f"the secret key {path} is damaged; restore it from a backup (stored secrets "
            "cannot be read without it) or remove it and set every secret again"
        )
    return master


def _load_or_create(path: Path) -> bytes:
    master = _read_key_file(path)
    if master is not None:
        return master
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        # O_EXCL with 0600 from the first byte: the key is never readable by others, not even
        # briefly; written fully before it is published, so no reader sees a partial key.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, Fernet.generate_key() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            # link fails if the name exists, so of two processes starting at once exactly one
            # key wins and both use it
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the secret key {path}: {exc.strerror}") from None
    master = _read_key_file(path)
    if master is None:
        raise ConfigError(f"the secret key {path} vanished while being created; try again")
    return master
