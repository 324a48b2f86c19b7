"""Hostile templates: rendering always ends quickly, as a TemplateError at the template's line;
`runner render` and `runner exec` exit 2 without a traceback, send nothing and write no ledger
line."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.errors import TemplateError
from runner.spec.templates import compile_template

NESTED = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"

BOMBS = {
    "nested loops": (NESTED, "loop iterations and calls"),
    "nested empty loops": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "loop iterations and calls",
    ),
    "doubling with ~": (
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "longer than 16,777,216",
    ),
    "doubling with +": (
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}"
        "{% set ns.s = ns.s + ns.s %}{% endfor %}",
        "longer than 16,777,216",
    ),
    "macro bomb": (
        "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}",
        "loop iterations and calls",
    ),
    "center": ("{{ 'x'|center(1000000000) }}", "larger than 1,000,000"),
    "ljust": ("{{ 'x'.ljust(1000000000) }}", "larger than 1,000,000"),
    "str.format width": ("{{ '{:>1000000000}'.format(1) }}", "larger than 1,000,000"),
    "% width": ("{{ '%01000000000d' % 1 }}", "larger than 1,000,000"),
    "format filter": ("{{ '%01000000000d'|format(1) }}", "larger than 1,000,000"),
    "replace filter": ("{{ ('x' * 100000)|replace('', 'y' * 1000) }}", "replaced"),
    "replace method": ("{{ ('x' * 100000).replace('', 'y' * 1000) }}", "replaced"),
    "slice": ("{{ []|slice(1000000000)|list }}", "larger than 1,000,000"),
    "batch": ("{{ [1]|batch(1000000000, 'x')|list|length }}", "larger than 1,000,000"),
    "indent": ("{{ ('x\\n' * 100000)|indent(1000) }}", "indented"),
    "tojson indent": ("{{ range(1000)|list|tojson(indent=100000) }}", "larger than 100"),
    "join": ("{% set s = 'x' * 1000000 %}{{ ([s] * 100)|join }}", "joined"),
    "expandtabs": ("{{ ('\t' * 100000).expandtabs(1000) }}", "expanded"),
    "output size": (
        "{% set s = 'x' * 1000000 %}{% for i in range(20) %}{{ s }}{% endfor %}",
        "rendered text is longer",
    ),
}


@pytest.mark.parametrize("case", sorted(BOMBS))
def test_a_template_bomb_stops_fast_at_its_line(case: str) -> None:
    source, reason = BOMBS[case]
    template = compile_template(
        "first line\n" + source, origin="/messages/0/content", locate=lambda n: (n + 10, 3)
    )
    started = time.perf_counter()
    with pytest.raises(TemplateError) as info:
        template.render({})
    assert time.perf_counter() - started < 5
    problem = info.value.problems[0]
    assert reason in problem.message
    assert (problem.line, problem.col) == (12, 3)  # template line 2, as located


def test_ordinary_templates_render_as_before() -> None:
    source = (
        "{% for i in range(3) %}{{ i }}{% endfor %} {{ 'a' ~ 'b' }} {{ [1, 2]|join(',') }} "
        "{{ 'x'|center(5) }} {{ '%03d' % 7 }} {{ '{:>3}'.format(1) }} {{ 'ab'.replace('a', 'c') }}"
        " {{ {'a': 1}|tojson }} {{ 'a\nb'|indent(2) }} {{ xs|length }}"
    )
    text = compile_template(source, origin="t").render({"xs": list(range(200_000))})
    assert text == '012 ab 1,2   x   007   1 cb {"a": 1} a\n  b 200000'


def test_a_loop_over_a_long_variable_within_the_budget_renders() -> None:
    template = compile_template("{% for x in xs %}{{ x }}{% endfor %}", origin="t")
    assert len(template.render({"xs": ["a"] * 500_000})) == 500_000


def _spec(tmp_path: Path, template: str) -> Path:
    path = tmp_path / "bomb.yaml"
    path.write_text(
        f'model: gpt-4o-mini\nmessages:\n  - role: user\n    content: "{template}"\n',
        encoding="utf-8",
    )
    return path


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "command",
    [
        ["render"],
        ["exec", "--mock"],
        ["exec", "--no-mock"],  # an endpoint: a call sent to it would fail with exit 1
    ],
    ids=["render", "exec-mock", "exec-endpoint"],
)
def test_the_cli_exits_2_without_sending_or_writing(tmp_path: Path, command: list[str]) -> None:
    spec = _spec(tmp_path, NESTED)
    ledger = tmp_path / "ledger.jsonl"
    env = {
        "OPENAI_API_KEY": "sk-test-0123456789abcdef0123",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{_closed_port()}/v1",
    }
    args = [command[0], str(spec), *command[1:]]
    if command[0] == "exec":
        args += ["--ledger", str(ledger)]
    started = time.perf_counter()
    result = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    assert time.perf_counter() - started < 10
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "bomb.yaml:4:" in result.stderr and "loop iterations" in result.stderr
    assert not ledger.exists() or ledger.read_text() == ""
