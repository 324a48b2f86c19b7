"""The Batch API surfaces against hostile servers and hostile circumstances: concurrent
collects, budgets, where the key goes, unwritable state, malformed and disagreeing result
files. Each case checks the exit code, that no traceback is printed, the exact number of
ledger lines, that the key appears nowhere, and a wall-time bound."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _trust_batch import (
    FAKE_KEY,
    FakeBatchAPI,
    assert_no_secret,
    chat_body,
    fake_batch_api,
    foreign_hosts,
    loopback_only,
    ok_line,
    start,
    write_batch_rows,
    write_batch_spec,
)
from click.testing import CliRunner

from runner.cli import cli
from runner.ledger.lock import RunLock, spec_scope
from runner.ledger.reading import read_records

LEDGER = Path("runs/ledger.jsonl")
STATE = Path("runs/batches/state.jsonl")


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


def lines(ledger: Path = LEDGER) -> list[dict[str, Any]]:
    return list(read_records(ledger)) if ledger.is_file() else []


def run(*args: str, env: dict[str, str] | None = None) -> Ran:
    started = time.monotonic()
    result = CliRunner().invoke(cli, list(args), env={"OPENAI_API_KEY": FAKE_KEY, **(env or {})})
    seconds = time.monotonic() - started
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"an exception escaped: {result.exception!r}\n{result.stderr}")
    return Ran(result.exit_code, result.stdout, result.stderr, seconds)


def check(ran: Ran, *, code: int, ledger: int, limit: float = 20.0) -> None:
    """Exit code, no traceback, the ledger's line count, no secret, wall time."""
    shown = f"code={ran.code} stdout={ran.stdout!r} stderr={ran.stderr!r}"
    assert ran.code == code, shown
    assert "Traceback" not in ran.text, shown
    found = lines()
    assert len(found) == ledger, (len(found), shown)
    everything = ran.text + (LEDGER.read_text("utf-8") if LEDGER.is_file() else "")
    everything += STATE.read_text("utf-8") if STATE.is_file() else ""
    assert_no_secret(everything)
    assert ran.seconds < limit, ran.seconds


@pytest.fixture
def guard(tmp_path: Path) -> Iterator[Path]:
    """Loopback only: api.openai.com (or any other host) must never be resolved."""
    with loopback_only(tmp_path) as record:
        yield record
    assert foreign_hosts(record) == []


@pytest.fixture
def api(guard: Path) -> Iterator[FakeBatchAPI]:
    with fake_batch_api() as server:
        yield server


def start_batch(api: FakeBatchAPI, spec: Path, rows: Path, *extra: str) -> str:
    """`exec --batch --no-wait` against the fake server; the batch id it printed."""
    ran = run(
        "exec",
        str(spec),
        "--input",
        str(rows),
        "--batch",
        "--no-wait",
        "--base-url",
        api.url,
        *extra,
    )
    check(ran, code=0, ledger=0)
    return ran.stdout.strip()


# --- 1. concurrent collects ----------------------------------------------------------------------


def test_three_collects_at_once_write_each_row_once(tmp_path: Path, api: FakeBatchAPI) -> None:
    spec, rows = write_batch_spec(tmp_path), write_batch_rows(tmp_path, 200)
    batch_id = start_batch(api, spec, rows)
    api.download_delay = 2.0  # every collect is inside its download while the others start
    started = time.monotonic()
    procs = [start(["batch", "collect", batch_id], tmp_path) for _ in range(3)]
    outs = [p.communicate(timeout=50) for p in procs]
    seconds = time.monotonic() - started
    codes = [p.returncode for p in procs]
    for out, err in outs:
        assert "Traceback" not in out + err, err
        assert_no_secret(out, err)
    assert codes.count(0) >= 1, outs
    for code, (_, err) in zip(codes, outs, strict=True):
        if code != 0:  # refused while another one collected: says who, sends nothing
            assert code == 2, err
            assert "is already writing this spec's rows" in err and "pid " in err
    found = lines(tmp_path / LEDGER)
    assert len(found) == 200
    assert sorted(line["row"] for line in found) == sorted(f"r{i}" for i in range(200))
    assert seconds < 45


def test_three_collects_with_wait_each_finish_and_write_once(
    tmp_path: Path, api: FakeBatchAPI
) -> None:
    spec, rows = write_batch_spec(tmp_path), write_batch_rows(tmp_path, 200)
    batch_id = start_batch(api, spec, rows)
    api.download_delay = 1.0
    started = time.monotonic()
    procs = [start(["batch", "collect", batch_id, "--wait"], tmp_path) for _ in range(3)]
    outs = [p.communicate(timeout=50) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    for out, err in outs:
        assert "Traceback" not in out + err
        assert_no_secret(out, err)
    assert len(lines(tmp_path / LEDGER)) == 200
    assert time.monotonic() - started < 45


@pytest.mark.parametrize("seed", [1, 2])
def test_collects_killed_at_random_leave_each_row_exactly_once(
    tmp_path: Path, api: FakeBatchAPI, seed: int
) -> None:
    """Three collects with --wait, two of them SIGKILLed at random moments (before the lock,
    while downloading, while writing); a last collect then finishes the job: every row has
    exactly one line, none torn."""
    import random
    import signal

    rng = random.Random(seed)
    spec, rows = write_batch_spec(tmp_path), write_batch_rows(tmp_path, 200)
    batch_id = start_batch(api, spec, rows)
    api.download_delay = 0.3
    started = time.monotonic()
    procs = [start(["batch", "collect", batch_id, "--wait"], tmp_path) for _ in range(3)]
    for victim in rng.sample(procs, 2):
        time.sleep(rng.uniform(0.2, 2.5))
        victim.send_signal(signal.SIGKILL)
    for proc in procs:
        out, err = proc.communicate(timeout=50)
        assert "Traceback" not in out + err
        assert_no_secret(out, err)
    last = start(["batch", "collect", batch_id, "--wait"], tmp_path)
    out, err = last.communicate(timeout=50)
    assert last.returncode == 0, err
    assert "Traceback" not in out + err
    found = lines(tmp_path / LEDGER)
    assert sorted(line["row"] for line in found) == sorted(f"r{i}" for i in range(200))
    assert all(line["status"] == "ok" for line in found)
    assert time.monotonic() - started < 50


def test_exec_batch_is_refused_while_a_run_of_the_spec_holds_the_ledger(
    tmp_path: Path, api: FakeBatchAPI
) -> None:
    spec, rows = write_batch_spec(tmp_path), write_batch_rows(tmp_path, 3)
    with RunLock(LEDGER, spec_scope(spec), what="a data-set run"):
        ran = run("exec", str(spec), "--input", str(rows), "--batch", "--base-url", api.url)
    check(ran, code=2, ledger=0)
    assert "a data-set run (pid " in ran.stderr and "nothing was sent" in ran.stderr
    assert api.seen == []


def test_collect_is_refused_while_a_run_of_the_spec_holds_the_ledger(
    tmp_path: Path, api: FakeBatchAPI
) -> None:
    spec, rows = write_batch_spec(tmp_path), write_batch_rows(tmp_path, 3)
    batch_id = start_batch(api, spec, rows)
    with RunLock(LEDGER, spec_scope(spec), what="a data-set run"):
        ran = run("batch", "collect", batch_id)
    check(ran, code=2, ledger=0)
    assert f"pid {os.getpid()}" in ran.stderr
    ran = run("batch", "collect", batch_id)
    check(ran, code=0, ledger=3)


def test_rows_waiting_in_a_batch_are_not_sent_in_another(tmp_path: Path, api: FakeBatchAPI) -> None:
    spec, rows = write_batch_spec(tmp_path), write_batch_rows(tmp_path, 4)
    first = start_batch(api, spec, rows)
    more = tmp_path / "more.jsonl"
    more.write_text(rows.read_text() + json.dumps({"id": "r9", "who": "w9"}) + "\n")
    ran = run(
        "exec", str(spec), "--input", str(more), "--batch", "--no-wait", "--base-url", api.url
    )
    check(ran, code=1, ledger=0)  # 4 rows are not answered by this run: it says so
    assert "4 rows wait in batches not collected yet" in ran.stderr
    second = ran.stdout.strip()
    assert second != first and api.creates() == 2
    [sent] = [b for b in api.batches.values() if b["id"] == second]
    assert b'"r9"' in api.files[sent["input_file_id"]]
    assert api.files[sent["input_file_id"]].count(b"custom_id") == 1


# --- 2. budgets ----------------------------------------------------------------------------------


def test_the_specs_budget_refuses_a_batch_before_anything_is_uploaded(
    tmp_path: Path, api: FakeBatchAPI
) -> None:
    spec = write_batch_spec(tmp_path, "budget: {max_cost_usd: 0.001}\n")
    rows = write_batch_rows(tmp_path, 100)
    ran = run("exec", str(spec), "--input", str(rows), "--batch", "--base-url", api.url)
    check(ran, code=1, ledger=0)
    assert "budget of $0.001" in ran.stderr and "nothing was uploaded" in ran.stderr
    assert api.uploads() == 0 and api.creates() == 0 and api.files == {} and api.batches == {}
    assert not STATE.exists() or STATE.read_text() == ""  # no batch recorded


def test_max_cost_works_with_batch(tmp_path: Path, api: FakeBatchAPI) -> None:
    spec, rows = write_batch_spec(tmp_path), write_batch_rows(tmp_path, 100)
    ran = run(
        "exec",
        str(spec),
        "--input",
        str(rows),
        "--batch",
        "--base-url",
        api.url,
        "--max-cost",
        "0.001",
    )
    check(ran, code=1, ledger=0)
    assert "budget of $0.001" in ran.stderr and api.files == {} and api.batches == {}
    # Within the cap: the worst case of 100 rows at the batch price is well under $1.
    ran = run(
        "exec",
        str(spec),
        "--input",
        str(rows),
        "--batch",
        "--base-url",
        api.url,
        "--max-cost",
        "1",
    )
    check(ran, code=0, ledger=100)
    assert api.creates() == 1


def test_a_budget_with_an_unbounded_row_is_refused(tmp_path: Path, api: FakeBatchAPI) -> None:
    spec = write_batch_spec(tmp_path, "budget: {max_cost_usd: 1}\n")
    spec.write_text(spec.read_text().replace("model: gpt-4o-mini", "model: no-such-model-x"))
    rows = write_batch_rows(tmp_path, 3)
    ran = run("exec", str(spec), "--input", str(rows), "--batch", "--base-url", api.url)
    check(ran, code=2, ledger=0)
    assert "worst-case cost" in ran.stderr and api.seen == []


def test_retry_live_respects_the_budget(tmp_path: Path, api: FakeBatchAPI) -> None:
    """Every row of the batch failed; rerun live at the live price, where each answer uses all
    its 50 output tokens, 50 rows would cost $0.0016: the spec's budget of $0.001 stops the
    rerun before it passes."""
    spec = write_batch_spec(tmp_path, "budget: {max_cost_usd: 0.001}\n")
    rows = write_batch_rows(tmp_path, 50)
    usage = {"prompt_tokens": 12, "completion_tokens": 50, "total_tokens": 62}
    api.chat = lambda body: json.dumps(chat_body("live", usage)).encode()

    def failed(custom_id: str, body: dict[str, Any]) -> dict[str, Any]:
        error = {"error": {"message": "overloaded", "type": "server_error"}}
        return {
            "id": "x",
            "custom_id": custom_id,
            "error": None,
            "response": {"status_code": 500, "request_id": "r", "body": error},
        }

    api.answer = failed
    batch_id = start_batch(api, spec, rows)
    check(run("batch", "collect", batch_id), code=1, ledger=50)
    ran = run("batch", "collect", batch_id, "--retry-live")
    chats = [p for p in api.paths("POST") if p.endswith("/chat/completions")]
    found = lines()
    live = [line for line in found if "batch_id" not in line]
    spent = sum(line["cost"]["usd"] or 0 for line in found)
    assert spent <= 0.001
    assert len(chats) == len(live) < 50
    check(ran, code=1, ledger=50 + len(live))
    assert "not rerun: the budget of $0.001" in ran.stderr


# --- 3. the key goes where the batch was made ----------------------------------------------------


def test_status_and_collect_ask_the_server_the_batch_was_made_on(
    tmp_path: Path, api: FakeBatchAPI, guard: Path
) -> None:
    spec, rows = write_batch_spec(tmp_path), write_batch_rows(tmp_path, 4)
    batch_id = start_batch(api, spec, rows)  # --base-url given once, at creation
    api.seen.clear()
    for args in (("status", batch_id), ("collect", batch_id), ("cancel", batch_id)):
        ran = run("batch", *args)
        assert ran.code in (0, 1, 2) and "Traceback" not in ran.text, ran.text
        assert_no_secret(ran.text)
    assert foreign_hosts(guard) == []
    assert api.seen and all(s.authorization == f"Bearer {FAKE_KEY}" for s in api.seen)
    assert len(lines()) == 4


def test_openai_base_url_does_not_redirect_a_recorded_batch(
    tmp_path: Path, api: FakeBatchAPI, guard: Path
) -> None:
    spec, rows = write_batch_spec(tmp_path), write_batch_rows(tmp_path, 2)
    batch_id = start_batch(api, spec, rows)
    ran = run("batch", "status", batch_id, env={"OPENAI_BASE_URL": "https://elsewhere.invalid/v1"})
    check(ran, code=0, ledger=0)
    assert f"{batch_id}  completed" in ran.stdout and foreign_hosts(guard) == []


def test_an_explicit_base_url_overrides_and_says_so(tmp_path: Path, guard: Path) -> None:
    spec, rows = write_batch_spec(tmp_path), write_batch_rows(tmp_path, 2)
    with fake_batch_api() as first, fake_batch_api() as second:
        batch_id = start_batch(first, spec, rows)
        second.batches = first.batches
        second.files = first.files
        first.seen.clear()
        ran = run("batch", "status", batch_id, "--base-url", second.url)
        check(ran, code=0, ledger=0)
        assert f"was created on {first.url}" in ran.stderr and second.url in ran.stderr
        assert first.seen == [] and len(second.seen) == 1
        ran = run("batch", "status", batch_id, env={"RUNNER_BASE_URL": second.url})
        check(ran, code=0, ledger=0)
        assert "RUNNER_BASE_URL" in ran.stderr and first.seen == []


def test_a_mock_batch_stays_mock(tmp_path: Path, guard: Path) -> None:
    spec, rows = write_batch_spec(tmp_path), write_batch_rows(tmp_path, 2)
    ran = run("exec", str(spec), "--input", str(rows), "--batch", "--mock")
    check(ran, code=0, ledger=2)
    [state] = [json.loads(x) for x in STATE.read_text().splitlines()[:1]]
    for verb in ("status", "collect", "cancel"):
        ran = run("batch", verb, state["batch_id"])
        check(ran, code=2, ledger=2)
        assert "in-process mock" in ran.stderr
    assert foreign_hosts(guard) == []


# --- 4. nothing orphaned -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "broken", ["state is a directory", "rows folder is a file", "ledger is a directory"]
)
def test_unwritable_batch_records_are_found_before_upload(
    tmp_path: Path, api: FakeBatchAPI, broken: str
) -> None:
    Path("runs").mkdir()
    if broken == "state is a directory":
        STATE.mkdir(parents=True)
    elif broken == "rows folder is a file":
        Path("runs/batches").write_text("not a folder")
    else:
        LEDGER.mkdir()
    spec, rows = write_batch_spec(tmp_path), write_batch_rows(tmp_path, 3)
    ran = run("exec", str(spec), "--input", str(rows), "--batch", "--base-url", api.url)
    assert ran.code == 2, ran.text
    assert "Traceback" not in ran.text and "nothing was uploaded" in ran.stderr
    assert_no_secret(ran.text)
    assert api.seen == []


def test_a_created_batch_id_is_printed_even_when_recording_it_fails(
    tmp_path: Path, api: FakeBatchAPI
) -> None:
    def break_state(batch: dict[str, Any]) -> None:  # after the checks, before the record
        STATE.unlink(missing_ok=True)
        STATE.mkdir(parents=True)

    api.on_create = break_state
    spec, rows = write_batch_spec(tmp_path), write_batch_rows(tmp_path, 3)
    ran = run(
        "exec", str(spec), "--input", str(rows), "--batch", "--no-wait", "--base-url", api.url
    )
    check(ran, code=1, ledger=0)
    [batch_id] = api.batches
    assert batch_id in ran.stdout
    assert f"runner batch collect {batch_id}" in ran.stderr
    assert f"runner batch cancel {batch_id}" in ran.stderr
    # ...and the printed commands work without the state file.
    STATE.rmdir()
    hint = next(line for line in ran.stderr.splitlines() if "runner batch collect" in line)
    command = hint[hint.index("runner batch collect") :].split("`")[0].split()[1:]
    check(run(*command), code=0, ledger=3)


# --- 5./6./7. what the server sends back ---------------------------------------------------------


def six_rows(tmp_path: Path, api: FakeBatchAPI, output: Sequence[bytes | dict[str, Any]]) -> str:
    api.output_lines = [x if isinstance(x, bytes) else json.dumps(x).encode() for x in output]
    spec, rows = write_batch_spec(tmp_path), write_batch_rows(tmp_path, 6)
    return start_batch(api, spec, rows)


BAD_RESULTS = {
    "response a string": {"custom_id": "r2", "response": "oops", "error": None},
    "status_code not a number": {
        "custom_id": "r2",
        "response": {"status_code": "abc", "body": chat_body("x")},
        "error": None,
    },
    "error a string": {"custom_id": "r2", "response": None, "error": "boom"},
    "body a list": {"custom_id": "r2", "response": {"status_code": 200, "body": [1]}},
    "choices missing": {
        "custom_id": "r2",
        "response": {"status_code": 200, "body": {"id": "c", "object": "chat.completion"}},
    },
    "error body on 500 a string": {
        "custom_id": "r2",
        "response": {"status_code": 500, "body": "down"},
    },
}


@pytest.mark.parametrize("bad", sorted(BAD_RESULTS))
def test_one_malformed_result_fails_only_its_row(
    tmp_path: Path, api: FakeBatchAPI, bad: str
) -> None:
    output = [ok_line(f"r{i}") for i in range(6) if i != 2] + [BAD_RESULTS[bad]]
    batch_id = six_rows(tmp_path, api, output)
    ran = run("batch", "collect", batch_id)
    check(ran, code=1, ledger=6)
    by_row = {line["row"]: line for line in lines()}
    assert [r for r, line in by_row.items() if line["status"] == "ok"] == [
        "r0",
        "r1",
        "r3",
        "r4",
        "r5",
    ]
    assert by_row["r2"]["status"] == "error" and by_row["r2"]["error"]["kind"] != "internal"
    check(run("batch", "collect", batch_id), code=1, ledger=6)  # not written twice


@pytest.mark.parametrize(
    ("output", "said", "ok"),
    [
        pytest.param(
            [*(ok_line(f"r{i}") for i in range(6)), ok_line("r3", chat_body("other"))],
            "1 duplicate",
            6,
            id="duplicate custom_id",
        ),
        pytest.param(
            [*(ok_line(f"r{i}") for i in range(6)), ok_line("stranger")],
            "1 unknown",
            6,
            id="unknown custom_id",
        ),
        pytest.param(
            [*(ok_line(f"r{i}") for i in range(6)), b"{not json"],
            "1 unreadable",
            6,
            id="non-JSON line",
        ),
        pytest.param(
            [*(ok_line(f"r{i}") for i in range(6)), {"response": None}],
            "1 unreadable",
            6,
            id="no custom_id",
        ),
        pytest.param([ok_line(f"r{i}") for i in range(5)], "1 missing", 5, id="missing row"),
    ],
)
def test_collect_counts_every_disagreement_with_the_local_record(
    tmp_path: Path, api: FakeBatchAPI, output: list[Any], said: str, ok: int
) -> None:
    batch_id = six_rows(tmp_path, api, output)
    ran = run("batch", "collect", batch_id)
    check(ran, code=1, ledger=6)
    assert said in ran.stderr and "disagree" in ran.stderr
    found = lines()
    assert sorted(line["row"] for line in found) == [f"r{i}" for i in range(6)]
    assert sum(line["status"] == "ok" for line in found) == ok
    if said == "1 duplicate":  # the first answer is kept, the other is reported
        [r3] = [line for line in found if line["row"] == "r3"]
        assert r3["output"]["text"] == "hi r3"


def test_unreadable_usage_in_a_batch_result_is_estimated_as_live(
    tmp_path: Path, api: FakeBatchAPI
) -> None:
    lots = {
        "custom_id": "r1",
        "response": {"status_code": 200, "body": {**chat_body("x"), "usage": "lots"}},
    }
    batch_id = six_rows(tmp_path, api, [ok_line(f"r{i}") for i in range(6) if i != 1] + [lots])
    check(run("batch", "collect", batch_id), code=0, ledger=6)
    [r1] = [line for line in lines() if line["row"] == "r1"]
    assert r1["status"] == "ok" and r1["usage"]["estimated"] and r1["cost"]["estimated"]


def test_an_extra_row_in_the_servers_input_file_is_never_written(
    tmp_path: Path, api: FakeBatchAPI
) -> None:
    extra = {
        "custom_id": "intruder",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
    }
    api.input_extra = [json.dumps(extra).encode() + b"\n"]
    api.answer = lambda cid, body: ok_line(cid)
    spec, rows = write_batch_spec(tmp_path), write_batch_rows(tmp_path, 6)
    batch_id = start_batch(api, spec, rows)
    # The server answers the intruder too.
    batch = api.batches[batch_id]
    api.files[batch["output_file_id"]] += json.dumps(ok_line("intruder")).encode() + b"\n"
    ran = run("batch", "collect", batch_id)
    check(ran, code=1, ledger=6)
    assert "intruder" not in {line["row"] for line in lines()}
    assert "1 unknown" in ran.stderr


def test_a_changed_request_in_the_servers_input_file_is_not_taken(
    tmp_path: Path, api: FakeBatchAPI
) -> None:
    spec, rows = write_batch_spec(tmp_path), write_batch_rows(tmp_path, 3)
    batch_id = start_batch(api, spec, rows)
    batch = api.batches[batch_id]
    data = api.files[batch["input_file_id"]].replace(b"Say hi to w1", b"Say bye to w1")
    api.files[batch["input_file_id"]] = data
    ran = run("batch", "collect", batch_id)
    check(ran, code=1, ledger=3)
    by_row = {line["row"]: line for line in lines()}
    assert by_row["r1"]["status"] == "error" and by_row["r1"]["error"]["kind"] == "batch_mismatch"
    assert "Say bye" not in LEDGER.read_text()
    assert "1 changed" in ran.stderr


def test_a_file_id_that_is_not_a_file_id_is_not_requested(
    tmp_path: Path, api: FakeBatchAPI
) -> None:
    spec, rows = write_batch_spec(tmp_path), write_batch_rows(tmp_path, 2)
    batch_id = start_batch(api, spec, rows)
    api.batches[batch_id]["output_file_id"] = "../../v1/batches?x="
    api.seen.clear()
    ran = run("batch", "collect", batch_id)
    check(ran, code=1, ledger=0)
    assert "not a file id" in ran.stderr
    assert not any("batches?x" in p for p in api.paths())


def test_an_output_file_of_another_batch_writes_nothing_of_it(
    tmp_path: Path, api: FakeBatchAPI
) -> None:
    """The batch's output_file_id names another batch's results (same keys, another spec's
    rows): the rows are this batch's, their requests are checked, nothing foreign is kept."""
    other = write_batch_spec(tmp_path, name="other")
    other.write_text(other.read_text().replace("Say hi", "Say bye"))
    spec, rows = write_batch_spec(tmp_path), write_batch_rows(tmp_path, 3)
    foreign = start_batch(api, other, write_batch_rows(tmp_path, 5, name="other.jsonl"))
    batch_id = start_batch(api, spec, rows)
    api.answer = lambda cid, body: ok_line(cid)
    mine, theirs = api.batches[batch_id], api.batches[foreign]
    mine["output_file_id"] = theirs["output_file_id"]
    mine["input_file_id"] = theirs["input_file_id"]
    ran = run("batch", "collect", batch_id)
    check(ran, code=1, ledger=3)
    assert {line["error"]["kind"] for line in lines()} == {"batch_mismatch"}
    assert "3 changed or absent requests" in ran.stderr and "2 unknown row ids" in ran.stderr
    assert "Say bye" not in LEDGER.read_text()


def test_a_status_that_flips_back_is_not_collected(tmp_path: Path, api: FakeBatchAPI) -> None:
    spec, rows = write_batch_spec(tmp_path), write_batch_rows(tmp_path, 2)
    batch_id = start_batch(api, spec, rows)
    check(run("batch", "status", batch_id), code=0, ledger=0)  # records it as ended
    api.batches[batch_id]["status"] = "in_progress"
    ran = run("batch", "collect", batch_id)
    check(ran, code=1, ledger=0)
    assert "completed" in ran.stderr and "in_progress" in ran.stderr


def test_cancel_of_a_collected_batch(tmp_path: Path, api: FakeBatchAPI) -> None:
    spec, rows = write_batch_spec(tmp_path), write_batch_rows(tmp_path, 2)
    batch_id = start_batch(api, spec, rows)
    check(run("batch", "collect", batch_id), code=0, ledger=2)
    api.seen.clear()
    ran = run("batch", "cancel", batch_id)
    check(ran, code=2, ledger=2)
    assert "already" in ran.stderr and "collected" in ran.stderr
    assert api.paths("POST") == []


@pytest.mark.parametrize("ident", ["batch_unknown", "../files/x", "a b"])
def test_status_of_an_unknown_or_impossible_id(
    tmp_path: Path, api: FakeBatchAPI, ident: str
) -> None:
    spec = write_batch_spec(tmp_path)
    ran = run("batch", "status", ident, "--spec", str(spec), "--base-url", api.url)
    check(ran, code=2, ledger=0)
    assert not any("files" in p for p in api.paths())


def test_a_lone_surrogate_in_a_batch_reply_is_recorded_and_printed(
    tmp_path: Path, api: FakeBatchAPI
) -> None:
    surrogate = (
        b'{"custom_id": "r1", "response": {"status_code": 200, "body": '
        + json.dumps(chat_body("half \\ud800 a pair")).encode().replace(b"\\\\ud800", b"\\ud800")
        + b"}}"
    )
    output = [ok_line("r0"), surrogate, ok_line("r2")]
    api.output_lines = [x if isinstance(x, bytes) else json.dumps(x).encode() for x in output]
    spec, rows = write_batch_spec(tmp_path), write_batch_rows(tmp_path, 3)
    batch_id = start_batch(api, spec, rows)
    ran = run("batch", "collect", batch_id)
    check(ran, code=0, ledger=3)
    by_row = {line["row"]: line for line in lines()}
    assert by_row["r1"]["status"] == "ok"
    assert by_row["r1"]["output"]["text"].startswith("half ")
    assert "a pair" in by_row["r1"]["output"]["text"]


def test_a_result_line_past_the_line_cap_fails_only_its_row(
    tmp_path: Path, api: FakeBatchAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A huge result file is read line by line, each result found again by its offset; a line
    past the cap (64 MiB; 1 MiB here) is read past, never held, and counted."""
    import runner.ledger.reading as reading

    monkeypatch.setattr(reading, "MAX_LINE_BYTES", 1 << 20)
    huge = ok_line("r1", chat_body("x" * (2 << 20)))
    batch_id = six_rows(tmp_path, api, [ok_line(f"r{i}") for i in range(6) if i != 1] + [huge])
    ran = run("batch", "collect", batch_id)
    check(ran, code=1, ledger=6)
    by_row = {line["row"]: line for line in lines()}
    assert by_row["r1"]["error"]["kind"] == "batch_missing"
    assert sum(line["status"] == "ok" for line in by_row.values()) == 5
    assert "1 unreadable line" in ran.stderr and "1 missing row" in ran.stderr


def test_var_values_reach_the_rows_of_a_batch(tmp_path: Path, api: FakeBatchAPI) -> None:
    spec = write_batch_spec(tmp_path)
    spec.write_text(
        spec.read_text()
        .replace("required: [who]", "required: [who, tone]")
        .replace("{who: {type: string}}", "{who: {type: string}, tone: {type: string}}")
        .replace("Say hi to {{ who }}.", "Say hi to {{ who }}, {{ tone }}.")
    )
    rows = write_batch_rows(tmp_path, 3)
    ran = run(
        "exec", str(spec), "--input", str(rows), "--batch", "--base-url", api.url,
        "--var", "tone=warmly",
    )  # fmt: skip
    check(ran, code=0, ledger=3)
    assert all(line["vars"]["tone"] == "warmly" for line in lines())
