from __future__ import annotations

import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from lockstep.errors import InvalidRequest
from lockstep.storage.logs import MAX_LINE_CHARS, DirectoryLogStore

LINE = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z [oes] .*")


@pytest.fixture
def store(tmp_path: Path) -> DirectoryLogStore:
    return DirectoryLogStore(tmp_path / "logs")


def test_lines_round_trip_with_stream_and_timestamp(store: DirectoryLogStore) -> None:
    ts = datetime(2024, 5, 1, 12, 0, 0, 123, tzinfo=UTC)
    with store.writer("run1/build/1") as w:
        w.write("out", "hello world", ts)
        w.write("err", "  oops  ", ts)
        w.write("sys", "", ts)
    raw = (store.root / "run1" / "build" / "1.log").read_bytes()
    assert raw == (
        b"2024-05-01T12:00:00.000123Z o hello world\n"
        b"2024-05-01T12:00:00.000123Z e   oops  \n"
        b"2024-05-01T12:00:00.000123Z s \n"
    )
    page = store.read("run1/build/1")
    assert page.exists
    assert [(line.stream, line.text) for line in page.lines] == [
        ("out", "hello world"),
        ("err", "  oops  "),
        ("sys", ""),
    ]
    assert page.lines[0].ts == "2024-05-01T12:00:00.000123Z"
    assert page.next_offset == len(raw) == store.size("run1/build/1")


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05.000000Z"),  # naive = UTC
        (
            datetime(2024, 1, 2, 3, 4, 5, 7, tzinfo=timezone(timedelta(hours=2))),
            "2024-01-02T01:04:05.000007Z",
        ),
    ],
)
def test_timestamps_are_utc(store: DirectoryLogStore, ts: datetime, expected: str) -> None:
    with store.writer("r/s/1") as w:
        w.write("out", "x", ts)
    assert store.read("r/s/1").lines[0].ts == expected


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("progress\r50%\r100%", "progress\\r50%\\r100%"),
        (
            "forged\n2024-01-01T00:00:00.000000Z s fake",
            "forged\\n2024-01-01T00:00:00.000000Z s fake",
        ),
        ("tab\tand ünïcödé and \x00 nul", "tab\tand ünïcödé and \x00 nul"),
    ],
)
def test_line_breaks_inside_text_cannot_forge_lines(
    store: DirectoryLogStore, text: str, stored: str
) -> None:
    with store.writer("r/s/1") as w:
        w.write("out", text)
    page = store.read("r/s/1")
    assert [(line.stream, line.text) for line in page.lines] == [("out", stored)]


def test_write_text_matches_write_many(store: DirectoryLogStore) -> None:
    ts = datetime(2024, 1, 1, tzinfo=UTC)
    lines = ["one", "", "thr\ree", "ünï"]
    with store.writer("r/a/1") as w:
        w.write_many([("out", line) for line in lines], ts)
    with store.writer("r/b/1") as w:
        w.write_text("out", "\n".join(lines), ts)
    assert (store.root / "r/a/1.log").read_bytes() == (store.root / "r/b/1.log").read_bytes()


def test_overlong_text_is_stored_as_several_lines(store: DirectoryLogStore) -> None:
    with store.writer("r/s/1") as w:
        w.write("out", "x" * (MAX_LINE_CHARS * 2 + 5))
        w.write_text("err", "short\n" + "y" * (MAX_LINE_CHARS + 1))
    page = store.read("r/s/1")
    assert [len(line.text) for line in page.lines] == [
        MAX_LINE_CHARS,
        MAX_LINE_CHARS,
        5,
        5,
        MAX_LINE_CHARS,
        1,
    ]


def test_read_resumes_from_offset(store: DirectoryLogStore) -> None:
    w = store.writer("r/s/1")
    for i in range(10):
        w.write("out", f"line {i}")
    seen: list[str] = []
    offset = 0
    while True:
        page = store.read("r/s/1", offset=offset, limit=3)
        if not page.lines:
            break
        assert page.lines[0].offset == offset
        seen += [line.text for line in page.lines]
        offset = page.next_offset
    assert seen == [f"line {i}" for i in range(10)]
    # A live tail: new lines appear from the saved offset, nothing is repeated.
    w.write("err", "late")
    w.close()
    page = store.read("r/s/1", offset=offset)
    assert [(line.stream, line.text) for line in page.lines] == [("err", "late")]
    # Re-reading from a line's own offset gives that line again.
    again = store.read("r/s/1", offset=page.lines[0].offset)
    assert again.lines[0].text == "late"


def test_unterminated_tail_is_left_for_the_next_read(store: DirectoryLogStore) -> None:
    with store.writer("r/s/1") as w:
        w.write("out", "complete")
    path = store.root / "r/s/1.log"
    with path.open("ab") as f:
        f.write(b"2024-01-01T00:00:00.000000Z o half a li")
    page = store.read("r/s/1")
    assert [line.text for line in page.lines] == ["complete"]
    with path.open("ab") as f:
        f.write(b"ne\n")
    page = store.read("r/s/1", offset=page.next_offset)
    assert [line.text for line in page.lines] == ["half a line"]


def test_page_stops_at_byte_budget(store: DirectoryLogStore) -> None:
    with store.writer("r/s/1") as w:
        for _ in range(10):
            w.write("out", "z" * 1000)
    page = store.read("r/s/1", limit=1000, max_bytes=3000)
    assert len(page.lines) == 3
    assert store.read("r/s/1", offset=page.next_offset, max_bytes=10**6).lines[0].text == "z" * 1000


def test_missing_log_is_an_empty_page(store: DirectoryLogStore) -> None:
    page = store.read("nope/s/1", offset=0)
    assert (page.lines, page.exists, page.next_offset) == ([], False, 0)
    assert store.size("nope/s/1") == 0


def test_offset_past_end_returns_nothing_yet(store: DirectoryLogStore) -> None:
    with store.writer("r/s/1") as w:
        w.write("out", "a")
    page = store.read("r/s/1", offset=10_000)
    assert (page.lines, page.exists, page.next_offset) == ([], True, 10_000)


@pytest.mark.parametrize(("offset", "limit"), [(-1, 10), (5, 10), (0, 0)])
def test_bad_offsets_and_limits_are_rejected(
    store: DirectoryLogStore, offset: int, limit: int
) -> None:
    with store.writer("r/s/1") as w:
        w.write("out", "some text")
    with pytest.raises(InvalidRequest):
        store.read("r/s/1", offset=offset, limit=limit)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "../x/1",
        "r/../../etc/passwd",
        "/abs/s/1",
        "r//1",
        "r/./1",
        ".",
        "r/s/",
        "r/s\x00/1",
        "r/%2e%2e/1",
        "r\\s\\1",
        "r/s 1/1",
        "r/" + "x" * 600,
    ],
)
def test_keys_that_could_escape_are_rejected(store: DirectoryLogStore, key: str) -> None:
    with pytest.raises(InvalidRequest):
        store.writer(key)
    with pytest.raises(InvalidRequest):
        store.read(key)
    assert not store.root.exists()


def test_delete_run_removes_only_that_run(store: DirectoryLogStore) -> None:
    for key in ("a/s/1", "a/t/2", "b/s/1"):
        with store.writer(key) as w:
            w.write("out", key)
    store.delete_run("a")
    assert not store.read("a/s/1").exists
    assert store.read("b/s/1").exists
    with pytest.raises(InvalidRequest):
        store.delete_run("..")


def test_writing_after_close_is_an_error(store: DirectoryLogStore) -> None:
    w = store.writer("r/s/1")
    w.close()
    w.close()  # idempotent
    with pytest.raises(RuntimeError):
        w.write("out", "x")


_KILLED_WRITER = """
import sys
from pathlib import Path
from lockstep.storage.logs import DirectoryLogStore
w = DirectoryLogStore(Path(sys.argv[1])).writer("r/s/1")
i = 0
while True:
    if i % 7 == 0:
        w.write_many([("out", f"batch {i} {j} " + "b" * 300) for j in range(50)])
    else:
        w.write("err", f"line {i} " + "a" * (i % 5000))
    if i == 200:
        print("ready", flush=True)
    i += 1
"""


def test_sigkilled_writer_leaves_only_whole_lines(store: DirectoryLogStore) -> None:
    src = Path(__file__).resolve().parents[2] / "src"
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(store.root)],
        stdout=subprocess.PIPE,
        env={"PYTHONPATH": str(src)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    raw = (store.root / "r/s/1.log").read_bytes()
    whole, _, torn = raw.rpartition(b"\n")
    # Every line but possibly the last is whole; the kernel may cut the one write in flight
    # short (a fatal signal interrupts a large write between pages), never anything earlier.
    assert all(LINE.fullmatch(line) for line in whole.split(b"\n"))
    page = store.read("r/s/1", limit=10**6, max_bytes=10**9)
    assert page.next_offset == len(whole) + 1
    # A writer reopening the log terminates a torn line so the next line stays intact.
    with store.writer("r/s/1") as w:
        w.write("sys", "after the crash")
    page = store.read("r/s/1", offset=page.next_offset)
    assert page.lines[-1].text == "after the crash"
    if torn:
        assert len(page.lines) == 2


def test_tail_is_the_last_lines_of_one_stream_within_a_byte_window(
    store: DirectoryLogStore,
) -> None:
    with store.writer("r/s/1") as w:
        for i in range(30):
            w.write("err" if i % 2 else "out", f"line {i}")
        w.write("sys", "exit code 1")
    assert store.tail("r/s/1", "err", 3) == ["line 25", "line 27", "line 29"]
    assert store.tail("r/s/1", "err", 100) == [f"line {i}" for i in range(1, 30, 2)]
    # only the window is read: a line that began before it is left out, not cut
    window = store.tail("r/s/1", "err", 100, max_bytes=150)
    assert window and all(t in [f"line {i}" for i in range(1, 30, 2)] for t in window)
    assert len(window) < 5
    assert store.tail("r/s/1", "sys", 10) == ["exit code 1"]
    assert store.tail("r/nothing/1", "err", 10) == []


def test_tail_leaves_out_a_line_still_being_written(store: DirectoryLogStore) -> None:
    with store.writer("r/s/1") as w:
        w.write("err", "done")
    with (store.root / "r" / "s" / "1.log").open("ab") as f:
        f.write(b"2024-01-01T00:00:00.000000Z e half a li")
    assert store.tail("r/s/1", "err", 10) == ["done"]
