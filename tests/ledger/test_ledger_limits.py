"""The bounds of a ledger: readers take only regular files and lines up to MAX_LINE_BYTES (a
longer line is read past, never held); the writer never writes a line readers would refuse."""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path

import pytest

from runner.errors import LedgerError, RunnerWarning
from runner.ledger import Ledger, encode_line, new_id, read_records
from runner.ledger.encoding import MAX_LINE_BYTES
from runner.ledger.reading import iter_lines, open_for_reading


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_a_device_is_refused_at_once(device: str) -> None:
    with pytest.raises(LedgerError, match=f"cannot read the ledger {device}: it is not a regular"):
        read_records(device)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR)  # so that opening it for reading does not block
    try:
        with pytest.raises(LedgerError, match="not a regular file"):
            open_for_reading(fifo)
    finally:
        os.close(writer)


def test_missing_ok_gives_none(tmp_path: Path) -> None:
    assert open_for_reading(tmp_path / "none", missing_ok=True) is None


def test_a_long_line_is_skipped_and_reported_and_the_next_is_read() -> None:
    data = b'{"v":1}\n' + b"x" * 5000 + b"\n" + b'{"v":2}\n' + b"y" * 3000
    long = []
    got = list(iter_lines(io.BytesIO(data), limit=1000, on_long=long.append))
    assert got == [(1, b'{"v":1}\n'), (3, b'{"v":2}\n')]
    assert long == [2, 4]


def test_a_line_of_exactly_the_limit_is_read() -> None:
    line = b"a" * 999 + b"\n"
    assert list(iter_lines(io.BytesIO(line + line), limit=1000)) == [(1, line), (2, line)]


def test_read_records_warns_of_a_long_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "l.jsonl"
    path.write_bytes(b'{"v":1,"n":1}\n' + b'{"v":1,"pad":"' + b"z" * 3000 + b'"}\n{"v":1,"n":2}\n')
    from runner.ledger import reading

    monkeypatch.setattr(reading, "MAX_LINE_BYTES", 1000)
    said: list[str] = []
    assert [r.get("n") for r in reading.read_records(path, warn=said.append)] == [1, 2]
    assert said == [f"{path}:2: line skipped: longer than 1,000 bytes"]


def _big(content_bytes: int) -> dict[str, object]:
    return {
        "v": 1,
        "id": new_id(),
        "status": "ok",
        "vars": {"q": "v"},
        "messages": [{"role": "user", "content": "hi"}],
        "output": {"text": "a" * content_bytes, "json": None},
        "error": None,
        "content": True,
    }


def test_a_line_past_the_cap_is_written_without_its_content(tmp_path: Path) -> None:
    record = _big(MAX_LINE_BYTES + 10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = encode_line(record)
    assert len(line) < 2000
    written = json.loads(line)
    assert written["content"] is False and written["output"]["text"] is None
    assert written["output"]["sha256"]
    assert any(
        issubclass(w.category, RunnerWarning) and "without its content" in str(w.message)
        for w in caught
    )
    with Ledger(tmp_path / "l.jsonl") as ledger:
        ledger.append_line(line)
    assert [r["id"] for r in read_records(tmp_path / "l.jsonl")] == [record["id"]]


def test_a_line_under_the_cap_keeps_its_content() -> None:
    record = _big(1000)
    assert json.loads(encode_line(record))["output"]["text"] == "a" * 1000
