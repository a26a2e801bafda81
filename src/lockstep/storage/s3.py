"""Blobs in any S3-compatible store (``LOCKSTEP_ARTIFACTS=s3://bucket/prefix``), and a store
that sends artifacts there while everything else stays in the local directory.

Uploads are all-or-nothing (S3 makes an object visible only when its upload completes), reads
stream, and an unreachable store is one clear error after botocore's bounded retries.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import urlsplit

import boto3
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lockstep.errors import ConfigError, PayloadTooLarge, Unavailable
from lockstep.storage.blobs import BlobInfo, BlobStore, validate_key

_CHUNK = 1024 * 1024


class StoreUnavailable(Unavailable):
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
        self._swept = -math.inf

    #: an unfinished upload older than this is abandoned (no upload of ours lasts a day)
    stale_after_s: float = 24 * 3600
    #: how often a store looks for abandoned uploads (at the next upload after that)
    sweep_every_s: float = 3600

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
        full = self._key(key)
        self._sweep()
        try:
            self._s3.upload_file(str(path), self.bucket, full)
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
            self._abort_uploads(full)
            raise self._fail(f"storing {key}", exc) from None
        except BaseException:
            self._abort_uploads(full)
            raise
        return BlobInfo(key=key, size=size, sha256=digest.hexdigest())

    def _abort_uploads(self, prefix: str, older_than: datetime | None = None) -> int:
        """Abort the unfinished multipart uploads under ``prefix`` (exactly that key, unless
        ``older_than`` is given: then every one under it started before then), so a failed
        upload leaves no parts behind; best effort, as the store may be down. How many."""
        aborted = 0
        try:
            pages = self._s3.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for upload in page.get("Uploads", []):
                    exact = older_than is None and upload["Key"] == prefix
                    stale = older_than is not None and upload["Initiated"] <= older_than
                    if exact or stale:
                        self._s3.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        aborted += 1
        except (BotoCoreError, ClientError):
            pass  # the store is down: the next sweep, or the bucket's lifecycle rule, cleans up
        return aborted

    def _sweep(self) -> None:
        """Now and then, abort uploads left behind when the store failed so badly that not
        even the abort got through (they cost storage until aborted)."""
        now = time.monotonic()
        if now - self._swept < self.sweep_every_s:
            return
        self._swept = now
        cutoff = datetime.now(UTC) - timedelta(seconds=self.stale_after_s)
        self._abort_uploads(f"{self.prefix}/" if self.prefix else "", cutoff)

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
