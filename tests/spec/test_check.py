"""runner.spec.check: the spec schema (with hints for people who edit YAML) and the checks
beyond it: parameters, provider, policy, inputs, templates, messages and tools."""

from __future__ import annotations

from pathlib import Path

import pytest
from _spec_helpers import OK, spec_problems, write_file

# --- bad input: each one exit 2, one positioned line per problem ----------------------------------


@pytest.mark.parametrize(
    ("text", "files", "expected"),
    [
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
            'model: x\nmessages:\n  - {role: user, content: "{{ ().__class__.__base__'
            '.__subclasses__() }}"}\n',
            {},
            [
                "spec.yaml:3:27: template /messages/0/content: access to '__class__', '__base__' "
                "and '__subclasses__' is not allowed (names starting with '_' are private)"
            ],
            id="template-internals",
        ),
    ],
)
def test_bad_specs(repo: Path, text: str, files: dict[str, str], expected: list[str]) -> None:
    for name, content in files.items():
        write_file(name, content)
    assert spec_problems(text) == expected
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
    ],
)
def test_semantic_checks(text: str, expected: list[str]) -> None:
    assert spec_problems(text) == expected
