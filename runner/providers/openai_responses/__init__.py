"""OpenAI's Responses API (`POST /responses`) as a wire: `RESPONSES`, the WireAPI that builds its
bodies (instructions, input items, text.format, max_output_tokens, reasoning, store: false),
counts their prompts, and reads its replies and typed event streams into the neutral
Completion. The code lives in the modules beside it (body, reply, stream).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.providers._stream import OnDelta
from runner.providers.openai_responses.body import body_for, messages_of, text_format
from runner.providers.openai_responses.reply import completion_from_response, usage_from
from runner.providers.openai_responses.stream import ResponseEvents
from runner.providers.wire import Capabilities, WireRequest
from runner.types import Completion, Message

__all__ = [
    "RESPONSES",
    "ResponsesAPI",
    "body_for",
    "completion_from_response",
    "messages_of",
    "text_format",
    "usage_from",
]


class ResponsesAPI:
    """The Responses API wire."""

    capabilities = Capabilities(
        name="responses",
        path="/responses",
        output_modes=("json_schema", "json_object", "prompt"),
        choices=False,
        batch_endpoint="/v1/responses",
        output_limit="max_output_tokens",
    )
    static_keys: tuple[str, ...] = ("text", "tools")

    def build_body(self, request: WireRequest) -> dict[str, Any]:
        return body_for(request)

    def count_prompt(self, request: WireRequest) -> int:
        # The Responses API frames instructions and input as Chat Completions frames the same
        # messages (OpenAI does not publish its framing; its usage agrees on the same prompt).
        from runner.tokens import count_messages

        tools = list(request.tools) if request.tools else None
        return count_messages(
            request.messages, request.model, tools=tools, tool_choice=request.tool_choice
        )

    def count_body(self, body: Mapping[str, Any]) -> int:
        from runner.tokens import count_messages

        tools = body.get("tools")
        chat_tools = None
        if isinstance(tools, list):
            chat_tools = [
                {"type": "function", "function": {k: v for k, v in t.items() if k != "type"}}
                if isinstance(t, Mapping) and t.get("type") == "function"
                else t
                for t in tools
            ]
        return count_messages(messages_of(body), str(body.get("model") or ""), tools=chat_tools)

    def body_choices(self, body: Mapping[str, Any]) -> int:
        return 1

    def messages_of(self, body: Mapping[str, Any]) -> list[Message]:
        return messages_of(body)

    def output_limit(self, params: Mapping[str, Any]) -> int | None:
        value = params.get("max_output_tokens")
        return int(value) if value else None

    def output_allowance(self, body: Mapping[str, Any]) -> int | None:
        limit = body.get("max_output_tokens")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            return None
        return limit

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
        return completion_from_response(
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
    ) -> ResponseEvents:
        return ResponseEvents(
            url=url,
            request_id=request_id,
            on_delta=on_delta,
            t0=t0,
            allowance=self.output_allowance(body),
        )

    def refuses_output_format(
        self, status: int, code: str | None, param: str | None, message: str
    ) -> str | None:
        """A server that does not take `text.format` json_schema (or json_object): a 400/422
        naming text.format (or the format's type) that says it is not supported."""
        if status not in (400, 422, 500, 501):
            return None
        lower = message.lower()
        named = (param or "").startswith("text") or "text.format" in lower
        about = "json_schema" in lower or "json_object" in lower or named
        refused = any(
            w in lower for w in ("not supported", "unsupported", "not implemented", "invalid value")
        )
        if not (about and refused) or "invalid schema" in lower:
            return None
        return (
            "This server does not accept the text.format runner sent: set `output.mode: "
            "prompt` in the spec, or `output.mode: auto` to fall back by itself."
        )

    def missing_endpoint_hint(self, status: int, message: str) -> str | None:
        if "model" in message.lower() and status == 404:
            return None  # an unknown model: the generic hint says so
        return (
            "This server has no Responses API (POST /responses): set `provider.api: chat` in "
            "the spec to use Chat Completions."
        )


RESPONSES = ResponsesAPI()
