"""An S3 store that fails in the middle of a multipart upload (a real S3 API server behind a
proxy that breaks on cue): one clear error, and no unfinished upload left to cost storage."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import httpx
import pytest

from lockstep.storage.s3 import S3BlobStore, StoreUnavailable
from tests.s3 import CREDENTIALS, S3, _creds

Breaks = Callable[[str, str], bool]


class _Proxy:
    """Forwards to the S3 server, answering 500 instead when ``breaks(method, path)``."""

    def __init__(self, target: str) -> None:
        self.breaks: Breaks = lambda method, path: False
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                if proxy.breaks(self.command, self.path):
                    self.send_response(500)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                answer = httpx.request(
                    self.command, target + self.path, content=body, headers=headers
                )
                self.send_response(answer.status_code)
                for k, v in answer.headers.items():
                    if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(k, v)
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def proxy(s3: S3) -> Iterator[_Proxy]:
    p = _Proxy(s3.endpoint)
    yield p
    p.server.shutdown()
    p.server.server_close()


@pytest.fixture
def store(proxy: _Proxy, monkeypatch: pytest.MonkeyPatch) -> S3BlobStore:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    return S3BlobStore("s3://artifacts/failing", endpoint=proxy.url, timeout_s=5)


def _unfinished(s3: S3) -> list[str]:
    client = boto3.client("s3", endpoint_url=s3.endpoint, **_creds())
    uploads = client.list_multipart_uploads(Bucket=s3.bucket, Prefix="failing/")
    return [u["Key"] for u in uploads.get("Uploads", [])]


@pytest.fixture
def big(tmp_path: Path) -> Path:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(20 * 1024 * 1024))  # multipart: three parts of 8 MiB
    return path


def test_a_store_failing_mid_upload_is_one_clear_error_and_leaves_no_parts(
    s3: S3, store: S3BlobStore, proxy: _Proxy, big: Path
) -> None:
    proxy.breaks = lambda method, path: "partNumber=2" in path
    with pytest.raises(StoreUnavailable) as err:
        store.put_file("artifacts/p/r/s/1/broken", big)
    assert str(err.value).startswith("artifact store s3://artifacts/failing failed storing")
    assert "retry the run" in str(err.value) and "\n" not in str(err.value)
    assert _unfinished(s3) == []


def test_uploads_the_store_could_not_even_abort_are_swept_once_it_is_back(
    s3: S3, store: S3BlobStore, proxy: _Proxy, big: Path
) -> None:
    # the store goes away after the first part: not even the abort gets through
    proxy.breaks = lambda method, path: "partNumber=2" in path or method == "DELETE"
    with pytest.raises(StoreUnavailable):
        store.put_file("artifacts/p/r/s/1/stranded", big)
    assert _unfinished(s3) == ["failing/artifacts/p/r/s/1/stranded"]
    # back again: the next upload, past the sweep interval, aborts what was abandoned
    proxy.breaks = lambda method, path: False
    store.stale_after_s, store.sweep_every_s = 0, 0
    small = big.with_name("small.bin")
    small.write_bytes(b"fine")
    assert store.put_file("artifacts/p/r/s/2/ok", small).size == 4
    assert _unfinished(s3) == []
