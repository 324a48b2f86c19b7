"""Reading a ledger from its end: every split of the file into blocks gives the lines
`iter_lines` gives, in reverse, long lines included; the latest calls cost a few blocks of a
big file; filters, several ledgers and ids (whole or a unique prefix)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.errors import ConfigError, LedgerError
from runner.ledger.reading import iter_lines, iter_lines_backwards, read_records_newest_first
from runner.ledger.recent import CallFilter, find_call, latest_calls


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"x")), max_size=8),
    torn=st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"x")),
    limit=st.integers(1, 10),
    block=st.integers(1, 9),
)
def test_backwards_is_forwards_reversed(
    lines: list[bytes], torn: bytes, limit: int, block: int
) -> None:
    data = b"".join(line + b"\n" for line in lines) + torn
    forward_long: list[int] = []
    forward = [
        line for _, line in iter_lines(io.BytesIO(data), limit=limit, on_long=forward_long.append)
    ]
    backward_long: list[int] = []
    backward = list(
        iter_lines_backwards(
            io.BytesIO(data), limit=limit, block=block, on_long=backward_long.append
        )
    )
    assert [line for _, line in backward] == forward[::-1]
    assert len(backward_long) == len(forward_long)
    for offset, line in backward:  # each line is where it says it is
        assert data[offset : offset + len(line)] == line


class _Counting(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.read_bytes = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.read_bytes += len(chunk)
        return chunk


def test_the_last_lines_of_a_big_file_cost_a_few_blocks() -> None:
    data = b"".join(b'{"n": %d, "pad": "%s"}\n' % (i, b"x" * 200) for i in range(50_000))
    f = _Counting(data)
    lines = iter_lines_backwards(f, block=1 << 16)
    last = [next(lines)[1] for _ in range(5)]
    assert json.loads(last[0])["n"] == 49_999 and json.loads(last[4])["n"] == 49_995
    assert f.read_bytes <= (1 << 16) + 1 and len(data) > 10_000_000  # a block and the last byte


def test_a_line_past_the_limit_is_never_held() -> None:
    data = b"a\n" + b"x" * 5000 + b"\nb\n"
    longs: list[int] = []
    got = list(iter_lines_backwards(io.BytesIO(data), limit=100, block=64, on_long=longs.append))
    assert got == [(5003, b"b\n"), (0, b"a\n")] and longs == [2]


# --- the latest calls -----------------------------------------------------------------------


def call(n: int, **over: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "v": 1,
        "id": f"01JP9ZMQCNBRX9RWDJTG7R{n:04d}",
        "ts": f"2025-03-14T09:{n // 60:02d}:{n % 60:02d}.000Z",
        "spec": {"path": "prompts/city.yaml", "name": "city"},
        "model": "gpt-4o-mini",
        "status": "ok",
    }
    return line | over


def write(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def ids(calls: list[dict[str, Any]]) -> list[str]:
    return [c["id"][-4:] for c in calls]


def test_newest_first_filtered_and_limited(tmp_path: Path) -> None:
    ledger = write(
        tmp_path / "l.jsonl",
        [
            call(1),
            call(2, status="error"),
            call(3, spec={"path": "prompts/haiku.yaml", "name": "haiku"}),
            {"v": 1, "event": "created", "batch": "b1"},  # a batch state line: not a call
            call(4, status="invalid_output", model="gpt-4o"),
            call(5),
        ],
    )
    assert ids(latest_calls([ledger], limit=3)) == ["0005", "0004", "0003"]
    assert ids(latest_calls([ledger], limit=9, where=CallFilter(status="failed"))) == [
        "0004",
        "0002",
    ]
    assert ids(latest_calls([ledger], limit=9, where=CallFilter(status="error"))) == ["0002"]
    assert ids(latest_calls([ledger], limit=9, where=CallFilter(spec="haiku"))) == ["0003"]
    by_path = CallFilter(spec="./prompts/haiku.yaml")
    assert ids(latest_calls([ledger], limit=9, where=by_path)) == ["0003"]
    assert ids(latest_calls([ledger], limit=9, where=CallFilter(spec="h*"))) == ["0003"]
    assert ids(latest_calls([ledger], limit=9, where=CallFilter(model="gpt-4o"))) == ["0004"]


def test_several_ledgers_merge_by_time(tmp_path: Path) -> None:
    a = write(tmp_path / "a.jsonl", [call(1), call(4)])
    b = write(tmp_path / "b.jsonl", [call(2), call(3), call(5)])
    assert ids(latest_calls([a, b], limit=4)) == ["0005", "0004", "0003", "0002"]


def test_unreadable_lines_are_skipped_with_a_warning_and_a_torn_tail_silently(
    tmp_path: Path,
) -> None:
    path = tmp_path / "l.jsonl"
    first = json.dumps(call(1)).encode()
    path.write_bytes(first + b"\nnot json\n" + json.dumps(call(2)).encode() + b'\n{"v": 1, "id')
    warnings: list[str] = []
    assert ids(list(read_records_newest_first(path, warn=warnings.append))) == ["0002", "0001"]
    assert warnings == [
        f"{path} (byte {len(first) + 1}): line skipped: not valid JSON "
        "(Expecting value at column 1)"
    ]


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="it is a directory"):
        latest_calls([tmp_path], limit=1)
    with pytest.raises(LedgerError, match="not a regular file|a device"):
        latest_calls(["/dev/zero"], limit=1)


def test_a_call_by_its_id_or_a_unique_prefix(tmp_path: Path) -> None:
    ledger = write(tmp_path / "l.jsonl", [call(1), call(2), call(12)])
    assert find_call([ledger], "01JP9ZMQCNBRX9RWDJTG7R0002")["id"].endswith("0002")  # type: ignore[index]
    assert find_call([ledger], "01jp9zmqcnbrx9rwdjtg7r0012")["id"].endswith("0012")  # type: ignore[index]
    assert find_call([ledger], "01JP9ZMQCNBRX9RWDJTG7R9999") is None
    with pytest.raises(ConfigError, match="3 calls have an id starting so"):
        find_call([ledger], "01JP9ZMQ")
    with pytest.raises(ConfigError, match="2 calls"):
        find_call([ledger], "01JP9ZMQCNBRX9RWDJTG7R000")
    assert find_call([ledger], "01JP9ZMQCNBRX9RWDJTG7R001")["id"].endswith("0012")  # type: ignore[index]
