"""The files a report touches: which ledgers a path or glob names, the scan for lines past 64 MiB
and a torn tail (exact at the boundary), and the --html path checked before any work."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from _report_lines import record, write_lines

from runner.errors import ConfigError
from runner.ledger.encoding import MAX_LINE_BYTES
from runner.report import build_report, check_output, expand_ledgers
from runner.report.files import copy_without_long_lines, scan


def _line_of(length: int) -> bytes:
    """A line of `length` bytes before its newline."""
    return b"x" * length + b"\n"


@pytest.mark.parametrize(
    ("length", "long"), [(MAX_LINE_BYTES - 1, 0), (MAX_LINE_BYTES, 0), (MAX_LINE_BYTES + 1, 1)]
)
def test_the_scan_is_exact_at_the_limit(tmp_path: Path, length: int, long: int) -> None:
    """A line of MAX_LINE_BYTES before its newline is read, one byte more is too long: the
    same limit as every other reader (ledger.reading.iter_lines)."""
    path = tmp_path / "l.jsonl"
    with path.open("wb") as f:
        f.write(b'{"v":1}\n' + b"y" * 10 + b"\n")
        f.write(_line_of(length))
        f.write(b'{"v":1}\n')
    assert scan(str(path)).long_lines == long


def test_long_lines_across_pieces_and_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    with path.open("wb") as f:
        f.write(_line_of(MAX_LINE_BYTES + 3))
        f.write(b"short\n" * 1000)
        f.write(_line_of(MAX_LINE_BYTES + (1 << 20) + 7))
        f.write(b"z" * (MAX_LINE_BYTES + 1))  # a last line without its newline
    found = scan(str(path))
    assert (found.long_lines, found.torn) == (3, False)
    copy = copy_without_long_lines(str(path), str(tmp_path), 0)
    assert Path(copy).read_bytes() == b"short\n" * 1000


@pytest.mark.parametrize(
    ("tail", "torn"),
    [(b"", False), (b'{"v":1}', False), (b'{"v":1, "id"', True), (b"\xff\xfe", True)],
)
def test_the_scan_finds_a_torn_tail(tmp_path: Path, tail: bytes, torn: bool) -> None:
    path = write_lines(tmp_path / "l.jsonl", [record(1), tail])
    assert scan(str(path)).torn is torn


def test_a_copy_keeps_the_file_name_in_the_view(tmp_path: Path) -> None:
    path = tmp_path / "shard.jsonl"
    with path.open("wb") as f:
        f.write(json.dumps(record(1)).encode() + b"\n")
        f.write(_line_of(MAX_LINE_BYTES + 1))
    from runner.report import run_sql

    result = run_sql([str(path)], "SELECT file FROM ledger")
    assert result.rows == [(str(path),)] and result.long_lines == 1
    assert not [p for p in tmp_path.iterdir() if p.name != "shard.jsonl"]


def test_globs_pass_over_directories_and_refuse_devices(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "batches").mkdir()
    write_lines(tmp_path / "runs" / "ledger.jsonl", [record(1)])
    assert expand_ledgers(["runs/*"]) == ["runs/ledger.jsonl"]
    os.mkfifo(tmp_path / "runs" / "pipe")
    with pytest.raises(ConfigError, match=r"^--ledger runs/\*: runs/pipe is not a regular file"):
        expand_ledgers(["runs/*"])


def test_the_same_file_twice_is_read_once(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "l.jsonl", [record(1)])
    (tmp_path / "link.jsonl").symlink_to(path)
    assert expand_ledgers([str(path), "*.jsonl", "link.jsonl"]) == [str(path)]


def test_check_output_accepts_a_new_or_plain_file(tmp_path: Path) -> None:
    ledger = write_lines(tmp_path / "l.jsonl", [record(1)])
    check_output("report.html", [str(ledger)])
    (tmp_path / "old.html").write_text("old", encoding="utf-8")
    check_output("old.html", [str(ledger)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.jsonl", "old.html"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_check_output_refuses_a_read_only_place(tmp_path: Path) -> None:
    ledger = write_lines(tmp_path / "l.jsonl", [record(1)])
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(ConfigError, match="permission denied"):
        check_output(str(locked / "r.html"), [str(ledger)])


def test_the_report_is_unchanged_by_the_scan(tmp_path: Path) -> None:
    """A ledger without long lines is read in place: same figures as before the scan existed."""
    path = write_lines(tmp_path / "l.jsonl", [record(1), record(2)])
    report = build_report([str(path)], by=())
    assert (report.calls, report.long_lines, report.bad_lines) == (2, 0, 0)
