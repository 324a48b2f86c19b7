"""Issue 20's bad input against a live loopback server with a (fake) key in the environment:
an unknown model in `--price-as`, `--repeat 0`, `--cache` with `--record-missing`, and a
`min_pass_rate` outside 0 to 1. Each is exit 2 with one clear message, no traceback, no request
reaching the server, no ledger line, no secret anywhere, in bounded time."""

from __future__ import annotations

from pathlib import Path

import pytest
from _trust_recorded import (
    Canned,
    assert_clean,
    canned_server,
    reply,
    run_cli,
    server_env,
    write_spec,
)

TESTS = "tests:\n  - name: hi\n    vars: {who: Ada}\n    expect:\n      - {text_contains: hi}\n"


def _spec(folder: Path, case_extra: str = "") -> Path:
    return write_spec(folder, TESTS + case_extra)


@pytest.mark.parametrize(
    ("args", "case_extra", "says"),
    [
        (("--repeat", "0"), "", "--repeat"),
        (
            ("--cache", "--replay", "base.jsonl", "--record-missing"),
            "",
            "--cache answers from a ledger and --replay from another",
        ),
        ((), "    min_pass_rate: 1.5\n", "min_pass_rate"),
        ((), "    min_pass_rate: -0.1\n", "min_pass_rate"),
        (("--model", "gpt-4o-mini", "--repeat", "-2"), "", "--repeat"),
    ],
)
def test_bad_evaluation_input_sends_nothing(
    tmp_path: Path, args: tuple[str, ...], case_extra: str, says: str
) -> None:
    spec = _spec(tmp_path, case_extra)
    with canned_server(Canned(reply("hi Ada"))) as server:
        out = run_cli(["test", str(spec), *args], tmp_path / "l.jsonl", env=server_env(server))
    assert_clean(out, code=2, lines=0)
    assert server.requests == []
    assert says in out.stdout + out.stderr
    assert not (tmp_path / "base.jsonl").exists()


def test_the_same_spec_runs_against_that_server(tmp_path: Path) -> None:
    """The control: the spec and server above do answer, so the refusals are the flags'."""
    spec = _spec(tmp_path)
    with canned_server(Canned(reply("hi Ada"))) as server:
        out = run_cli(
            ["test", str(spec), "--repeat", "2"], tmp_path / "l.jsonl", env=server_env(server)
        )
    assert_clean(out, code=0, lines=2)
    assert len(server.requests) == 2


def test_an_unknown_price_as_model_reads_and_writes_nothing(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    ledger = tmp_path / "l.jsonl"
    with canned_server(Canned(reply("hi Ada"))) as server:
        run_cli(["test", str(spec)], ledger, env=server_env(server))
        before = ledger.read_bytes()
        out = run_cli(
            ["report", "--price-as", "gpt-4o-mini,not-a-model-at-all"],
            ledger,
            env=server_env(server),
        )
    assert_clean(out, code=2, lines=1)
    assert len(server.requests) == 1  # the recording run's only
    assert out.stdout == ""
    assert "--price-as not-a-model-at-all: no price known for this model" in out.stderr
    assert ledger.read_bytes() == before
