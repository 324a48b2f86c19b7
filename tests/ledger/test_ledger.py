"""Tests for runner.ledger: writing under a lock, reading around torn lines, ids, request
fingerprints and the ledger line schema."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import pickle
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from runner.errors import LedgerError, RunnerWarning
from runner.ledger import (
    LEDGER_VERSION,
    Ledger,
    LedgerRecord,
    canonical_json,
    encode_line,
    new_id,
    read_records,
    request_fingerprint,
    utc_timestamp,
    without_content,
)
from runner.ledger import encoding as ledger_mod
from runner.types import Attempt, Cost, Usage

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "ledger-line.schema.json").read_text("utf-8"))
CROCKFORD = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def record(**fields: Any) -> dict[str, Any]:
    """A small valid-looking record; tests override what they look at."""
    base: dict[str, Any] = {"v": LEDGER_VERSION, "id": new_id(), "status": "ok"}
    base.update(fields)
    return base


class Warnings:
    """A `warn` callback that keeps the messages."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, message: str) -> None:
        self.messages.append(message)


@pytest.fixture
def warned() -> Warnings:
    return Warnings()


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "runs" / "ledger.jsonl"


# --- encoding --------------------------------------------------------------------------------


def test_round_trip_keeps_values_and_file_order(ledger_path: Path, warned: Warnings) -> None:
    records = [
        record(n=1, text="Zürich — 東京", sep="a\u2028b", nested={"k": [1, 2.5, None, True]}),
        record(n=2, text='line\nbreak "quoted" \\ back'),
        record(n=3),
    ]
    with Ledger(ledger_path) as ledger:
        for r in records:
            ledger.append(r)
    assert list(read_records(ledger_path, warn=warned)) == records
    assert warned.messages == []


def test_each_record_is_one_compact_utf8_line(ledger_path: Path) -> None:
    Ledger(ledger_path).append({"v": 1, "city": "Zürich", "n": [1, 2]})
    assert ledger_path.read_bytes() == '{"v":1,"city":"Zürich","n":[1,2]}\n'.encode()


def test_append_works_after_close_and_close_is_idempotent(ledger_path: Path) -> None:
    ledger = Ledger(ledger_path)
    ledger.append(record(n=1))
    ledger.close()
    ledger.close()
    ledger.append(record(n=2))
    ledger.close()
    assert [r["n"] for r in read_records(ledger_path)] == [1, 2]


def test_a_pickled_ledger_appends_to_the_same_file(ledger_path: Path) -> None:
    ledger = Ledger(ledger_path, fsync=True)
    ledger.append(record(n=1))
    copy = pickle.loads(pickle.dumps(ledger))
    assert (copy.path, copy.fsync) == (str(ledger_path), True)
    copy.append(record(n=2))
    copy.close()
    ledger.close()
    assert [r["n"] for r in read_records(ledger_path)] == [1, 2]


def test_fsync_mode_writes_the_same_lines(ledger_path: Path) -> None:
    with Ledger(ledger_path, fsync=True) as ledger:
        ledger.append(record(n=1))
    assert [r["n"] for r in read_records(ledger_path)] == [1]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("0.000123"), "0.000123"),
        (Decimal("12.5"), "12.5"),
        (datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC), '"2024-05-06T07:08:09.123Z"'),
        (
            datetime(2024, 5, 6, 9, 8, 9, tzinfo=timezone(timedelta(hours=2))),
            '"2024-05-06T07:08:09.000Z"',
        ),
        (Path("prompts") / "city.yaml", '"prompts/city.yaml"'),
        (Usage(3, 4, 1, 0), '{"prompt":3,"completion":4,"cached":1,"reasoning":0,"total":7}'),
        (
            Cost(Decimal("0.0015"), "genai-prices 0.2.3"),
            '{"usd":0.0015,"source":"genai-prices 0.2.3","estimated":false}',
        ),
    ],
)
def test_encode_line_maps_python_values(value: Any, expected: str) -> None:
    assert encode_line({"x": value}) == f'{{"x":{expected}}}\n'.encode()


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (float("nan"), ValueError, "a ledger record cannot hold Out of range float values"),
        (float("inf"), ValueError, "a ledger record cannot hold Out of range float values"),
        (b"raw", TypeError, "a ledger record cannot hold a bytes value"),
        ({1, 2}, TypeError, "a ledger record cannot hold a set value"),
        (datetime(2024, 1, 1), ValueError, "a ledger timestamp needs a timezone-aware datetime"),
    ],
)
def test_encode_line_refuses_what_json_cannot_hold(
    value: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        encode_line({"x": value})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("key sk-proj-abcdefghijklmnopqrstuvwx1234 here", "key [redacted] here"),
        ("sk-ant-api03-ABCDEFGHIJKLMNOPQRSTUV", "[redacted]"),
        ("Authorization: Bearer abcdef0123456789abcdef", "Authorization: [redacted]"),
        ("authorization: BEARER abcdef0123456789abcdef.x", "authorization: [redacted]"),
    ],
)
def test_secrets_are_redacted_with_a_warning(text: str, expected: str) -> None:
    with pytest.warns(RunnerWarning, match="looks like an API key or bearer token was redacted"):
        line = encode_line({"id": "X", "messages": [{"role": "user", "content": text}]})
    assert json.loads(line)["messages"][0]["content"] == expected


@pytest.mark.parametrize(
    "text",
    [
        "task-abcdefghijklmnopqrstuvwxyz",  # sk- inside a word
        "sk-short",
        "the bearer of bad news",
        "Bearer short",
        "plain text",
    ],
)
def test_ordinary_text_is_not_redacted(text: str) -> None:
    line = encode_line({"content": text})  # a RunnerWarning here would fail the test
    assert json.loads(line)["content"] == text


@pytest.mark.parametrize(
    "secret",
    [
        "s3cr3t-value-of-a-proxy-key",  # no key shape: only remembering finds it
        'pa"ss\\word-with-json-escapes',  # found as JSON writes it, escaped
        "cl\u00e9-non-ascii-secret-value",
        "lone-\ud800-surrogate-secret",  # cannot be UTF-8 encoded: the text check looks
    ],
)
def test_remembered_secrets_are_redacted_from_a_line(secret: str) -> None:
    from runner import redact

    redact.remember([secret])
    try:
        with pytest.warns(RunnerWarning, match="redacted"):
            line = encode_line({"id": "X", "request_id": f"echo {secret} echo"})
        assert json.loads(line)["request_id"] == "echo [redacted] echo"
        plain = encode_line({"id": "Y", "request_id": "nothing to hide"})  # no warning
        assert json.loads(plain)["request_id"] == "nothing to hide"
    finally:
        redact.forget()


def test_utc_timestamp_defaults_to_now() -> None:
    before = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    stamp = utc_timestamp()
    assert stamp.endswith("Z") and len(stamp) == 24
    assert datetime.fromisoformat(stamp.replace("Z", "+00:00")) >= before


# --- concurrency and torn lines --------------------------------------------------------------


def _append_many(path: str, worker: int, count: int) -> None:
    ledger = Ledger(path)
    for i in range(count):
        # 8 KB to 72 KB: more than a pipe buffer or a page, so a split write would interleave.
        body = chr(ord("a") + worker) * (8192 + 4096 * (i % 16))
        ledger.append({"v": 1, "worker": worker, "i": i, "body": body})
    ledger.close()


def _check_intact(path: Path, workers: int, count: int, extra: int = 0) -> None:
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""  # ends with a newline
    lines = lines[:-1]
    assert len(lines) == workers * count + extra
    seen = set()
    for raw in lines[extra:]:
        rec = json.loads(raw)
        assert set(rec["body"]) == {chr(ord("a") + rec["worker"])}
        assert len(rec["body"]) == 8192 + 4096 * (rec["i"] % 16)
        seen.add((rec["worker"], rec["i"]))
    assert seen == {(w, i) for w in range(workers) for i in range(count)}


def test_four_processes_append_200_intact_lines(ledger_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(ledger_path), w, 50)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    _check_intact(ledger_path, 4, 50)


def _append_inherited(ledger: Ledger, worker: int, count: int) -> None:
    for i in range(count):
        body = chr(ord("a") + worker) * (8192 + 4096 * (i % 16))
        ledger.append({"v": 1, "worker": worker, "i": i, "body": body})


def test_a_ledger_opened_before_fork_still_excludes_children(ledger_path: Path) -> None:
    ledger = Ledger(ledger_path)
    ledger.append({"v": 1, "first": True})  # the descriptor is open when the children fork
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_inherited, args=(ledger, w, 25)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    ledger.append({"v": 1, "last": True})
    ledger.close()
    lines = ledger_path.read_bytes().splitlines()
    assert json.loads(lines[-1]) == {"v": 1, "last": True}
    ledger_path.write_bytes(b"\n".join(lines[:-1]) + b"\n")
    _check_intact(ledger_path, 4, 25, extra=1)


def test_append_waits_for_the_lock(ledger_path: Path) -> None:
    fcntl = pytest.importorskip("fcntl")
    ledger_path.parent.mkdir(parents=True)
    ledger_path.write_bytes(b"")
    with open(ledger_path, "rb") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        writer = threading.Thread(target=Ledger(ledger_path).append, args=({"v": 1},))
        writer.start()
        writer.join(0.3)
        assert writer.is_alive(), "append did not wait for the lock"
        assert ledger_path.read_bytes() == b""
        fcntl.flock(holder.fileno(), fcntl.LOCK_UN)
        writer.join(10)
    assert ledger_path.read_bytes() == b'{"v":1}\n'


def test_torn_last_line_is_skipped_with_a_warning(ledger_path: Path, warned: Warnings) -> None:
    ledger = Ledger(ledger_path)
    ledger.append(record(n=1))
    ledger.append(record(n=2))
    ledger.close()
    with open(ledger_path, "ab") as f:
        f.write(b'{"v":1,"id":"01J","status":"o')  # a writer killed mid-line
    rows = list(read_records(ledger_path, warn=warned))
    assert [r["n"] for r in rows] == [1, 2]
    assert warned.messages == [
        f"{ledger_path}:3: incomplete last line skipped (a write was interrupted?)"
    ]


def test_torn_last_line_warns_through_runner_warning_by_default(ledger_path: Path) -> None:
    ledger_path.parent.mkdir(parents=True)
    ledger_path.write_bytes(b'{"v":1}\n{"v":1,"x":"\xc3')  # cut inside a UTF-8 character
    with pytest.warns(RunnerWarning, match=r"ledger.jsonl:2: incomplete last line skipped"):
        assert list(read_records(ledger_path)) == [{"v": 1}]


def test_complete_last_line_without_newline_is_kept(ledger_path: Path, warned: Warnings) -> None:
    ledger_path.parent.mkdir(parents=True)
    ledger_path.write_bytes(b'{"v":1,"n":1}\n{"v":1,"n":2}')
    assert [r["n"] for r in read_records(ledger_path, warn=warned)] == [1, 2]
    assert warned.messages == []


def test_append_after_a_torn_line_keeps_the_new_record_whole(
    ledger_path: Path, warned: Warnings
) -> None:
    Ledger(ledger_path).append(record(n=1))
    with open(ledger_path, "ab") as f:
        f.write(b'{"v":1,"n":2,"te')
    with Ledger(ledger_path) as ledger:
        ledger.append(record(n=3))
        ledger.append(record(n=4))
    assert [r["n"] for r in read_records(ledger_path, warn=warned)] == [1, 3, 4]
    assert warned.messages == [
        f"{ledger_path}:2: line skipped: not valid JSON (Unterminated string starting at column 14)"
    ]


def test_torn_line_left_by_another_process_is_ended_before_our_next_line(
    ledger_path: Path,
) -> None:
    ledger = Ledger(ledger_path)
    ledger.append(record(n=1))  # the file stays open between appends
    with open(ledger_path, "ab") as f:
        f.write(b'{"v":1,"n":2')
    ledger.append(record(n=3))
    ledger.close()
    lines = ledger_path.read_bytes().split(b"\n")
    assert lines[1] == b'{"v":1,"n":2'
    assert json.loads(lines[2])["n"] == 3


def test_an_append_after_our_own_line_reads_nothing_back(
    ledger_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The torn-tail check reads the file's last byte only when the file may not end with this
    ledger's own line: once on opening it, and after another writer's fragment (still ended)."""
    from runner.ledger import store

    reads: list[int] = []
    real = os.pread

    def pread(fd: int, n: int, offset: int) -> bytes:
        reads.append(offset)
        return real(fd, n, offset)

    monkeypatch.setattr(store.os, "pread", pread)
    ledger_path.parent.mkdir(parents=True, exist_ok=True)
    ledger_path.write_bytes(b'{"v":1,"n":0}\n')
    ledger = Ledger(ledger_path)
    for n in range(1, 4):
        ledger.append(record(n=n))
    assert len(reads) == 1  # the first append, on a file someone else wrote
    with open(ledger_path, "ab") as f:
        f.write(b'{"v":1,"n":4')
    ledger.append(record(n=5))
    ledger.append(record(n=6))
    ledger.close()
    assert len(reads) == 2
    lines = ledger_path.read_bytes().split(b"\n")
    assert lines[4] == b'{"v":1,"n":4'
    assert [json.loads(line)["n"] for line in lines[5:7]] == [5, 6]


class _Disk:
    """statvfs of a filesystem with `free` bytes, counting the calls."""

    def __init__(self, free: int) -> None:
        self.free, self.asked = free, 0

    def __call__(self, path: Any) -> Any:
        self.asked += 1
        return os.statvfs_result((4096, 1, 0, 0, self.free, 0, 0, 0, 0, 255))


def test_free_space_is_asked_again_when_short_or_after_a_second(
    ledger_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plenty of free space is trusted for a second, less what this ledger writes; a disk that
    is short of it (under 64 MiB) is asked before every call, and found full in time."""
    from runner.errors import LedgerUnavailable
    from runner.ledger import store

    clock = [100.0]
    monkeypatch.setattr(store.time, "monotonic", lambda: clock[0])
    disk = _Disk(10 << 30)
    monkeypatch.setattr(store.os, "statvfs", disk)
    ledger = Ledger(ledger_path)
    for _ in range(5):
        ledger.check_writable()
        ledger.append(record())
    assert disk.asked == 1
    clock[0] += 1.5
    disk.free = 0
    with pytest.raises(LedgerUnavailable, match="No space left on device"):
        ledger.check_writable()
    disk.free = 8 << 20  # short: asked before every call
    for _ in range(3):
        ledger.check_writable()
    assert disk.asked == 5
    disk.free = (64 << 20) + 100  # roomy, until this ledger's own lines use up the margin
    ledger.check_writable()
    ledger.append(record(pad="x" * 200))
    ledger.check_writable()
    assert disk.asked == 7
    ledger.close()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"not json", "line skipped: not valid JSON (Expecting value at column 1)"),
        (
            b'{"v":1,',
            "line skipped: not valid JSON (Expecting property name enclosed in double quotes "
            "at column 8)",
        ),
        (b"\xff\xfe{}", "line skipped: not valid UTF-8"),
        (b"[1, 2]", "line skipped: not a JSON object"),
        (b"null", "line skipped: not a JSON object"),
        (b'{"id":"x"}', "line skipped: no ledger format version `v`"),
        (b'{"v":"1"}', "line skipped: no ledger format version `v`"),
        (b'{"v":true}', "line skipped: no ledger format version `v`"),
        (b'{"v":0}', "line skipped: no ledger format version `v`"),
        (b"[" * 100_000, "line skipped: not valid JSON"),
    ],
)
def test_bad_middle_line_is_skipped_with_its_line_number(
    ledger_path: Path, warned: Warnings, line: bytes, message: str
) -> None:
    ledger_path.parent.mkdir(parents=True)
    ledger_path.write_bytes(b'{"v":1,"n":1}\n' + line + b'\n{"v":1,"n":3}\n')
    assert [r["n"] for r in read_records(ledger_path, warn=warned)] == [1, 3]
    assert warned.messages == [f"{ledger_path}:2: {message}"]


def test_blank_lines_are_ignored(ledger_path: Path, warned: Warnings) -> None:
    ledger_path.parent.mkdir(parents=True)
    ledger_path.write_bytes(b'\n{"v":1,"n":1}\n  \n{"v":1,"n":2}\n\n')
    assert [r["n"] for r in read_records(ledger_path, warn=warned)] == [1, 2]
    assert warned.messages == []


def test_newer_format_lines_are_yielded_with_one_warning(
    ledger_path: Path, warned: Warnings
) -> None:
    ledger_path.parent.mkdir(parents=True)
    ledger_path.write_bytes(b'{"v":1,"n":1}\n{"v":2,"n":2}\n{"v":2,"n":3}\n')
    assert [r["n"] for r in read_records(ledger_path, warn=warned)] == [1, 2, 3]
    assert warned.messages == [
        f"{ledger_path}:2: written by a newer runner (ledger format v2, this runner reads v1); "
        "such lines are read as far as their fields are known"
    ]


def test_reading_streams_the_file(ledger_path: Path) -> None:
    with Ledger(ledger_path) as ledger:
        ledger.append(record(n=1))
    rows = read_records(ledger_path)
    assert next(rows)["n"] == 1
    Ledger(ledger_path).append(record(n=2))  # written after reading began, still seen
    assert [r["n"] for r in rows] == [2]


def test_missing_ledger_is_an_error_at_call_time(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match=f"^no ledger at {tmp_path}/none.jsonl$"):
        read_records(tmp_path / "none.jsonl")


def test_reading_a_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(
        LedgerError, match=f"^cannot read the ledger {tmp_path}: it is a directory$"
    ):
        read_records(tmp_path)


HINT = " (choose another file with --ledger or RUNNER_LEDGER)"


def unwritable(tmp_path: Path, case: str) -> Path:
    if case == "directory":
        (tmp_path / "dir.jsonl").mkdir()
        return tmp_path / "dir.jsonl"
    if case == "parent-is-a-file":
        (tmp_path / "f").write_text("")
        return tmp_path / "f" / "sub" / "l.jsonl"
    return Path("/dev/full")  # a device: refused before any write


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("directory", "cannot open the ledger {}: it is a directory"),
        ("parent-is-a-file", "cannot open the ledger {}: {tmp}/f is a file, not a directory"),
        ("device", "cannot open the ledger {}: it is not a regular file (a device)"),
    ],
)
def test_unwritable_ledger_raises_ledger_error(tmp_path: Path, case: str, message: str) -> None:
    path = unwritable(tmp_path, case)
    with pytest.raises(LedgerError) as info:
        Ledger(path).append(record())
    assert str(info.value) == message.format(path, tmp=tmp_path) + HINT
    assert info.value.exit_code == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_directory_raises_ledger_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(LedgerError, match="Permission denied"):
        Ledger(locked / "ledger.jsonl").append(record())


def test_permission_denied_raises_ledger_error(
    ledger_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(*args: Any, **kwargs: Any) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(LedgerError) as info:
        Ledger(ledger_path).append(record())
    assert str(info.value) == f"cannot open the ledger {ledger_path}: Permission denied" + HINT


def test_write_only_access_still_appends(
    ledger_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def write_only(path: Any, flags: int, *args: Any) -> int:
        if flags & os.O_RDWR:
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", write_only)
    with Ledger(ledger_path) as ledger:
        ledger.append(record(n=1))
        ledger.append(record(n=2))
    monkeypatch.undo()
    assert [r["n"] for r in read_records(ledger_path)] == [1, 2]


def test_failed_write_removes_its_fragment(
    ledger_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger(ledger_path)
    ledger.append(record(n=1))
    before = ledger_path.read_bytes()
    real_write = os.write

    def half_then_full_disk(fd: int, data: Any) -> int:
        if len(data) > 10:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full_disk)
    with pytest.raises(LedgerError, match="No space left on device"):
        ledger.append(record(n=2, pad="x" * 100))
    monkeypatch.undo()
    assert ledger_path.read_bytes() == before
    ledger.append(record(n=3))
    ledger.close()
    assert [r["n"] for r in read_records(ledger_path)] == [1, 3]


@pytest.mark.parametrize(
    ("how", "expected"), [("rename", [2]), ("delete", [2]), ("rotate", [0, 2])]
)
def test_a_replaced_ledger_file_is_followed(
    ledger_path: Path, how: str, expected: list[int]
) -> None:
    ledger = Ledger(ledger_path)
    ledger.append(record(n=1))
    if how == "delete":
        ledger_path.unlink()
    else:
        ledger_path.rename(ledger_path.with_suffix(".old"))
    if how == "rotate":  # another process already started the new file
        Ledger(ledger_path).append(record(n=0))
    ledger.append(record(n=2))
    ledger.close()
    assert [r["n"] for r in read_records(ledger_path)] == expected


# --- ids -------------------------------------------------------------------------------------


def test_new_id_shape_uniqueness_and_order() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert all(len(i) == 26 and set(i) <= CROCKFORD for i in ids)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


def test_id_encodes_time_as_in_the_ulid_spec() -> None:
    factory = ledger_mod._IdFactory(lambda: 1469918176385, lambda: 0)
    assert factory.new() == "01ARYZ6S410000000000000000"
    assert factory.new() == "01ARYZ6S410000000000000001"


@given(st.integers(min_value=0, max_value=(1 << 128) - 1))
def test_an_id_is_its_value_in_crockford_base32_digit_by_digit(value: int) -> None:
    # The fast encoder (a table of digit pairs) against the definition.
    digits = "".join(
        "0123456789ABCDEFGHJKMNPQRSTVWXYZ"[(value >> shift) & 31] for shift in range(125, -5, -5)
    )
    assert ledger_mod._base32(value) == digits


def test_a_timestamp_is_utc_with_milliseconds_whatever_the_zone() -> None:
    moment = datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=UTC)
    assert utc_timestamp(moment) == "2026-03-01T12:30:05.123Z"
    assert utc_timestamp(moment.astimezone(timezone(timedelta(hours=-7)))) == utc_timestamp(moment)
    with pytest.raises(ValueError, match="timezone-aware"):
        utc_timestamp(moment.replace(tzinfo=None))


@given(st.datetimes(timezones=st.just(UTC)))
def test_a_timestamp_is_isoformat_in_milliseconds_with_a_z(moment: datetime) -> None:
    # The spelled-out format against the definition, years 1 to 9999 included.
    expected = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert utc_timestamp(moment) == expected


def test_ids_stay_ordered_when_the_clock_steps_back() -> None:
    clock = iter([1000, 1000, 999, 1001])
    randoms = iter([5, 3, 1 << 79])
    factory = ledger_mod._IdFactory(lambda: next(clock), lambda: next(randoms))
    ids = [factory.new() for _ in range(4)]
    assert ids == sorted(ids) and len(set(ids)) == 4


def test_random_part_overflow_moves_to_the_next_millisecond() -> None:
    randoms = iter([(1 << 80) - 1, 7])
    factory = ledger_mod._IdFactory(lambda: 1000, lambda: next(randoms))
    first, second = factory.new(), factory.new()
    assert first < second
    assert ledger_mod._IdFactory(lambda: 1001, lambda: 7).new() == second


def test_ids_from_later_milliseconds_sort_later_across_processes() -> None:
    early = ledger_mod._IdFactory(lambda: 5000, lambda: (1 << 80) - 1).new()
    late = ledger_mod._IdFactory(lambda: 5001, lambda: 0).new()
    assert early < late


def _id_of_a_forked_child() -> str:
    """The first id a child forked now writes."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write_fd, new_id().encode())
        os._exit(0)
    os.close(write_fd)
    os.waitpid(pid, 0)
    child_id = os.read(read_fd, 100).decode()
    os.close(read_fd)
    assert len(child_id) == 26
    return child_id


def test_forked_child_does_not_continue_the_parents_sequence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ledger_mod._ids, "_clock_ms", lambda: 123_456)
    new_id()  # the parent's last id, in the frozen millisecond
    child_id = _id_of_a_forked_child()
    assert new_id() != child_id


def test_children_forked_at_once_draw_different_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Random parts are read from the system in blocks; a forked child starts a block of its
    own, so two children in the same millisecond never write the same id."""
    monkeypatch.setattr(ledger_mod._ids, "_clock_ms", lambda: 123_456)
    new_id()  # the parent holds a block of random values when it forks
    assert _id_of_a_forked_child() != _id_of_a_forked_child()


def test_random_parts_are_drawn_in_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """One system call serves hundreds of ids; every value is 80 bits of what it returned."""
    calls: list[int] = []
    real = os.urandom

    def urandom(n: int) -> bytes:
        calls.append(n)
        return real(n)

    monkeypatch.setattr(ledger_mod.os, "urandom", urandom)
    draw = ledger_mod._Random80()
    values = [draw() for _ in range(1000)]
    assert len(calls) == 3 and all(0 <= v < 1 << 80 for v in values)
    assert len(set(values)) == 1000


# --- fingerprints ----------------------------------------------------------------------------

BODY = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Tell me about Paris."}],
    "temperature": 0.3,
    "response_format": {"type": "json_schema", "json_schema": {"name": "city", "strict": True}},
}


def test_fingerprint_is_sha256_of_the_canonical_body() -> None:
    canonical = (
        '{"messages":[{"content":"Tell me about Paris.","role":"user"}],"model":"gpt-4o-mini",'
        '"response_format":{"json_schema":{"name":"city","strict":true},"type":"json_schema"},'
        '"temperature":0.3}'
    )
    assert canonical_json(BODY) == canonical
    assert request_fingerprint(BODY) == hashlib.sha256(canonical.encode()).hexdigest()


@pytest.mark.parametrize(
    "variant",
    [
        {**BODY, "stream": True},
        {**BODY, "stream": True, "stream_options": {"include_usage": True}},
        {**BODY, "stream": False},
        dict(reversed(list(BODY.items()))),
        {**BODY, "messages": [{"content": "Tell me about Paris.", "role": "user"}]},
        {**BODY, "seed": None},
        {**BODY, "temperature": Decimal("0.3")},
    ],
    ids=["stream", "stream-options", "no-stream", "key-order", "nested-order", "null", "decimal"],
)
def test_fingerprint_ignores_what_does_not_change_the_request(variant: dict[str, Any]) -> None:
    assert request_fingerprint(variant) == request_fingerprint(BODY)


@pytest.mark.parametrize(
    "variant",
    [
        {**BODY, "temperature": 0.4},
        {**BODY, "model": "gpt-4o"},
        {**BODY, "messages": [{"role": "user", "content": "Tell me about Rome."}]},
        {**BODY, "tools": [{"type": "function", "function": {"name": "f"}}]},
        {k: v for k, v in BODY.items() if k != "response_format"},
        {**BODY, "seed": 7},
    ],
)
def test_fingerprint_changes_with_the_request(variant: dict[str, Any]) -> None:
    assert request_fingerprint(variant) != request_fingerprint(BODY)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1, "a": [1.0, 2.5, -0.0]}, '{"a":[1,2.5,0],"b":1}'),
        ({"t": (1, "é")}, '{"t":[1,"é"]}'),
        ({"big": 1e300}, '{"big":1e+300}'),
        ({"n": None, "f": False}, '{"f":false,"n":null}'),
    ],
)
def test_canonical_json(value: Any, expected: str) -> None:
    assert canonical_json(value) == expected


def test_integral_floats_fingerprint_like_integers() -> None:
    assert request_fingerprint({**BODY, "temperature": 1}) == request_fingerprint(
        {**BODY, "temperature": 1.0}
    )


@pytest.mark.parametrize(
    "value",
    [1, 1.0, True, 0, -0.0, False, "1", 0.3, "x" * 300, 2**60, 1e300],
)
def test_a_remembered_scalar_fingerprints_as_a_fresh_one(value: Any) -> None:
    """Scalars are remembered by (key, type, value): 1, 1.0 and True, equal and of one hash in
    Python, must still give the texts they give alone."""
    from runner.ledger import fingerprint

    fresh = hashlib.sha256(canonical_json({**BODY, "seed": value}).encode()).hexdigest()
    for warm_with in (1, 1.0, True, 0, False, -0.0, value):
        request_fingerprint({**BODY, "seed": warm_with})
        assert request_fingerprint({**BODY, "seed": value}) == fresh, (warm_with, value)
    assert all(len(key[2]) <= 256 for key in fingerprint._SCALAR_TEXT if key[1] is str)


# --- privacy ---------------------------------------------------------------------------------


def test_without_content_keeps_hashes_and_figures() -> None:
    full = sample_record(status="invalid_output")
    stripped = without_content(full)
    assert stripped["vars"] is None and stripped["messages"] is None
    assert stripped["output"] == {
        "text": None,
        "json": None,
        "sha256": hashlib.sha256(b'{"country": "Frankreich"}').hexdigest(),
    }
    assert stripped["error"]["errors"] == ["/country: (withheld)"]
    assert stripped["content"] is False
    for key in ("id", "spec", "request_sha256", "usage", "cost", "latency_ms"):
        assert stripped[key] == full[key]
    # Attempt messages of reply errors quote the reply: only their figures stay.
    assert [{**a, "message": None} for a in stripped["attempts"]] == [
        {**a, "message": None} for a in full["attempts"]
    ]
    assert "bad output" not in json.dumps(stripped["attempts"])
    assert full["vars"] == {"city": "Paris"}  # the original is left alone
    jsonschema.Draft202012Validator(SCHEMA).validate(json.loads(encode_line(stripped)))


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (None, None),
        ({"text": None, "json": None}, {"text": None, "json": None, "sha256": None}),
        (
            {"text": None, "json": {"b": 1, "a": 2}},
            {"text": None, "json": None, "sha256": hashlib.sha256(b'{"a":2,"b":1}').hexdigest()},
        ),
        (
            {"text": "x", "json": None, "finish_reason": "length", "tool_calls": [{"id": "c"}]},
            {
                "text": None,
                "json": None,
                "sha256": hashlib.sha256(b"x").hexdigest(),
                "finish_reason": "length",
            },
        ),
    ],
)
def test_without_content_output_shapes(output: Any, expected: Any) -> None:
    assert without_content({"v": 1, "output": output})["output"] == expected


# --- the line schema -------------------------------------------------------------------------


def sample_record(status: str = "ok") -> dict[str, Any]:
    spec = Path("prompts/city.yaml")
    usage = Usage(120, 30, 0, 0) + Usage(118, 28, 64, 0)
    attempts = [
        Attempt(1, "invalid_output", 0.0, 812.4, 200, Usage(120, 30), "req_1", "bad output"),
        Attempt(
            2,
            "ok" if status == "ok" else "invalid_output",
            1.02,
            790.0,
            200,
            Usage(118, 28, 64),
            "req_2",
        ),
    ]
    rec: dict[str, Any] = {
        "v": LEDGER_VERSION,
        "id": new_id(),
        "ts": utc_timestamp(),
        "spec": {
            "path": spec.as_posix(),
            "name": "city",
            "sha256": "a" * 64,
            "commit": "b" * 40,
            "dirty": False,
        },
        "request_sha256": request_fingerprint(BODY),
        "case": "paris",
        "row": None,
        "model": "gpt-4o-mini",
        "served_model": "gpt-4o-mini-2024-07-18",
        "params": {"temperature": 0.3, "max_tokens": 400, "stop": ["\n\n"]},
        "vars": {"city": "Paris"},
        "messages": [{"role": "user", "content": "Tell me about Paris."}],
        "status": status,
        "output": {"text": '{"country": "Frankreich"}', "json": {"country": "Frankreich"}},
        "error": None,
        "attempts": [a.to_dict() for a in attempts],
        "usage": {**usage.to_dict(), "estimated_prompt": 118},
        "cost": Cost(Decimal("0.000124"), "genai-prices 0.2.3").to_dict(),
        "latency_ms": 1650.2,
        "ttft_ms": None,
        "request_id": "req_2",
        "mock": False,
    }
    if status != "ok":
        rec["error"] = {
            "kind": "invalid_output",
            "type": "OutputInvalid",
            "status": 200,
            "message": "output breaks the schema",
            "errors": ["/country: 'Frankreich' is not one of ['France']"],
        }
    return rec


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_schema_covers_every_ledger_record_field() -> None:
    assert set(SCHEMA["properties"]) - {"content"} == set(LedgerRecord.__annotations__) - {
        "content"
    }


def _property_maps(schema: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "", schema["properties"]
    for name in ("spec", "usage", "cost", "output", "error"):
        yield name, schema["properties"][name]["properties"]
    yield "attempt", schema["$defs"]["attempt"]["properties"]


def test_schema_describes_every_field() -> None:
    missing = [
        f"{where}.{name}"
        for where, props in _property_maps(SCHEMA)
        for name, sub in props.items()
        if "description" not in sub
    ]
    assert missing == []


@pytest.mark.parametrize("status", ["ok", "invalid_output"])
def test_a_written_record_validates_against_the_schema(ledger_path: Path, status: str) -> None:
    Ledger(ledger_path).append(sample_record(status))
    (line,) = read_records(ledger_path)
    jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(line)


@pytest.mark.parametrize(
    "change",
    [
        {"output": None, "vars": None, "messages": None},  # content withheld, no fingerprint
        {"output": {"text": "a", "json": None, "finish_reason": "stop", "choices": ["a", "b"]}},
        {"output": {"text": None, "json": None, "tool_calls": [{"id": "call_1"}]}},
        {"case": None, "row": "17", "ttft_ms": 95.5, "served_model": None, "content": True},
        {
            "attempts": [],
            "spec": {
                "path": "/abs/s.yaml",
                "name": "s",
                "sha256": "c" * 64,
                "commit": None,
                "dirty": None,
            },
        },
        {
            "status": "error",
            "output": None,
            "error": {"kind": "interrupted", "type": "KeyboardInterrupt", "message": "interrupted"},
        },
    ],
)
def test_schema_accepts_the_shapes_the_engine_writes(change: dict[str, Any]) -> None:
    rec = {**sample_record(), **change}
    jsonschema.Draft202012Validator(SCHEMA).validate(json.loads(encode_line(rec)))


def _broken(change: dict[str, Any], drop: str = "", status: str = "ok") -> dict[str, Any]:
    rec = {**sample_record(status), **change}
    rec.pop(drop, None)
    return rec


@pytest.mark.parametrize(
    ("rec", "message"),
    [
        (_broken({}, drop="id"), "'id' is a required property"),
        (_broken({"v": 2}), "1 was expected"),
        (_broken({"id": "01arz3ndektsv4rrffq69g5fav"}), "does not match"),
        (_broken({"ts": "2024-05-06 07:08:09"}), "does not match"),
        (_broken({"status": "failed"}), "'failed' is not one of ['ok', 'error', 'invalid_output']"),
        (_broken({"request_sha256": "abc"}), "'abc' does not match"),
        (_broken({"error": {"kind": "timeout", "message": "m"}}), "is not of type 'null'"),
        (_broken({"error": None}, status="invalid_output"), "None is not of type 'object'"),
        (
            _broken({"error": {"kind": "timeout", "message": "m"}}, status="invalid_output"),
            "'invalid_output' was expected",
        ),
        (
            _broken({"cost": {"usd": -1, "source": "x", "estimated": False}}),
            "-1 is less than the minimum of 0",
        ),
        (_broken({"surprise": 1}), "Additional properties are not allowed ('surprise'"),
        (
            _broken({"attempts": [{"n": 0, "outcome": "ok", "waited_s": 0, "latency_ms": 1}]}),
            "0 is less than the minimum of 1",
        ),
    ],
)
def test_schema_rejects_broken_records(rec: dict[str, Any], message: str) -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = [e.message for e in validator.iter_errors(json.loads(encode_line(rec)))]
    assert any(message in e for e in errors), errors
