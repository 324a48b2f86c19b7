"""Chat Completions streams: SSE chunks (text, refusals, tool-call fragments, usage) folded into
one neutral Completion, deltas handed to a callback as they arrive, bad or truncated streams
raised as StreamBroken. A stream that has certainly written more than the request allowed
(max_tokens × n) is cut with ReplyTooLarge. It consumes decoded events and must not read from
the network.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx2

from runner.errors import StreamBroken
from runner.providers._errors import api_error
from runner.providers._json import (
    MAX_CHOICES,
    MAX_TOOL_CALLS,
    Malformed,
    reply_json,
    short_text,
)
from runner.providers._stream import OnDelta, Overrun
from runner.providers.openai_chat.reply import neutral_call, usage_from
from runner.types import Choice, Completion, StreamDelta, Usage

__all__ = ["StreamAssembler", "output_allowance"]


def output_allowance(body: Mapping[str, Any]) -> int | None:
    """The output tokens a Chat Completions request allows over all its choices (max_tokens
    or max_completion_tokens, times n); None without a limit."""
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        return None
    n = body.get("n")
    return limit * (n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1)


class _ChoiceParts:
    """One streamed choice as its deltas arrive."""

    __slots__ = ("text", "refusal", "tools", "function", "finish")

    def __init__(self) -> None:
        self.text: list[str] | None = None
        self.refusal: list[str] | None = None
        self.tools: dict[int, dict[str, Any]] = {}
        self.function: dict[str, Any] | None = None
        self.finish: str | None = None

    def choice(self, index: int) -> Choice:
        return Choice(
            index=index,
            text=None if self.text is None else "".join(self.text),
            finish_reason=self.finish,
            refusal=("".join(self.refusal) or None) if self.refusal is not None else None,
            tool_calls=tuple(
                neutral_call(_joined(part), "tool call")
                for part in [*(self.tools[k] for k in sorted(self.tools)), *self._function()]
            ),
        )

    def _function(self) -> list[dict[str, Any]]:
        return [] if self.function is None else [self.function]


# Fragments of these fields are concatenated; any other string field keeps its first value
# (some servers repeat the id and name on every fragment). Only the documented fields of a tool
# call are kept (`_clean`), so a fragment cannot nest anything deeper.
_CONCATENATED = frozenset({"arguments", "input"})


def _clean(call: Any, field: str) -> dict[str, Any]:
    """A tool-call fragment's documented fields, every string checked."""
    if not isinstance(call, Mapping):
        raise Malformed(f"a {field} is {type(call).__name__}, not an object")
    out: dict[str, Any] = {}
    for key in ("id", "type", "name", "arguments", "input"):
        value = call.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise Malformed(f"{field}.{key} is {type(value).__name__}, not a string")
            out[key] = value
    for key in ("function", "custom"):
        inner = call.get(key)
        if inner is not None:
            out[key] = _clean(inner, f"{field}.{key}")
    return out


def _merge(into: dict[str, Any], fragment: Mapping[str, Any], field: str) -> None:
    for key, value in _clean(fragment, field).items():
        if isinstance(value, dict):
            _merge(into.setdefault(key, {}), value, f"{field}.{key}")
        elif key in _CONCATENATED:
            into.setdefault(key, []).append(value)
        elif key not in into or into[key] in ("", None):
            into[key] = value


def _joined(parts: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: "".join(v) if isinstance(v, list) else _joined(v) if isinstance(v, dict) else v
        for k, v in parts.items()
    }


class StreamAssembler:
    """Builds a Completion from SSE events; raises StreamBroken for error events and bad data."""

    def __init__(
        self,
        *,
        url: str,
        request_id: str | None,
        n: int,
        on_delta: OnDelta | None,
        t0: float,
        allowance: int | None = None,
    ) -> None:
        self.url, self.request_id, self.n, self.on_delta, self.t0 = url, request_id, n, on_delta, t0
        self.overrun = Overrun(
            url=url, request_id=request_id, allowance=allowance, limit_name="max_tokens × n"
        )
        self.choices: dict[int, _ChoiceParts] = {}
        self.meta: dict[str, Any] = {}
        self.usage: Usage | None = None
        self.ttft_ms: float | None = None
        self.done = False
        self._pending: list[StreamDelta] = []

    def feed(self, event: httpx2.ServerSentEvent) -> bool:
        """Take one event; True once the stream said `[DONE]`."""
        data = event.data
        if data == "[DONE]":
            self.done = True
            return True
        if event.event == "error":
            self._fail(self._error_text(data))
        if not data:
            return False
        try:
            chunk = reply_json(data)  # lone surrogates become U+FFFD, as in whole replies
        except ValueError:
            self._fail(f"malformed event stream from {self.url}: data is not JSON: {data[:80]!r}")
        except RecursionError:
            self._fail(f"malformed event stream from {self.url}: data nests too deeply to read")
        if not isinstance(chunk, dict):
            self._fail(f"malformed event stream from {self.url}: data is not an object")
        if "error" in chunk and not chunk.get("choices"):
            self._fail(self._error_text(data))
        if not self.meta:
            self.meta = {k: short_text(chunk.get(k)) for k in ("id", "model", "system_fingerprint")}
        try:
            if chunk.get("usage") is not None:  # unreadable counts come back flagged
                self.usage = usage_from(chunk["usage"])
            choices = chunk.get("choices") or []
            if not isinstance(choices, list):
                raise Malformed("choices is not a list")
            for item in choices:
                self._feed_choice(item)
        except (AttributeError, TypeError, Malformed) as exc:
            self._pending.clear()
            self._fail(f"malformed event stream from {self.url}: {exc}")
        self.overrun.check()
        if self._pending and self.on_delta is not None:
            # Called once the chunk is whole, so an error in the callback is never mistaken for
            # a malformed stream.
            for delta in self._pending:
                self.on_delta(delta)
            self._pending.clear()
        return False

    def _feed_choice(self, item: dict[str, Any]) -> None:
        index = _index(item.get("index", 0), "choice index", MAX_CHOICES)
        parts = self.choices.get(index)
        if parts is None:
            parts = self.choices[index] = _ChoiceParts()
        delta = item.get("delta") or {}
        text = delta.get("content")
        if text is not None:
            if parts.text is None:
                parts.text = []
            if text:
                parts.text.append(_str(text, "content"))
                self.overrun.add(len(text))
                self._first_token()
                if self.on_delta is not None:
                    self._pending.append(StreamDelta(index, text=text))
        refusal = delta.get("refusal")
        if refusal is not None:
            if parts.refusal is None:
                parts.refusal = []
            if refusal:
                parts.refusal.append(_str(refusal, "refusal"))
                self.overrun.add(len(refusal))
                self._first_token()
                if self.on_delta is not None:
                    self._pending.append(StreamDelta(index, refusal=refusal))
        for call in delta.get("tool_calls") or ():
            slot = _index(call.get("index", 0), "tool call index", MAX_TOOL_CALLS)
            _merge(parts.tools.setdefault(slot, {}), call, "tool call")
            self.overrun.add(_arguments_length(call))
            self._first_token()
        if delta.get("function_call"):
            if parts.function is None:
                parts.function = {}
            _merge(parts.function, delta["function_call"], "function_call")
            self.overrun.add(_arguments_length(delta["function_call"]))
            self._first_token()
        if item.get("finish_reason"):
            parts.finish = _str(item["finish_reason"], "finish_reason")

    def _first_token(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = (time.perf_counter() - self.t0) * 1000

    def _error_text(self, data: str) -> str:
        error = api_error(data.encode()) or {"message": data[:200] or "no details"}
        fields = ", ".join(
            f"{k} {error[k]}" for k in ("type", "code") if error.get(k) not in (None, "")
        )
        extra = f" ({fields})" if fields else ""
        return f"{self.url} reported an error mid-stream: {error.get('message')}{extra}"

    def _fail(self, message: str) -> Any:
        raise StreamBroken(message, url=self.url, request_id=self.request_id)

    def completion(self, *, model: str, rate_headers: Mapping[str, str]) -> Completion:
        if not self.done:
            missing = [i for i in range(max(self.n, 1)) if not self._finished(i)]
            if missing:
                self._fail(
                    f"the stream from {self.url} ended early: no [DONE] and no finish_reason "
                    f"for choice {missing[0]}; the answer must start over"
                )
        return Completion(
            id=self.meta.get("id") or "",
            model=self.meta.get("model") or model,
            choices=tuple(self.choices[i].choice(i) for i in sorted(self.choices)),
            usage=self.usage,
            request_id=self.request_id,
            latency_ms=(time.perf_counter() - self.t0) * 1000,
            ttft_ms=self.ttft_ms,
            system_fingerprint=self.meta.get("system_fingerprint"),
            rate_headers=rate_headers,
        )

    def _finished(self, index: int) -> bool:
        parts = self.choices.get(index)
        return parts is not None and parts.finish is not None


def _arguments_length(call: Any) -> int:
    """The characters of arguments a tool-call fragment carries."""
    function = call.get("function", call) if isinstance(call, Mapping) else None
    value = function.get("arguments") if isinstance(function, Mapping) else None
    return len(value) if isinstance(value, str) else 0


def _index(value: Any, field: str, limit: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < limit:
        return value
    raise Malformed(f"{field} {str(value)[:40]!r} is not an index below {limit}")


def _str(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"delta {field} is {type(value).__name__}, not a string")
    return value
