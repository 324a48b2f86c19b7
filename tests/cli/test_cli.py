"""Tests for the command line: exit codes, what goes to stdout and stderr, and the ledger lines
a command writes. Commands run in-process through click's CliRunner (plus a few subprocesses
where the real entry point matters)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner, Result

from runner.cli import cli
from runner.ledger.reading import read_records

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ROOT / "prompts"
CITY_SCHEMA = json.loads((ROOT / "schemas" / "city.json").read_text("utf-8"))
FAKE_KEY = "sk-test-RUNNERFAKEKEY0123456789abcdefXYZ"
POSITION = re.compile(r"^\S+\.ya?ml:\d+:\d+: .+")


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env or {}, input=input, catch_exceptions=False)


def ledger(path: Path) -> list[dict[str, Any]]:
    return list(read_records(path))


@pytest.fixture
def city(tmp_path: Path) -> Path:
    """A copy of the city example and its schema in a fresh (non-git) project directory."""
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")  # the project's folder
    (tmp_path / "schemas").mkdir()
    (tmp_path / "prompts").mkdir()
    (tmp_path / "schemas" / "city.json").write_text(json.dumps(CITY_SCHEMA), encoding="utf-8")
    spec = tmp_path / "prompts" / "city.yaml"
    spec.write_text((PROMPTS / "city.yaml").read_text("utf-8"), encoding="utf-8")
    return spec


# --- help and version -------------------------------------------------------------------------


def test_help_lists_every_command() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("exec", "validate", "render", "mock-server"):
        assert command in result.output


def test_version() -> None:
    from runner import __version__

    assert run("--version").output.strip().endswith(__version__)


def test_an_unknown_command_is_a_usage_error() -> None:
    result = run("frobnicate")
    assert result.exit_code == 2
    assert "No such command" in result.stderr


# --- validate ---------------------------------------------------------------------------------


def test_validate_the_examples() -> None:
    result = run("validate", str(PROMPTS))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "valid" in result.stderr


BAD_SPECS = {
    "typo": "name: x\nmodel: gpt-4o-mini\ntemprature: 1\nmessages: [{role: user, content: hi}]\n",
    "no model": "name: x\nmessages: [{role: user, content: hi}]\n",
    "empty messages": "name: x\nmodel: gpt-4o-mini\nmessages: []\n",
    "bad role": "name: x\nmodel: m\nmessages: [{role: robot, content: hi}]\n",
    "syntax": "name: x\nmodel: gpt-4o-mini\nmessages: [{role: user, content: '{{ x '}]\n",
    "python tag": "name: !!python/object/apply:os.system [echo hi]\nmodel: m\nmessages: []\n",
    "internals": "name: x\nmodel: gpt-4o-mini\nmessages: [{role: user, "
    "content: '{{ ().__class__.__base__.__subclasses__() }}'}]\n",
    "rpm 0": "name: x\nmodel: gpt-4o-mini\nmessages: [{role: user, content: hi}]\nrate: {rpm: 0}\n",
    "duplicate": "name: x\nname: y\nmodel: gpt-4o-mini\nmessages: [{role: user, content: hi}]\n",
    "not a mapping": "- 1\n- 2\n",
    "bad yaml": "name: [x\n",
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_validate_reports_each_bad_spec_with_a_position(tmp_path: Path, case: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_SPECS[case], encoding="utf-8")
    result = run("validate", str(path))
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert lines and all(POSITION.match(line) for line in lines), result.stdout
    assert "Traceback" not in result.output


def test_validate_json_format(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_SPECS["typo"], encoding="utf-8")
    result = run("validate", "--format", "json", str(path))
    assert result.exit_code == 2
    [problem] = json.loads(result.stdout)
    assert problem["file"].endswith("bad.yaml")
    assert (problem["line"], problem["col"]) == (3, 1)
    assert "temperature" in problem["message"]  # did you mean


def test_validate_a_missing_path(tmp_path: Path) -> None:
    result = run("validate", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert "nope.yaml" in result.stdout


def test_validate_needs_a_path() -> None:
    assert run("validate").exit_code == 2


# --- render -----------------------------------------------------------------------------------


def test_render_shows_messages_tokens_and_cost(city: Path) -> None:
    result = run("render", str(city), "--var", "city=Paris")
    assert result.exit_code == 0, result.output
    assert "Tell me about Paris" in result.stdout
    assert re.search(r"\d+ prompt tokens", result.stdout)
    assert "worst-case cost $" in result.stdout


def test_render_json(city: Path) -> None:
    result = run("render", str(city), "--var", "city=Paris", "--json")
    data = json.loads(result.stdout)
    assert {"model", "messages", "prompt_tokens", "max_output_tokens", "max_cost_usd"} <= set(data)
    assert data["max_output_tokens"] == 400
    assert data["messages"][-1]["role"] == "user"


def test_render_with_a_missing_variable(city: Path) -> None:
    result = run("render", str(city))
    assert result.exit_code == 2
    assert "city" in result.stderr and result.stderr.startswith("Error: ")
    assert "Traceback" not in result.output


def test_render_an_unpriced_model_says_unknown(city: Path) -> None:
    result = run("render", str(city), "--var", "city=Paris", "--json", "--model", "llama-local")
    data = json.loads(result.stdout)
    assert data["max_cost_usd"] is None
    assert "llama-local" in result.stderr  # the tokenizer warning names the model


# --- exec -------------------------------------------------------------------------------------


def test_exec_mock_prints_schema_valid_json(city: Path, tmp_path: Path) -> None:
    led = tmp_path / "l.jsonl"
    result = run("exec", str(city), "--var", "city=Paris", "--mock", "--ledger", str(led))
    assert result.exit_code == 0, result.output
    jsonschema.validate(json.loads(result.stdout), CITY_SCHEMA)
    assert "mock" in result.stderr and "ledger" in result.stderr
    [line] = ledger(led)
    assert line["status"] == "ok" and line["mock"] is True


def test_exec_mock_through_the_environment(city: Path, tmp_path: Path) -> None:
    led = tmp_path / "l.jsonl"
    env = {"RUNNER_MOCK": "1", "RUNNER_LEDGER": str(led)}
    result = run("exec", str(city), "--var", "city=Paris", "-q", env=env)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert len(ledger(led)) == 1


def test_exec_json_prints_the_whole_result(city: Path, tmp_path: Path) -> None:
    result = run(
        "exec",
        str(city),
        "--var",
        "city=Paris",
        "--mock",
        "--json",
        "--ledger",
        str(tmp_path / "l"),
    )
    data = json.loads(result.stdout)
    expected = {"value", "text", "usage", "cost", "attempts", "latency_ms", "request_id"}
    assert expected | {"ledger_id"} <= set(data)
    assert data["ledger_id"] == ledger(tmp_path / "l")[0]["id"]


def test_exec_dry_run_sends_nothing(city: Path, tmp_path: Path) -> None:
    led = tmp_path / "l.jsonl"
    result = run("exec", str(city), "--var", "city=Paris", "--dry-run", "--ledger", str(led))
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["model"] == "gpt-4o-mini"
    assert body["response_format"]["type"] == "json_schema"
    assert not led.exists()


def test_exec_without_a_key_or_mock(city: Path, tmp_path: Path) -> None:
    led = tmp_path / "l.jsonl"
    result = run("exec", str(city), "--var", "city=Paris", "--ledger", str(led))
    assert result.exit_code == 2
    assert "OPENAI_API_KEY" in result.stderr and "--mock" in result.stderr
    assert not led.exists()


def test_exec_typed_and_file_variables(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: s\nmodel: gpt-4o-mini\n"
        "inputs: {type: object, properties: {n: {type: integer}, who: {type: string}}}\n"
        "messages: [{role: user, content: 'Count to {{ n + 1 }} for {{ who }}.'}]\n",
        encoding="utf-8",
    )
    (tmp_path / "vars.yaml").write_text("who: Ada\nn: 1\n", encoding="utf-8")
    result = run("render", str(spec), "--vars-file", str(tmp_path / "vars.yaml"), "--var", "n:=41")
    assert result.exit_code == 0, result.output
    assert "Count to 42 for Ada." in result.stdout
    wrong = run("render", str(spec), "--var", "n=41", "--var", "who=x")
    assert wrong.exit_code == 2 and "/n" in wrong.stderr  # a string is not an integer


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--var", "novalue"], "expected KEY=VALUE or KEY:=JSON"),
        (["--var", "n:={bad"], "n"),
        (["--vars-file", "missing.yaml"], "missing.yaml"),
    ],
)
def test_exec_bad_variables(city: Path, args: list[str], message: str) -> None:
    result = run("exec", str(city), "--mock", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_exec_invalid_output_exits_1_with_a_ledger_line(tmp_path: Path) -> None:
    (tmp_path / "city.json").write_text(json.dumps(CITY_SCHEMA), encoding="utf-8")
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: s\nmodel: gpt-4o-mini\nmessages: [{role: user, content: hi}]\n"
        "output: {schema: city.json}\nprovider: {headers: {X-Mock-Fault: invalid_output}}\n"
        "retry: {attempts: 2, backoff: {initial: 1ms, max: 1ms}}\n",
        encoding="utf-8",
    )
    led = tmp_path / "l.jsonl"
    result = run("exec", str(spec), "--mock", "--ledger", str(led))
    assert result.exit_code == 1
    assert result.stderr.count("Error: ") == 1
    assert "after 2 attempts" in result.stderr
    [line] = ledger(led)
    assert line["status"] == "invalid_output" and line["error"]["errors"]


def test_exec_stream_when_stdout_is_not_a_terminal(tmp_path: Path) -> None:
    led = tmp_path / "l.jsonl"
    result = run(
        "exec", str(PROMPTS / "haiku.yaml"), "--var", "topic=rain", "--mock", "--ledger", str(led)
    )
    assert result.exit_code == 0, result.output
    [line] = ledger(led)
    assert result.stdout.strip() == line["output"]["text"].strip()
    assert line["ttft_ms"] is not None  # the spec streams


def test_exec_warns_when_text_is_cut_at_max_tokens(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: s\nmodel: gpt-4o-mini\nparams: {max_tokens: 2}\n"
        "messages: [{role: user, content: hi}]\n",
        encoding="utf-8",
    )
    result = run("exec", str(spec), "--mock", "--ledger", str(tmp_path / "l"))
    assert result.exit_code == 0
    assert "Warning: the reply stopped at the output token limit (max_tokens 2)" in result.stderr
    assert result.stdout.strip()


def test_exec_no_content(city: Path, tmp_path: Path) -> None:
    led = tmp_path / "l.jsonl"
    result = run(
        "exec",
        str(city),
        "--var",
        "city=Hiddenburg",
        "--mock",
        "--no-content",
        "--ledger",
        str(led),
    )
    assert result.exit_code == 0
    assert "Hiddenburg" not in led.read_text("utf-8")


def test_exec_bad_boolean_environment(city: Path) -> None:
    result = run("exec", str(city), "--var", "city=x", env={"RUNNER_MOCK": "maybe"})
    assert result.exit_code == 2
    assert "RUNNER_MOCK" in result.stderr


def test_exec_a_bad_spec_is_exit_2_with_positions(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_SPECS["typo"], encoding="utf-8")
    result = run("exec", str(path), "--mock")
    assert result.exit_code == 2
    assert "bad.yaml:3:1:" in result.stderr


# --- mock-server options ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fail-rate", "2"], "between 0 and 1"),
        (["--status", "abc"], "invalid status"),
        (["--latency", "soon"], "not a duration"),
        (["--api-key-env", "NOT_SET_ANYWHERE"], "not set"),
    ],
)
def test_mock_server_rejects_bad_options(args: list[str], message: str) -> None:
    result = run("mock-server", "--port", "0", *args)
    assert result.exit_code == 2
    assert message in result.stderr


# --- the real entry point ---------------------------------------------------------------------


def test_python_dash_m_runner_and_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_SPECS["python tag"], encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "exec", str(path), "--mock"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "python" in proc.stderr


def test_ctrl_c_exits_130_and_still_records_the_call(tmp_path: Path) -> None:
    import signal
    import time

    spec = tmp_path / "slow.yaml"
    spec.write_text(
        "name: slow\nmodel: gpt-4o-mini\nmessages: [{role: user, content: hi}]\n"
        "provider: {headers: {X-Mock-Fault: 'latency=20s'}}\n",
        encoding="utf-8",
    )
    led = tmp_path / "l.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "exec", str(spec), "--mock", "--ledger", str(led)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stderr is not None
    assert "mock mode" in proc.stderr.readline()  # the call is under way
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "Traceback" not in err
    [line] = ledger(led)
    assert line["status"] == "error" and line["error"]["kind"] == "interrupted"
    jsonschema.validate(
        line, json.loads((ROOT / "schemas" / "ledger-line.schema.json").read_text())
    )


def test_a_failed_call_prints_the_error_then_where_it_is_recorded(tmp_path: Path) -> None:
    spec = tmp_path / "drop.yaml"
    spec.write_text(
        "name: drop\nmodel: gpt-4o-mini\nmessages: [{role: user, content: hi}]\n"
        "provider: {headers: {X-Mock-Fault: drop}}\n"
        "retry: {attempts: 2, backoff: {initial: 1ms, max: 1ms}}\n",
        encoding="utf-8",
    )
    led = tmp_path / "l.jsonl"
    result = run("exec", str(spec), "--mock", "--ledger", str(led))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[-2].startswith("Error: the connection to ")
    assert lines[-1] == f"(after 2 attempts; the call is recorded in {led})"
    [record] = ledger(led)
    assert [a["outcome"] for a in record["attempts"]] == ["connection", "connection"]


def test_runner_yaml_prices_an_unknown_model(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: s\nmodel: house-model\nprovider: {base_url: 'http://127.0.0.1:9/v1'}\n"
        "params: {max_tokens: 100}\nmessages: [{role: user, content: hi}]\n",
        encoding="utf-8",
    )
    unpriced = run("render", str(spec), "--json")
    assert json.loads(unpriced.stdout)["max_cost_usd"] is None
    (tmp_path / "runner.yaml").write_text(
        "prices:\n  house-model: {input: 1, output: 2}\n", encoding="utf-8"
    )
    priced = json.loads(run("render", str(spec), "--json").stdout)
    assert priced["max_cost_usd"] == pytest.approx((priced["prompt_tokens"] * 1 + 100 * 2) / 1e6)
    assert priced["price_source"].endswith("runner.yaml")


def test_a_broken_runner_yaml_is_exit_2_with_a_position(tmp_path: Path, city: Path) -> None:
    (tmp_path / "runner.yaml").write_text("prices:\n  m: {input: cheap}\n", encoding="utf-8")
    result = run("render", str(city), "--var", "city=Paris")
    assert result.exit_code == 2
    assert "runner.yaml:2:" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "70000 is not in the range 0<=x<=65535"),
        (["--port", "-1"], "-1 is not in the range 0<=x<=65535"),
        (["--host", "203.0.113.1"], "cannot listen on 203.0.113.1:0"),
    ],
)
def test_mock_server_refuses_an_address_it_cannot_use(args: list[str], message: str) -> None:
    """No traceback and no leaked socket: a usage error, exit 2."""
    result = run("mock-server", "--port", "0", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_mock_server_on_a_port_in_use() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("mock-server", "--port", str(port))
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--debug", "exec", "missing.yaml"],
        ["exec", "missing.yaml", "--debug"],
        ["exec", "--debug", "missing.yaml"],
        ["batch", "status", "batch_1", "--debug"],  # a subcommand of a group
        ["--debug", "batch", "status", "batch_1"],
    ],
)
def test_debug_before_or_after_the_command(args: list[str], tmp_path: Path) -> None:
    """`--debug` is the group's flag, and every command takes it too: a user adds it to the end
    of the line that failed, and the error comes with its traceback; without it, none."""
    ledger = ["--ledger", str(tmp_path / "l.jsonl")] if "batch" in args else []
    result = CliRunner().invoke(cli, [*args, *ledger], env={"RUNNER_DEBUG": None})
    assert result.exit_code == 2, result.output
    assert "Traceback (most recent call last)" in result.output, result.output
    assert "Error:" in result.output
    plain = CliRunner().invoke(cli, [a for a in args if a != "--debug"] + ledger)
    assert plain.exit_code == 2 and "Traceback" not in plain.output, plain.output


def test_debug_is_not_listed_in_each_commands_help() -> None:
    """It is hidden on the commands: `runner --help` documents it once."""
    assert "--debug" not in run("exec", "--help").output
    assert "--debug" in run("--help").output


def test_the_command_line_freezes_its_live_objects_at_exit_and_the_library_does_not() -> None:
    """Python's collections at exit pass over frozen objects; the freeze comes after every exit
    handler added once the command began (a handler added before runs after it, and sees it)."""
    from _fresh_python import python_output

    report = "atexit.register(lambda: os.write(1, b' frozen %d' % gc.get_freeze_count()))\n"
    cli = "import atexit, gc, os, runner.cli\n" + report + "runner.cli.main()\n"
    assert int(python_output(cli, "--version").split("frozen ")[-1]) > 1_000
    library = "import atexit, gc, os, runner, runner.engine.session\n" + report
    assert python_output(library).split("frozen ")[-1] == "0"
    off = cli.replace("runner.cli\n", "runner.cli\ngc.disable()\ngc.set_threshold(0)\n", 1)
    assert int(python_output(off, "--version").split("frozen ")[-1]) > 1_000


# Prints, when the spec is loaded and when the calls begin, whether the collector is on and
# whether start-up's objects are frozen.
_WATCH_THE_COLLECTOR = """
import gc, sys, runner.cli, runner.spec.load as load, runner.engine.session as session

def watching(where, function):
    def watched(*args, **kwargs):
        print(where, gc.isenabled(), gc.get_freeze_count() > 1_000)
        return function(*args, **kwargs)
    return watched

load.load_spec = watching("load", load.load_spec)
session.Session.__enter__ = watching("open", session.Session.__enter__)
session.Session.__aenter__ = watching("open", session.Session.__aenter__)
session.Session.run = watching("calls", session.Session.run)
session.Session.run_sync = watching("calls", session.Session.run_sync)
runner.cli.main()
"""


@pytest.mark.parametrize("how", ["one call", "data set", "batch"])
def test_exec_collects_no_garbage_until_its_session_opens_then_freezes_what_start_up_built(
    tmp_path: Path, how: str
) -> None:
    """Start-up's objects all stay alive: collecting them is wasted. `exec` turns the collector
    back on, start-up's objects frozen, once the spec is loaded and the session open, on every
    path: one call, a data set, a batch."""
    from _fresh_python import python_output

    args = ["exec", str(PROMPTS / "city.yaml"), "--mock", "--ledger", str(tmp_path / "l.jsonl")]
    if how == "one call":
        args += ["--var", "city=Paris"]
    else:
        data = tmp_path / "rows.jsonl"
        data.write_text('{"city": "Paris"}\n{"city": "Lima"}\n', encoding="utf-8")
        args += ["--input", str(data), "-q"]
        args += ["--batch"] if how == "batch" else ["--output", str(tmp_path / "out.jsonl")]
    lines = python_output(_WATCH_THE_COLLECTOR, *args).splitlines()
    seen = [line for line in lines if line.startswith(("load ", "open ", "calls "))]
    assert seen[0] == "load False False", lines
    assert "open True True" in seen[1:] and set(seen[1:]) <= {"open True True", "calls True True"}


def test_other_commands_turn_the_collector_back_on_as_they_begin(tmp_path: Path) -> None:
    from _fresh_python import python_output

    args = ["render", str(PROMPTS / "city.yaml"), "--var", "city=Paris"]
    lines = python_output(_WATCH_THE_COLLECTOR, *args).splitlines()
    assert [line for line in lines if line.startswith("load ")] == ["load True True"], lines


def test_the_command_line_collects_less_often_and_leaves_a_collector_that_is_off_alone() -> None:
    from _fresh_python import python_output

    cli = (
        "import gc, runner.cli\n"
        "try:\n    runner.cli.main()\nexcept SystemExit:\n    pass\n"
        "print(gc.get_threshold()[0], gc.isenabled())"
    )
    assert python_output(cli, "--version").split()[-2] == "10000"
    as_library = python_output(
        "import gc, runner, runner.engine.session\nprint(gc.get_threshold()[0], gc.isenabled())"
    )
    assert as_library == python_output("import gc\nprint(gc.get_threshold()[0], True)") != ""
    off = "import gc, runner.cli\ngc.disable()\ngc.set_threshold(0)\n" + cli.split("\n", 1)[1]
    assert python_output(off, "--version").split()[-2:] == ["0", "False"]
    disabled = "import gc, runner.cli\ngc.disable()\n" + cli.split("\n", 1)[1]
    assert python_output(disabled, "--version").split()[-2:] == ["10000", "False"]
