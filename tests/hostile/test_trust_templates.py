"""Templates stay within their budget whatever global, filter or method they call, print only
data (never `<function ... at 0x...>`), and stop at once on Ctrl-C, SIGTERM or SIGHUP, even
inside the asyncio loop of `runner exec`.

Each budget case renders in a child process whose wall time and peak memory (RSS) are measured:
a case that escaped the budget would show as seconds or hundreds of megabytes, not as a wrong
message only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _trust_recorded import (
    FAKE_KEY,
    Canned,
    assert_clean,
    canned_server,
    reply,
    run_cli,
    server_env,
)

from runner.errors import TemplateError
from runner.spec.templates import compile_template

WALL_LIMIT = 12.0  # seconds: the 5 s budget, one bounded operation past it, start-up
RSS_LIMIT_MB = 700  # the interpreter and jinja2 take ~60 MB; 64M characters built at most

_CHILD = textwrap.dedent(
    """
    import json, sys, resource
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # a runaway fails, not the box
    from runner.errors import TemplateError
    from runner.spec.templates import compile_template
    source = sys.stdin.read()
    try:
        text = compile_template("line one\\n" + source, origin="/messages/0/content").render({})
        print(json.dumps({"ok": len(text)}))
    except TemplateError as exc:
        p = exc.problems[0]
        print(json.dumps({"error": p.message, "line": p.line}))
    """
)


# The child's peak RSS, read with wait4 by a small Python in between: a child forked straight
# from a pytest worker reports the worker's RSS at fork time as its own peak (Linux keeps the
# larger of the two), and a worker that ran big tests before is past the limit alone.
_LAUNCHER = textwrap.dedent(
    """
    import json, resource, subprocess, sys
    proc = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdin=sys.stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=45)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps([out.decode(errors="replace"), err.decode(errors="replace"), peak]))
    """
)


def _render_measured(source: str) -> tuple[dict[str, object], float, float]:
    """Render `source` (after one plain line) in a grandchild: its answer, seconds, peak RSS."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, _CHILD],
        input=source.encode(),
        capture_output=True,
        timeout=60,
    )
    seconds = time.monotonic() - started
    out, err, peak = json.loads(proc.stdout)
    assert "Traceback" not in err, err
    return json.loads(out or "{}"), seconds, peak


# Every global, and the filters and methods that can build more than they are given or run long.
BUDGET = {
    # the examples
    "lipsum huge": ("{{ lipsum(1000000, min=1000, max=10000) }}", "lipsum() is not available"),
    "lipsum n": ("{{ lipsum(n=100000) }}", "lipsum() is not available"),
    "squaring in a namespace": (
        "{% set ns = namespace(x=2) %}{% for i in range(40) %}"
        "{% set ns.x = ns.x * ns.x %}{% endfor %}{{ ns.x }}",
        "more than 4,300 digits",
    ),
    # integers, every road
    "doubling with +": (
        "{% set ns = namespace(x=1) %}{% for i in range(100000) %}"
        "{% set ns.x = ns.x + ns.x %}{% endfor %}",
        "more than 4,300 digits",
    ),
    "power of a big base": ("{{ (10 ** 1000) ** 1000 }}", "more than 4,300 digits"),
    "int.from_bytes": (
        "{{ (0).from_bytes(('x' * 1000000).encode(), 'big') * 3 }}",
        "more than 4,300 digits",
    ),
    "int literal": ("{{ " + "9" * 5000 + " }}", "4300 digits"),
    "to_bytes length": ("{{ (1).to_bytes(1000000000, 'big') }}", "larger than 1,000,000"),
    # globals
    "range": ("{{ range(1000000000)|list|length }}", "MAX_RANGE"),
    "dict of a huge range": ("{{ dict.fromkeys(range(200000))|length }}", "MAX_RANGE"),
    "cycler": (
        "{% set c = cycler(*range(100000)) %}{% for i in range(100000) %}"
        "{% for j in range(100) %}{{ c.next() }}{% endfor %}{% endfor %}",
        "loop iterations and calls|longer than 5 s",
    ),
    "joiner": (
        "{% set j = joiner('x' * 1000000) %}{% for i in range(100) %}{{ j() }}{% endfor %}",
        "longer than",
    ),
    "namespace list growth": (
        "{% set s = 'x' * 1000000 %}{% set ns = namespace(l=[]) %}{% for i in range(500) %}"
        "{% set ns.l = ns.l + [s ~ i] %}{% endfor %}",
        "built more than",
    ),
    "random filter": ("{{ [1, 2, 3]|random }}", "No filter named 'random'"),
    # bytes reach the same bounds as strings
    "bytes repeated": ("{{ ('x'.encode() * 1000000000)|length }}", "too long"),
    "bytes center": ("{{ 'x'.encode().center(1000000000)|length }}", "larger than 1,000,000"),
    "bytes join": (
        "{% set b = ('x' * 1000000).encode() %}{{ b.join([b] * 100)|length }}",
        "joined",
    ),
    # methods and filters that grow their input
    "translate": (
        "{{ ('a' * 1000000).translate({97: 'x' * 1000})|length }}",
        "translated",
    ),
    "list of a long string": (
        "{% set s = 'x' * 1000000 %}{{ (s ~ s)|list|length }}",
        "1,000,000 items",
    ),
    "wordwrap": ("{{ ('x' * 1000000)|wordwrap(1)|length }}", "at most 100,000 characters"),
    "urlize": ("{{ ('ab ' * 300000)|urlize|length }}", "at most 100,000 characters"),
    "sorting long lists": (
        "{% set l = ('xy' * 500000)|list %}{% for i in range(100) %}"
        "{{ (l|sort|join)[:1] }}{% endfor %}",
        "longer than 5 s",
    ),
    "format_map": ("{{ '{a:>1000000000}'.format_map({'a': 1}) }}", "larger than 1,000,000"),
    "format": ("{{ '{:>1000000000}'.format(1) }}", "larger than 1,000,000"),
    "percent": ("{{ '%1000000000d' % 1 }}", "larger than 1,000,000"),
}


@pytest.mark.parametrize("case", sorted(BUDGET))
def test_the_budget_holds_for_every_global_filter_and_method(case: str) -> None:
    source, reason = BUDGET[case]
    answer, seconds, rss_mb = _render_measured(source)
    assert "error" in answer, answer
    assert any(words in str(answer["error"]) for words in reason.split("|")), answer
    assert answer["line"] == 2, answer  # the template's line 2, where the source starts
    assert seconds < WALL_LIMIT, f"{case}: {seconds:.1f} s"
    assert rss_mb < RSS_LIMIT_MB, f"{case}: {rss_mb:.0f} MB"


def test_ordinary_work_within_the_budget_still_renders() -> None:
    source = (
        "{% set ns = namespace(x=2) %}{% for i in range(10) %}{% set ns.x = ns.x * ns.x %}"
        "{% endfor %}{{ ns.x.bit_length() }} {{ 2 ** 100 }} {{ '%s=%d' % ('a', 1) }} "
        "{{ '{}|{}'.format('b', 2) }} {{ ['c', 'd']|join('+') }} {{ range(3)|list }} "
        "{{ dict(a=1) }} {{ 'x'.encode().decode() }} {{ 'ab'|wordwrap(1) }} {{ 'x' ~ 1 }}"
    )
    text = compile_template(source, origin="t").render({})
    assert text == (f"1025 {2**100} a=1 b|2 c+d [0, 1, 2] {{'a': 1}} x a\nb x1")
    assert compile_template("{{ lipsum }}", origin="t").render({"lipsum": "a variable"}) == (
        "a variable"
    )


# --- Python objects never become prompt text ------------------------------------------------

REPRS = {
    "{{ lipsum }}": None,  # not a global any more: an undefined variable
    "{{ range }}": "a function",
    "{{ self }}": "the template itself",
    "{{ cycler }}": "a class",
    "{{ namespace }}": "a class",
    "{{ joiner }}": "a class",
    "{{ dict }}": "a class",
    '{{ "".upper }}': "a function",
    "{{ cycler(1, 2) }}": "a cycler",
    "{{ joiner() }}": "a joiner",
    "{{ namespace(a=1) }}": "a namespace",
    "{% for i in [1] %}{{ loop }}{% endfor %}": "the loop object",
    "{% macro m() %}x{% endmacro %}{{ m }}": "a macro",
    "{{ range(3) }}": "a range",
    "{{ [1, 2]|map('string') }}": "a generator",
    "{{ {'a': 1}.items() }}": "a dict view",
    "{{ 'x'.encode() }}": "bytes",
    "{{ [range] }}": "a function",
    "{{ {'k': self} }}": "the template itself",
    "{{ [{'a': 1}]|groupby('a') }}": "_GroupTuple",
    "{{ 'a' ~ range }}": "a function",
    "{{ range|string }}": "a function",
    "{{ range|trim }}": "a function",
    "{{ range|pprint }}": "a function",
    "{{ [range]|join(',') }}": "a function",
    "{{ ','.join([range]) }}": "a function",
    "{{ '%s' % range }}": "a function",
    "{{ '%s %s' % (1, self) }}": "the template itself",
    "{{ '{}'.format(range) }}": "a function",
    "{{ '{x}'.format_map({'x': range}) }}": "a function",
    "{{ '{}'|format(range) }}": "a function",
    "{% set x %}{{ range }}{% endset %}{{ x }}": "a function",
    "{% filter upper %}{{ cycler }}{% endfilter %}": "a class",
}


@pytest.mark.parametrize("source", sorted(REPRS))
def test_python_objects_are_refused_at_their_line(source: str) -> None:
    template = compile_template(
        "first\n" + source, origin="/messages/1/content", locate=lambda n: (n + 20, 7)
    )
    with pytest.raises(TemplateError) as info:
        template.render({})
    problem = info.value.problems[0]
    message = problem.message
    assert "0x" not in message and "<" not in message, message
    assert "/messages/1/content" in message
    kind = REPRS[source]
    if kind is None:
        assert "undefined variable 'lipsum'" in message
        return
    assert kind in message, message
    assert "only text, numbers, booleans, null and lists or mappings" in message
    assert (problem.line, problem.col) == (22, 7)


def test_data_still_prints() -> None:
    source = "{{ x }} {{ [1, 'a', None, true] }} {{ {'k': [1.5]} }} {{ '' }}{{ none }}"
    text = compile_template(source, origin="t").render({"x": "plain"})
    assert text == "plain [1, 'a', None, True] {'k': [1.5]} None"


# --- through the command line: exit 2, nothing sent, no line --------------------------------


def _spec(folder: Path, template: str) -> Path:
    path = folder / "t.yaml"
    path.write_text(
        "name: t\nmodel: gpt-4o-mini\nretry: {attempts: 1}\nmessages:\n"
        f"  - role: user\n    content: {json.dumps(template)}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("{{ lipsum }}", "missing variable 'lipsum'"),
        ("{{ lipsum(n=100000) }}", "lipsum() is not available"),
        ("{{ range }}", "cannot put a function into the prompt"),
        ("{{ self }}", "cannot put the template itself (self) into the prompt"),
        (
            "{% set ns = namespace(x=2) %}{% for i in range(40) %}"
            "{% set ns.x = ns.x * ns.x %}{% endfor %}",
            "more than 4,300 digits",
        ),
    ],
)
@pytest.mark.parametrize("command", ["render", "exec", "validate"])
def test_the_cli_refuses_with_exit_2_and_sends_nothing(
    tmp_path: Path, template: str, words: str, command: str
) -> None:
    spec = _spec(tmp_path, template)
    ledger = tmp_path / "ledger.jsonl"
    with canned_server(Canned(reply())) as server:
        if command == "exec":
            out = run_cli(["exec", str(spec)], ledger, env=server_env(server))
        else:
            from _trust_recorded import Outcome
            from click.testing import CliRunner

            from runner.cli import cli

            started = time.monotonic()
            result = CliRunner().invoke(cli, [command, str(spec)], env=server_env(server))
            out = Outcome(
                result.exit_code, result.stdout, result.stderr, [], time.monotonic() - started
            )
        assert server.requests == []
    if command == "validate" and "lipsum()" not in words:
        # validate renders nothing: a problem found only by rendering is not its to find
        assert_clean(out, code=0, lines=0)
        return
    assert_clean(out, code=2, lines=0)
    shown = out.stdout + out.stderr
    assert words in shown
    if "missing variable" not in words:
        assert "t.yaml:6:" in shown, shown
    assert "0x" not in out.stdout + out.stderr
    assert not ledger.exists()


# --- signals: a long render stops at once ----------------------------------------------------

SLOW = (
    "{% for i in range(100000) %}{% for j in range(9) %}"
    "{{ (i ~ j)|center(20)|trim|length }}{% endfor %}{% endfor %}"
)


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)]
)
@pytest.mark.parametrize("command", [["exec", "--mock"], ["render"], ["test", "--mock"]])
def test_a_signal_stops_a_long_render_at_once(
    tmp_path: Path, signum: int, code: int, command: list[str]
) -> None:
    spec = _spec(tmp_path, SLOW)
    if command[0] == "test":
        with spec.open("a", encoding="utf-8") as f:
            f.write("tests:\n  - name: one\n    expect: [{text_contains: x}]\n")
    ledger = tmp_path / "ledger.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNNER_", "OPENAI_"))}
    env.update(OPENAI_API_KEY=FAKE_KEY, NO_COLOR="1", RUNNER_LEDGER=str(ledger))
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", command[0], str(spec), *command[1:]],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
    )
    try:
        time.sleep(1.5)  # start-up, then well into the render (it would take ~5 s)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signum)
        signalled = time.monotonic()
        out, err = proc.communicate(timeout=20)
        waited = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, err
    assert waited < 3, f"{waited:.1f} s after the signal"
    assert "Traceback" not in out + err, err
    assert FAKE_KEY not in out + err
    assert "Interrupted" in err
    assert not ledger.exists() or ledger.read_text() == ""  # nothing was sent
