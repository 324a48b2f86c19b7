"""runner.ledger.replay: the index of a replay ledger (latest ok line per request, torn lines
skipped with one warning), the completion rebuilt from a line, and a Session that answers from
it: the recorded usage and cost (never re-priced), `replayed` in the new line, and a changed
request refused before sending."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from _ledger_schema import LINE_VALIDATOR

from runner.engine.session import Session
from runner.errors import ConfigError, NotRecorded
from runner.ledger.fingerprint import request_fingerprint
from runner.ledger.reading import read_records
from runner.ledger.replay import ReplaySource
from runner.spec.load import load_spec
from runner.testing.replay import explain_miss

ROOT = Path(__file__).resolve().parents[2]

SPEC = """\
name: echo
model: gpt-4o-mini
params: {temperature: 0}
messages:
  - {role: user, content: "Say {{ word }}"}
tests:
  - {name: hi, vars: {word: hi}}
"""


def _spec(tmp_path: Path, text: str = SPEC) -> Any:
    path = tmp_path / "echo.yaml"
    path.write_text(text, encoding="utf-8")
    return load_spec(path)


def _line(
    fingerprint: str, *, id: str, status: str = "ok", text: str = "hello", **extra: Any
) -> str:
    record = {
        "v": 1,
        "id": id,
        "spec": {"name": "echo"},
        "request_sha256": fingerprint,
        "case": "hi",
        "model": "gpt-4o-mini",
        "served_model": "gpt-4o-mini-2024-07-18",
        "params": {"temperature": 0},
        "messages": [{"role": "user", "content": "Say hi"}],
        "status": status,
        "output": {"text": text, "json": None, "finish_reason": "stop"},
        "usage": {"prompt": 11, "completion": 2, "cached": 0, "reasoning": 0, "total": 13},
        "cost": {"usd": 0.125, "source": "recorded price", "estimated": False},
        "latency_ms": 812.5,
        "request_id": "req_1",
        "mock": False,
        **extra,
    }
    return json.dumps(record) + "\n"


def _fingerprint(tmp_path: Path) -> str:
    with Session(mock=True, ledger=tmp_path / "unused.jsonl") as session:
        return session.call_parts(_spec(tmp_path), {"word": "hi"}).fingerprint


def test_every_ok_answer_is_kept_in_order(tmp_path: Path) -> None:
    """A request recorded N times (`--repeat N`) keeps its N answers in file order: the k-th
    call of the request in a run gets the k-th; failed and replayed lines answer nothing."""
    fp = _fingerprint(tmp_path)
    ledger = tmp_path / "base.jsonl"
    ledger.write_text(
        _line(fp, id="A", text="old")
        + _line(fp, id="B", text="new")
        + _line(fp, id="R", text="again", replayed={"from": "x.jsonl", "id": "A"})
        + _line(fp, id="C", status="error", text="broken"),
        encoding="utf-8",
    )
    source = ReplaySource(ledger)
    assert len(source) == 1
    assert source.count(fp) == 2
    assert [source.recorded(fp, k)["id"] for k in (0, 1)] == ["A", "B"]  # type: ignore[index]
    assert source.recorded(fp, 2) is None
    assert [source.claim(fp) for _ in range(3)] == [0, 1, 2]
    assert source.latest_for("echo", "hi")["id"] == "C"  # type: ignore[index]
    assert source.latest_for("echo", "hi", ok=True)["id"] == "R"  # type: ignore[index]


def test_torn_lines_are_skipped_with_one_warning(tmp_path: Path) -> None:
    fp = _fingerprint(tmp_path)
    ledger = tmp_path / "base.jsonl"
    ledger.write_text(
        "{not json\n" + _line(fp, id="A") + "[1]\n" + _line(fp, id="B")[:40], encoding="utf-8"
    )
    warnings: list[str] = []
    source = ReplaySource(ledger, warn=warnings.append)
    assert source.recorded(fp)["id"] == "A"  # type: ignore[index]
    assert warnings == [f"{ledger}: 3 torn or unreadable lines skipped (line 1, 3, 4)"]


def test_a_missing_ledger_is_bad_usage(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no replay ledger at"):
        ReplaySource(tmp_path / "none.jsonl")
    with pytest.raises(ConfigError, match="it is a directory"):
        ReplaySource(tmp_path)
    assert len(ReplaySource(tmp_path / "none.jsonl", record_missing=True)) == 0


def test_a_session_replays_with_the_recorded_cost(tmp_path: Path) -> None:
    fp = _fingerprint(tmp_path)
    base = tmp_path / "base.jsonl"
    base.write_text(_line(fp, id="REC1", text="hello"), encoding="utf-8")
    out = tmp_path / "run.jsonl"
    spec = _spec(tmp_path)
    # No key, no mock: anything but a replay would stop with "no API key".
    with Session(ledger=out, replay=ReplaySource(base), environ={}) as session:
        result = session.run(spec, {"word": "hi"}, case="hi")
    assert result.value == "hello" and result.text == "hello"
    assert str(result.cost.usd) == "0.125" and result.cost.source == "recorded price"
    assert result.usage.total == 13
    [line] = list(read_records(out))
    LINE_VALIDATOR.validate(line)
    assert line["replayed"] == {"from": str(base), "id": "REC1"}
    assert line["cost"] == {"usd": 0.125, "source": "recorded price", "estimated": False}
    assert line["usage"]["total"] == 13 and line["mock"] is False
    assert line["request_sha256"] == fp


def test_a_streamed_spec_replays_its_text_as_a_delta(tmp_path: Path) -> None:
    spec = _spec(tmp_path, SPEC.replace("messages:", "stream: true\nmessages:"))
    with Session(mock=True, ledger=tmp_path / "x.jsonl") as session:
        fp = session.call_parts(spec, {"word": "hi"}).fingerprint
    base = tmp_path / "base.jsonl"
    base.write_text(_line(fp, id="S"), encoding="utf-8")
    deltas: list[str] = []
    with Session(ledger=tmp_path / "run.jsonl", replay=ReplaySource(base), environ={}) as s:
        s.run(spec, {"word": "hi"}, on_delta=lambda d: deltas.append(d.text))
    assert deltas == ["hello"]


def test_a_changed_request_is_refused_before_sending(tmp_path: Path) -> None:
    fp = _fingerprint(tmp_path)
    base = tmp_path / "base.jsonl"
    base.write_text(_line(fp, id="A"), encoding="utf-8")
    out = tmp_path / "run.jsonl"
    source = ReplaySource(base)
    with (
        Session(ledger=out, replay=source, environ={}) as session,
        pytest.raises(NotRecorded, match="request changed since it was recorded") as info,
    ):
        session.run(_spec(tmp_path), {"word": "bye"})
    assert not out.exists()  # nothing sent, no line
    diff = explain_miss(source, "echo", "hi", info.value)
    assert "-Say hi" in diff and "+Say bye" in diff


def test_a_content_free_line_cannot_be_replayed(tmp_path: Path) -> None:
    fp = _fingerprint(tmp_path)
    base = tmp_path / "base.jsonl"
    line = json.loads(_line(fp, id="A"))
    line.update(content=False, messages=None, output={"text": None, "json": None, "sha256": "x"})
    base.write_text(json.dumps(line) + "\n", encoding="utf-8")
    with (
        Session(ledger=tmp_path / "run.jsonl", replay=ReplaySource(base), environ={}) as s,
        pytest.raises(NotRecorded, match="kept no content"),
    ):
        s.run(_spec(tmp_path), {"word": "hi"})


def test_tool_calls_come_back_in_the_neutral_shape(tmp_path: Path) -> None:
    base = tmp_path / "base.jsonl"
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    fp = request_fingerprint(body)
    calls = [{"name": "get_weather", "arguments": {"city": "Lyon"}, "id": "call_1"}]
    base.write_text(
        _line(fp, id="T", text=None, output={"text": None, "tool_calls": calls}), encoding="utf-8"
    )
    source = ReplaySource(base)
    completion = asyncio.run(source.client.complete(body))
    [call] = completion.choices[0].tool_calls
    assert call == {"name": "get_weather", "arguments": '{"city": "Lyon"}', "id": "call_1"}
