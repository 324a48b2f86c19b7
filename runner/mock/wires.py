"""The answering endpoints as the server's handler and the Batch API see them: for
`/v1/chat/completions` and `/v1/responses`, how a request is parsed, how `--no-json-schema`
refuses it, and how its answer is built, counted and rendered (a body, or SSE frames with the
stream faults of that wire format). No HTTP and no dice: it is handed the fault decision.
"""

from __future__ import annotations

from typing import Any

from runner.mock.faults import Decision
from runner.mock.reply import Answer, build_answer, completion_body, stream_frames
from runner.mock.request import Ask, api_error, decode_body, parse_body
from runner.mock.responses_reply import (
    ResponsesAnswer,
    build_response,
    response_body,
    response_events,
)
from runner.mock.responses_request import ResponsesAsk, parse_responses_body

__all__ = ["CHAT", "RESPONSES", "WIRES", "Wire"]


def _no_json_schema(param: str) -> Exception:
    return api_error(
        400,
        f"{param} type 'json_schema' is not supported by this server; use 'json_object' or 'text'",
        param=param,
    )


class Wire:
    """One endpoint's wire format. `asked` is what `parse` returns, `answer` what `build` does."""

    path = ""
    garbage = b""  # a malformed SSE event, for the malformed fault

    format_key = ""  # the body's structured-output field

    def parse(self, raw: bytes, *, ignore_format: bool = False) -> Any:
        """Validate a raw body as OpenAI does (HTTPStatusFailure, a 400, otherwise). With
        `ignore_format`, answer as a server that takes a structured-output format and ignores
        it (mlx_lm.server, some llama.cpp versions): as if the body had none."""
        body = decode_body(raw)
        if ignore_format:
            body.pop(self.format_key, None)
        return self.parse_body(body)

    def parse_body(self, body: dict[str, Any]) -> Any:
        raise NotImplementedError

    def ask(self, asked: Any) -> Ask:
        """The chat `Ask` behind the request: its key, model and stream flag."""
        raise NotImplementedError

    def refuse_json_schema(self, asked: Any) -> None:
        """Raise the 400 of a server without structured outputs, if a json_schema is asked."""
        raise NotImplementedError

    def build(self, asked: Any, seed: int, invalid: bool) -> Any:
        raise NotImplementedError

    def tokens(self, answer: Any) -> tuple[int, int]:
        """The answer's (input, output) tokens."""
        raise NotImplementedError

    def body(self, answer: Any, asked: Any, created: int, decision: Decision | None) -> bytes:
        raise NotImplementedError

    def frames(
        self, answer: Any, asked: Any, created: int, seed: int, decision: Decision
    ) -> tuple[list[bytes], int]:
        """The SSE frames, and how many come before the first finishing one."""
        raise NotImplementedError


class _Chat(Wire):
    path = "/v1/chat/completions"
    format_key = "response_format"
    garbage = b"data: {not json\n\n"

    def parse_body(self, body: dict[str, Any]) -> Ask:
        return parse_body(body)

    def ask(self, asked: Ask) -> Ask:
        return asked

    def refuse_json_schema(self, asked: Ask) -> None:
        fmt = asked.body.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            raise _no_json_schema("response_format")

    def build(self, asked: Ask, seed: int, invalid: bool) -> Answer:
        return build_answer(asked, seed, invalid)

    def tokens(self, answer: Answer) -> tuple[int, int]:
        return answer.usage["prompt_tokens"], answer.usage["completion_tokens"]

    def body(self, answer: Answer, asked: Ask, created: int, decision: Decision | None) -> bytes:
        return completion_body(answer, asked.model, created)

    def frames(
        self, answer: Answer, asked: Ask, created: int, seed: int, decision: Decision
    ) -> tuple[list[bytes], int]:
        return stream_frames(answer, asked, created, seed)


class _Responses(Wire):
    path = "/v1/responses"
    format_key = "text"
    garbage = b"event: response.output_text.delta\ndata: {not json\n\n"

    def parse_body(self, body: dict[str, Any]) -> ResponsesAsk:
        return parse_responses_body(body)

    def ask(self, asked: ResponsesAsk) -> Ask:
        return asked.ask

    def refuse_json_schema(self, asked: ResponsesAsk) -> None:
        if asked.echo["text"]["format"]["type"] == "json_schema":
            raise _no_json_schema("text.format")

    def build(self, asked: ResponsesAsk, seed: int, invalid: bool) -> ResponsesAnswer:
        return build_response(asked, seed, invalid)

    def tokens(self, answer: ResponsesAnswer) -> tuple[int, int]:
        return answer.usage["input_tokens"], answer.usage["output_tokens"]

    def body(
        self, answer: ResponsesAnswer, asked: ResponsesAsk, created: int, decision: Decision | None
    ) -> bytes:
        failed = decision is not None and decision.response_failed
        return response_body(answer, asked, created, failed)

    def frames(
        self,
        answer: ResponsesAnswer,
        asked: ResponsesAsk,
        created: int,
        seed: int,
        decision: Decision,
    ) -> tuple[list[bytes], int]:
        end = "error" if decision.error_event else "failed" if decision.response_failed else None
        return response_events(answer, asked, created, seed, end, decision.rng)


CHAT: Wire = _Chat()
RESPONSES: Wire = _Responses()
WIRES = {wire.path: wire for wire in (CHAT, RESPONSES)}
