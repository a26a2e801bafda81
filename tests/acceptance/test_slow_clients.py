"""Slow or stalled HTTP clients hold nothing for long: a head or a body that does not arrive in
time is answered 408 (or cut off), they never starve a normal request, and past the connection
cap a request is refused at once with 503 rather than left waiting."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.harness import Server

#: the most bytes a slow client sends before the server must have given up on it
PATIENCE = 60


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(
        tmp_path_factory.mktemp("strict"),
        worker=False,
        LOCKSTEP_HTTP_HEADER_TIMEOUT="1",
        LOCKSTEP_HTTP_BODY_TIMEOUT="1",
        LOCKSTEP_HTTP_MAX_CONNECTIONS="8",
    )
    srv.start()
    yield srv
    srv.stop()


def _connect(server: Server) -> socket.socket:
    url = urlsplit(server.url)
    return socket.create_connection((url.hostname, url.port), timeout=30)


def _trickle(sock: socket.socket, data: bytes) -> bytes:
    """Send ``data`` a byte at a time, 0.5 s apart, until the server answers or closes;
    returns what it answered (b"" for a bare close)."""
    for i in range(PATIENCE):
        readable, _, _ = select.select([sock], [], [], 0.5)
        if readable:
            return _read_all(sock)
        try:
            sock.sendall(data[i % len(data) : i % len(data) + 1])
        except (BrokenPipeError, ConnectionResetError):
            return b""
    raise AssertionError(f"the server still listened after {PATIENCE} slow bytes")


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def _head(server: Server, body_length: int) -> bytes:
    return (
        "POST /api/v1/projects/default/runs HTTP/1.1\r\nhost: x\r\n"
        f"authorization: Bearer {server.token}\r\ncontent-type: application/json\r\n"
        f"content-length: {body_length}\r\n\r\n"
    ).encode()


def test_a_body_sent_a_byte_at_a_time_gets_408_and_the_connection_closes(strict: Server) -> None:
    with _connect(strict) as sock:
        sock.sendall(_head(strict, 1000))
        answer = _trickle(sock, b'{"spec": "' + b"x" * 900)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"did not arrive within 1 s" in answer
    assert b"connection: close" in answer.lower()


def test_a_head_sent_a_byte_at_a_time_is_cut_off(strict: Server) -> None:
    with _connect(strict) as sock:
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nhost: x\r\n")
        answer = _trickle(sock, b"x-slow: " + b"a" * 200)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408 "), answer[:200]


def test_slow_clients_do_not_starve_a_normal_request_and_the_cap_refuses_at_once(
    strict: Server,
) -> None:
    slow = [_connect(strict) for _ in range(4)]  # fewer than the cap: room is left
    try:
        for sock in slow:
            sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nhost: x\r\n")
        assert strict.http.get("/runs").status_code == 200
    finally:
        for sock in slow:
            sock.close()
    crowd = [_connect(strict) for _ in range(8)]  # as many as the cap
    try:
        for sock in crowd:
            sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nhost: x\r\n")
        with httpx.Client(base_url=strict.url, timeout=30) as fresh:
            refused = fresh.get("/api/v1/health")
        assert refused.status_code == 503
        # the stalled ones are cut off by the head deadline; then there is room again
        for sock in crowd:
            answer = _trickle(sock, b"x-slow: aaaa")
            assert answer == b"" or answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    finally:
        for sock in crowd:
            sock.close()
    assert strict.http.get("/runs").status_code == 200
