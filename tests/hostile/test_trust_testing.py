"""`runner test`, `runner validate` and the single call against hostile input: backtracking
regexes, control characters and lone surrogates on their way into JUnit XML, output paths that
cannot be written, credentials in base URLs, device files where a ledger or a spec should be,
and signals while a suite runs. Every case checks the exit code, that no traceback is shown, the
ledger's exact line count, that no secret appears anywhere and the wall time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from _trust_recorded import (
    FAKE_KEY,
    Canned,
    Outcome,
    assert_clean,
    canned_server,
    chunk,
    reply,
    run_cli,
    server_env,
    sse,
)
from click.testing import CliRunner

from runner.cli import cli

PASSWORD = "hunter2-S3CRET-pw"


def _spec(folder: Path, tests: str = "", *, name: str = "t", extra: str = "") -> Path:
    """A text spec with one variable-free message, no retries, and these `tests:`."""
    path = folder / f"{name}.yaml"
    path.write_text(
        f"name: {json.dumps(name)}\nmodel: gpt-4o-mini\nparams: {{max_tokens: 50}}\n"
        "retry: {attempts: 1}\ntimeout: 5s\n"
        "messages:\n  - {role: user, content: Say something.}\n" + extra + tests,
        encoding="utf-8",
    )
    return path


def _invoke(args: list[str], env: dict[str, str] | None = None) -> Outcome:
    """A command that writes no ledger of its own (validate, render)."""
    started = time.monotonic()
    result = CliRunner().invoke(cli, args, env=env or {})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"an exception escaped: {result.exception!r}")
    return Outcome(result.exit_code, result.stdout, result.stderr, [], time.monotonic() - started)


def _no_password(out: Outcome, *files: Path) -> None:
    everything = out.stdout + out.stderr + json.dumps(out.lines)
    everything += "".join(f.read_text("utf-8", "replace") for f in files if f.is_file())
    assert PASSWORD not in everything
    assert "aHVudGVyMi1TM0NSRVQtcHc" not in everything  # base64 of the password


# --- 1. test regexes run on RE2 ----------------------------------------------------------------

BACKTRACKING = r"^(\w+\s?)*$"
SENTENCE = "the quick brown fox jumps over the lazy dog again and again and again!"


@pytest.mark.parametrize(
    ("expect", "answer"),
    [
        (f"{{text_matches: '{BACKTRACKING}'}}", SENTENCE),
        (f"{{path: a, matches: '{BACKTRACKING}'}}", json.dumps({"a": SENTENCE})),
    ],
    ids=["text_matches", "matches"],
)
def test_a_backtracking_pattern_runs_in_linear_time(
    tmp_path: Path, expect: str, answer: str
) -> None:
    schema = (
        "output:\n  schema: {type: object, properties: {a: {type: string}}, required: [a], "
        "additionalProperties: false}\n"
    )
    extra = schema if "path" in expect else ""
    spec = _spec(tmp_path, f"tests:\n  - name: hang\n    expect: [{expect}]\n", extra=extra)
    ledger = tmp_path / "ledger.jsonl"
    with canned_server(Canned(reply(answer))) as server:
        # In a child: a backtracking engine would hang in C, where no alarm can stop a test.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNNER_", "OPENAI_"))}
        env.update(server_env(server), RUNNER_LEDGER=str(ledger))
        started = time.monotonic()
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "runner", "test", str(spec)],
                env=env, capture_output=True, text=True, timeout=20,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            pytest.fail("the pattern backtracked: runner test still ran after 20 s")
    lines = ledger.read_text("utf-8").splitlines()
    out = Outcome(proc.returncode, proc.stdout, proc.stderr, [json.loads(x) for x in lines],
                  time.monotonic() - started)  # fmt: skip
    assert_clean(out, code=1, lines=1, limit=20)
    assert "FAIL  t::hang" in out.stdout


def test_patterns_use_the_ecma_dialect_at_run_time(tmp_path: Path) -> None:
    # \d is ASCII in ECMA-262 (Python's re would match the Arabic-Indic digit); $ is the end.
    tests = (
        "tests:\n"
        "  - name: ascii-digit\n    expect: [{text_matches: '^\\d$'}]\n"
        "  - name: dollar\n    expect: [{text_matches: 'a$'}]\n"
    )
    spec = _spec(tmp_path, tests)
    ledger = tmp_path / "ledger.jsonl"
    with canned_server(Canned(reply("\u0663"))) as server:
        out = run_cli(["test", str(spec), "-k", "ascii"], ledger, env=server_env(server))
    assert_clean(out, code=1, lines=1)
    with canned_server(Canned(reply("a\n"))) as server:
        out = run_cli(["test", str(spec), "-k", "dollar"], ledger, env=server_env(server))
    assert_clean(out, code=1, lines=2)


@pytest.mark.parametrize(
    "pattern", [r"(a)\1", r"(?<=a)b", r"(?i)abc"], ids=["backref", "lookbehind", "flags"]
)
@pytest.mark.parametrize("key", ["text_matches", "matches"])
def test_validate_refuses_what_re2_cannot_run_at_its_position(
    tmp_path: Path, pattern: str, key: str
) -> None:
    expect = f"{{path: a, {key}: '{pattern}'}}" if key == "matches" else f"{{{key}: '{pattern}'}}"
    spec = _spec(tmp_path, f"tests:\n  - name: p\n    expect:\n      - {expect}\n")
    out = _invoke(["validate", str(spec)])
    assert_clean(out, code=2, lines=0)
    assert "t.yaml:11:" in out.stdout, out.stdout
    assert "not a valid regex" in out.stdout


# --- 4. JUnit XML stays well-formed --------------------------------------------------------------

HOSTILE_TEXT = "ctl\x00\x01\x07\x1b[31mred\x1b[0m\x0b\x0c\ufffe\uffff tab\tok"


def _parse_junit(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()  # raises on XML that is not well-formed
    return root


def test_junit_survives_control_characters_in_names_and_messages(tmp_path: Path) -> None:
    # Case names are plain (the spec schema's pattern); a spec's name may hold anything.
    name = "spec\x01\x1b[1mbold\x00 \ufffe\uffff one\x1b]8;;http://x\x07"
    tests = (
        f"tests:\n  - name: one\n    expect: [{{text_contains: {json.dumps('never' + chr(7))}}}]\n"
    )
    spec = _spec(tmp_path, tests, name="ctl", extra="")
    text = spec.read_text("utf-8").replace('name: "ctl"', f"name: {json.dumps(name)}")
    spec.write_text(text, encoding="utf-8")
    ledger, junit = tmp_path / "ledger.jsonl", tmp_path / "junit.xml"
    with canned_server(Canned(reply(HOSTILE_TEXT))) as server:
        out = run_cli(["test", str(spec), "--junit", str(junit)], ledger, env=server_env(server))
    assert_clean(out, code=1, lines=1)
    root = _parse_junit(junit)
    testcase = root.find("./testsuite/testcase")
    assert testcase is not None
    readable = "spec\ufffd\ufffd[1mbold\ufffd \ufffd\ufffd one\ufffd]8;;http://x\ufffd"
    assert testcase.get("classname") == readable
    assert testcase.get("name") == "one"
    suite = root.find("./testsuite")
    assert suite is not None and suite.get("name") == readable
    failure = testcase.find("failure")
    assert failure is not None and "red" in (failure.text or "")
    assert "\x1b" not in out.stdout  # the terminal sees no escape sequence from a reply either


@pytest.mark.parametrize("fmt", ["text", "github", "markdown"])
def test_case_names_cannot_inject_lines_or_annotations(tmp_path: Path, fmt: str) -> None:
    name = "x%0A::error file=evil::owned\r\n::warning::injected\n  ::error::two\x1b[2J"
    tests = "tests:\n  - name: one\n    expect: [{text_contains: never}]\n"
    spec = _spec(tmp_path, tests, name="t")
    text = spec.read_text("utf-8").replace('name: "t"', f"name: {json.dumps(name)}")
    spec.write_text(text, encoding="utf-8")
    ledger = tmp_path / "ledger.jsonl"
    with canned_server(Canned(reply("line one\n::error::from the model\r\nx"))) as server:
        out = run_cli(["test", str(spec), "--format", fmt], ledger, env=server_env(server))
    assert_clean(out, code=1, lines=1)
    lines = [line.lstrip() for line in out.stdout.splitlines()]  # GitHub skips leading spaces
    assert not any(line.startswith("::warning") for line in lines), out.stdout
    assert not any(line.startswith("::error::from") for line in lines), out.stdout
    errors = [line for line in lines if line.startswith("::")]
    assert len(errors) == (1 if fmt == "github" else 0), out.stdout
    assert "\x1b" not in out.stdout and "\r" not in out.stdout


# --- 5. output paths are checked before the first call -----------------------------------------


def _one_case(tmp_path: Path) -> Path:
    return _spec(tmp_path, "tests:\n  - name: one\n    expect: [{text_contains: hi}]\n")


@pytest.mark.parametrize(
    "where", ["missing folder", "a directory", "under a file", "read-only folder"]
)
def test_an_unwritable_junit_path_stops_before_any_call(tmp_path: Path, where: str) -> None:
    spec = _one_case(tmp_path)
    (tmp_path / "afile").write_text("x")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    target = {
        "missing folder": tmp_path / "nonexistent" / "dir" / "j.xml",
        "a directory": tmp_path,
        "under a file": tmp_path / "afile" / "j.xml",
        "read-only folder": locked / "j.xml",
    }[where]
    if where == "read-only folder" and os.access(locked, os.W_OK):
        pytest.skip("running as a user that can write anywhere")
    ledger = tmp_path / "ledger.jsonl"
    with canned_server(Canned(reply("hi"))) as server:
        out = run_cli(["test", str(spec), "--junit", str(target)], ledger, env=server_env(server))
        assert server.requests == []
    assert_clean(out, code=2, lines=0)
    assert "--junit" in out.stderr
    assert not (tmp_path / "nonexistent").exists()


def test_root_cannot_write_under_a_file_either(tmp_path: Path) -> None:
    """As root (CI), a read-only folder is writable: /proc is not."""
    spec = _one_case(tmp_path)
    ledger = tmp_path / "ledger.jsonl"
    with canned_server(Canned(reply("hi"))) as server:
        out = run_cli(
            ["test", str(spec), "--junit", "/proc/version/j.xml"], ledger, env=server_env(server)
        )
        assert server.requests == []
    assert_clean(out, code=2, lines=0)


def test_an_unwritable_baseline_for_record_missing_stops_before_any_call(tmp_path: Path) -> None:
    spec = _one_case(tmp_path)
    ledger = tmp_path / "ledger.jsonl"
    baseline = tmp_path / "missing" / "baseline.jsonl"
    with canned_server(Canned(reply("hi"))) as server:
        out = run_cli(
            ["test", str(spec), "--replay", str(baseline), "--record-missing"],
            ledger,
            env=server_env(server),
        )
        assert server.requests == []
    assert_clean(out, code=2, lines=0)
    assert not baseline.parent.exists()


def test_an_unwritable_step_summary_stops_before_any_call(tmp_path: Path) -> None:
    spec = _one_case(tmp_path)
    ledger = tmp_path / "ledger.jsonl"
    with canned_server(Canned(reply("hi"))) as server:
        env = {**server_env(server), "GITHUB_STEP_SUMMARY": str(tmp_path / "no" / "summary.md")}
        out = run_cli(["test", str(spec), "--format", "markdown"], ledger, env=env)
        assert server.requests == []
    assert_clean(out, code=2, lines=0)
    assert "GITHUB_STEP_SUMMARY" in out.stderr


# --- 6. credentials in a base URL are refused --------------------------------------------------


def test_validate_refuses_userinfo_in_a_spec_base_url(tmp_path: Path) -> None:
    extra = f"provider: {{base_url: 'http://admin:{PASSWORD}@127.0.0.1:9/v1'}}\n"
    spec = _spec(tmp_path, extra=extra)
    out = _invoke(["validate", str(spec)])
    assert_clean(out, code=2, lines=0)
    assert "t.yaml:8:22:" in out.stdout, out.stdout
    assert "provider.headers" in out.stdout and "api_key_env" in out.stdout
    _no_password(out)


@pytest.mark.parametrize("command", ["exec", "test", "render"])
def test_every_command_refuses_userinfo_in_a_spec_base_url(tmp_path: Path, command: str) -> None:
    ledger = tmp_path / "ledger.jsonl"
    with canned_server(Canned(reply("hi"))) as server:
        url = server.url.replace("http://", f"http://admin:{PASSWORD}@")
        tests = "tests:\n  - name: one\n    expect: [{text_contains: hi}]\n"
        spec = _spec(tmp_path, tests, extra=f"provider: {{base_url: '{url}'}}\n")
        out = run_cli([command, str(spec)], ledger, env=server_env(server))
        assert server.requests == []
    assert_clean(out, code=2, lines=0)
    _no_password(out)


@pytest.mark.parametrize("source", ["--base-url", "RUNNER_BASE_URL", "OPENAI_BASE_URL"])
@pytest.mark.parametrize("command", ["exec", "test"])
def test_flags_and_variables_with_userinfo_are_refused(
    tmp_path: Path, source: str, command: str
) -> None:
    spec = _spec(tmp_path, "tests:\n  - name: one\n    expect: [{text_contains: hi}]\n")
    ledger = tmp_path / "ledger.jsonl"
    with canned_server(Canned(reply("hi"))) as server:
        url = server.url.replace("http://", f"http://admin:{PASSWORD}@")
        env = server_env(server)
        args = [command, str(spec)]
        if source == "--base-url":
            if command == "test":
                pytest.skip("runner test takes no --base-url")
            args += ["--base-url", url]
        else:
            env[source] = url
        out = run_cli(args, ledger, env=env)
        assert server.requests == []
    assert_clean(out, code=2, lines=0)
    assert source in out.stderr
    assert "provider.headers" in out.stderr
    _no_password(out)


# --- 7. lone surrogates in replies ---------------------------------------------------------------

LONE = "caf\ud800\udfff-\udc00!\ud83d"  # a pair (one character once read), two lone halves
READ = "caf\U000103ff-\ufffd!\ufffd"


def _tool_reply() -> dict[str, Any]:
    body = reply("")
    body["choices"][0]["message"] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "f", "arguments": json.dumps({"q": "x\ud800y"})},
            }
        ],
    }
    body["choices"][0]["finish_reason"] = "tool_calls"
    return body


@pytest.mark.parametrize("kind", ["plain", "stream", "tool"])
def test_a_lone_surrogate_in_a_reply_is_recorded_and_printed(tmp_path: Path, kind: str) -> None:
    extra = ""
    if kind == "tool":
        extra = (
            "tools:\n  - type: function\n    function:\n      name: f\n"
            "      parameters: {type: object, properties: {q: {type: string}}}\n"
        )
    spec = _spec(tmp_path, extra=extra)
    canned = {
        "plain": Canned(reply(LONE)),
        "stream": sse(chunk(LONE[:5]), chunk(LONE[5:]), chunk(finish="stop")),
        "tool": Canned(_tool_reply()),
    }[kind]
    ledger = tmp_path / "ledger.jsonl"
    with canned_server(canned) as server:
        args = ["exec", str(spec)] + (["--stream"] if kind == "stream" else [])
        out = run_cli(args, ledger, env=server_env(server))
    assert_clean(out, code=0, lines=1)
    line = out.lines[0]
    assert line["status"] == "ok", line
    if kind == "tool":
        assert "x\ufffdy" in json.dumps(line["output"], ensure_ascii=False)
        assert "x\ufffdy" in out.stdout
    else:
        assert line["output"]["text"] == READ
        assert READ in out.stdout


def test_runner_test_writes_its_junit_for_a_reply_with_a_lone_surrogate(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "tests:\n  - name: one\n    expect: [{text_contains: never}]\n")
    ledger, junit = tmp_path / "ledger.jsonl", tmp_path / "j.xml"
    with canned_server(Canned(reply(LONE))) as server:
        out = run_cli(["test", str(spec), "--junit", str(junit)], ledger, env=server_env(server))
    assert_clean(out, code=1, lines=1)
    assert out.lines[0]["status"] == "ok"
    failure = _parse_junit(junit).find("./testsuite/testcase/failure")
    assert failure is not None and READ in (failure.text or "")


# --- 8. device files and other files that never end ----------------------------------------------

_CHILD_ENV = {"OPENAI_API_KEY": FAKE_KEY, "NO_COLOR": "1"}


def _run_bounded(args: list[str], cwd: Path) -> tuple[int, str, float]:
    """`runner ARGS` in a child with a 2 GB address-space cap (so a runaway reader fails
    instead of eating the machine): exit code, output, seconds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNNER_", "OPENAI_"))}
    env.update(_CHILD_ENV, RUNNER_LEDGER=str(cwd / "ledger.jsonl"))
    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30));"
        "from runner.cli import main; sys.argv = ['runner'] + sys.argv[1:]; main()"
    )
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=40,
        stdin=subprocess.DEVNULL,
    )
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started


@pytest.mark.parametrize(
    "args",
    [
        ["test", "t.yaml", "--replay", "/dev/zero"],
        ["test", "t.yaml", "--mock", "--compare", "/dev/zero"],
        ["test", "t.yaml", "--mock", "--replay", "/dev/zero", "--record-missing"],
        ["validate", "/dev/zero"],
        ["exec", "/dev/zero", "--mock"],
        ["render", "/dev/stdin"],
        ["exec", "t.yaml", "--mock", "--vars-file", "zero.json"],
        ["exec", "t.yaml", "--mock", "--vars-file", "fifo.yaml"],
    ],
    ids=lambda a: " ".join(a[:1] + a[2:]),
)
def test_device_files_are_refused_at_once(tmp_path: Path, args: list[str]) -> None:
    _spec(tmp_path, "tests:\n  - name: one\n    expect: [{text_contains: x}]\n")
    (tmp_path / "zero.json").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo.yaml")
    code, output, seconds = _run_bounded(args, tmp_path)
    assert code == 2, output
    assert "Traceback" not in output and "MemoryError" not in output, output
    assert "regular file" in output or "not a file" in output, output
    assert seconds < 20
    ledger = tmp_path / "ledger.jsonl"
    assert not ledger.exists() or ledger.read_text() == ""


def test_an_over_long_line_in_a_replay_ledger_is_skipped_not_held(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "tests:\n  - name: one\n    expect: [{text_contains: x}]\n")
    baseline = tmp_path / "baseline.jsonl"
    with baseline.open("wb") as f:  # 80 MiB without a newline, then a torn tail
        block = b"x" * (1 << 20)
        for _ in range(80):
            f.write(block)
    code, output, seconds = _run_bounded(["test", str(spec), "--replay", str(baseline)], tmp_path)
    assert code == 1, output  # the case is not recorded: it fails, nothing is sent
    assert "Traceback" not in output and "MemoryError" not in output, output
    assert "longer than" in output
    assert seconds < 20


# --- 9. signals while runner test or validate works ----------------------------------------------


def _signal_after(args: list[str], cwd: Path, signum: int, delay: float) -> tuple[int, str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNNER_", "OPENAI_"))}
    env.update(_CHILD_ENV, RUNNER_LEDGER=str(cwd / "ledger.jsonl"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )
    try:
        # Past start-up (about 0.5 s of CPU) by CPU used, then the rest of `delay` by the clock
        # (a case loop on the mock waits more than it computes).
        _wait_for_cpu(proc, min(delay, 1.0))
        time.sleep(max(0.0, delay - 1.0))
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signum)
        signalled = time.monotonic()
        out, err = proc.communicate(timeout=30)
        waited = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out + err, waited


def _wait_for_cpu(proc: subprocess.Popen[str], seconds: float) -> None:
    """Wait until the child has used `seconds` of CPU (at most 60 s of wall time): on a busy
    machine a wall-clock delay could signal it while it is still importing, before the phase
    under test began."""
    clock = os.sysconf("SC_CLK_TCK")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return
        if (int(fields[11]) + int(fields[12])) / clock >= seconds:
            return
        time.sleep(0.02)


def _default_sigint() -> None:
    # A test runner's worker may ignore SIGINT, and a child inherits that: undo it, as a
    # terminal's foreground process has it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _big_ledger(path: Path, lines: int) -> None:
    record = {
        "v": 1, "id": "x", "ts": "2025-01-01T00:00:00Z", "status": "ok",
        "spec": {"name": "t", "path": "t.yaml"}, "case": "c", "request_sha256": "0" * 64,
        "output": {"text": "y" * 2000},
    }  # fmt: skip
    with path.open("w", encoding="utf-8") as f:
        for i in range(lines):
            record["id"] = f"id{i}"
            record["request_sha256"] = f"{i:064d}"
            f.write(json.dumps(record) + "\n")


SIGNALS = [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)]


@pytest.fixture(scope="module")
def big_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~900 MB, several seconds to index: written once, read by each signal's run."""
    path = tmp_path_factory.mktemp("big") / "big.jsonl"
    _big_ledger(path, 400_000)
    return path


@pytest.mark.parametrize(("signum", "code"), SIGNALS)
def test_a_signal_stops_the_replay_index_of_a_big_ledger(
    tmp_path: Path, big_ledger: Path, signum: int, code: int
) -> None:
    _spec(tmp_path, "tests:\n  - name: one\n    expect: [{text_contains: x}]\n")
    status, output, waited = _signal_after(
        ["test", "t.yaml", "--replay", str(big_ledger)], tmp_path, signum, 1.5
    )
    assert status == code, output
    assert waited < 3, f"{waited:.1f} s"
    assert "Traceback" not in output


@pytest.mark.parametrize(("signum", "code"), SIGNALS)
def test_a_signal_stops_the_case_loop(tmp_path: Path, signum: int, code: int) -> None:
    cases = "".join(
        f"  - name: c{i}\n    vars: {{}}\n    expect: [{{text_matches: '^(a|b)*c$'}}]\n"
        for i in range(3000)
    )
    _spec(tmp_path, "tests:\n" + cases)
    status, output, waited = _signal_after(["test", "t.yaml", "--mock"], tmp_path, signum, 4)
    assert status == code, output
    assert waited < 3, f"{waited:.1f} s"
    assert "Traceback" not in output
    assert FAKE_KEY not in output


@pytest.mark.parametrize(("signum", "code"), SIGNALS)
def test_a_signal_stops_validation_of_a_big_spec(tmp_path: Path, signum: int, code: int) -> None:
    cases = "".join(
        f"  - name: c{i}\n    expect: [{{text_contains: x}}, {{max_tokens: 5}}]\n"
        for i in range(40_000)
    )
    _spec(tmp_path, "tests:\n" + cases)
    assert (tmp_path / "t.yaml").stat().st_size < 4 << 20
    status, output, waited = _signal_after(["validate", "t.yaml"], tmp_path, signum, 1.2)
    assert status == code, output
    assert waited < 3, f"{waited:.1f} s"
    assert "Traceback" not in output


# --- a hostile --compare baseline ----------------------------------------------------------------

HOSTILE_LINES = [
    {"output": ["not", "an", "object"]},
    {"output": {"text": 12345}, "cost": {"usd": "abc"}, "latency_ms": "slow"},
    {"output": {"json": {"deep": [[[[1]]]]}}, "cost": "free", "latency_ms": 1e308},
    {"output": {"text": "\n".join(f"line {i}" for i in range(30_000)) + "\n::error::x"}},
    {"output": {"sha256": 7, "text": None}, "cost": {"usd": 1e400}},
]


@pytest.mark.parametrize("index", range(len(HOSTILE_LINES)))
def test_a_hostile_compare_baseline_is_read_safely(tmp_path: Path, index: int) -> None:
    spec = _one_case(tmp_path)
    baseline = tmp_path / "baseline.jsonl"
    line = {
        "v": 1, "id": "b1", "ts": "2025-01-01T00:00:00Z", "status": "ok", "case": "one",
        "spec": {"name": "t", "path": "t.yaml"}, "request_sha256": "0" * 64,
        **HOSTILE_LINES[index],
    }  # fmt: skip
    baseline.write_text(json.dumps(line).replace("1e400", "1e400") + "\n", encoding="utf-8")
    ledger, junit = tmp_path / "ledger.jsonl", tmp_path / "j.xml"
    answer = "\n".join(f"line {i}" for i in range(1, 30_001)) + "\nhi"
    with canned_server(Canned(reply(answer))) as server:
        out = run_cli(
            ["test", str(spec), "--compare", str(baseline), "--junit", str(junit)],
            ledger,
            env=server_env(server),
        )
    assert_clean(out, code=0, lines=1, limit=15)
    assert "changed" in out.stdout
    assert not any(x.lstrip().startswith("::") for x in out.stdout.splitlines())
    _parse_junit(junit)


MUTATIONS = [
    {"cost": {"usd": "abc", "source": 5}, "latency_ms": "slow", "usage": "lots"},
    {"cost": "free", "latency_ms": -1e308, "usage": {"prompt": "x", "completion": 10**30}},
    {"output": {"text": "ok", "choices": "many", "tool_calls": "x", "finish_reason": 3}},
    {"output": {"text": "ok"}, "served_model": ["m"], "request_id": {"a": 1}, "mock": "yes"},
    {"output": {"text": "caf\ud800"}, "messages": "not a list"},
]


@pytest.mark.parametrize("index", range(len(MUTATIONS)))
def test_a_hostile_replay_baseline_is_read_safely(tmp_path: Path, index: int) -> None:
    spec = _one_case(tmp_path)
    baseline, ledger = tmp_path / "baseline.jsonl", tmp_path / "ledger.jsonl"
    first = run_cli(
        ["test", str(spec), "--mock", "--replay", str(baseline), "--record-missing"], ledger
    )
    assert first.code in (0, 1), first.stderr
    line = json.loads(baseline.read_text("utf-8"))
    line.update(MUTATIONS[index])
    baseline.write_text(json.dumps(line) + "\n", encoding="utf-8")
    junit = tmp_path / "j.xml"
    out = run_cli(["test", str(spec), "--replay", str(baseline), "--junit", str(junit)], ledger)
    assert out.code in (0, 1), out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    assert len(out.lines) == 2  # the recording run's line and the replayed one
    _parse_junit(junit)
