"""Data-set runs (`runner exec SPEC --input FILE`, `--resume`, `--max-cost`, `--output`) against
hostile users and servers: two runs at once, retries against the budget, stale resumes, bad
rows, bad output paths, signals. Each case checks the exit code, that no traceback is printed,
the exact number of ledger lines, that no secret appears anywhere and a wall-time bound; the
cases that need real signals or several processes run `python -m runner` for real."""

from __future__ import annotations

import collections
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from _ledger_schema import LINE_VALIDATOR
from _trust_recorded import FAKE_KEY, Canned, canned_server, reply
from click.testing import CliRunner

from runner.cli import cli
from runner.ledger.reading import read_records

# --- helpers ----------------------------------------------------------------------------------

SPEC = (
    "name: ds\n"
    "model: gpt-4o-mini\n"
    "params: {max_tokens: 20}\n"
    "messages: [{role: user, content: 'Say {{ q }}.'}]\n"
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def rows_file(path: Path, count: int, *, start: int = 0) -> Path:
    return write(path, "".join(json.dumps({"q": f"row {i}"}) + "\n" for i in range(start, count)))


def slow_spec(folder: Path, latency: str, *, concurrency: int = 2, name: str = "ds") -> Path:
    """A mock spec whose calls each take `latency` (the in-process mock's fault header)."""
    return write(
        folder / f"{name}.yaml",
        SPEC.replace("name: ds", f"name: {name}")
        + f"provider: {{headers: {{X-Mock-Fault: 'latency={latency}'}}}}\n"
        f"rate: {{concurrency: {concurrency}}}\n",
    )


def lines_of(ledger: Path) -> list[dict[str, Any]]:
    found = list(read_records(ledger)) if ledger.is_file() else []
    for line in found:
        LINE_VALIDATOR.validate(line)
    return found


def oks(ledger: Path) -> collections.Counter[str]:
    return collections.Counter(line["row"] for line in lines_of(ledger) if line["status"] == "ok")


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNNER_", "OPENAI_"))}
    env.update(NO_COLOR="1", OPENAI_API_KEY=FAKE_KEY, **extra)
    return env


def spawn(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        env=env or child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a test runner may start children with SIGINT ignored: Ctrl-C must reach them
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def running(ledger: Path) -> None:
    """Wait until a run has started sending (its ledger is checked writable before the first
    call goes out)."""
    deadline = time.monotonic() + 20
    while not ledger.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ledger.exists(), "the run never started"


def finish(proc: subprocess.Popen[str], timeout: float = 40) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


class Ran:
    """What one in-process CLI run showed."""

    def __init__(self, code: int, out: str, err: str, seconds: float) -> None:
        self.code, self.out, self.err, self.seconds = code, out, err, seconds

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines() if line.startswith("{")]


def cli_run(args: list[str], env: dict[str, str] | None = None, input: str | None = None) -> Ran:
    started = time.monotonic()
    result = CliRunner().invoke(
        cli, args, env={"OPENAI_API_KEY": FAKE_KEY, **(env or {})}, input=input
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"an exception escaped: {result.exception!r}\n{result.stderr}")
    return Ran(result.exit_code, result.stdout, result.stderr, time.monotonic() - started)


def clean(
    out: str, err: str, ledger: Path | None, *, lines: int | None, extra: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """No traceback, no secret anywhere (output, ledger, any extra file), the exact line count."""
    found = lines_of(ledger) if ledger is not None else []
    everything = out + err + json.dumps(found) + "".join(extra)
    assert "Traceback" not in everything, err
    assert "Exception ignored" not in err, err
    assert FAKE_KEY not in everything and FAKE_KEY[8:] not in everything
    if lines is not None:
        assert len(found) == lines, (len(found), err)
    return found


def checked(ran: Ran, ledger: Path | None, *, code: int, lines: int, limit: float = 20) -> None:
    assert ran.code == code, (ran.out, ran.err)
    clean(ran.out, ran.err, ledger, lines=lines)
    assert ran.seconds < limit


# --- 1. two runs at once --------------------------------------------------------------------


def test_two_resumes_at_once_pay_each_row_once_and_the_second_names_the_holder(
    tmp_path: Path,
) -> None:
    spec = slow_spec(tmp_path, "200ms", concurrency=8)
    data = rows_file(tmp_path / "rows.jsonl", 200)
    ledger = tmp_path / "ledger.jsonl"
    args = ["exec", str(spec), "--input", str(data), "--mock", "--resume", "--ledger", str(ledger)]
    started = time.monotonic()
    first = spawn(args, tmp_path)
    running(ledger)  # the first one is sending when the second starts
    second = spawn(args, tmp_path)
    out2, err2 = finish(second)
    out1, err1 = finish(first)
    assert time.monotonic() - started < 40
    assert first.returncode == 0, err1
    assert second.returncode == 2, err2
    assert "pid" in err2 and str(first.pid) in err2 and "--wait" in err2, err2
    assert out2 == ""
    clean(out1 + out2, err1 + err2, ledger, lines=200)
    assert oks(ledger) == {str(n): 1 for n in range(1, 201)}


def test_wait_queues_behind_the_holder_and_says_so_once(tmp_path: Path) -> None:
    spec = slow_spec(tmp_path, "200ms", concurrency=8)
    data = rows_file(tmp_path / "rows.jsonl", 200)
    ledger = tmp_path / "ledger.jsonl"
    args = ["exec", str(spec), "--input", str(data), "--mock", "--resume", "--ledger", str(ledger)]
    first = spawn(args, tmp_path)
    running(ledger)
    second = spawn([*args, "--wait"], tmp_path)
    out2, err2 = finish(second)
    out1, err1 = finish(first)
    assert (first.returncode, second.returncode) == (0, 0), err1 + err2
    assert err2.count("Waiting for") == 1 and str(first.pid) in err2, err2
    assert "200 already ok" in err2 or "(200 already ok in the ledger)" in err2, err2
    clean(out1 + out2, err1 + err2, ledger, lines=200)
    assert oks(ledger) == {str(n): 1 for n in range(1, 201)}


def test_a_run_without_resume_is_locked_too(tmp_path: Path) -> None:
    """The library takes the lock (not only the CLI): a second DatasetRun of the same spec on
    the same ledger is refused while the first holds it, before anything is sent."""
    import asyncio

    from runner.dataset import DatasetRun, Item
    from runner.engine.session import Session
    from runner.errors import RunLocked
    from runner.spec.load import load_spec

    spec = load_spec(slow_spec(tmp_path, "200ms"))
    ledger = tmp_path / "ledger.jsonl"

    async def main() -> tuple[int, str]:
        async with Session(ledger=ledger, mock=True, environ={}) as session:
            rows = [Item(str(i), {"q": str(i)}) for i in range(4)]
            one = DatasetRun(session, spec, rows)
            two = DatasetRun(session, spec, rows)
            results = one.results()
            first = await anext(results)  # the first run holds the lock now
            with pytest.raises(RunLocked) as refused:
                async for _ in two.results():
                    pass
            rest = [r async for r in results]
            return 1 + len(rest) + (first.status != "ok"), str(refused.value)

    count, message = asyncio.run(main())
    assert count == 4
    assert str(os.getpid()) in message
    assert len(lines_of(ledger)) == 4


# --- 2. retries and the budget ----------------------------------------------------------------

SCHEMA_SPEC = (
    "name: budget\n"
    "model: gpt-4o-mini\n"
    "params: {max_tokens: 1000}\n"
    "messages: [{role: user, content: 'Give {{ q }} as JSON.'}]\n"
    "output:\n"
    "  schema: {type: object, properties: {a: {type: string}}, required: [a],"
    " additionalProperties: false}\n"
    "retry: {attempts: 5, backoff: {initial: 1ms, max: 2ms}, on: [invalid_output]}\n"
    "timeout: 5s\n"
)


@pytest.mark.parametrize(
    ("cap", "concurrency", "repair"),
    [("0.002", 1, False), ("0.01", 32, False), ("0.002", 1, True), ("0.005", 4, True)],
    ids=["0.002", "0.01-c32", "0.002-repair", "0.005-c4-repair"],
)
def test_retries_never_pass_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cap: str, concurrency: int, repair: bool
) -> None:
    """Each invalid answer uses all of max_tokens (1000 tokens at $0.60/M: $0.0006 an attempt),
    and each row may make 5 attempts: the cap holds however many attempts are made."""
    import http.server

    # 32 connections at once: the canned server's listen queue must hold them all
    monkeypatch.setattr(http.server.ThreadingHTTPServer, "request_queue_size", 64)
    text = SCHEMA_SPEC.replace("  schema:", "  repair: true\n  schema:") if repair else SCHEMA_SPEC
    spec = write(tmp_path / "budget.yaml", text)
    data = rows_file(tmp_path / "rows.jsonl", 64)
    ledger = tmp_path / "ledger.jsonl"
    usage = {"prompt_tokens": 12, "completion_tokens": 1000, "total_tokens": 1012}
    with canned_server(Canned(reply('{"unexpected": true}', usage=usage))) as server:
        ran = cli_run(
            ["exec", str(spec), "--input", str(data), "--max-cost", cap, "--ledger", str(ledger),
             "--concurrency", str(concurrency)],
            env={"OPENAI_BASE_URL": server.url},
        )  # fmt: skip
        sent = len(server.requests)
    run_rows = [r for r in ran.rows if r["status"] != "skipped"]
    checked(ran, ledger, code=1, lines=len(run_rows))
    found = lines_of(ledger)
    spent = sum(Decimal(str(line["cost"]["usd"])) for line in found)
    assert spent <= Decimal(cap), (spent, cap)
    assert sum(len(line["attempts"]) for line in found) == sent
    assert sent >= 2
    assert "the budget" in ran.err


def test_an_attempt_the_budget_refuses_ends_its_call_with_its_earlier_attempts(
    tmp_path: Path,
) -> None:
    spec = write(tmp_path / "budget.yaml", SCHEMA_SPEC)
    data = rows_file(tmp_path / "rows.jsonl", 1)
    ledger = tmp_path / "ledger.jsonl"
    usage = {"prompt_tokens": 12, "completion_tokens": 1000, "total_tokens": 1012}
    with canned_server(Canned(reply('{"unexpected": true}', usage=usage))) as server:
        ran = cli_run(
            ["exec", str(spec), "--input", str(data), "--max-cost", "0.002",
             "--ledger", str(ledger)],
            env={"OPENAI_BASE_URL": server.url},
        )  # fmt: skip
        sent = len(server.requests)
    checked(ran, ledger, code=1, lines=1)
    [line] = lines_of(ledger)
    assert line["error"]["kind"] == "budget", line["error"]
    assert [a["outcome"] for a in line["attempts"]] == ["invalid_output"] * sent
    assert sent == 3  # $0.0006 each: a fourth would pass $0.002
    assert Decimal(str(line["cost"]["usd"])) <= Decimal("0.002")
    [row] = ran.rows
    assert row["status"] == "error" and row["error"]["kind"] == "budget"


# --- 3. the printed resume command ------------------------------------------------------------


def _interrupted(
    tmp_path: Path, args: list[str], env: dict[str, str], ledger: Path
) -> tuple[int, str, str]:
    proc = spawn(args, tmp_path, env)
    deadline = time.monotonic() + 20
    while not ledger.exists() and time.monotonic() < deadline:
        time.sleep(0.02)  # the ledger is checked writable as the first calls go out
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = finish(proc)
    return proc.returncode, out, err


def _resume_words(err: str) -> list[str]:
    [command] = [line.strip() for line in err.splitlines() if line.startswith("  runner ")]
    words = shlex.split(command)
    assert words[0] == "runner" and "--resume" in words, err
    return words


def test_the_resume_command_spells_out_the_ledger_and_mock_from_the_environment(
    tmp_path: Path,
) -> None:
    spec = slow_spec(tmp_path, "1s")
    data = rows_file(tmp_path / "rows.jsonl", 6)
    ledger = tmp_path / "elsewhere" / "custom.jsonl"
    env = child_env(RUNNER_LEDGER=str(ledger), RUNNER_MOCK="1")
    code, out, err = _interrupted(tmp_path, ["exec", str(spec), "--input", str(data)], env, ledger)
    assert code == 130, err
    clean(out, err, ledger, lines=2)
    words = _resume_words(err)
    assert words[words.index("--ledger") + 1] == str(ledger)
    assert "--mock" in words
    # the printed command, run where neither variable is set, finishes the same run
    done = subprocess.run(
        [sys.executable, "-m", "runner", *words[1:], "--concurrency", "6"],
        cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=40,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    clean(done.stdout, done.stderr, ledger, lines=6)
    assert oks(ledger) == {str(n): 1 for n in range(1, 7)}
    assert not (tmp_path / "runs").exists()


def test_the_resume_command_names_the_real_endpoint_and_hides_secret_vars(tmp_path: Path) -> None:
    spec = write(
        tmp_path / "real.yaml",
        SPEC.replace("'Say {{ q }}.'", "'Say {{ q }} with {{ token }}.'")
        + "rate: {concurrency: 1}\ntimeout: 10s\n",
    )
    data = rows_file(tmp_path / "rows.jsonl", 4)
    ledger = tmp_path / "ledger.jsonl"
    secret_var = "sk-proj-SECRETVARVALUE0123456789abcd"
    with canned_server(Canned(reply(), delay=1.0)) as server:
        env = child_env(OPENAI_BASE_URL=server.url, RUNNER_MODEL="gpt-4o")
        code, out, err = _interrupted(
            tmp_path,
            ["exec", str(spec), "--input", str(data), "--ledger", str(ledger),
             "--var", f"token={secret_var}"],
            env,
            ledger,
        )  # fmt: skip
    assert code == 130, err
    clean(out, err, ledger, lines=1)
    assert secret_var not in err and secret_var[3:] not in err
    words = _resume_words(err)
    assert words[words.index("--base-url") + 1] == server.url
    assert words[words.index("--model") + 1] == "gpt-4o"
    assert "--no-mock" in words
    assert "--var" in words and any(w.startswith("token=") for w in words)
    assert "fill in" in err.lower() and "token" in err


def test_the_resume_command_strips_url_credentials() -> None:
    from runner.cli._resume_command import resume_command

    command, notes = resume_command(
        spec_path="s.yaml",
        given=[
            ("--input", "rows.jsonl"),
            ("--base-url", "http://admin:pass@host:8080/v1"),
            ("--var", "q=sk-abcdefghijklmnopqrstuvwxyz012345"),
            ("--var", "city=Paris"),
            ("--var", "n:=3"),
        ],
        ledger=Path("runs/ledger.jsonl"),
        mock=False,
        base_url="http://admin:pass@host:8080/v1",
        model="gpt-4o-mini",
    )
    assert "admin" not in command and "pass@" not in command, command
    assert "sk-abcdefghijklmnopqrstuvwxyz012345" not in command + " ".join(notes)
    words = shlex.split(command)
    assert words[:2] == ["runner", "exec"]
    assert words[words.index("--base-url") + 1] == "http://host:8080/v1"
    assert "city=Paris" in words and "n:=3" in words
    assert words[words.index("--ledger") + 1] == "runs/ledger.jsonl"
    assert words[-1] == "--resume"
    assert any("q" in note for note in notes)


# --- 4. rows waiting in a batch ---------------------------------------------------------------


def _open_batch(ledger: Path, spec_path: Path, keys: list[str]) -> str:
    from runner.batch.state import record_created
    from runner.spec.load import load_spec

    spec = load_spec(spec_path)
    batch = {"id": "batch_trust123", "status": "in_progress", "input_file_id": "file_x"}
    rows = [(key, "0" * 64) for key in keys]  # (row key, request fingerprint)
    record_created(
        ledger, batch, rows, spec={"path": str(spec_path), "sha256": spec.sha256}, group="g"
    )
    return batch["id"]


@pytest.mark.parametrize("resume", [False, True], ids=["run", "resume"])
def test_rows_waiting_in_a_batch_are_not_reported_ok(tmp_path: Path, resume: bool) -> None:
    spec = write(tmp_path / "ds.yaml", SPEC)
    data = rows_file(tmp_path / "rows.jsonl", 6)
    ledger = tmp_path / "ledger.jsonl"
    batch = _open_batch(ledger, spec, ["2", "3", "5"])
    args = ["exec", str(spec), "--input", str(data), "--mock", "--ledger", str(ledger)]
    ran = cli_run([*args, *(["--resume"] if resume else [])])
    checked(ran, ledger, code=1, lines=3)
    assert sorted(r["row"] for r in ran.rows) == ["1", "4", "6"]
    assert "6 of 6 rows ok" not in ran.err
    assert "3 waiting in batch" in ran.err and batch in ran.err, ran.err
    assert "--skip-batched" in ran.err
    skipped = cli_run([*args, "--resume", "--skip-batched"])
    checked(skipped, ledger, code=0, lines=3)
    assert "3 waiting in batch" in skipped.err


# --- 5. resume by request fingerprint ---------------------------------------------------------


def test_resume_runs_again_the_rows_whose_request_changed(tmp_path: Path) -> None:
    schema = write(
        tmp_path / "out.json",
        json.dumps({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
                    "additionalProperties": False}),
    )  # fmt: skip
    spec = write(
        tmp_path / "ds.yaml",
        SPEC.replace("'Say {{ q }}.'", "'Say {{ q }} in {{ tone }}.'")
        + f"output: {{schema: {schema.name}}}\n",
    )
    data = rows_file(tmp_path / "rows.jsonl", 3)
    ledger = tmp_path / "ledger.jsonl"
    base = ["exec", str(spec), "--input", str(data), "--mock", "--ledger", str(ledger)]
    first = cli_run([*base, "--var", "tone=calm"])
    checked(first, ledger, code=0, lines=3)
    same = cli_run([*base, "--var", "tone=calm", "--resume"])
    checked(same, ledger, code=0, lines=3)
    assert "3 already ok" in same.err or "(3 already ok in the ledger)" in same.err

    changed_var = cli_run([*base, "--var", "tone=loud", "--resume"])
    checked(changed_var, ledger, code=0, lines=6)
    assert "3 rows changed since their ok line" in changed_var.err, changed_var.err

    changed_model = cli_run([*base, "--var", "tone=loud", "--model", "gpt-4o", "--resume"])
    checked(changed_model, ledger, code=0, lines=9)
    assert "3 rows changed" in changed_model.err

    rows = data.read_text("utf-8").splitlines()
    rows[1] = json.dumps({"q": "another row 1"})
    data.write_text("\n".join(rows) + "\n", "utf-8")
    changed_row = cli_run([*base, "--var", "tone=loud", "--model", "gpt-4o", "--resume"])
    checked(changed_row, ledger, code=0, lines=10)
    assert [r["row"] for r in changed_row.rows] == ["2"]
    assert "1 rows changed" in changed_row.err or "1 row changed" in changed_row.err

    schema.write_text(schema.read_text("utf-8").replace('"a"', '"b"'), "utf-8")
    changed_schema = cli_run([*base, "--var", "tone=loud", "--model", "gpt-4o", "--resume"])
    checked(changed_schema, ledger, code=0, lines=13)
    assert "3 rows changed" in changed_schema.err


def test_resume_refuses_a_device_as_the_ledger(tmp_path: Path) -> None:
    spec = write(tmp_path / "ds.yaml", SPEC)
    data = rows_file(tmp_path / "rows.jsonl", 3)
    ran = cli_run(
        ["exec", str(spec), "--input", str(data), "--mock", "--resume", "--ledger", "/dev/zero"]
    )
    checked(ran, None, code=2, lines=0, limit=10)
    assert "/dev/zero" in ran.err


def test_a_mock_answer_does_not_count_for_a_real_run(tmp_path: Path) -> None:
    spec = write(tmp_path / "ds.yaml", SPEC + "timeout: 5s\n")
    data = rows_file(tmp_path / "rows.jsonl", 2)
    ledger = tmp_path / "ledger.jsonl"
    base = ["exec", str(spec), "--input", str(data), "--ledger", str(ledger), "--resume"]
    checked(cli_run([*base, "--mock"]), ledger, code=0, lines=2)
    with canned_server(Canned(reply())) as server:
        ran = cli_run(base, env={"OPENAI_BASE_URL": server.url})
    checked(ran, ledger, code=0, lines=4)
    assert "changed" not in ran.err


# --- 6. one bad row never stops the others ----------------------------------------------------


def test_a_row_over_the_context_window_fails_alone(tmp_path: Path) -> None:
    spec = write(tmp_path / "ds.yaml", SPEC + "rate: {concurrency: 1}\n")
    rows = [{"q": f"row {i}"} for i in range(5)]
    rows[2] = {"q": "word " * 140_000}  # ~140k tokens: past gpt-4o-mini's 128k window
    data = write(tmp_path / "rows.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    ledger = tmp_path / "ledger.jsonl"
    ran = cli_run(["exec", str(spec), "--input", str(data), "--mock", "--ledger", str(ledger)])
    checked(ran, ledger, code=1, lines=4, limit=30)
    by_row = {r["row"]: r for r in ran.rows}
    assert sorted(by_row) == ["1", "2", "3", "4", "5"]
    assert by_row["3"]["status"] == "error"
    assert by_row["3"]["error"]["kind"] == "context_window"
    assert "context window" in by_row["3"]["error"]["message"]
    assert all(by_row[k]["status"] == "ok" for k in ("1", "2", "4", "5"))
    dry = cli_run(["exec", str(spec), "--input", str(data), "--mock", "--dry-run"])
    assert dry.code == 1, dry.err
    assert "row 3: would fail" in dry.out


# --- 7. lone surrogates -----------------------------------------------------------------------


def test_a_lone_surrogate_in_a_jsonl_row_is_refused_at_load(tmp_path: Path) -> None:
    spec = write(tmp_path / "ds.yaml", SPEC)
    lines = [json.dumps({"q": f"row {i}"}) for i in range(50)]
    lines[26] = '{"q": "\\ud800"}'
    data = write(tmp_path / "rows.jsonl", "\n".join(lines) + "\n")
    ledger = tmp_path / "ledger.jsonl"
    ran = cli_run(["exec", str(spec), "--input", str(data), "--mock", "--ledger", str(ledger)])
    checked(ran, ledger, code=2, lines=0)
    assert "rows.jsonl:27" in ran.err and "surrogate" in ran.err, ran.err
    key = write(tmp_path / "keys.jsonl", '{"id": "\\udc80", "q": "x"}\n')
    ran = cli_run(["exec", str(spec), "--input", str(key), "--mock", "--ledger", str(ledger)])
    checked(ran, ledger, code=2, lines=0)
    assert "keys.jsonl:1" in ran.err


def test_a_lone_surrogate_in_a_csv_cell_is_refused_at_load(tmp_path: Path) -> None:
    spec = write(
        tmp_path / "ds.yaml",
        SPEC + "inputs: {type: object, properties: {q: {type: string}, meta: {type: object}}}\n",
    )
    data = write(tmp_path / "rows.csv", 'q,meta\na,"{""k"": 1}"\nb,"{""k"": ""\\ud800""}"\n')
    ledger = tmp_path / "ledger.jsonl"
    ran = cli_run(["exec", str(spec), "--input", str(data), "--mock", "--ledger", str(ledger)])
    checked(ran, ledger, code=2, lines=0)
    assert "rows.csv:3" in ran.err and "surrogate" in ran.err, ran.err


@pytest.mark.parametrize(
    "how",
    ["var", "var-json", "vars-file-json", "vars-file-yaml", "single-exec"],
)
def test_a_lone_surrogate_in_a_variable_is_refused_naming_it(tmp_path: Path, how: str) -> None:
    spec = write(tmp_path / "ds.yaml", SPEC)
    data = rows_file(tmp_path / "rows.jsonl", 3)
    ledger = tmp_path / "ledger.jsonl"
    args = ["exec", str(spec), "--mock", "--ledger", str(ledger)]
    if how != "single-exec":
        args += ["--input", str(data)]
    if how in ("var", "single-exec"):
        args += ["--var", "q=\udcff"]  # what a non-UTF-8 byte in argv becomes
    elif how == "var-json":
        args += ["--var", 'q:="\\ud800"']
    elif how == "vars-file-json":
        args += ["--vars-file", str(write(tmp_path / "v.json", '{"q": "\\ud800"}'))]
    else:
        args += ["--vars-file", str(write(tmp_path / "v.yaml", 'q: "\\ud800"\n'))]
    if how != "single-exec":
        data.write_text('{"other": 1}\n{"other": 2}\n', "utf-8")  # q comes from the variable
    ran = cli_run(args)
    checked(ran, ledger, code=2, lines=0)
    assert "surrogate" in ran.err and "q" in ran.err, ran.err


# --- 8. output paths --------------------------------------------------------------------------


def _ledger_with_history(path: Path, count: int = 20) -> bytes:
    from runner.ledger.store import Ledger

    with Ledger(path) as ledger:
        for i in range(count):
            ledger.append({"v": 1, "id": f"old{i}", "status": "ok", "note": "history"})
    return path.read_bytes()


@pytest.mark.parametrize(
    "target",
    ["ledger", "default-ledger", "env-ledger", "symlink", "hardlink", "input", "batch-state",
     "spec"],
)  # fmt: skip
def test_an_output_that_is_the_ledger_input_or_state_is_refused_untouched(
    tmp_path: Path, target: str
) -> None:
    spec = write(tmp_path / "ds.yaml", SPEC)
    data = rows_file(tmp_path / "rows.jsonl", 3)
    ledger = tmp_path / "runs" / "ledger.jsonl"
    history = _ledger_with_history(ledger)
    args = ["exec", str(spec), "--input", str(data), "--mock"]
    env: dict[str, str] = {}
    if target == "default-ledger":
        output = "runs/ledger.jsonl"  # the cwd is tmp_path
    elif target == "env-ledger":
        env["RUNNER_LEDGER"] = str(ledger)
        output = str(ledger)
    else:
        args += ["--ledger", str(ledger)]
        output = str(ledger)
    if target == "symlink":
        os.symlink(ledger, tmp_path / "link.jsonl")
        output = str(tmp_path / "link.jsonl")
    elif target == "hardlink":
        os.link(ledger, tmp_path / "hard.jsonl")
        output = str(tmp_path / "hard.jsonl")
    elif target == "input":
        output = str(data)
    elif target == "batch-state":
        state = write(ledger.parent / "batches.jsonl", '{"v": 1}\n')
        output = str(state)
    elif target == "spec":
        output = str(spec)
    before = {p: p.read_bytes() for p in (data, spec)}
    ran = cli_run([*args, "--output", output], env=env)
    assert ran.code == 2, ran.err
    clean(ran.out, ran.err, None, lines=None)
    assert "--output" in ran.err
    assert ledger.read_bytes() == history
    assert all(p.read_bytes() == text for p, text in before.items())


@pytest.mark.parametrize("where", ["missing-dir", "under-a-file", "a-directory"])
def test_an_unwritable_output_is_found_before_the_first_call(tmp_path: Path, where: str) -> None:
    spec = write(tmp_path / "ds.yaml", SPEC)
    data = rows_file(tmp_path / "rows.jsonl", 3)
    ledger = tmp_path / "ledger.jsonl"
    output = {
        "missing-dir": tmp_path / "no" / "such" / "out.jsonl",
        "under-a-file": data / "out.jsonl",
        "a-directory": tmp_path,
    }[where]
    ran = cli_run(
        ["exec", str(spec), "--input", str(data), "--mock", "--ledger", str(ledger),
         "--output", str(output)]
    )  # fmt: skip
    checked(ran, ledger, code=2, lines=0)
    assert "--output" in ran.err
    assert not (tmp_path / "no").exists()  # no directory is made silently


def test_output_to_a_full_device_stops_cleanly_with_the_calls_recorded(tmp_path: Path) -> None:
    spec = write(tmp_path / "ds.yaml", SPEC + "rate: {concurrency: 1}\n")
    data = rows_file(tmp_path / "rows.jsonl", 5)
    ledger = tmp_path / "ledger.jsonl"
    ran = cli_run(
        ["exec", str(spec), "--input", str(data), "--mock", "--ledger", str(ledger),
         "--output", "/dev/full"]
    )  # fmt: skip
    checked(ran, ledger, code=1, lines=1)
    assert "/dev/full" in ran.err and "No space left" in ran.err, ran.err


# --- 9, 10. signals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signum", "code", "fmt"),
    [
        (signal.SIGINT, 130, "jsonl"),
        (signal.SIGTERM, 143, "jsonl"),
        (signal.SIGHUP, 129, "jsonl"),
        (signal.SIGINT, 130, "csv"),
        (signal.SIGTERM, 143, "csv"),
    ],
    ids=["SIGINT", "SIGTERM", "SIGHUP", "SIGINT-csv", "SIGTERM-csv"],
)
def test_a_signal_stops_the_intake_at_once_and_exits_with_its_status(
    tmp_path: Path, signum: int, code: int, fmt: str
) -> None:
    spec = slow_spec(tmp_path, "1s")
    if fmt == "csv":
        data = write(tmp_path / "rows.csv", "q\n" + "".join(f"row {i}\n" for i in range(10)))
    else:
        data = rows_file(tmp_path / "rows.jsonl", 10)
    ledger = tmp_path / "ledger.jsonl"
    proc = spawn(["exec", str(spec), "--input", str(data), "--mock", "--ledger", str(ledger)],
                 tmp_path)  # fmt: skip
    deadline = time.monotonic() + 20
    while not ledger.exists() and time.monotonic() < deadline:
        time.sleep(0.02)  # the ledger is checked writable as the first calls go out
    time.sleep(0.3)
    proc.send_signal(signum)
    signalled = time.monotonic()
    out, err = finish(proc)
    assert proc.returncode == code, err
    assert time.monotonic() - signalled < 5  # the two calls in flight (1 s), not all ten
    clean(out, err, ledger, lines=2)
    assert "ValueError" not in err and "closed file" not in err, err
    assert "--resume" in err


# --- 11. the cost label -----------------------------------------------------------------------


@pytest.mark.parametrize("usage", ["reported", "missing"])
def test_the_summary_says_mock_only_for_mock_runs(tmp_path: Path, usage: str) -> None:
    spec = write(tmp_path / "ds.yaml", SPEC + "timeout: 5s\n")
    data = rows_file(tmp_path / "rows.jsonl", 3)
    ledger = tmp_path / "ledger.jsonl"
    body = reply() if usage == "reported" else reply(usage=None)
    with canned_server(Canned(body)) as server:
        ran = cli_run(
            ["exec", str(spec), "--input", str(data), "--ledger", str(ledger)],
            env={"OPENAI_BASE_URL": server.url},
        )
    checked(ran, ledger, code=0, lines=3)
    assert "(estimated: mock)" not in ran.err and "mock calls" not in ran.err, ran.err
    if usage == "missing":
        assert "estimated" in ran.err and "3 calls" in ran.err, ran.err
    else:
        assert "estimated" not in ran.err
    mock = cli_run(["exec", str(spec), "--input", str(data), "--ledger", str(ledger), "--mock"])
    checked(mock, ledger, code=0, lines=6)
    assert "(estimated: mock)" in mock.err


# --- 12. input that is not a plain file -------------------------------------------------------


def test_a_closed_stdin_is_a_clear_error(tmp_path: Path) -> None:
    write(tmp_path / "ds.yaml", SPEC)
    ledger = tmp_path / "ledger.jsonl"
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", "-c", 'exec "$0" -m runner exec ds.yaml --input - --mock --ledger l.jsonl <&-',
         sys.executable],
        cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    clean(proc.stdout, proc.stderr, ledger, lines=0)
    assert "stdin" in proc.stderr
    assert time.monotonic() - started < 20


def test_a_device_as_input_is_refused_at_once(tmp_path: Path) -> None:
    spec = write(tmp_path / "ds.yaml", SPEC)
    ledger = tmp_path / "ledger.jsonl"
    ran = cli_run(["exec", str(spec), "--input", "/dev/zero", "--mock", "--ledger", str(ledger)])
    checked(ran, ledger, code=2, lines=0, limit=10)
    assert "/dev/zero" in ran.err


def test_rows_from_a_pipe_all_run(tmp_path: Path) -> None:
    """`--input <(...)`: a pipe can be read once only; every row still runs."""
    write(tmp_path / "ds.yaml", SPEC)
    rows_file(tmp_path / "rows.jsonl", 4)
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", "-c",
         '"$0" -m runner exec ds.yaml --input <(cat rows.jsonl) --mock --ledger l.jsonl',
         sys.executable],
        cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    clean(proc.stdout, proc.stderr, tmp_path / "l.jsonl", lines=4)
    assert time.monotonic() - started < 20


# --- 13. the property: concurrent runs, resumes and kills on one ledger -----------------------


@pytest.fixture(scope="module")
def mock_server() -> Any:
    """`runner mock-server` on a free loopback port, answering after a small latency."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "mock-server", "--port", "0", "--latency", "40ms"],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    url = next(word for word in first.split() if word.startswith("http://"))
    try:
        yield url
    finally:
        proc.terminate()
        finish(proc, timeout=10)


def dataset_actor(rng: Any, spec: Path, data: Path, ledger: Path) -> list[str]:
    """A data-set run with --resume (on an empty ledger, a first run), refusing or waiting when
    another holds the lock. (A run without --resume re-runs every row by request: not here.)"""
    args = ["exec", str(spec), "--input", str(data), "--ledger", str(ledger), "-q", "--resume"]
    if rng.random() < 0.5:
        args.append("--wait")
    return [*args, "--concurrency", str(rng.choice([2, 4, 8]))]


_SWALLOWED_CTRL_C = re.compile(
    r"Exception ignored in: <function _get_module_lock\.<locals>\.cb at 0x[0-9a-f]+>\n"
    r"Traceback \(most recent call last\):\n(?:  .*\n)+KeyboardInterrupt: ?\n"
)


# What may run at once on the ledger. Batch collects (`runner batch collect`) join here once
# they hold the same lock: each actor returns the arguments of one `runner` process.
ACTORS = [dataset_actor]
ROWS = 60


@pytest.mark.parametrize("seed", [11, 23, 37])
def test_concurrent_runs_and_kills_end_with_every_row_ok_once(
    tmp_path: Path, mock_server: str, seed: int
) -> None:
    import random

    rng = random.Random(seed)
    spec = write(tmp_path / "prop.yaml", SPEC + "timeout: 10s\n")
    data = rows_file(tmp_path / "rows.jsonl", ROWS)
    ledger = tmp_path / "ledger.jsonl"
    env = child_env(OPENAI_BASE_URL=mock_server)
    started = time.monotonic()
    outputs: list[tuple[str, str]] = []
    for _round in range(2):
        procs = []
        for _ in range(rng.randint(2, 4)):
            actor = rng.choice(ACTORS)
            procs.append(spawn(actor(rng, spec, data, ledger), tmp_path, env))
            time.sleep(rng.uniform(0.0, 0.4))
        sent: dict[int, int] = {}
        for proc in procs:
            if rng.random() < 0.6:
                time.sleep(rng.uniform(0.2, 1.2))
                sent[proc.pid] = rng.choice([signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
                proc.send_signal(sent[proc.pid])
        for proc in procs:
            out, err = finish(proc)
            if proc.pid in sent and "KeyboardInterrupt" in err and not out:
                # Python's own Ctrl-C while the interpreter imports (before runner's handlers
                # are in place): the process ends before anything is sent, like a kill.
                err = ""
            if sent.get(proc.pid) == signal.SIGINT:
                # A Ctrl-C that lands in the callback of an import lock is swallowed by Python
                # itself, which prints this and goes on (as if the key came before the start).
                err = _SWALLOWED_CTRL_C.sub("", err)
            outputs.append((out, err))
            # A signal that lands while the interpreter and click start may end the process
            # by the signal itself (-2, -15), before anything is sent: like a kill.
            early = (-signal.SIGINT, -signal.SIGTERM) if proc.pid in sent else ()
            assert proc.returncode in (0, 2, 129, 130, 143, -signal.SIGKILL, *early), err
    final = subprocess.run(
        [sys.executable, "-m", "runner", "exec", str(spec), "--input", str(data), "--ledger",
         str(ledger), "--resume", "--wait", "--concurrency", "8"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert final.returncode == 0, final.stderr
    outputs.append((final.stdout, final.stderr))
    found = clean(
        "".join(o for o, _ in outputs), "".join(e for _, e in outputs), ledger, lines=None
    )
    ok = [line for line in found if line["status"] == "ok"]
    assert collections.Counter(line["row"] for line in ok) == {
        str(n): 1 for n in range(1, ROWS + 1)
    }
    paid = collections.Counter(line["request_sha256"] for line in ok)
    assert max(paid.values()) == 1  # no request paid for twice
    assert time.monotonic() - started < 40


def test_a_template_that_renders_a_lone_surrogate_fails_its_row_not_the_process(
    tmp_path: Path,
) -> None:
    spec = write(
        tmp_path / "ds.yaml", SPEC.replace("'Say {{ q }}.'", r"""'Say {{ q }} {{ "\ud800" }}.'""")
    )
    data = rows_file(tmp_path / "rows.jsonl", 3)
    ledger = tmp_path / "ledger.jsonl"
    ran = cli_run(["exec", str(spec), "--input", str(data), "--mock", "--ledger", str(ledger)])
    checked(ran, ledger, code=1, lines=0)
    assert [r["error"]["kind"] for r in ran.rows] == ["template"] * 3
    assert "surrogate" in ran.rows[0]["error"]["message"]
    single = cli_run(["exec", str(spec), "--var", "q=x", "--mock", "--ledger", str(ledger)])
    checked(single, ledger, code=2, lines=0)
    assert "surrogate" in single.err


def test_the_spec_budget_holds_with_retries_too(tmp_path: Path) -> None:
    spec = write(tmp_path / "budget.yaml", SCHEMA_SPEC + "budget: {max_cost_usd: 0.002}\n")
    data = rows_file(tmp_path / "rows.jsonl", 10)
    ledger = tmp_path / "ledger.jsonl"
    usage = {"prompt_tokens": 12, "completion_tokens": 1000, "total_tokens": 1012}
    with canned_server(Canned(reply('{"unexpected": true}', usage=usage))) as server:
        ran = cli_run(
            ["exec", str(spec), "--input", str(data), "--ledger", str(ledger)],
            env={"OPENAI_BASE_URL": server.url},
        )
    # 8 calls at once (the spec's default): three first attempts fit ($0.0006 each), no retry
    checked(ran, ledger, code=1, lines=3)
    spent = sum(Decimal(str(line["cost"]["usd"])) for line in lines_of(ledger))
    assert spent <= Decimal("0.002")
    assert [r["status"] for r in ran.rows].count("skipped") == 7


def test_the_ledger_as_the_input_is_refused(tmp_path: Path) -> None:
    """Its lines are JSON objects, so each line the run wrote would become a new row to pay
    for: the run would feed itself for ever."""
    spec = write(tmp_path / "ds.yaml", SPEC.replace("'Say {{ q }}.'", "'Say {{ v }}.'"))
    ledger = tmp_path / "runs" / "ledger.jsonl"
    history = _ledger_with_history(ledger, 5)
    os.link(ledger, tmp_path / "rows.jsonl")
    for given in (str(ledger), str(tmp_path / "rows.jsonl")):
        ran = cli_run(
            ["exec", str(spec), "--input", given, "--mock", "--ledger", str(ledger),
             "--var", "v=x"]
        )  # fmt: skip
        assert ran.code == 2, ran.err
        clean(ran.out, ran.err, None, lines=None)
        assert "--input" in ran.err and "the ledger" in ran.err
        assert ledger.read_bytes() == history


def test_row_lines_redirected_into_the_ledger_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "ds.yaml", SPEC)
    rows_file(tmp_path / "rows.jsonl", 3)
    ledger = tmp_path / "l.jsonl"
    history = _ledger_with_history(ledger, 5)
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", "-c",
         '"$0" -m runner exec ds.yaml --input rows.jsonl --mock --ledger l.jsonl >> l.jsonl',
         sys.executable],
        cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    clean(proc.stdout, proc.stderr, None, lines=None)
    assert "stdout" in proc.stderr and "the ledger" in proc.stderr
    assert ledger.read_bytes() == history
    assert time.monotonic() - started < 20


def test_stdout_on_a_full_device_stops_cleanly(tmp_path: Path) -> None:
    write(tmp_path / "ds.yaml", SPEC + "rate: {concurrency: 1}\n")
    rows_file(tmp_path / "rows.jsonl", 4)
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", "-c",
         '"$0" -m runner exec ds.yaml --input rows.jsonl --mock --ledger l.jsonl > /dev/full',
         sys.executable],
        cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    clean(proc.stdout, proc.stderr, tmp_path / "l.jsonl", lines=1)
    assert "cannot write the row lines to stdout: No space left" in proc.stderr
    assert time.monotonic() - started < 20


def test_a_signal_while_waiting_for_the_lock_ends_the_wait(tmp_path: Path) -> None:
    spec = slow_spec(tmp_path, "1s", concurrency=1)
    data = rows_file(tmp_path / "rows.jsonl", 6)
    ledger = tmp_path / "ledger.jsonl"
    args = ["exec", str(spec), "--input", str(data), "--mock", "--ledger", str(ledger)]
    holder = spawn([*args, "--resume"], tmp_path)
    try:
        running(ledger)
        waiter = spawn([*args, "--resume", "--wait"], tmp_path)
        assert waiter.stderr is not None
        deadline = time.monotonic() + 20
        seen = ""
        while "Waiting for" not in seen and time.monotonic() < deadline:
            seen += waiter.stderr.readline()
        assert "Waiting for" in seen and str(holder.pid) in seen, seen
        waiter.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        out, err = finish(waiter)
        assert waiter.returncode == 143, seen + err
        assert time.monotonic() - signalled < 5
        assert out == "" and "--resume" in err
        clean(out, seen + err, None, lines=None)
    finally:
        holder.send_signal(signal.SIGINT)
        hout, herr = finish(holder)
    found = clean(hout, herr, ledger, lines=None)
    assert {line["row"] for line in found} == {r["row"] for r in map(json.loads, hout.splitlines())}
