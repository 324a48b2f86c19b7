"""The seam between runner and a wire API: what the engine hands a wire (`WireRequest`: the model,
the rendered messages, the params, the output format, the tools, whether to stream) and what a
wire must do with it (`WireAPI`: build the exact body, count its prompt, read replies and streams
into the neutral Completion, recognise its own refusals, state its capabilities). The output
modes and the schema instruction of the prompt modes are runner's own, so they live here too.
Pure data and protocols; no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from runner.errors import ConfigError
from runner.providers._stream import OnDelta
from runner.types import Completion, Message, quick_init

__all__ = [
    "OUTPUT_MODES",
    "SCHEMA_INSTRUCTION",
    "Capabilities",
    "OutputFormat",
    "StreamReader",
    "WireAPI",
    "WireRequest",
    "format_for_mode",
    "messages_for_mode",
]

# How a spec's output schema reaches the server (`output.mode`): `auto` starts as json_schema
# and, when the server refuses it, falls back along the wire's `output_modes`.
OUTPUT_MODES = ("json_schema", "json_object", "prompt", "auto")
# Added to the prompt in json_object and prompt modes (the server does not see the schema
# then): the last system message gets it, or a system message is put first.
SCHEMA_INSTRUCTION = (
    "Answer with one JSON value only: no prose, no Markdown, no code fences. "
    "It must conform to this JSON Schema:\n"
)


@quick_init
@dataclass(frozen=True)
class OutputFormat:
    """The structured output a request asks the server for: a JSON Schema (`json_schema`,
    with its name and strictness) or any JSON object (`json_object`)."""

    kind: Literal["json_schema", "json_object"]
    schema: Mapping[str, Any] | None = None
    name: str = "output"
    strict: bool = False


@quick_init
@dataclass(frozen=True)
class WireRequest:
    """One request, wire-neutral: everything a wire needs to build its exact body. `messages`
    are runner's messages ({role, content, name, tool_calls, tool_call_id}), the schema
    instruction of the prompt modes already in them."""

    model: str
    messages: Sequence[Message]
    params: Mapping[str, Any] = field(default_factory=dict)
    output: OutputFormat | None = None
    tools: Sequence[Mapping[str, Any]] | None = None
    tool_choice: Any = None
    stream: bool = False

    def with_messages(self, messages: Sequence[Message]) -> WireRequest:
        return replace(self, messages=list(messages))


@dataclass(frozen=True)
class Capabilities:
    """What a wire API can do, and its words for what the engine must name in messages."""

    name: str  # the spec's provider.api: "chat" or "responses"
    path: str  # below the base URL: "/chat/completions"
    output_modes: tuple[str, ...]  # the modes it can send, in fall-back order
    choices: bool  # whether it takes `n` > 1
    batch_endpoint: str  # the `url` of its lines in a Batch API input file
    output_limit: str  # the param that caps output tokens, as a user writes it in a spec


class StreamReader(Protocol):
    """Folds a wire's stream events into one Completion."""

    def feed(self, event: Any) -> bool:
        """Take one server-sent event; True once the stream has ended."""
        ...

    def completion(self, *, model: str, rate_headers: Mapping[str, str]) -> Completion: ...


class WireAPI(Protocol):
    """One wire API (OpenAI's Chat Completions, OpenAI's Responses): how runner's neutral
    request becomes its body, and how its replies become runner's neutral Completion."""

    capabilities: Capabilities
    # Body keys that are the same on every call of a spec (the output format, the tools): the
    # request fingerprint encodes them once per spec.
    static_keys: tuple[str, ...]

    def build_body(self, request: WireRequest) -> dict[str, Any]:
        """The exact body to send; ConfigError for params the API refuses."""
        ...

    def count_prompt(self, request: WireRequest) -> int:
        """The prompt tokens the body will be billed for."""
        ...

    def count_body(self, body: Mapping[str, Any]) -> int:
        """The prompt tokens of a body already built (a re-ask, a batch row read back)."""
        ...

    def body_choices(self, body: Mapping[str, Any]) -> int:
        """How many choices a built body asks for."""
        ...

    def messages_of(self, body: Mapping[str, Any]) -> list[Message]:
        """A built body's conversation as runner's messages (what a ledger line keeps)."""
        ...

    def output_limit(self, params: Mapping[str, Any]) -> int | None:
        """The output tokens the params allow each choice, if they set a limit."""
        ...

    def output_allowance(self, body: Mapping[str, Any]) -> int | None:
        """The output tokens a built body allows over all its choices (None: no limit)."""
        ...

    def completion(
        self,
        data: Any,
        *,
        url: str,
        request_id: str | None,
        model: str,
        latency_ms: float,
        rate_headers: Mapping[str, str],
    ) -> Completion:
        """A whole JSON reply read into a Completion; StreamBroken when it is not one."""
        ...

    def stream_reader(
        self,
        *,
        url: str,
        request_id: str | None,
        body: Mapping[str, Any],
        on_delta: OnDelta | None,
        t0: float,
    ) -> StreamReader: ...

    def refuses_output_format(
        self, status: int, code: str | None, param: str | None, message: str
    ) -> str | None:
        """When an error reply says the server does not take the output format runner sent,
        the sentence that says what to do; else None."""
        ...

    def missing_endpoint_hint(self, status: int, message: str) -> str | None:
        """When a 404/405 means the server has no such endpoint, what to do; else None."""
        ...


def messages_for_mode(
    messages: Sequence[Message], mode: str, schema: Mapping[str, Any]
) -> list[Message]:
    """The messages to send in output `mode`: as they are for json_schema (the server gets the
    schema), with the schema instruction added for json_object and prompt (it does not)."""
    if mode in ("json_schema", "auto"):
        return [dict(m) for m in messages]
    if mode not in ("json_object", "prompt"):
        raise ConfigError(f"output.mode {mode!r} is not one of {', '.join(OUTPUT_MODES)}")
    instruction = SCHEMA_INSTRUCTION + json.dumps(schema, ensure_ascii=False, separators=(",", ":"))
    out = [dict(m) for m in messages]
    systems = [i for i, m in enumerate(out) if m.get("role") in ("system", "developer")]
    if systems and isinstance(out[systems[-1]].get("content"), str):
        last = out[systems[-1]]
        last["content"] = f"{last['content']}\n\n{instruction}"
    else:
        out.insert(0, {"role": "system", "content": instruction})
    return out


def format_for_mode(
    mode: str, schema: Mapping[str, Any], *, name: str, strict: bool
) -> OutputFormat | None:
    """The output format a request carries in `mode` (none in prompt mode)."""
    if mode in ("json_schema", "auto"):
        return OutputFormat("json_schema", schema, name=name, strict=strict)
    if mode == "json_object":
        return OutputFormat("json_object")
    return None
