"""runner.spec.load: loading specs end to end (building every field), check_paths, --var parsing and
runner.yaml; the checks, YAML reading and rendering have test files of their own."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from _spec_helpers import OK, SPECS, spec_problems, write_file

from runner.errors import ConfigError, Problem, SpecError
from runner.spec.load import (
    BreakerConfig,
    LedgerConfig,
    RateConfig,
    RetryConfig,
    check_paths,
    find_root,
    load_project_config,
    load_spec,
    load_vars_file,
    parse_var_args,
)

ROOT = Path(__file__).resolve().parents[2]


# --- the examples in prompts/ ---------------------------------------------------------------------


EXAMPLES = sorted((ROOT / "prompts").glob("*.yaml"))


def test_there_are_examples() -> None:
    assert {p.stem for p in EXAMPLES} >= {"city", "haiku", "sentiment", "weather-tool"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_validates_and_has_tests(path: Path) -> None:
    assert path.read_text("utf-8").startswith(
        "# yaml-language-server: $schema=../schemas/prompt-spec.schema.json\n"
    )
    spec = load_spec(path)
    assert spec.tests
    for case in spec.tests:
        spec.render(spec.prepare_vars(case.vars))


def test_check_paths_over_the_examples() -> None:
    assert check_paths([ROOT / "prompts"]) == []


def test_city_example() -> None:
    spec = load_spec(ROOT / "prompts" / "city.yaml")
    assert spec.output is not None
    assert spec.output.schema_path == ROOT / "schemas" / "city.json"
    assert set(spec.output.schema["required"]) == {"name", "country", "population", "landmarks"}
    assert spec.output.strict and spec.output.name == "city"
    assert spec.render(spec.prepare_vars({"city": "Paris"}))[1] == {
        "role": "user",
        "content": "Tell me about Paris: its country, its population and its best-known "
        "landmarks.\n",
    }


def test_the_other_examples_show_their_features() -> None:
    haiku = load_spec(ROOT / "prompts" / "haiku.yaml")
    assert haiku.stream and haiku.output is None
    sentiment = load_spec(ROOT / "prompts" / "sentiment.yaml")
    assert sentiment.output is not None
    assert sentiment.output.schema["properties"]["label"]["enum"] == [
        "positive",
        "negative",
        "neutral",
    ]
    assert not sentiment.ledger.content
    weather = load_spec(ROOT / "prompts" / "weather-tool.yaml")
    assert weather.tools[0]["function"]["name"] == "get_weather"
    assert weather.tool_choice == {"type": "function", "function": {"name": "get_weather"}}


# --- building every field -------------------------------------------------------------------------


def test_full_spec_builds_every_field() -> None:
    spec = load_spec(SPECS / "full.yaml")
    assert spec.name == "full example"
    assert spec.provider.base_url == "http://127.0.0.1:8080/v1"
    assert spec.provider.api_key_env == "LOCAL_KEY"
    assert (spec.provider.organization, spec.provider.project) == ("org-123", "proj_456")
    assert spec.provider.headers == {"X-Trace": "on"}
    assert spec.params["logit_bias"] == {"50256": -100, "1234": 5}  # YAML int keys -> JSON keys
    assert spec.params["stop"] == "END" and spec.params["n"] == 2
    assert "max_tokens" not in spec.params  # only what the file sets
    assert spec.timeout == 1.5 and spec.deadline == 120.0
    assert spec.retry == RetryConfig(
        5, 0.25, 60.0, 3.0, False, frozenset({"rate_limit", "timeout"}), 30.0
    )
    assert spec.rate == RateConfig(60, 10000, 2)
    assert spec.breaker == BreakerConfig(3, 3600.0)
    assert spec.ledger == LedgerConfig(content=False)
    assert spec.stream and spec.tool_choice == "auto"
    assert spec.output is not None
    assert (spec.output.name, spec.output.repair, spec.output.schema_path) == (
        "city_summary",
        True,
        None,
    )
    assert spec.variables == {"city", "style", "image"}
    assert [t.name for t in spec.tests] == ["paris", "bare"]
    assert spec.tests[0].line == 91 and spec.tests[0].description == "The capital."
    assert spec.tests[0].expect[1] == {"path": "summary", "matches": "Paris"}
    assert spec.position("/messages/1/content/1/image_url/url") == (51, 44)
    assert spec.position("/messages/1/nothing/here") == (48, 5)
    assert len(spec.sha256) == 64


def test_defaults(repo: Path) -> None:
    write_file(
        "prompts/my spec.yaml",
        "model: m\n" + OK + "output: {schema: {type: object, "
        "properties: {a: {type: string}}, required: [a], additionalProperties: false}}\n",
    )
    spec = load_spec("prompts/my spec.yaml")
    assert spec.name == "my spec" and spec.description is None
    assert spec.provider.api_key_env == "OPENAI_API_KEY" and spec.provider.base_url is None
    assert spec.params == {} and spec.inputs is None and spec.tools == ()
    assert spec.tool_choice is None and not spec.stream
    assert spec.timeout == 120.0 and spec.deadline is None
    assert spec.retry == RetryConfig()
    assert spec.retry.on == {
        "rate_limit",
        "server_error",
        "timeout",
        "connection",
        "invalid_output",
    }
    assert spec.rate == RateConfig(None, None, 8)
    assert spec.breaker == BreakerConfig(5, 60.0) and spec.ledger.content
    assert spec.output is not None
    assert (spec.output.strict, spec.output.repair, spec.output.name) == (True, False, "my_spec")


# --- a file's problems, all at once, in file order ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "files", "expected"),
    [
        pytest.param(
            "model: 1\nparams: {temperature: 9}\nmessages:\n  - {role: user, content: '{{ x'}\n"
            "retry: {attempts: 0}\n",
            {},
            [
                "spec.yaml:1:8: model: expected a string, got an integer",
                "spec.yaml:2:23: params.temperature: must be at most 2, got 9",
                "spec.yaml:4:27: template /messages/0/content: syntax error: unexpected end of "
                "template, expected 'end of print statement'.",
                "spec.yaml:5:19: retry.attempts: must be at least 1, got 0",
            ],
            id="every-problem-of-a-file",
        ),
    ],
)
def test_bad_specs(repo: Path, text: str, files: dict[str, str], expected: list[str]) -> None:
    for name, content in files.items():
        write_file(name, content)
    assert spec_problems(text) == expected
    assert not Path("pwned").exists()  # nothing executed


# --- the root that bounds schema paths ------------------------------------------------------------


def test_root_argument_bounds_schema_paths(repo: Path) -> None:
    write_file("schemas/a.json", '{"type": "object"}')
    write_file(
        "prompts/p.yaml", "model: x\n" + OK + "output: {schema: ../schemas/a.json, strict: false}\n"
    )
    assert load_spec("prompts/p.yaml").output is not None  # the git root allows it
    with pytest.raises(SpecError, match="leads outside"):
        load_spec("prompts/p.yaml", root=repo / "prompts")


def test_without_git_the_root_never_depends_on_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert find_root(tmp_path) is None
    write_file("schemas/a.json", '{"type": "object"}')
    write_file(
        "prompts/p.yaml", "model: x\n" + OK + "output: {schema: ../schemas/a.json, strict: false}\n"
    )
    for where in (tmp_path, tmp_path / "prompts"):  # no project marker: the spec's own folder
        monkeypatch.chdir(where)
        with pytest.raises(SpecError, match="leads outside"):
            load_spec(tmp_path / "prompts" / "p.yaml")
    (tmp_path / "pyproject.toml").write_text("")  # a project copied without .git
    for where in (tmp_path, tmp_path / "prompts"):
        monkeypatch.chdir(where)
        assert load_spec(tmp_path / "prompts" / "p.yaml").output is not None
    assert load_spec(tmp_path / "prompts" / "p.yaml", root=tmp_path).output is not None


def test_find_root_walks_up(repo: Path) -> None:
    (repo / "a" / "b").mkdir(parents=True)
    assert find_root(repo / "a" / "b") == repo.resolve()


# --- variables ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], {}),
        (["city=Paris"], {"city": "Paris"}),
        (
            ["n:=3", "ok:=true", "xs:=[1, 2]", 'o:={"a": null}'],
            {"n": 3, "ok": True, "xs": [1, 2], "o": {"a": None}},
        ),
        (["q=a=b", "url=http://x:=y"], {"q": "a=b", "url": "http://x:=y"}),
        (["empty="], {"empty": ""}),
        (["n=1", "n:=2"], {"n": 2}),
        (["n:=2", "n=1"], {"n": "1"}),
    ],
)
def test_parse_var_args(args: list[str], expected: dict[str, Any]) -> None:
    assert parse_var_args(args) == expected


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("city", "--var 'city': expected KEY=VALUE or KEY:=JSON"),
        ("=x", "--var '=x': expected KEY=VALUE or KEY:=JSON"),
        (":=1", "--var ':=1': expected KEY=VALUE or KEY:=JSON"),
        (" a=1", "--var ' a=1': expected KEY=VALUE or KEY:=JSON"),
        (
            "n:=three",
            "--var n: the value after ':=' is not JSON (Expecting value at column 1); "
            "use n=... for a plain string",
        ),
    ],
)
def test_parse_var_args_errors(arg: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_var_args([arg])
    assert str(info.value) == message
    assert info.value.exit_code == 2


def test_load_vars_file() -> None:
    write_file("v.yaml", "city: Paris\nn: 3\n")
    write_file("v.json", '{"city": "Lyon", "tags": ["a"]}')
    assert load_vars_file("v.yaml") == {"city": "Paris", "n": 3}
    assert load_vars_file(Path("v.json")) == {"city": "Lyon", "tags": ["a"]}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("v.txt", "a=1", "--vars-file v.txt: expected a .yaml, .yml or .json file"),
        ("v.json", '{"a": }', "--vars-file v.json:1:7: invalid JSON: Expecting value"),
        ("v.json", "[1]", "--vars-file v.json: must hold a mapping, not a list"),
        (
            "v.yml",
            "- a\n",
            "--vars-file v.yml:1:1: a vars file must be a mapping of keys, not a list",
        ),
        (
            "v.yaml",
            "a: !!python/name:os.system\n",
            "--vars-file v.yaml:1:4: a: tag "
            "!!python/name:os.system is not allowed: a spec holds plain data (strings, numbers, "
            "true/false, null, lists and mappings)",
        ),
        (
            "v.yaml",
            "a: 1\na: 2\n",
            "--vars-file v.yaml:2:1: duplicate key 'a' (first defined on line 1)",
        ),
        ("missing.yaml", None, "--vars-file missing.yaml: cannot read the file: no such file"),
    ],
)
def test_load_vars_file_errors(name: str, text: str | None, message: str) -> None:
    if text is not None:
        write_file(name, text)
    with pytest.raises(ConfigError) as info:
        load_vars_file(name)
    assert str(info.value) == message


# --- many files -----------------------------------------------------------------------------------


def test_check_paths_walks_directories(repo: Path) -> None:
    write_file("prompts/a.yaml", "model: x\n" + OK)
    write_file("prompts/sub/b.yml", "model: 1\n" + OK)
    write_file("prompts/.hidden/c.yaml", "nonsense: [\n")
    write_file("prompts/.d.yaml", "nonsense: [\n")
    write_file("prompts/notes.txt", "not yaml")
    write_file("prompts/runner.yaml", "prices: {m: {input: 1}}\n")
    write_file("one.yaml", "model: x\n")
    (repo / "empty").mkdir()
    problems = check_paths(["prompts", Path("one.yaml"), "nowhere", "empty"])
    assert [str(p) for p in problems] == [
        "prompts/runner.yaml:1:13: prices.m: missing required key 'output'",
        "prompts/sub/b.yml:1:8: model: expected a string, got an integer",
        "one.yaml:1:1: missing required key 'messages'",
        "nowhere: no such file or directory",
        "empty: no spec files (*.yaml, *.yml) here",
    ]
    assert problems[0].to_dict() == {
        "file": "prompts/runner.yaml",
        "line": 1,
        "col": 13,
        "message": "prices.m: missing required key 'output'",
    }


def test_check_paths_many_specs_share_work(repo: Path) -> None:
    write_file(
        "schemas/s.json",
        json.dumps(
            {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "required": ["a"],
                "additionalProperties": False,
            }
        ),
    )
    for i in range(30):
        write_file(
            f"prompts/p{i}.yaml",
            f"model: x\nmessages:\n  - {{role: user, content: "
            f"'{i} {{{{ v }}}}'}}\noutput: {{schema: ../schemas/s.json}}\n",
        )
    assert check_paths(["prompts"]) == []


# --- runner.yaml ----------------------------------------------------------------------------------


def test_load_project_config() -> None:
    write_file(
        "runner.yaml",
        "# yaml-language-server: $schema=schemas/runner-config.schema.json\n"
        "prices:\n  gpt-4o*: {input: 2.5, output: 10, cached_input: 1.25, "
        "context_window: 128000}\n  my-model: {input: 0.15, output: 0.6}\n",
    )
    config = load_project_config("runner.yaml")
    assert config.path == Path("runner.yaml")
    assert config.prices == {
        "gpt-4o*": {
            "input": Decimal("2.5"),
            "output": Decimal("10"),
            "cached_input": Decimal("1.25"),
            "context_window": 128000,
        },
        "my-model": {"input": Decimal("0.15"), "output": Decimal("0.6")},
    }
    assert list(config.prices) == ["gpt-4o*", "my-model"]


def test_empty_project_config() -> None:
    write_file("runner.yaml", "prices: {}\n")
    assert load_project_config("runner.yaml").prices == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "prices: {m: {input: -1, output: 1}}\n",
            ["runner.yaml:1:21: prices.m.input: must be at least 0, got -1"],
        ),
        ("price: {}\n", ["runner.yaml:1:1: unknown key 'price' (did you mean 'prices'?)"]),
        ("temperature: 1\n", ["runner.yaml:1:1: unknown key 'temperature'"]),
        (
            "prices: {m: {input: 1, output: 1, context: 5}}\n",
            ["runner.yaml:1:35: prices.m: unknown key 'context' (did you mean 'context_window'?)"],
        ),
        ("- a\n", ["runner.yaml:1:1: runner.yaml must be a mapping of keys, not a list"]),
    ],
)
def test_project_config_errors(text: str, expected: list[str]) -> None:
    write_file("runner.yaml", text)
    with pytest.raises(SpecError) as info:
        load_project_config("runner.yaml")
    assert [str(p) for p in info.value.problems] == expected


def test_problems_carry_pointers() -> None:
    write_file("spec.yaml", "model: x\nparams: {temperature: 3}\n" + OK)
    with pytest.raises(SpecError) as info:
        load_spec("spec.yaml")
    assert info.value.problems == [
        Problem(
            "spec.yaml",
            2,
            23,
            "params.temperature: must be at most 2, got 3",
            "/params/temperature",
        )
    ]
    assert info.value.path == "spec.yaml" and info.value.pointer == "/params/temperature"


def test_a_spec_built_in_memory_is_checked_as_a_file_is() -> None:
    """spec_from_data (runner probe's specs): the same checks and the same PromptSpec as the
    file would give, named by the path it is given; a problem is a SpecError at its pointer."""
    from runner.spec.load import spec_from_data

    data = {
        "name": "probe.n",
        "model": "gpt-4o-mini",
        "params": {"n": 2, "max_tokens": 16},
        "messages": [{"role": "user", "content": "Say hello."}],
        "output": {"schema": {"type": "object"}, "strict": False, "mode": "json_object"},
    }
    spec = spec_from_data(data, path=Path("runner-probe/n.yaml"))
    assert (spec.name, spec.path, spec.choices) == ("probe.n", Path("runner-probe/n.yaml"), 2)
    assert spec.output is not None and spec.output.mode == "json_object"
    assert spec.render({}) == [{"role": "user", "content": "Say hello."}]
    with pytest.raises(SpecError) as caught:
        spec_from_data({**data, "params": {"n": 0}}, path=Path("runner-probe/n.yaml"))
    assert str(caught.value) == "runner-probe/n.yaml:5:8: params.n: must be at least 1, got 0"
