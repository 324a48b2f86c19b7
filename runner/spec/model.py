"""The values a loaded prompt spec is made of: `PromptSpec`, its config dataclasses, message
templates, and the helpers that read durations and fill in input defaults.

Frozen values and pure functions: it reads no file and checks no YAML (runner.spec.load loads,
runner.spec.check checks); jsonschema work goes through runner.schema.validator, Jinja2 through
runner.spec.templates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from runner.durations import parse_duration
from runner.errors import RETRYABLE_KINDS, InputsInvalid, listed
from runner.schema.validator import compile_validator, packaged_schema
from runner.schema.wording import nearest
from runner.spec.templates import Template
from runner.spec.values import json_value_issues
from runner.types import Message

__all__ = [
    "TIMEOUT_DEFAULT",
    "BreakerConfig",
    "BudgetConfig",
    "LedgerConfig",
    "MessageTemplate",
    "OutputConfig",
    "Part",
    "PromptSpec",
    "ProviderConfig",
    "RateConfig",
    "RetryConfig",
    "TestCase",
    "Variant",
    "apply_defaults",
    "copy_json",
    "duration_or",
    "parse_duration",
]


def _schema_defaults(node: Mapping[str, Any]) -> Any:
    """The `default`s under a node of the spec schema, durations read as seconds."""
    if "properties" not in node:
        value = node.get("default")
        if node.get("$ref") == "#/$defs/duration" and isinstance(value, str):
            return parse_duration(value)
        return value
    return {key: _schema_defaults(sub) for key, sub in node["properties"].items()}


# The spec schema is the one place a default is written; the dataclasses below read it here.
_SPEC_PROPERTIES = packaged_schema("prompt-spec.schema.json")["properties"]
_PROVIDER = _schema_defaults(_SPEC_PROPERTIES["provider"])
_OUTPUT = _schema_defaults(_SPEC_PROPERTIES["output"])
_RETRY = _schema_defaults(_SPEC_PROPERTIES["retry"])
_RATE = _schema_defaults(_SPEC_PROPERTIES["rate"])
_BREAKER = _schema_defaults(_SPEC_PROPERTIES["breaker"])
_PROVIDER = _schema_defaults(_SPEC_PROPERTIES["provider"])
_LEDGER = _schema_defaults(_SPEC_PROPERTIES["ledger"])
_N: int = _SPEC_PROPERTIES["params"]["properties"]["n"]["default"]
_MIN_PASS_RATE: float = packaged_schema("prompt-spec.schema.json")["$defs"]["test_case"][
    "properties"
]["min_pass_rate"]["default"]
TIMEOUT_DEFAULT: float = parse_duration(str(_SPEC_PROPERTIES["timeout"]["default"]))


@dataclass(frozen=True)
class ProviderConfig:
    """Where requests go. None means "the OPENAI_* environment variables, else OpenAI"."""

    base_url: str | None = None
    api_key_env: str = _PROVIDER["api_key_env"]
    organization: str | None = None
    project: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # Which wire API the calls use: "chat" (Chat Completions) or "responses".
    api: str = _PROVIDER["api"]


@dataclass(frozen=True)
class OutputConfig:
    """The output schema every reply must satisfy, resolved and checked."""

    schema: dict[str, Any]
    schema_path: Path | None
    strict: bool = _OUTPUT["strict"]
    repair: bool = _OUTPUT["repair"]
    name: str = "output"
    # How the schema reaches the server: json_schema | json_object | prompt | auto.
    mode: str = _OUTPUT["mode"]


@dataclass(frozen=True)
class RetryConfig:
    """The spec's retry settings: one budget for every kind of failure (durations in seconds).
    The one carrier of these values; its defaults are the spec schema's `default`s. What they
    mean (whether a failure is retried, how long to wait) is runner.policy.retry's."""

    attempts: int = _RETRY["attempts"]
    initial: float = _RETRY["backoff"]["initial"]
    max: float = _RETRY["backoff"]["max"]
    multiplier: float = _RETRY["backoff"]["multiplier"]
    jitter: bool = _RETRY["backoff"]["jitter"]
    on: frozenset[str] = frozenset(_RETRY["on"])
    max_retry_after: float = _RETRY["max_retry_after"]

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise ValueError(f"RetryConfig.attempts must be an int, got {self.attempts!r}")
        if self.attempts < 1:
            raise ValueError(f"RetryConfig.attempts must be at least 1, got {self.attempts}")
        for name in ("initial", "max"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"RetryConfig.{name} must be 0 or more seconds, got {value!r}")
        if not (math.isfinite(self.multiplier) and self.multiplier >= 1):
            raise ValueError(f"RetryConfig.multiplier must be at least 1, got {self.multiplier!r}")
        if self.max < self.initial:
            raise ValueError(
                f"RetryConfig.max ({self.max:g}) must not be less than initial ({self.initial:g})"
            )
        if not self.max_retry_after >= 0:
            raise ValueError(
                f"RetryConfig.max_retry_after must be 0 or more seconds, "
                f"got {self.max_retry_after!r}"
            )
        if isinstance(self.on, str):
            raise ValueError(f"RetryConfig.on must be a set of kinds, got the string {self.on!r}")
        on = frozenset(self.on)
        unknown = sorted(on - RETRYABLE_KINDS)
        if unknown:
            raise ValueError(
                f"RetryConfig.on: {', '.join(map(repr, unknown))} cannot be retried; "
                f"choose from {', '.join(sorted(RETRYABLE_KINDS))}"
            )
        object.__setattr__(self, "on", on)


@dataclass(frozen=True)
class RateConfig:
    rpm: int | None = None
    tpm: int | None = None
    concurrency: int = _RATE["concurrency"]


@dataclass(frozen=True)
class BreakerConfig:
    failures: int = _BREAKER["failures"]
    cooldown: float = _BREAKER["cooldown"]


@dataclass(frozen=True)
class LedgerConfig:
    """`content: false` keeps messages, variables and outputs out of the ledger."""

    content: bool = _LEDGER["content"]


@dataclass(frozen=True)
class BudgetConfig:
    """`max_cost_usd`: the cost cap of a data-set run; None means no cap."""

    max_cost_usd: float | None = None


@dataclass(frozen=True)
class TestCase:
    """One `tests:` entry. `expect` holds the assertions as written; `line` is where it starts."""

    __test__ = False  # not a pytest class, whatever its name

    name: str
    vars: Mapping[str, Any]
    expect: tuple[dict[str, Any], ...]
    line: int
    description: str | None = None
    skip: str | None = None  # why the case is not run, when it is not
    # The share of its runs (`runner test --repeat N`) that must pass for the case to pass.
    min_pass_rate: float = _MIN_PASS_RATE


@dataclass(frozen=True)
class Variant:
    """One way to run a spec's test cases (`variants:` or `runner test --model`): a model, params
    merged over the spec's, or both. `name` is how results and ledger lines name it."""

    name: str
    model: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    @staticmethod
    def named(model: str | None, params: Mapping[str, Any], name: str | None = None) -> Variant:
        """A variant; without a name, its model then each param as `key=value`."""
        if name is None:
            parts = [model] if model else []
            parts += [f"{k}={_flat(v)}" for k, v in _flatten(params)]
            name = ",".join(parts)
        return Variant(name, model, dict(params))


def _flatten(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested params as dotted keys: {reasoning: {effort: high}} -> reasoning.effort=high."""
    out: list[tuple[str, Any]] = []
    for key, value in params.items():
        if isinstance(value, Mapping) and value:
            out += _flatten(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def _flat(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "+".join(_flat(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class Part:
    """One part of a message whose content is a list: the part as written, and its templates."""

    data: Mapping[str, Any]  # the part as written
    text: Template | None = None  # type text: its text
    url: Template | None = None  # type image_url: its url


@dataclass(frozen=True)
class MessageTemplate:
    """One message of a spec: its role, its content template(s) and the fields passed as written
    (tool_calls, tool_call_id, function_call, refusal)."""

    role: str
    content: Template | tuple[Part, ...] | None
    name: str | None
    extra: Mapping[str, Any]
    pointer: str
    line: int

    @property
    def variables(self) -> frozenset[str]:
        if isinstance(self.content, Template):
            return self.content.variables
        found: set[str] = set()
        for part in self.content or ():
            for template in (part.text, part.url):
                if template is not None:
                    found |= template.variables
        return frozenset(found)

    def render(self, vars: Mapping[str, Any]) -> Message:
        """The message as the API takes it, its templates rendered with `vars`."""
        message: Message = {"role": self.role}
        if isinstance(self.content, Template):
            message["content"] = self.content.render(vars)
        elif self.content is None:
            message["content"] = None
        else:
            message["content"] = [_render_part(part, vars) for part in self.content]
        if self.name is not None:
            message["name"] = self.name
        message.update(copy_json(self.extra))
        return message


def _render_part(part: Part, vars: Mapping[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = copy_json(part.data)
    if part.text is not None:
        data["text"] = part.text.render(vars)
    if part.url is not None:
        data["image_url"] = {**data["image_url"], "url": part.url.render(vars)}
    return data


def copy_json(value: Any) -> Any:
    """A deep copy of JSON-shaped data (cheaper than copy.deepcopy)."""
    kind = type(value)  # exact types first: an ABC check (Mapping) costs more than the copy
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if kind is dict:
        return {k: copy_json(v) for k, v in value.items()}
    if kind is list:
        return [copy_json(v) for v in value]
    if isinstance(value, Mapping):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [copy_json(v) for v in value]
    return value


@dataclass(frozen=True)
class PromptSpec:
    """A loaded, fully checked spec. Durations are seconds; `params` holds only what the
    file sets, named as the API names them."""

    path: Path
    name: str
    description: str | None
    model: str
    provider: ProviderConfig
    params: Mapping[str, Any]
    inputs: dict[str, Any] | None
    messages: tuple[MessageTemplate, ...]
    output: OutputConfig | None
    tools: tuple[dict[str, Any], ...]
    tool_choice: str | dict[str, Any] | None
    stream: bool
    timeout: float
    deadline: float | None
    retry: RetryConfig
    rate: RateConfig
    breaker: BreakerConfig
    ledger: LedgerConfig
    tests: tuple[TestCase, ...]
    sha256: str
    variables: frozenset[str]
    positions: Mapping[str, tuple[int, int]] = field(default_factory=dict, repr=False)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    variants: tuple[Variant, ...] = ()  # `variants:` as written (runner test compares them)
    variant: Variant | None = None  # set on the copy `with_variant` makes: what this run is

    def with_variant(self, variant: Variant) -> PromptSpec:
        """This spec as `variant` runs it: its model, and its params merged over the spec's.
        The copy records the variant (the ledger line names it; its model is not overridden
        by RUNNER_MODEL)."""
        return replace(
            self,
            model=variant.model or self.model,
            params={**self.params, **variant.params},
            variant=variant,
        )

    @property
    def choices(self) -> int:
        """How many choices each call asks for: `params.n`, else the schema's default (1)."""
        return int(self.params.get("n") or _N)

    def position(self, pointer: str) -> tuple[int, int]:
        """The (line, column) of the node at a JSON pointer, or of its nearest ancestor."""
        return nearest(self.positions, pointer)

    def prepare_vars(self, vars: Mapping[str, Any]) -> dict[str, Any]:
        """Apply the `inputs` defaults, then check the variables against `inputs`.

        Without `inputs`, every variable the templates use is required. Raise InputsInvalid
        with one "pointer: problem" line per error."""
        unsafe = json_value_issues(vars)
        if unsafe:
            lines = "\n".join(f"  {e}" for e in unsafe)
            raise InputsInvalid(
                f"{self.path}: variables the ledger could not record (nothing was sent):\n{lines}",
                unsafe,
            )
        prepared = copy_json(vars)
        if self.inputs is None:
            missing = sorted(self.variables - prepared.keys())
            errors = [f"/: missing variable '{name}' (used by the templates)" for name in missing]
        else:
            apply_defaults(self.inputs, prepared)
            validator = compile_validator(self.inputs)
            # is_valid stops at the first error: the fast path on every call of a data set.
            valid = validator.is_valid(prepared)
            errors = [] if valid else [str(i) for i in validator.explain(prepared)]
        if errors:
            lines = "\n".join(f"  {e}" for e in listed(errors))
            raise InputsInvalid(
                f"{self.path}: the variables do not match the spec:\n{lines}", errors
            )
        return dict(prepared)

    def render(self, vars: Mapping[str, Any]) -> list[Message]:
        """The messages exactly as sent to the API. Raise TemplateError (positioned at the
        template's line in the spec) when a template cannot render."""
        return [message.render(vars) for message in self.messages]


def apply_defaults(schema: Any, value: Any) -> None:
    """Fill in `default`s of absent properties, recursively into objects that are present."""
    if not _is_mapping(schema) or not isinstance(value, dict):
        return
    properties = schema.get("properties")
    if not _is_mapping(properties):
        return
    for name, sub in properties.items():
        if not _is_mapping(sub):
            continue
        if name not in value and "default" in sub:
            value[name] = copy_json(sub["default"])
        if name in value:
            apply_defaults(sub, value[name])


def _is_mapping(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)  # a dict skips the ABC check


def duration_or(value: Any, default: float | None) -> float | None:
    """parse_duration, or `default` when the value is absent or not a duration (the schema
    check has reported that already)."""
    try:
        return default if value is None else parse_duration(value)
    except (TypeError, ValueError):
        return default
