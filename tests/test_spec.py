"""runner.spec: loading, checking and rendering prompt specs; --var parsing; runner.yaml."""

from __future__ import annotations

import json
import os
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from runner.errors import ConfigError, InputsInvalid, Problem, SpecError, TemplateError
from runner.spec import (
    MAX_NODES,
    BreakerConfig,
    LedgerConfig,
    RateConfig,
    RetryConfig,
    check_paths,
    find_root,
    load_project_config,
    load_spec,
    load_vars_file,
    parse_duration,
    parse_var_args,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "specs"
OK = "messages:\n  - {role: user, content: hi}\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The current directory (tmp_path, from conftest) as a git work tree."""
    (tmp_path / ".git").mkdir()
    return tmp_path


def _write(name: str, text: str | bytes) -> Path:
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _problems(text: str | bytes, name: str = "spec.yaml") -> list[str]:
    _write(name, text)
    with pytest.raises(SpecError) as info:
        load_spec(name)
    assert info.value.exit_code == 2
    return [str(p) for p in info.value.problems]


# --- the examples in prompts/ -----------------------------------------------------------------

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


# --- every field ------------------------------------------------------------------------------


def test_full_spec_builds_every_field() -> None:
    spec = load_spec(DATA / "full.yaml")
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


def test_full_spec_renders_exactly_what_the_api_takes() -> None:
    spec = load_spec(DATA / "full.yaml")
    vars = spec.prepare_vars({"city": "Paris"})
    assert vars == {
        "city": "Paris",
        "style": {"tone": "neutral", "length": 3},  # defaults, also inside a defaulted object
        "image": "https://example.com/a.png",
    }
    assert spec.render(vars) == [
        {
            "role": "developer",
            "name": "setup",
            "content": "You describe cities.\nTone: neutral; length: 3 sentences.\n",
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe Paris."},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://example.com/a.png", "detail": "low"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "population 2.1M"},
    ]


def test_defaults(repo: Path) -> None:
    _write(
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


# --- bad input: each one exit 2, one positioned line per problem ------------------------------


@pytest.mark.parametrize(
    ("text", "files", "expected"),
    [
        pytest.param(
            "model: x\nmessages: [\n",
            {},
            [
                "spec.yaml:3:1: invalid YAML: while parsing a flow node: did not find expected "
                "node content"
            ],
            id="invalid-yaml",
        ),
        pytest.param(
            "model: x\n\tmessages: []\n",
            {},
            [
                "spec.yaml:2:1: invalid YAML: while scanning a plain scalar: found a tab character "
                "that violates indentation"
            ],
            id="tab",
        ),
        pytest.param(
            "model: x\ntemprature: 0.3\n" + OK,
            {},
            ["spec.yaml:2:1: unknown key 'temprature' (did you mean 'params.temperature'?)"],
            id="unknown-key",
        ),
        pytest.param(
            "model: x\nparams: {temprature: 0.3}\n" + OK,
            {},
            ["spec.yaml:2:10: params: unknown key 'temprature' (did you mean 'temperature'?)"],
            id="typo-in-params",
        ),
        pytest.param(
            "model: x\nparams: {response_format: {type: json_object}}\n" + OK,
            {},
            [
                "spec.yaml:2:10: params: 'response_format' is not a parameter: use 'output' "
                "(schema, strict)"
            ],
            id="param-with-a-field-of-its-own",
        ),
        pytest.param(
            "model: [gpt]\nstream: 'yes'\n" + OK,
            {},
            [
                "spec.yaml:1:8: model: expected a string, got a list",
                "spec.yaml:2:9: stream: expected true or false, got a string",
            ],
            id="wrong-type",
        ),
        pytest.param(
            "model: x\nparams: {temperature: 2.5, top_p: 1.5, n: 0, presence_penalty: -3, "
            "top_logprobs: 21, logprobs: true}\n" + OK,
            {},
            [
                "spec.yaml:2:23: params.temperature: must be at most 2, got 2.5",
                "spec.yaml:2:35: params.top_p: must be at most 1, got 1.5",
                "spec.yaml:2:43: params.n: must be at least 1, got 0",
                "spec.yaml:2:64: params.presence_penalty: must be at least -2, got -3",
                "spec.yaml:2:82: params.top_logprobs: must be at most 20, got 21",
            ],
            id="out-of-range",
        ),
        pytest.param(
            "model: x\nparams: {stop: [a, b, c, d, e]}\n" + OK,
            {},
            ["spec.yaml:2:16: params.stop: must have at most 4 items, got 5"],
            id="stop",
        ),
        pytest.param(OK, {}, ["spec.yaml:1:1: missing required key 'model'"], id="no-model"),
        pytest.param(
            "model: x\nmessages: []\n",
            {},
            ["spec.yaml:2:11: messages: must not be empty"],
            id="empty-messages",
        ),
        pytest.param(
            "model: x\nmessages:\n  - {role: robot, content: hi}\n",
            {},
            [
                "spec.yaml:3:12: messages[0].role: 'robot' is not one of: system, developer, user, "
                "assistant, tool, function"
            ],
            id="unknown-role",
        ),
        pytest.param(
            "model: x\nmessages:\n  - role: user\n    content: |\n      Hello\n      {{ name }\n",
            {},
            ["spec.yaml:6:7: template /messages/0/content: syntax error: unexpected '}'"],
            id="template-syntax",
        ),
        pytest.param(
            "model: x\ninputs:\n  type: object\n  properties: {city: {type: string}}\nmessages:\n"
            "  - role: user\n    content: 'About {{ city }} in {{ country }}'\n",
            {},
            [
                "spec.yaml:7:14: template /messages/0/content: variable 'country' is used but not "
                "declared in inputs.properties"
            ],
            id="undeclared-variable",
        ),
        pytest.param(
            "model: x\n" + OK + "output: {schema: schemas/none.json}\n",
            {},
            ["spec.yaml:4:18: output.schema: schemas/none.json does not exist"],
            id="missing-output-schema",
        ),
        pytest.param(
            "model: x\n" + OK + "output: {schema: bad.json, strict: false}\n",
            {"bad.json": '{"type": "object", "properties": {"a": {"type": "strin"}}}'},
            [
                "spec.yaml:4:18: output.schema: bad.json: /properties/a/type: 'strin' is not one "
                "of "
                "['array', 'boolean', 'integer', 'null', 'number', 'object', 'string']"
            ],
            id="invalid-output-schema",
        ),
        pytest.param(
            "model: x\n" + OK + "output: {schema: bad.json}\n",
            {"bad.json": '{\n  "type": "object",\n}\n'},
            [
                "spec.yaml:4:18: output.schema: bad.json: not valid JSON: Expecting property name "
                "enclosed in double quotes (line 3, column 1)"
            ],
            id="output-schema-not-json",
        ),
        pytest.param(
            "model: x\n" + OK + "output: {schema: list.json}\n",
            {"list.json": "[1, 2]"},
            [
                "spec.yaml:4:18: output.schema: list.json: must hold a JSON object (a schema), "
                "not a list"
            ],
            id="output-schema-not-an-object",
        ),
        pytest.param(
            "model: x\n" + OK + "output: {schema: /etc/passwd}\n",
            {},
            [
                "spec.yaml:4:18: output.schema: /etc/passwd is an absolute path; give a path "
                "relative to the spec"
            ],
            id="absolute-output-schema",
        ),
        pytest.param(
            "model: x\n" + OK + "output:\n  schema:\n    type: object\n    properties:\n"
            "      name: {type: string}\n      population: {type: integer}\n"
            "    required: [name]\n",
            {},
            [
                'spec.yaml:6:5: output.schema: /: "required" must list every property; missing: '
                '"population" (make it required, and allow null if it is optional: "type": '
                '["integer", "null"])',
                'spec.yaml:6:5: output.schema: /: add "additionalProperties": false (strict mode '
                "requires it on every object)",
            ],
            id="not-strict-compatible-inline",
        ),
        pytest.param(
            "model: x\n" + OK + "output: {schema: loose.json}\n",
            {
                "loose.json": '{"type": "object", "properties": {"a": {"type": "string"}}, '
                '"required": ["a"]}'
            },
            [
                'spec.yaml:4:18: output.schema: loose.json: /: add "additionalProperties": false '
                "(strict mode requires it on every object)"
            ],
            id="not-strict-compatible-file",
        ),
        pytest.param(
            "model: x\n" + OK + "retry: {attempts: -1}\n",
            {},
            ["spec.yaml:4:19: retry.attempts: must be at least 1, got -1"],
            id="negative-retry",
        ),
        pytest.param(
            "model: x\n" + OK + "rate: {rpm: 0, concurrency: 0}\n",
            {},
            [
                "spec.yaml:4:13: rate.rpm: must be at least 1, got 0",
                "spec.yaml:4:29: rate.concurrency: must be at least 1, got 0",
            ],
            id="rpm-0",
        ),
        pytest.param(
            "model: x\nmessages: []\nmodel: y\n",
            {},
            ["spec.yaml:3:1: duplicate key 'model' (first defined on line 1)"],
            id="duplicate-keys",
        ),
        pytest.param(
            "model: x\n" + OK + "timeout: 5 minutes\nbreaker: {cooldown: -1}\n",
            {},
            [
                "spec.yaml:4:10: timeout: '5 minutes' is not a duration (use e.g. 250ms, 30s, 2m, "
                "1h, or a number of seconds)",
                "spec.yaml:5:21: breaker.cooldown: -1 is not a duration (use e.g. 250ms, 30s, 2m, "
                "1h, or a number of seconds)",
            ],
            id="malformed-duration",
        ),
        pytest.param(
            "model: !!python/object/apply:os.system ['touch pwned']\n" + OK,
            {},
            [
                "spec.yaml:1:8: model: tag !!python/object/apply:os.system is not allowed: a spec "
                "holds plain data (strings, numbers, true/false, null, lists and mappings)"
            ],
            id="python-tag",
        ),
        pytest.param(
            "model: !secret x\n" + OK,
            {},
            [
                "spec.yaml:1:8: model: tag !secret is not allowed: a spec holds plain data "
                "(strings, numbers, true/false, null, lists and mappings)"
            ],
            id="local-tag",
        ),
        pytest.param(
            "model: x\ntools: !!set {a}\n" + OK,
            {},
            [
                "spec.yaml:2:8: tools: tag !!set is not allowed: a spec holds plain data "
                "(strings, numbers, true/false, null, lists and mappings)"
            ],
            id="set-tag",
        ),
        pytest.param("", {}, ["spec.yaml: the file is empty"], id="empty-file"),
        pytest.param("\n  \n\t\n", {}, ["spec.yaml: the file is empty"], id="whitespace"),
        pytest.param(
            "# a comment\n",
            {},
            ["spec.yaml: the file has no YAML content (only comments)"],
            id="comments-only",
        ),
        pytest.param(
            "- model: x\n",
            {},
            ["spec.yaml:1:1: a spec must be a mapping of keys, not a list"],
            id="list",
        ),
        pytest.param(
            "just text\n",
            {},
            ["spec.yaml:1:1: a spec must be a mapping of keys, not a single value"],
            id="scalar",
        ),
        pytest.param(
            "model: x\n" + OK + "---\nmodel: y\n",
            {},
            ["spec.yaml:4:1: a spec is one YAML document; remove the second one (after '---')"],
            id="two-documents",
        ),
        pytest.param(
            'model: x\nmessages:\n  - {role: user, content: "{{ ().__class__.__base__'
            '.__subclasses__() }}"}\n',
            {},
            [
                "spec.yaml:3:27: template /messages/0/content: access to '__class__', '__base__' "
                "and '__subclasses__' is not allowed (names starting with '_' are private)"
            ],
            id="template-internals",
        ),
        pytest.param(
            "base: &b {model: x}\n<<: *b\n" + OK,
            {},
            ["spec.yaml:2:1: merge keys ('<<') are not supported; write the keys out"],
            id="merge-key",
        ),
        pytest.param(
            "model: x\n" + OK + "tools: &t [*t]\n",
            {},
            ["spec.yaml:4:8: tools[0]: a YAML alias that contains itself"],
            id="recursive-alias",
        ),
        pytest.param(
            "? [a, b]\n: 1\nmodel: x\n" + OK,
            {},
            ["spec.yaml:1:3: a mapping key must be a plain value"],
            id="complex-key",
        ),
        pytest.param(
            "model: x\n" + OK + "retry: {attempts: !!int three}\n",
            {},
            ["spec.yaml:4:19: retry.attempts: 'three' is not a valid !!int"],
            id="bad-int",
        ),
        pytest.param(
            "model: x\x07\n" + OK,
            {},
            [
                "spec.yaml:1:9: invalid YAML: character #x0007 is not allowed (control characters "
                "are not allowed)"
            ],
            id="control-character",
        ),
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
        _write(name, content)
    assert _problems(text) == expected
    assert not Path("pwned").exists()  # nothing executed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "model: x\nmodle: y\nparams: {max_tokens: 5, max_completion_tokens: 5, "
            "top_logprobs: 3, parallel_tool_calls: true, stream: true}\n" + OK,
            [
                "spec.yaml:2:1: unknown key 'modle' (did you mean 'model'?)",
                "spec.yaml:3:25: params: set max_tokens or max_completion_tokens, not both",
                "spec.yaml:3:51: params: top_logprobs needs logprobs: true",
                "spec.yaml:3:68: params: parallel_tool_calls needs tools",
                "spec.yaml:3:95: params: 'stream' is not a parameter: use the top-level 'stream'",
            ],
            id="params",
        ),
        pytest.param(
            "model: x\nprovider: {headers: {Authorization: Bearer sk-x}, api_key_env: 1KEY}\n" + OK,
            [
                "spec.yaml:2:22: provider.headers: 'Authorization' would put a secret in the spec; "
                "name the environment variable that holds the key in provider.api_key_env instead",
                "spec.yaml:2:64: provider.api_key_env: '1KEY' does not match the pattern "
                "^[A-Za-z_][A-Za-z0-9_]*$",
            ],
            id="provider",
        ),
        pytest.param(
            "model: x\n" + OK + "timeout: 0\ndeadline: 0s\nretry: {backoff: {initial: 10s, "
            "max: 1s}, on: [timeout, timeout, nope]}\n",
            [
                "spec.yaml:4:10: timeout must be longer than 0",
                "spec.yaml:5:11: deadline must be longer than 0",
                "spec.yaml:6:38: retry.backoff: max (1s) is shorter than initial (10s)",
                "spec.yaml:6:47: retry.on: must not repeat items",
                "spec.yaml:6:66: retry.on[2]: 'nope' is not one of: rate_limit, server_error, "
                "timeout, connection, invalid_output",
            ],
            id="policy",
        ),
        pytest.param(
            "model: x\nmessages:\n"
            "  - {role: system, content: null}\n"
            "  - {role: user, content: [{type: text, text: hi, image_url: {url: x}}, "
            "{type: refusal, refusal: no}]}\n"
            "  - {role: assistant}\n"
            "  - {role: tool, content: ok, tool_call_id: call_9, name: f}\n"
            "  - {role: user, content: 5, tool_call_id: x}\n"
            "  - {role: function, content: [{type: text, text: a}], name: f}\n"
            "  - {role: user, content: hi, name: 'bad name'}\n"
            "  - {role: tool, content: ok}\n"
            "  - {role: user, content: [{type: image_url}]}\n",
            [
                "spec.yaml:3:29: messages[0]: content must not be null",
                "spec.yaml:4:51: messages[1].content[0]: 'image_url' does not belong in a part of "
                "type 'text'",
                "spec.yaml:4:80: messages[1].content[1]: a user message cannot have a 'refusal' "
                "part (allowed: text, image_url, input_audio, file)",
                "spec.yaml:5:5: messages[2]: an assistant message needs content or tool_calls",
                "spec.yaml:6:45: messages[3]: tool_call_id 'call_9' answers no tool call of an "
                "earlier assistant message",
                "spec.yaml:6:53: messages[3]: tool messages have no 'name'",
                "spec.yaml:7:27: messages[4].content: expected a string, a list or null, got an "
                "integer",
                "spec.yaml:7:30: messages[4]: 'tool_call_id' is only allowed on tool messages",
                "spec.yaml:8:31: messages[5]: content must be a string",
                "spec.yaml:9:37: messages[6].name: 'bad name' does not match the pattern "
                "^[a-zA-Z0-9_-]{1,64}$",
                "spec.yaml:10:5: messages[7]: missing required key 'tool_call_id'",
                "spec.yaml:11:28: messages[8].content[0]: missing required key 'image_url'",
            ],
            id="messages",
        ),
        pytest.param(
            "model: x\n" + OK + "tools:\n"
            "  - {type: function, function: {name: get_weather, strict: true, parameters: "
            "{type: object, properties: {a: {type: string}}}}}\n"
            "  - {type: function, function: {name: get_weather, parameters: {type: array}}}\n"
            "  - {type: function, function: {name: 'bad name'}}\n"
            "  - {type: custom}\n"
            "tool_choice: {type: function, function: {name: get_wether}}\n",
            [
                'spec.yaml:5:78: tools[0].function.parameters: /: "required" must list every '
                'property; missing: "a" (make it required, and allow null if it is optional: '
                '"type": ["string", "null"])',
                'spec.yaml:5:78: tools[0].function.parameters: /: add "additionalProperties": '
                "false "
                "(strict mode requires it on every object)",
                "spec.yaml:6:39: tools[1]: a second tool named 'get_weather'",
                "spec.yaml:6:71: tools[1].function.parameters: must be an object schema "
                '("type": "object")',
                "spec.yaml:7:39: tools[2].function.name: 'bad name' does not match the pattern "
                "^[a-zA-Z0-9_-]{1,64}$",
                "spec.yaml:8:5: tools[3]: missing required key 'custom'",
                "spec.yaml:9:48: tool_choice: no function tool named 'get_wether' in tools (did "
                "you "
                "mean 'get_weather'?)",
            ],
            id="tools",
        ),
        pytest.param(
            "model: x\n" + OK + "tool_choice: auto\n",
            ["spec.yaml:4:1: tool_choice needs tools"],
            id="tool-choice-without-tools",
        ),
        pytest.param(
            "model: x\n" + OK + "tool_choice: sometimes\n",
            [
                "spec.yaml:4:1: tool_choice needs tools",
                "spec.yaml:4:14: tool_choice: 'sometimes' is not one of: none, auto, required",
            ],
            id="tool-choice-value",
        ),
        pytest.param(
            "model: x\ninputs:\n  type: object\n  properties: {n: {type: integer, minimum: 1}}\n"
            "  required: [n]\nmessages:\n  - {role: user, content: '{{ n }}'}\n"
            "tests:\n"
            "  - {name: a, vars: {n: 0}}\n"
            "  - {name: b, vars: {}}\n"
            "  - {name: a, vars: {n: 1}, expect: [{path: x}, {equals: 1}, {max_tokens: 1, "
            "text_contains: x}, {schema_valid: true}, {path: x, matches: '(['}]}\n",
            [
                "spec.yaml:9:25: test 'a': the vars do not match inputs: /n: must be at least 1, "
                "got 0",
                "spec.yaml:10:21: test 'b': the vars do not match inputs: /: missing required key "
                "'n'",
                "spec.yaml:11:12: tests[2]: a second test named 'a' (the first is tests[0])",
                "spec.yaml:11:38: tests[2].expect[0]: an assertion with 'path' needs exactly one "
                "of equals, min_items, max_items, contains, matches, one_of",
                "spec.yaml:11:49: tests[2].expect[1]: 'equals' needs a 'path' to check",
                "spec.yaml:11:62: tests[2].expect[2]: an assertion checks one thing: one of "
                "schema_valid, text_contains, max_cost_usd, max_tokens, max_latency_ms",
                "spec.yaml:11:112: tests[2].expect[3]: schema_valid needs an output schema",
                "spec.yaml:11:138: tests[2].expect[4].matches: '([' is not a valid regex",
            ],
            id="tests",
        ),
        pytest.param(
            "model: x\nmessages:\n  - {role: user, content: '{{ city }}'}\n"
            "tests:\n  - {name: a}\n  - {name: b, vars: {city: X}}\n",
            ["spec.yaml:5:5: test 'a': no value for 'city' (used by the templates)"],
            id="tests-without-inputs",
        ),
        pytest.param(
            "model: x\ninputs: {type: array}\n" + OK,
            [
                "spec.yaml:2:16: inputs: the variables are named, so inputs must be an object "
                'schema ("type": "object")'
            ],
            id="inputs-not-an-object",
        ),
        pytest.param(
            "model: x\ninputs: {type: object, properties: {a: {type: text}}}\n" + OK,
            [
                "spec.yaml:2:47: inputs: /properties/a/type: 'text' is not one of ['array', "
                "'boolean', 'integer', 'null', 'number', 'object', 'string']"
            ],
            id="inputs-not-a-schema",
        ),
        pytest.param(
            "model: x\n" + OK + "output: {schema: {type: object, properties: {a: {type: array}},"
            " required: [a], additionalProperties: false}, name: 'no spaces'}\n",
            [
                'spec.yaml:4:49: output.schema: /properties/a: add "items" (strict mode needs the '
                "item schema of every array)",
                "spec.yaml:4:116: output.name: 'no spaces' does not match the pattern "
                "^[a-zA-Z0-9_-]{1,64}$",
            ],
            id="output-inline",
        ),
    ],
)
def test_semantic_checks(text: str, expected: list[str]) -> None:
    assert _problems(text) == expected


@pytest.mark.parametrize("levels", [70, 100_000])
def test_deeply_nested_output_schema_files(repo: Path, levels: int) -> None:
    _write("deep.json", '{"items": ' * levels + "{}" + "}" * levels)
    assert _problems("model: x\n" + OK + "output: {schema: deep.json}\n") == [
        "spec.yaml:4:18: output.schema: deep.json: nested more than 64 levels deep"
    ]


def test_output_schema_outside_the_repository(tmp_path: Path) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    _write("outside.json", '{"type": "object"}')
    os.chdir(tmp_path / "repo")
    problems = _problems("model: x\n" + OK + "output: {schema: ../outside.json}\n")
    assert problems == [
        f"spec.yaml:4:18: output.schema: ../outside.json leads outside the repository "
        f"({(tmp_path / 'repo').resolve()}); keep schemas inside it"
    ]


def test_output_schema_symlink_leading_outside(tmp_path: Path) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    _write("secret.json", '{"type": "object"}')
    (tmp_path / "repo" / "link.json").symlink_to(tmp_path / "secret.json")
    os.chdir(tmp_path / "repo")
    [problem] = _problems("model: x\n" + OK + "output: {schema: link.json, strict: false}\n")
    assert "output.schema: link.json leads outside the repository" in problem


def test_root_argument_bounds_schema_paths(repo: Path) -> None:
    _write("schemas/a.json", '{"type": "object"}')
    _write(
        "prompts/p.yaml", "model: x\n" + OK + "output: {schema: ../schemas/a.json, strict: false}\n"
    )
    assert load_spec("prompts/p.yaml").output is not None  # the git root allows it
    with pytest.raises(SpecError, match="leads outside the repository"):
        load_spec("prompts/p.yaml", root=repo / "prompts")


def test_without_git_the_spec_directory_is_the_root(tmp_path: Path) -> None:
    assert find_root(tmp_path) is None
    _write("schemas/a.json", '{"type": "object"}')
    _write(
        "prompts/p.yaml", "model: x\n" + OK + "output: {schema: ../schemas/a.json, strict: false}\n"
    )
    with pytest.raises(SpecError, match="leads outside the repository"):
        load_spec("prompts/p.yaml")
    assert load_spec("prompts/p.yaml", root=tmp_path).output is not None


def test_find_root_walks_up(repo: Path) -> None:
    (repo / "a" / "b").mkdir(parents=True)
    assert find_root(repo / "a" / "b") == repo.resolve()


def test_binary_file() -> None:
    assert _problems(b"\x89PNG\r\n\x1a\n\x00\x00") == [
        "spec.yaml: a binary file, not a YAML text file"
    ]


def test_invalid_utf8_names_the_byte_and_its_place() -> None:
    assert _problems(b"model: x\nname: caf\xe9\n") == [
        "spec.yaml:2:10: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    ]


def test_a_bom_is_fine() -> None:
    _write("spec.yaml", "\ufeffmodel: x\n" + OK)
    assert load_spec("spec.yaml").model == "x"


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    started = time.perf_counter()
    problems = _problems("\n".join(lines) + "\n")
    elapsed = time.perf_counter() - started
    assert problems == [
        f"spec.yaml:6:1: YAML aliases expand to more than {MAX_NODES} nodes (a 'billion "
        "laughs' document?); refusing to read further"
    ]
    assert elapsed < 5  # a guard against hanging, not a benchmark: it takes ~50 ms


def test_deep_nesting_is_refused() -> None:
    [problem] = _problems("model: x\n" + OK + "tests: " + "[" * 70 + "]" * 70 + "\n")
    assert problem.endswith("nested more than 64 levels deep")


def test_big_files_are_refused() -> None:
    assert _problems(b"# " + b"x" * (4 * 1024 * 1024) + b"\n") == [
        "spec.yaml: larger than 4 MB: not a prompt spec?"
    ]


def test_a_directory_is_not_a_spec(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").mkdir()
    with pytest.raises(SpecError) as info:
        load_spec("d.yaml")
    assert [str(p) for p in info.value.problems] == [
        "d.yaml: cannot read the file: it is a directory"
    ]


# --- YAML values are JSON values (YAML 1.2 core rules) ----------------------------------------


def test_plain_scalars_follow_yaml_1_2() -> None:
    _write(
        "spec.yaml",
        "model: x\n" + OK + "tests:\n  - name: t\n    vars:\n"
        "      country: NO\n      answer: yes\n      day: 2024-01-01\n      time: 1:20\n"
        "      octal: 0o17\n      hex: 0x1F\n      exp: 1e3\n      inf: .inf\n      nan: .nan\n"
        "      tilde: ~\n      empty:\n      quoted: '12'\n      str: !!str 12\n"
        "      int: !!int '7'\n      true: True\n      float: -1.5\n",
    )
    vars = dict(load_spec("spec.yaml").tests[0].vars)
    assert vars == {
        "country": "NO",
        "answer": "yes",
        "day": "2024-01-01",
        "time": "1:20",
        "octal": 15,
        "hex": 31,
        "exp": 1000.0,
        "inf": ".inf",
        "nan": ".nan",
        "tilde": None,
        "empty": None,
        "quoted": "12",
        "str": "12",
        "int": 7,
        "true": True,
        "float": -1.5,
    }


def test_aliases_are_expanded() -> None:
    _write("spec.yaml", "model: x\nmessages:\n  - &m {role: user, content: hi}\n  - *m\n")
    spec = load_spec("spec.yaml")
    assert [m.render({}) for m in spec.messages] == [{"role": "user", "content": "hi"}] * 2


# --- templates at their place in the file -----------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "content: '{{ a }} {{ b.c }}'",
            "spec.yaml:4:14: template /messages/0/content: "
            "undefined value: 'dict object' has no attribute 'c'",
        ),
        (
            "content: |\n      one\n      two {{ b.c }}",
            "spec.yaml:6:7: template "
            "/messages/0/content: undefined value: 'dict object' has no attribute 'c'",
        ),
        (
            "content: >-\n      one\n      {{ a }}\n\n      {{ b.c }}",
            "spec.yaml:8:7: template "
            "/messages/0/content: undefined value: 'dict object' has no attribute 'c'",
        ),
        (
            'content: "one\\n{{ b.c }}"',
            "spec.yaml:4:14: template /messages/0/content: "
            "undefined value: 'dict object' has no attribute 'c'",
        ),
    ],
)
def test_render_errors_point_into_the_file(content: str, expected: str) -> None:
    _write("spec.yaml", f"model: x\nmessages:\n  - role: user\n    {content}\n")
    spec = load_spec("spec.yaml")
    with pytest.raises(TemplateError) as info:
        spec.render({"a": 1, "b": {}})
    assert str(info.value) == expected
    assert info.value.template == "/messages/0/content"


def test_render_names_undefined_variables() -> None:
    _write("spec.yaml", "model: x\nmessages:\n  - {role: user, content: '{{ city }}'}\n")
    spec = load_spec("spec.yaml")
    with pytest.raises(TemplateError) as info:
        spec.render({})
    assert info.value.names == ["city"]
    assert (
        str(info.value) == "spec.yaml:3:27: template /messages/0/content: undefined variable 'city'"
    )


def test_variable_values_are_never_rendered() -> None:
    _write("spec.yaml", "model: x\nmessages:\n  - {role: user, content: 'Q: {{ q }}'}\n")
    spec = load_spec("spec.yaml")
    payload = "{{ ().__class__.__base__.__subclasses__() }}"
    assert spec.render({"q": payload}) == [{"role": "user", "content": f"Q: {payload}"}]


# --- variables --------------------------------------------------------------------------------


def _inputs_spec() -> Any:
    _write(
        "spec.yaml",
        "model: x\ninputs:\n  type: object\n  properties:\n    city: {type: string, minLength: 1}\n"
        "    opts:\n      type: object\n      properties: {n: {type: integer, default: 2}}\n"
        "  required: [city]\n  additionalProperties: false\n"
        "messages:\n  - {role: user, content: '{{ city }}{{ opts }}'}\n",
    )
    return load_spec("spec.yaml")


def test_prepare_vars_applies_defaults_into_present_objects() -> None:
    spec = _inputs_spec()
    given = {"city": "Paris", "opts": {}}
    assert spec.prepare_vars(given) == {"city": "Paris", "opts": {"n": 2}}
    assert given == {"city": "Paris", "opts": {}}  # the caller's mapping is left alone
    assert spec.prepare_vars({"city": "Paris"}) == {"city": "Paris"}


def test_prepare_vars_reports_every_error() -> None:
    spec = _inputs_spec()
    with pytest.raises(InputsInvalid) as info:
        spec.prepare_vars({"city": "", "opts": {"n": "2"}, "extra": 1})
    assert info.value.errors == [
        "/city: must not be empty",
        "/extra: unknown key 'extra'",
        "/opts/n: expected an integer, got a string",
    ]
    assert str(info.value) == (
        "spec.yaml: the variables do not match the spec:\n  /city: must not be empty\n"
        "  /extra: unknown key 'extra'\n  /opts/n: expected an integer, got a string"
    )
    assert info.value.exit_code == 2


def test_without_inputs_every_template_variable_is_required() -> None:
    _write("spec.yaml", "model: x\nmessages:\n  - {role: user, content: '{{ b }}{{ a }}'}\n")
    spec = load_spec("spec.yaml")
    assert spec.prepare_vars({"a": 1, "b": [2], "c": 3}) == {"a": 1, "b": [2], "c": 3}
    with pytest.raises(InputsInvalid) as info:
        spec.prepare_vars({"b": 1})
    assert info.value.errors == ["/: missing variable 'a' (used by the templates)"]


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
    _write("v.yaml", "city: Paris\nn: 3\n")
    _write("v.json", '{"city": "Lyon", "tags": ["a"]}')
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
        _write(name, text)
    with pytest.raises(ConfigError) as info:
        load_vars_file(name)
    assert str(info.value) == message


# --- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("250ms", 0.25),
        ("30s", 30.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1.5s", 1.5),
        (7, 7.0),
        (0.5, 0.5),
    ],
)
def test_parse_duration(value: str | float, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["5 minutes", "1d", "s", "-1s", "1.s", True])
def test_parse_duration_refuses(value: Any) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(value)


# --- many files -------------------------------------------------------------------------------


def test_check_paths_walks_directories(repo: Path) -> None:
    _write("prompts/a.yaml", "model: x\n" + OK)
    _write("prompts/sub/b.yml", "model: 1\n" + OK)
    _write("prompts/.hidden/c.yaml", "nonsense: [\n")
    _write("prompts/.d.yaml", "nonsense: [\n")
    _write("prompts/notes.txt", "not yaml")
    _write("prompts/runner.yaml", "prices: {m: {input: 1}}\n")
    _write("one.yaml", "model: x\n")
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
    _write(
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
        _write(
            f"prompts/p{i}.yaml",
            f"model: x\nmessages:\n  - {{role: user, content: "
            f"'{i} {{{{ v }}}}'}}\noutput: {{schema: ../schemas/s.json}}\n",
        )
    assert check_paths(["prompts"]) == []


# --- runner.yaml ------------------------------------------------------------------------------


def test_load_project_config() -> None:
    _write(
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
    _write("runner.yaml", "prices: {}\n")
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
    _write("runner.yaml", text)
    with pytest.raises(SpecError) as info:
        load_project_config("runner.yaml")
    assert [str(p) for p in info.value.problems] == expected


def test_problems_carry_pointers() -> None:
    _write("spec.yaml", "model: x\nparams: {temperature: 3}\n" + OK)
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
