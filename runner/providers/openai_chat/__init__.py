"""OpenAI's Chat Completions API (`POST /chat/completions`) as a wire: `CHAT`, the WireAPI that
builds its bodies, counts their prompts and reads its replies and streams into the neutral
Completion. The code lives in the modules beside it (body, reply, stream).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from runner.providers._stream import OnDelta
from runner.providers.openai_chat.body import (
    body_for,
    build_body,
    is_reasoning_model,
    response_format_for,
)
from runner.providers.openai_chat.reply import completion_from_reply, usage_from
from runner.providers.openai_chat.stream import StreamAssembler, output_allowance
from runner.providers.wire import Capabilities, WireRequest
from runner.types import Completion, Message

__all__ = [
    "CHAT",
    "ChatCompletions",
    "build_body",
    "completion_from_reply",
    "is_reasoning_model",
    "response_format_for",
    "usage_from",
]

_FORMAT_WORDS = re.compile(r"(?i)response_format|json_schema|json_object|structured output")
# "Input should be 'text' or 'json_object'" is pydantic's refusal of a value outside a Literal:
# llama-cpp-python's server sends it (as a 500) for `json_schema`; a FastAPI server as a 422.
_REFUSAL_WORDS = re.compile(
    r"(?i)support|implement|unknown|unrecogni[sz]ed|invalid value|must be one of|"
    r"extra (inputs|fields)|input should be '|literal_error"
)


class ChatCompletions:
    """The Chat Completions wire."""

    capabilities = Capabilities(
        name="chat",
        path="/chat/completions",
        output_modes=("json_schema", "json_object", "prompt"),
        choices=True,
        batch_endpoint="/v1/chat/completions",
        output_limit="max_tokens",
    )
    static_keys: tuple[str, ...] = ("response_format", "tools")

    def build_body(self, request: WireRequest) -> dict[str, Any]:
        return body_for(request)

    def count_prompt(self, request: WireRequest) -> int:
        from runner.tokens import count_messages

        tools = list(request.tools) if request.tools else None
        return count_messages(
            request.messages, request.model, tools=tools, tool_choice=request.tool_choice
        )

    def count_body(self, body: Mapping[str, Any]) -> int:
        from runner.tokens import count_messages

        return count_messages(
            body.get("messages") or [],
            str(body.get("model") or ""),
            tools=body.get("tools"),
            tool_choice=body.get("tool_choice"),
        )

    def body_choices(self, body: Mapping[str, Any]) -> int:
        n = body.get("n")
        return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1

    def messages_of(self, body: Mapping[str, Any]) -> list[Message]:
        messages = body.get("messages")
        if not isinstance(messages, list):
            return []
        return [dict(m) for m in messages if type(m) is dict or isinstance(m, Mapping)]

    def output_limit(self, params: Mapping[str, Any]) -> int | None:
        value = params.get("max_completion_tokens") or params.get("max_tokens")
        return int(value) if value else None

    def output_allowance(self, body: Mapping[str, Any]) -> int | None:
        return output_allowance(body)

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
        return completion_from_reply(
            data,
            url=url,
            request_id=request_id,
            model=model,
            latency_ms=latency_ms,
            rate_headers=rate_headers,
        )

    def stream_reader(
        self,
        *,
        url: str,
        request_id: str | None,
        body: Mapping[str, Any],
        on_delta: OnDelta | None,
        t0: float,
    ) -> StreamAssembler:
        n = body.get("n")
        return StreamAssembler(
            url=url,
            request_id=request_id,
            n=n if isinstance(n, int) else 1,
            on_delta=on_delta,
            t0=t0,
            allowance=output_allowance(body),
        )

    def refuses_output_format(
        self, status: int, code: str | None, param: str | None, message: str
    ) -> str | None:
        """A server that does not accept the response_format (type): a 400/422, or a 500/501
        as llama.cpp and llama-cpp-python send, whose message names response_format or
        json_schema and says it is not supported (or, as pydantic does, which values it
        takes). A strict-mode schema problem ("Invalid schema for response_format") is not."""
        if status not in (400, 422, 500, 501):
            return None
        refused = bool(param and param.startswith("response_format") and code == "invalid_value")
        if not refused and "invalid schema" in message.lower():
            return None
        if not refused and not (_FORMAT_WORDS.search(message) and _REFUSAL_WORDS.search(message)):
            return None
        lower = message.lower()
        # A message about json_object alone refuses it too; pydantic's "Input should be
        # 'text' or 'json_object'" lists what the server takes, json_object included.
        only_object = (
            "json_object" in lower and "json_schema" not in lower and "should be '" not in lower
        )
        other = "prompt" if only_object else "json_object` or `prompt"
        return (
            "This server does not accept the response_format runner sent: set "
            f"`output.mode: {other}` in the spec, or `output.mode: auto` to fall back by itself."
        )

    def missing_endpoint_hint(self, status: int, message: str) -> str | None:
        return None


CHAT = ChatCompletions()
