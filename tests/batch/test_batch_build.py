"""runner.batch.build: each row's request is the live call's body (streaming fields left out,
the fingerprint unchanged), written as Batch API lines and split within the limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _batch_helpers import SPEC

from runner.batch import BatchLimits, build_input
from runner.batch.build import batch_line
from runner.dataset import Item
from runner.engine import Session
from runner.errors import DatasetError
from runner.ledger.fingerprint import request_fingerprint
from runner.spec import load_spec


def spec_file(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "say.yaml"
    path.write_text(SPEC + extra, encoding="utf-8")
    return path


def test_lines_carry_the_live_body_without_streaming(tmp_path: Path) -> None:
    spec = load_spec(spec_file(tmp_path, "stream: true\n"))
    with Session(mock=True) as session:
        built = build_input(session, spec, [Item("a", {"n": 1})], tmp_path)
        live = session.call_parts(spec, {"n": 1})
    [part] = built.parts
    [line] = [json.loads(x) for x in part.path.read_text().splitlines()]
    assert line["custom_id"] == "a" and line["method"] == "POST"
    assert line["url"] == "/v1/chat/completions"
    assert live.pre.body["stream"] is True and "stream" not in line["body"]
    assert line["body"] == {k: v for k, v in live.pre.body.items() if not k.startswith("stream")}
    assert request_fingerprint(line["body"]) == live.fingerprint


def test_split_at_the_request_and_byte_limits(tmp_path: Path) -> None:
    spec = load_spec(spec_file(tmp_path))
    items = [Item(str(i), {"n": i}) for i in range(7)]
    with Session(mock=True) as session:
        by_count = build_input(session, spec, items, tmp_path, limits=BatchLimits(max_requests=3))
        folder = tmp_path / "b"
        folder.mkdir()
        by_size = build_input(session, spec, items, folder, limits=BatchLimits(max_bytes=700))
    assert [len(p.rows) for p in by_count.parts] == [3, 3, 1]
    assert all(p.bytes <= 700 and p.path.stat().st_size == p.bytes for p in by_size.parts)
    assert [k for p in by_size.parts for k in p.rows] == [str(i) for i in range(7)]
    assert len(by_size.parts) > 1
    assert (
        batch_line("k", {"a": 1}, "/v1/chat/completions")
        == b'{"custom_id":"k","method":"POST","url":"/v1/chat/completions","body":{"a":1}}\n'
    )


def test_bad_rows_fail_alone_and_bad_data_sets_stop(tmp_path: Path) -> None:
    spec = load_spec(spec_file(tmp_path))
    with Session(mock=True) as session:
        built = build_input(session, spec, [Item("a", {"n": 1}), Item("b", {"n": "x"})], tmp_path)
        assert [i.key for i, _ in built.failed] == ["b"] and built.rows == 1
        with pytest.raises(DatasetError, match="used twice"):
            build_input(session, spec, [Item("a", {"n": 1}), Item("a", {"n": 2})], tmp_path)
        with pytest.raises(DatasetError, match="more than a batch input file may hold"):
            build_input(
                session, spec, [Item("a", {"n": 1})], tmp_path, limits=BatchLimits(max_bytes=50)
            )
