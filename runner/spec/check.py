"""The checks of a prompt spec beyond YAML: the spec's JSON Schema (with hints for people who
edit YAML), then parameters, provider, policy, inputs, templates, messages and tools; the
output schema and the tests are checked by runner.spec.output and runner.spec.testcases.

It reports every problem into the spec's `Doc` and builds nothing: runner.spec.load turns a clean
result into a PromptSpec. It reads no file itself and never imports yaml or jsonschema.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import Problem, TemplateError
from runner.redact import URL_CREDENTIALS_REFUSED, secrets_of_url
from runner.schema.strict import strict_mode_issues
from runner.schema.validator import (
    SchemaValidator,
    check_schema,
    compile_validator,
    packaged_schema,
)
from runner.schema.wording import at_location, json_pointer, path_label, pointer_path
from runner.spec.model import OutputConfig, RetryConfig, TestCase, Variant, duration_or
from runner.spec.output import check_output
from runner.spec.params import API_NAMES, CHAT_ONLY, NOT_PARAMS, RESPONSES_ONLY, partner
from runner.spec.templates import Template, compile_template
from runner.spec.testcases import check_tests
from runner.spec.yamldoc import Doc, as_dict, as_list

__all__ = ["SPEC_SCHEMA", "CheckedSpec", "check_spec", "schema_problems"]

SPEC_SCHEMA = "prompt-spec.schema.json"
_HINTS = {"duration": "use e.g. 250ms, 30s, 2m, 1h, or a number of seconds"}
_SECRET_HEADERS = {"authorization", "api-key", "x-api-key", "proxy-authorization", "cookie"}


@dataclass(frozen=True)
class CheckedSpec:
    """What the checks found that a PromptSpec is built from: the compiled templates by JSON
    pointer, the resolved output schema and the test cases."""

    templates: Mapping[str, Template]
    output: OutputConfig | None
    tests: tuple[TestCase, ...]


def check_spec(doc: Doc, path: Path, root: Path) -> CheckedSpec:
    """Check a parsed spec; every problem lands in `doc.problems`. `root` bounds where an
    output schema path may lead."""
    return _Checker(doc, path, root).run()


def _gives_schema(spec: Mapping[str, Any]) -> bool:
    output = spec.get("output")
    return isinstance(output, dict) and isinstance(output.get("schema"), str | dict)


@functools.cache
def _spec_validator() -> SchemaValidator:
    return compile_validator(packaged_schema(SPEC_SCHEMA))


@functools.cache
def _param_names() -> list[str]:
    return list(packaged_schema(SPEC_SCHEMA)["properties"]["params"]["properties"])


def schema_problems(doc: Doc, validator: SchemaValidator, *, spec: bool = True) -> None:
    """Report the document's schema violations; `spec` adds hints that only fit prompt specs."""
    for issue in validator.explain(doc.value, hints=_HINTS):
        if issue.validator in ("additionalProperties", "propertyNames"):
            parent, key = issue.path[:-1], issue.path[-1]
            message = issue.message
            if spec and issue.validator == "additionalProperties" and parent == ("params",):
                advice = NOT_PARAMS.get(str(key))
                if advice:
                    message = f"'{key}' is not a parameter: {advice}"
            elif spec and issue.validator == "additionalProperties" and not parent:
                close = difflib.get_close_matches(str(key), _param_names(), n=1, cutoff=0.75)
                if close and "(" not in message:
                    message += f" (did you mean 'params.{close[0]}'?)"
            label = path_label(parent)
            doc.problem(issue.pointer, f"{label}: {message}" if label else message, key=True)
        else:
            label = path_label(issue.path)
            doc.problem(issue.pointer, f"{label}: {issue.message}" if label else issue.message)


_ONLY_ON = {
    "tool_calls": "assistant",
    "function_call": "assistant",
    "refusal": "assistant",
    "tool_call_id": "tool",
}
_PART_TYPES = {
    "system": ("text",),
    "developer": ("text",),
    "user": ("text", "image_url", "input_audio", "file"),
    "assistant": ("text", "refusal"),
    "tool": ("text",),
    "function": (),
}
_PART_KEYS = ("text", "image_url", "input_audio", "file", "refusal")
# Message fields a Responses API input item cannot carry, and what to write instead.
_NOT_ON_RESPONSES = {
    "name": "remove it, or use provider.api: chat",
    "function_call": "write it as tool_calls",
    "refusal": "write it as a content part {type: refusal, refusal: ...}",
}


class _Checker:
    """The checks beyond the JSON Schema. Every check reads the document defensively: the
    schema check has reported wrong shapes already."""

    def __init__(self, doc: Doc, path: Path, root: Path) -> None:
        self.doc = doc
        self.path = path
        self.root = root
        self.spec: dict[str, Any] = doc.value
        self.templates: dict[str, Template] = {}
        self.inputs_ok = False

    def run(self) -> CheckedSpec:
        schema_problems(self.doc, _spec_validator())
        self.check_params()
        self.check_provider()
        self.check_inputs()
        self.compile_messages()
        self.check_messages()
        self.check_undeclared()
        output = check_output(self.doc, self.spec, self.path, self.root)
        self.check_tools()
        self.check_policy()
        tests = check_tests(
            self.doc,
            self.spec,
            self.templates,
            inputs_ok=self.inputs_ok,
            # A schema that is given but refused is reported once, at output.schema: not
            # again at every schema_valid expectation.
            has_output=output is not None or _gives_schema(self.spec),
            path=self.path,
            root=self.root,
        )
        return CheckedSpec(self.templates, output, tests)

    # -- parameters, provider, policy ----------------------------------------------------------

    def check_params(self) -> None:
        params = as_dict(self.spec.get("params"))
        self.check_param_set(params, params, "/params", "params")
        names: dict[str, int] = {}
        for i, variant in enumerate(as_list(self.spec.get("variants"))):
            variant = as_dict(variant)
            own = as_dict(variant.get("params"))
            # A variant's params as they are sent: merged over the spec's.
            self.check_param_set(
                {**params, **own}, own, f"/variants/{i}/params", f"variants[{i}].params"
            )
            model = variant.get("model")
            name = variant.get("name")
            if not isinstance(name, str):
                name = Variant.named(model if isinstance(model, str) else None, own).name
            if name in names:
                self.doc.problem(
                    f"/variants/{i}",
                    f"variants[{i}]: a second variant named '{name}' (variants[{names[name]}] "
                    "has that name); give one a `name`",
                )
            names.setdefault(name, i)

    def check_param_set(
        self, params: dict[str, Any], own: dict[str, Any], at: str, label: str
    ) -> None:
        """The params sent (`params`), whose problems are reported where `own` sets them."""
        api = as_dict(self.spec.get("provider")).get("api", "chat")
        other_only = CHAT_ONLY if api == "responses" else RESPONSES_ONLY
        for name, instead in other_only.items():
            if name in own:
                other = "responses" if api == "chat" else "chat"
                self.doc.problem(
                    f"{at}/{name}",
                    f"{label}: {name} is a {API_NAMES[other]} parameter; with provider.api: "
                    f"{api} ({API_NAMES.get(api, api)}), {instead}",
                    key=True,
                )
        if api == "responses":
            return
        pairs = (
            ("max_completion_tokens", "max_tokens" in params and "max_completion_tokens" in params),
            ("top_logprobs", "top_logprobs" in params and params.get("logprobs") is not True),
            ("parallel_tool_calls", "parallel_tool_calls" in params and not self.spec.get("tools")),
        )
        words = {
            "max_completion_tokens": "set max_tokens or max_completion_tokens, not both",
            "top_logprobs": "top_logprobs needs logprobs: true",
            "parallel_tool_calls": "parallel_tool_calls needs tools",
        }
        for name, wrong in pairs:
            if wrong and (own is params or name in own or partner(name) in own):
                where = name if name in own or own is params else partner(name)
                self.doc.problem(f"{at}/{where}", f"{label}: {words[name]}", key=True)

    def check_provider(self) -> None:
        base_url = as_dict(self.spec.get("provider")).get("base_url")
        if isinstance(base_url, str) and secrets_of_url(base_url):
            self.doc.problem("/provider/base_url", f"provider.base_url: {URL_CREDENTIALS_REFUSED}")
        headers = as_dict(as_dict(self.spec.get("provider")).get("headers"))
        for name in headers:
            if str(name).lower() in _SECRET_HEADERS:
                self.doc.problem(
                    json_pointer(("provider", "headers", name)),
                    f"provider.headers: '{name}' would put a secret in the spec; name the "
                    "environment variable that holds the key in provider.api_key_env instead",
                    key=True,
                )

    def check_policy(self) -> None:
        for key in ("timeout", "deadline"):
            if key in self.spec and duration_or(self.spec[key], None) == 0:
                self.doc.problem(f"/{key}", f"{key} must be longer than 0")
        backoff = as_dict(as_dict(self.spec.get("retry")).get("backoff"))
        low = duration_or(backoff.get("initial"), RetryConfig.initial)
        high = duration_or(backoff.get("max"), RetryConfig.max)
        if low is not None and high is not None and high < low:
            where = "/retry/backoff/max" if "max" in backoff else "/retry/backoff/initial"
            self.doc.problem(
                where, f"retry.backoff: max ({high:g}s) is shorter than initial ({low:g}s)"
            )

    # -- inputs and templates ------------------------------------------------------------------

    def check_inputs(self) -> None:
        inputs = self.spec.get("inputs")
        if not isinstance(inputs, dict):
            return
        issues = check_schema(inputs)
        for issue in issues:
            self.doc.problem("/inputs" + issue.pointer, f"inputs: {issue}")
        kind = inputs.get("type")
        if kind is not None and kind != "object":
            self.doc.problem(
                "/inputs/type",
                "inputs: the variables are named, so inputs must be an object schema "
                '("type": "object")',
            )
        self.inputs_ok = not issues and kind in (None, "object")

    def compile_messages(self) -> None:
        for i, message in enumerate(as_list(self.spec.get("messages"))):
            if not isinstance(message, dict):
                continue
            content = message.get("content")
            if isinstance(content, str):
                self.compile(f"/messages/{i}/content", content)
            for j, part in enumerate(as_list(content)):
                part = as_dict(part)
                if isinstance(part.get("text"), str):
                    self.compile(f"/messages/{i}/content/{j}/text", part["text"])
                url = as_dict(part.get("image_url")).get("url")
                if isinstance(url, str):
                    self.compile(f"/messages/{i}/content/{j}/image_url/url", url)

    def compile(self, pointer: str, source: str) -> None:
        try:
            self.templates[pointer] = compile_template(
                source, origin=pointer, file=self.doc.file, locate=self.doc.locator(pointer)
            )
        except TemplateError as exc:
            self.doc.problems.extend(exc.problems)

    def check_undeclared(self) -> None:
        inputs = self.spec.get("inputs")
        if not isinstance(inputs, dict) or not self.inputs_ok:
            return
        declared = set(as_dict(inputs.get("properties")))
        for pointer, template in self.templates.items():
            for name in sorted(template.variables - declared):
                line, col = template.position(template.line_of(name))
                message = (
                    f"template {pointer}: variable '{name}' is used but not declared in "
                    "inputs.properties"
                )
                self.doc.problems.append(Problem(self.doc.file, line, col, message, pointer))

    # -- messages -------------------------------------------------------------------------------

    def check_messages(self) -> None:
        call_ids: set[str] = set()
        responses = as_dict(self.spec.get("provider")).get("api") == "responses"
        for i, message in enumerate(as_list(self.spec.get("messages"))):
            role = message.get("role") if isinstance(message, dict) else None
            if not isinstance(role, str) or role not in _PART_TYPES:  # a list cannot be looked up
                continue
            at = f"/messages/{i}"
            if responses:
                self.check_responses_message(at, message)
            for key, only in _ONLY_ON.items():
                if key in message and role != only:
                    self.doc.problem(
                        f"{at}/{key}",
                        f"{at_location(at, '')}'{key}' is only allowed on {only} messages",
                        key=True,
                    )
            if role == "tool" and "name" in message:
                self.doc.problem(
                    f"{at}/name", f"{at_location(at, '')}tool messages have no 'name'", key=True
                )
            self.check_content(at, role, message)
            for call in as_list(message.get("tool_calls")):
                if isinstance(as_dict(call).get("id"), str):
                    call_ids.add(call["id"])
            answered = message.get("tool_call_id")
            if role == "tool" and isinstance(answered, str) and answered not in call_ids:
                self.doc.problem(
                    f"{at}/tool_call_id",
                    f"{at_location(at, '')}tool_call_id '{answered}' answers no tool call of an "
                    "earlier assistant message",
                )

    def check_responses_message(self, at: str, message: dict[str, Any]) -> None:
        """What the Responses API has no place for: it would be dropped from the body, or
        refused by the server after the call was sent."""
        if message["role"] == "function":
            self.doc.problem(
                f"{at}/role",
                f"{at_location(at, '')}the Responses API has no function role: answer a call "
                "with a tool message (tool_call_id), or use provider.api: chat",
            )
        for key, instead in _NOT_ON_RESPONSES.items():
            if key in message and message["role"] != "function":
                self.doc.problem(
                    f"{at}/{key}",
                    f"{at_location(at, '')}'{key}' has no place on the Responses API: {instead}",
                    key=True,
                )

    def check_content(self, at: str, role: str, message: dict[str, Any]) -> None:
        content = message.get("content")
        if content is None and "content" in message and role not in ("assistant", "function"):
            self.doc.problem(f"{at}/content", f"{at_location(at, '')}content must not be null")
        calls = message.get("tool_calls") or message.get("function_call")
        if role == "assistant" and content is None and not calls:
            self.doc.problem(
                at, f"{at_location(at, '')}an assistant message needs content or tool_calls"
            )
        if not isinstance(content, list):
            return
        allowed = _PART_TYPES[role]
        if not allowed:
            self.doc.problem(f"{at}/content", f"{at_location(at, '')}content must be a string")
            return
        for j, part in enumerate(content):
            kind = as_dict(part).get("type")
            where = f"{at}/content/{j}"
            if kind in _PART_KEYS and kind not in allowed:
                self.doc.problem(
                    f"{where}/type",
                    f"{at_location(where, '')}a {role} message cannot have a '{kind}' part "
                    f"(allowed: {', '.join(allowed)})",
                )
            for key in as_dict(part):
                if key in _PART_KEYS and key != kind and kind in _PART_KEYS:
                    self.doc.problem(
                        f"{where}/{key}",
                        f"{at_location(where, '')}'{key}' does not belong in a part "
                        f"of type '{kind}'",
                        key=True,
                    )

    # -- tools ----------------------------------------------------------------------------------

    def check_tools(self) -> None:
        names: dict[str, set[str]] = {"function": set(), "custom": set()}
        for i, tool in enumerate(as_list(self.spec.get("tools"))):
            kind = as_dict(tool).get("type")
            body = as_dict(as_dict(tool).get(kind)) if kind in names else {}
            name = body.get("name")
            if isinstance(name, str) and isinstance(kind, str):
                if name in names[kind]:
                    self.doc.problem(
                        f"/tools/{i}/{kind}/name", f"tools[{i}]: a second tool named '{name}'"
                    )
                names[kind].add(name)
            if kind == "function" and isinstance(body.get("parameters"), dict):
                self.check_parameters(f"/tools/{i}/function/parameters", body)
        self.check_tool_choice(names)

    def check_parameters(self, at: str, function: dict[str, Any]) -> None:
        schema = function["parameters"]
        label = path_label(pointer_path(at))
        meta = check_schema(schema)
        for issue in meta:
            self.doc.problem(at + issue.pointer, f"{label}: {issue}")
        if schema.get("type", "object") != "object":
            self.doc.problem(f"{at}/type", f'{label}: must be an object schema ("type": "object")')
        elif function.get("strict") is True and not meta:
            for issue in strict_mode_issues(schema):
                self.doc.problem(at + issue.pointer, f"{label}: {issue}")

    def check_tool_choice(self, names: dict[str, set[str]]) -> None:
        if "tool_choice" not in self.spec:
            return
        choice = self.spec["tool_choice"]
        if not self.spec.get("tools"):
            self.doc.problem("/tool_choice", "tool_choice needs tools", key=True)
            return
        kind = as_dict(choice).get("type")
        if kind not in names:
            return
        name = as_dict(as_dict(choice).get(kind)).get("name")
        if isinstance(name, str) and name not in names[kind]:
            close = difflib.get_close_matches(name, sorted(names[kind]), n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            self.doc.problem(
                f"/tool_choice/{kind}/name",
                f"tool_choice: no {kind} tool named '{name}' in tools{hint}",
            )
