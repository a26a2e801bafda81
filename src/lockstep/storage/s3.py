"""Blobs in any S3-compatible store (``LOCKSTEP_ARTIFACTS=s3://bucket/prefix``), and a store
that sends artifacts there while everything else stays in the local directory.

Uploads are all-or-nothing (S3 makes an object visible only when its upload completes), reads
stream, and an unreachable store is one clear error after botocore's bounded retries.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lockstep.errors import ConfigError, ExecutionError, PayloadTooLarge
from lockstep.storage.blobs import BlobInfo, BlobStore, validate_key

_CHUNK = 1024 * 1024


class StoreUnavailable(ExecutionError):
    """The artifact store refused or could not be reached."""


class S3BlobStore:
    def __init__(self, url: str, *, endpoint: str | None = None, timeout_s: float = 30) -> None:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ConfigError(f"artifact store {url!r} is not s3://bucket/prefix")
        self.url = url
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        config = Config(
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=min(timeout_s, 5),
            read_timeout=timeout_s,
        )
        self._s3 = boto3.client("s3", endpoint_url=endpoint, config=config)

    def _key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _fail(self, what: str, exc: Exception) -> StoreUnavailable:
        text = " ".join(str(exc).split())[:300]
        return StoreUnavailable(
            f"artifact store {self.url} failed {what}: {text}; retry the run once it is back"
        )

    def put_file(self, key: str, path: Path) -> BlobInfo:
        digest, size = hashlib.sha256(), 0
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        try:
            self._s3.upload_file(str(path), self.bucket, self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(f"storing {key}", exc) from None
        return BlobInfo(key=key, size=size, sha256=digest.hexdigest())

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes] | Iterator[bytes], max_bytes: int
    ) -> BlobInfo:
        with tempfile.NamedTemporaryFile() as spool:
            size = 0
            if isinstance(chunks, AsyncIterator):
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadTooLarge(f"{key} is larger than {max_bytes} bytes")
                    spool.write(chunk)
            else:
                for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadTooLarge(f"{key} is larger than {max_bytes} bytes")
                    spool.write(chunk)
            spool.flush()
            return self.put_file(key, Path(spool.name))

    def exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._fail(f"looking up {key}", exc) from None
        except BotoCoreError as exc:
            raise self._fail(f"looking up {key}", exc) from None
        return True

    def open(self, key: str) -> BinaryIO:
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(f"reading {key}", exc) from None
        return cast(BinaryIO, _Stream(body))

    def delete(self, key: str) -> None:
        try:
            self._s3.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(f"deleting {key}", exc) from None


class _Stream:
    """A streaming S3 body as a closable, readable file."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._body.read(size if size >= 0 else None)
        return data

    def close(self) -> None:
        self._body.close()

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ArtifactRouting:
    """Keys under ``artifacts/`` and ``outputs/`` (outputs stored by reference) go to
    ``artifacts``; all others (snapshots) to ``local``."""

    def __init__(self, local: BlobStore, artifacts: BlobStore) -> None:
        self._local, self._artifacts = local, artifacts

    def _for(self, key: str) -> BlobStore:
        return self._artifacts if key.startswith(("artifacts/", "outputs/")) else self._local

    def put_file(self, key: str, path: Path) -> BlobInfo:
        return self._for(key).put_file(key, path)

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes] | Iterator[bytes], max_bytes: int
    ) -> BlobInfo:
        return await self._for(key).put_stream(key, chunks, max_bytes)

    def exists(self, key: str) -> bool:
        return self._for(key).exists(key)

    def open(self, key: str) -> BinaryIO:
        return self._for(key).open(key)

    def delete(self, key: str) -> None:
        self._for(key).delete(key)
