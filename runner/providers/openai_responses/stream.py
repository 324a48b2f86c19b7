"""Responses API streams: typed events folded into one neutral Completion. Text comes from
`response.output_text.delta` (handed to the caller as it arrives), refusals from
`response.refusal.delta`; the final output, status and usage from `response.completed` (or
`response.incomplete`). `response.failed` and `error` events raise runner's error for them; a
stream that ends without its final event is StreamBroken, and one that has certainly written
more than `max_output_tokens` is cut (ReplyTooLarge). It consumes decoded events and must not
read from the network.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from runner.errors import StreamBroken
from runner.providers._json import reply_json, short_text
from runner.providers._stream import OnDelta, Overrun
from runner.providers.openai_responses.reply import completion_from_response, failure
from runner.types import Completion, StreamDelta

__all__ = ["ResponseEvents"]

_FINAL = ("response.completed", "response.incomplete")


class ResponseEvents:
    """Builds a Completion from a Responses API event stream."""

    def __init__(
        self,
        *,
        url: str,
        request_id: str | None,
        on_delta: OnDelta | None,
        t0: float,
        allowance: int | None,
    ) -> None:
        self.url, self.request_id, self.on_delta, self.t0 = url, request_id, on_delta, t0
        self.overrun = Overrun(
            url=url, request_id=request_id, allowance=allowance, limit_name="max_output_tokens"
        )
        self.texts: list[str] = []
        self.refusals: list[str] = []
        self.final: dict[str, Any] | None = None
        self.meta: dict[str, str | None] = {}
        self.ttft_ms: float | None = None

    def feed(self, event: Any) -> bool:
        """Take one server-sent event; True once the response has ended."""
        data = event.data
        if data == "[DONE]":
            return True
        if not data:
            return False
        try:
            payload = reply_json(data)
        except ValueError:
            self._fail(f"malformed event stream from {self.url}: data is not JSON: {data[:80]!r}")
        except RecursionError:
            self._fail(f"malformed event stream from {self.url}: data nests too deeply to read")
        if not isinstance(payload, dict):
            self._fail(f"malformed event stream from {self.url}: data is not an object")
        kind = payload.get("type") or event.event
        if kind == "error":
            raise failure(
                payload, url=self.url, request_id=self.request_id, where="error mid-stream"
            )
        response = payload.get("response")
        if isinstance(response, Mapping) and not self.meta:
            self.meta = {k: short_text(response.get(k)) for k in ("id", "model")}
        if kind == "response.failed":
            error = response.get("error") if isinstance(response, Mapping) else None
            raise failure(error, url=self.url, request_id=self.request_id)
        if kind in _FINAL:
            if not isinstance(response, dict):
                self._fail(f"malformed event stream from {self.url}: {kind} has no response")
            self.final = response
            return True
        if kind == "response.output_text.delta":
            self._delta(payload.get("delta"), self.texts, refusal=False)
        elif kind == "response.refusal.delta":
            self._delta(payload.get("delta"), self.refusals, refusal=True)
        elif kind == "response.function_call_arguments.delta":
            delta = payload.get("delta")
            if isinstance(delta, str):
                self.overrun.add(len(delta))
                self._first_token()
        self.overrun.check()
        return False

    def _delta(self, delta: Any, into: list[str], *, refusal: bool) -> None:
        if not isinstance(delta, str):
            self._fail(f"malformed event stream from {self.url}: a delta is not a string")
        if not delta:
            return
        into.append(delta)
        self.overrun.add(len(delta))
        self._first_token()
        self.overrun.check()  # before the caller sees it: text past the cut is not handed on
        if self.on_delta is not None:
            self.on_delta(StreamDelta(0, refusal=delta) if refusal else StreamDelta(0, text=delta))

    def _first_token(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = (time.perf_counter() - self.t0) * 1000

    def _fail(self, message: str) -> Any:
        raise StreamBroken(message, url=self.url, request_id=self.request_id)

    def completion(self, *, model: str, rate_headers: Mapping[str, str]) -> Completion:
        if self.final is None:
            self._fail(
                f"the stream from {self.url} ended early: no response.completed event; the "
                "answer must start over"
            )
        assert self.final is not None
        final = dict(self.final)
        if not isinstance(final.get("output"), list):  # a server that left it out of the event
            final["output"] = [
                {
                    "type": "message",
                    "content": [{"type": "output_text", "text": "".join(self.texts)}]
                    + [{"type": "refusal", "refusal": "".join(self.refusals)}]
                    * bool(self.refusals),
                }
            ]
        return completion_from_response(
            final,
            url=self.url,
            request_id=self.request_id,
            model=model,
            latency_ms=(time.perf_counter() - self.t0) * 1000,
            rate_headers=rate_headers,
            ttft_ms=self.ttft_ms,
        )
