"""The OpenAI-compatible Chat Completions client on httpx2: one HTTP request per call (JSON or SSE),
every httpx2 exception and error status translated into runner.errors, secrets redacted.
It never retries or waits (runner.policy does) and never reads os.environ (runner.settings does).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import sys
import threading
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Mapping,
    Sequence,
)
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar, cast

import httpx2

from ._version import __version__
from .errors import (
    AuthenticationFailed,
    BadRequest,
    ConfigError,
    ConnectFailed,
    HTTPStatusFailure,
    NotFound,
    PermissionDenied,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    ReadTimedOut,
    RunnerError,
    ServerFailed,
    StreamBroken,
)
from .records import Choice, Completion, Message, StreamDelta, Usage
from .settings import DEFAULT_BASE_URL, openai_env

__all__ = [
    "ASGIStreamTransport",
    "ChatClient",
    "SyncChatClient",
    "build_body",
    "error_from_response",
    "error_from_transport",
    "is_reasoning_model",
    "parse_retry_after",
    "response_format_for",
]

logger = logging.getLogger("runner.client")

T = TypeVar("T")
OnDelta = Callable[[StreamDelta], None]

USER_AGENT = (
    f"runner/{__version__} (python {sys.version_info.major}.{sys.version_info.minor}; "
    f"httpx2 {httpx2.__version__})"
)
EXCERPT_CHARS = 500

# --- request bodies -------------------------------------------------------------------------

# Sampling parameters that OpenAI's reasoning models reject unless left at their defaults.
_REASONING_DEFAULTS: dict[str, Any] = {
    "temperature": 1,
    "top_p": 1,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "logprobs": False,
    "top_logprobs": None,
}
# GPT-5.1 and later accept these again when reasoning_effort is "none" (OpenAI's GPT-5 guide).
_EFFORT_NONE_ALLOWS = frozenset({"temperature", "top_p", "logprobs", "top_logprobs"})
_OWN_ARGUMENTS = ("model", "messages", "stream", "response_format", "tools", "tool_choice")
_REASONING = re.compile(r"o\d+(?:-|$)|gpt-5(?:[.-]|$)")
_REJECTS_STOP = re.compile(r"o3(?:-(?!mini)|$)|o4|gpt-5")
_SCHEMA_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]")


def _bare_model(model: str) -> str:
    """`ft:o4-mini:org::id` and `openai/o3` name the same family as `o4-mini` and `o3`."""
    name = model.rsplit("/", 1)[-1].lower()
    return name[3:] if name.startswith("ft:") else name


def is_reasoning_model(model: str) -> bool:
    """Tell whether `model` is an OpenAI reasoning model (o-series, gpt-5 except chat variants)."""
    name = _bare_model(model)
    return bool(_REASONING.match(name)) and "-chat" not in name


def _accepts_effort_none(name: str) -> bool:
    found = re.match(r"gpt-5\.(\d+)", name)
    return found is not None and int(found.group(1)) >= 1


def response_format_for(schema: Mapping[str, Any], *, name: str, strict: bool) -> dict[str, Any]:
    """Make a `json_schema` response_format; `name` is cut to the API's 64 [A-Za-z0-9_-] chars."""
    clean = _SCHEMA_NAME_BAD.sub("_", name)[:64] or "output"
    return {
        "type": "json_schema",
        "json_schema": {"name": clean, "schema": dict(schema), "strict": strict},
    }


def build_body(
    model: str,
    messages: Sequence[Message],
    *,
    params: Mapping[str, Any] | None = None,
    response_format: Mapping[str, Any] | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
    tool_choice: Any = None,
    stream: bool = False,
) -> dict[str, Any]:
    """Build a Chat Completions request body as OpenAI's API reference defines it.

    None values are left out. For reasoning models `max_tokens` becomes `max_completion_tokens`
    and sampling parameters they reject raise ConfigError instead of a 400 from the server.
    """
    if not model:
        raise ValueError("model must be a non-empty string")
    if not messages:
        raise ValueError("messages must not be empty")
    for message in messages:
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise ValueError(f"each message needs a string `role`, got {message!r:.80}")
    body: dict[str, Any] = {"model": model, "messages": [dict(m) for m in messages]}
    given = {k: v for k, v in (params or {}).items() if v is not None}
    for key in _OWN_ARGUMENTS:
        if key in given:
            raise ConfigError(f"`{key}` cannot be given in params; it has its own setting")
    if "max_tokens" in given and "max_completion_tokens" in given:
        raise ConfigError(
            f"model {model} got both max_tokens and max_completion_tokens; keep one of them"
        )
    if is_reasoning_model(model):
        given = _reasoning_params(model, given)
    if not tools and ("parallel_tool_calls" in given or tool_choice is not None):
        name = "tool_choice" if tool_choice is not None else "parallel_tool_calls"
        raise ConfigError(f"`{name}` is only allowed when tools are given")
    options = given.pop("stream_options", None)
    if options is not None and not stream:
        raise ConfigError("`stream_options` is only allowed when streaming")
    body.update(given)
    if response_format is not None:
        body["response_format"] = _checked_response_format(response_format)
    if tools:
        body["tools"] = [dict(t) for t in tools]
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True, **(options or {})}
    return body


def _reasoning_params(model: str, given: dict[str, Any]) -> dict[str, Any]:
    name = _bare_model(model)
    effort_none = given.get("reasoning_effort") == "none" and _accepts_effort_none(name)
    out = dict(given)
    for key, default in _REASONING_DEFAULTS.items():
        if key not in out or (effort_none and key in _EFFORT_NONE_ALLOWS):
            continue
        if out[key] == default and default is not None:
            del out[key]  # the default is what the model uses anyway; some reject it even so
            continue
        unless = ' unless reasoning_effort is "none"' if key in _EFFORT_NONE_ALLOWS else ""
        if unless and not _accepts_effort_none(name):
            unless = ""
        raise ConfigError(
            f"model {model} does not accept {key}={out[key]!r}{unless}; remove `{key}` from params"
        )
    if "stop" in out and _REJECTS_STOP.match(name):
        raise ConfigError(f"model {model} does not accept stop; remove `stop` from params")
    if "max_tokens" in out:
        out["max_completion_tokens"] = out.pop("max_tokens")
    return out


def _checked_response_format(fmt: Mapping[str, Any]) -> dict[str, Any]:
    kind = fmt.get("type")
    if kind not in ("text", "json_object", "json_schema"):
        raise ConfigError(
            f"response_format type {kind!r} is not one of 'text', 'json_object', 'json_schema'"
        )
    if kind == "json_schema":
        inner = fmt.get("json_schema")
        name = inner.get("name") if isinstance(inner, Mapping) else None
        if not isinstance(name, str) or not name or _SCHEMA_NAME_BAD.search(name) or len(name) > 64:
            raise ConfigError(
                "response_format json_schema needs a `name` of 1-64 letters, digits, _ or -"
            )
    return dict(fmt)


# --- secrets --------------------------------------------------------------------------------

_SK_TOKEN = re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_*\-]{6,}")


def _redactor(secrets: Sequence[str]) -> Callable[[str], str]:
    """Replace each secret, and anything that looks like an OpenAI key, with `sk-***`."""
    known = tuple(s for s in secrets if len(s) >= 4)

    def redact(text: str) -> str:
        for secret in known:
            if secret in text:
                text = text.replace(secret, "sk-***")
        return _SK_TOKEN.sub("sk-***", text) if "sk-" in text else text

    return redact


def _no_redaction(text: str) -> str:
    return _SK_TOKEN.sub("sk-***", text) if "sk-" in text else text


# --- error replies --------------------------------------------------------------------------


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Read the server's wait in seconds: `retry-after-ms`, else `Retry-After` (seconds or an
    HTTP date, counted from the reply's `Date` header, else from `now` / the clock)."""
    millis = _finite(headers.get("retry-after-ms"))
    if millis is not None:
        return max(0.0, millis / 1000)
    value = headers.get("retry-after")
    if not value:
        return None
    seconds = _finite(value)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    reference = now if now is not None else time.time()
    date = headers.get("date")
    if date:
        with contextlib.suppress(TypeError, ValueError, IndexError):
            reference = parsedate_to_datetime(date).timestamp()
    return max(0.0, when - reference)


def _finite(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _api_error(content: bytes) -> dict[str, Any] | None:
    """OpenAI's `{"error": {...}}`, or the `{"error": "..."}` / `{"detail": ...}` that some
    OpenAI-compatible servers send; None when the body is not JSON."""
    try:
        data = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    error = data.get("error", data)
    if isinstance(error, str):
        return {"message": error}
    if not isinstance(error, dict):
        return None
    if "message" not in error and "detail" in error:
        return {"message": _detail_text(error["detail"])}
    return error


def _detail_text(detail: Any) -> str:
    """FastAPI-style `detail`: a string, or a list of {"loc": [...], "msg": ...} problems."""
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', ()))}: {d.get('msg')}"
            if isinstance(d, dict)
            else str(d)
            for d in detail
        )
    return str(detail)


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    content: bytes,
    *,
    url: str,
    redact: Callable[[str], str] = _no_redaction,
    reason: str = "",
    now: float | None = None,
) -> HTTPStatusFailure:
    """Turn an error reply (any status outside 2xx) into the HTTPStatusFailure subclass that says
    what to do about it. `headers` must look names up case-insensitively (httpx2.Headers does)."""
    error = _api_error(content)
    raw = content.decode("utf-8", "replace")
    excerpt = redact(raw[:EXCERPT_CHARS])
    if error is not None:
        message = str(error.get("message") or "").strip() or reason or "no message"
        type_, code, param = (
            _text(error.get("type")),
            _text(error.get("code")),
            _text(error.get("param")),
        )
    else:
        flat = " ".join(raw.split())
        # An HTML page from a proxy says nothing useful in its first 200 characters.
        message = flat[:200] if flat and not flat.startswith("<") else reason or "no message"
        type_ = code = param = None
    request_id = headers.get("x-request-id")
    details = ", ".join(
        x for x in (type_, code and f"code {code}", param and f"param {param}") if x
    )
    if request_id:
        details = f"{details}; request {request_id}" if details else f"request {request_id}"
    cls, hint, retry_after = _classify(status, code, param, message, headers, now)
    if len(message) > 300:
        message = message[:299] + "…"  # the whole body stays in body_excerpt
    text = f"{status} from {url}: {message.rstrip('.')}"
    text += f" ({details})." if details else "."
    if status in (301, 302, 303, 307, 308):
        hint = f"The server redirects to {headers.get('location') or '?'}: check base_url."
    text = redact(f"{text} {hint}" if hint else text)
    kw: dict[str, Any] = {
        "status": status,
        "url": url,
        "request_id": request_id,
        "body_excerpt": excerpt,
        "type": type_,
        "code": code,
        "param": param,
        "headers": {
            k.lower(): v for k, v in headers.items() if k.lower().startswith("x-ratelimit-")
        },
    }
    if cls is RateLimited or cls is ServerFailed:
        return cls(text, retry_after=retry_after, **kw)
    return cls(text, **kw)


def _classify(
    status: int,
    code: str | None,
    param: str | None,
    message: str,
    headers: Mapping[str, str],
    now: float | None,
) -> tuple[type[HTTPStatusFailure], str, float | None]:
    """Pick the error class and the sentence that tells a person what to do."""
    if status == 429:
        if code == "insufficient_quota":
            return (
                QuotaExhausted,
                "The account is out of quota: check its plan and billing; retries cannot help.",
                None,
            )
        wait = parse_retry_after(headers, now=now)
        after = f"the server asks to wait {wait:g} s" if wait is not None else "slow down"
        return (
            RateLimited,
            f"Rate limited: {after}; lower `rate` (rpm, tpm, concurrency) if it keeps happening.",
            wait,
        )
    if status >= 500 or status in (408, 409):
        return (
            ServerFailed,
            "The server failed; another try may succeed.",
            parse_retry_after(headers, now=now),
        )
    if status == 401:
        return (
            AuthenticationFailed,
            "Check the API key (OPENAI_API_KEY, or the variable the spec's "
            "provider.api_key_env names).",
            None,
        )
    if status == 403:
        return (
            PermissionDenied,
            "The key may not use this model or endpoint: check its project, organization "
            "and permissions.",
            None,
        )
    if status == 404:
        if code == "model_not_found" or "model" in message.lower():
            return NotFound, "Check `model`: this server does not serve it to this key.", None
        return NotFound, "Check base_url: OpenAI-compatible servers usually end in /v1.", None
    if param:
        return (
            BadRequest,
            f"Fix `{param}` in the request; resending it unchanged cannot work.",
            None,
        )
    return BadRequest, "The server refused the request; resending it unchanged cannot work.", None


# --- transport errors -----------------------------------------------------------------------

# Every httpx2.HTTPError subclass that httpx2 exports, mapped to the error runner raises and
# what to say. tests/test_client.py fails when httpx2 exports a class missing here. The most
# specific class of an exception wins (its MRO is walked), so unexported subclasses map too.
_TRANSPORT_ERRORS: dict[type[Exception], tuple[type[RunnerError], str]] = {
    httpx2.ConnectTimeout: (ConnectFailed, "could not connect to {url} in time ({detail})"),
    httpx2.ReadTimeout: (ReadTimedOut, "{url} stopped sending before the reply was complete"),
    httpx2.WriteTimeout: (ReadTimedOut, "could not send the request to {url} in time"),
    httpx2.PoolTimeout: (ReadTimedOut, "no free connection to {url} in time (all in use)"),
    httpx2.TimeoutException: (ReadTimedOut, "timed out talking to {url} ({detail})"),
    httpx2.ConnectError: (
        ConnectFailed,
        "could not connect to {url} ({detail}); check base_url and the network",
    ),
    httpx2.ReadError: (ConnectFailed, "the connection to {url} broke while reading ({detail})"),
    httpx2.WriteError: (ConnectFailed, "the connection to {url} broke while sending ({detail})"),
    httpx2.CloseError: (ConnectFailed, "the connection to {url} failed to close ({detail})"),
    httpx2.NetworkError: (ConnectFailed, "network failure talking to {url} ({detail})"),
    httpx2.RemoteProtocolError: (ConnectFailed, "{url} broke the HTTP protocol ({detail})"),
    httpx2.ProtocolError: (ConnectFailed, "HTTP protocol failure with {url} ({detail})"),
    httpx2.ProxyError: (ConnectFailed, "the proxy failed for {url} ({detail})"),
    httpx2.LocalProtocolError: (
        ConfigError,
        "cannot send this request to {url} ({detail}); check base_url and headers",
    ),
    httpx2.UnsupportedProtocol: (
        ConfigError,
        "cannot send a request to {url} ({detail}); base_url must start with http:// or https://",
    ),
    httpx2.SSEError: (StreamBroken, "malformed event stream from {url} ({detail})"),
    httpx2.TransportError: (ConnectFailed, "transport failure talking to {url} ({detail})"),
    httpx2.DecodingError: (StreamBroken, "could not decode the reply from {url} ({detail})"),
    httpx2.TooManyRedirects: (ConfigError, "too many redirects from {url}; check base_url"),
    httpx2.RequestError: (ConnectFailed, "the request to {url} failed ({detail})"),
    httpx2.HTTPStatusError: (BadRequest, "{detail}"),  # never raised here: no raise_for_status
    httpx2.HTTPError: (ConnectFailed, "HTTP failure talking to {url} ({detail})"),
}


def error_from_transport(
    exc: httpx2.HTTPError,
    *,
    url: str,
    request_id: str | None = None,
    limit: float | None = None,
    redact: Callable[[str], str] = _no_redaction,
) -> RunnerError:
    """Translate an httpx2 exception into runner's error; the caller chains it `from exc`."""
    if isinstance(exc, httpx2.HTTPStatusError):
        response = exc.response
        try:
            content = response.content
        except httpx2.ResponseNotRead:
            content = b""
        return error_from_response(
            response.status_code, response.headers, content, url=url, redact=redact
        )
    cls, template = next(_TRANSPORT_ERRORS[k] for k in type(exc).__mro__ if k in _TRANSPORT_ERRORS)
    detail = str(exc) or type(exc).__name__
    message = template.format(url=url, detail=detail)
    if cls is ReadTimedOut and limit is not None:
        message += f" within the {limit:g} s timeout; raise `timeout` if the model needs longer"
    message = redact(message)
    if issubclass(cls, ProviderError):
        return cls(message, url=url, request_id=request_id)
    return cls(message)


# --- replies --------------------------------------------------------------------------------


def _loads(raw: bytes, url: str, request_id: str | None) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StreamBroken(
            f"malformed reply from {url}: not JSON ({exc})", url=url, request_id=request_id
        ) from exc


def _content_text(content: Any) -> str | None:
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):  # some compatible servers answer with content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def _completion_from_reply(
    data: Any,
    *,
    url: str,
    request_id: str | None,
    model: str,
    latency_ms: float,
    rate_headers: Mapping[str, str],
) -> Completion:
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        error = data.get("error") if isinstance(data, dict) else None
        why = (
            f"the server reported an error: {error.get('message', error)}"
            if isinstance(error, dict)
            else "no `choices` list"
        )
        raise StreamBroken(f"malformed reply from {url}: {why}", url=url, request_id=request_id)
    choices = []
    try:
        for position, item in enumerate(data["choices"]):
            message = item.get("message") or {}
            choices.append(
                Choice(
                    index=item.get("index", position),
                    text=_content_text(message.get("content")),
                    finish_reason=item.get("finish_reason"),
                    refusal=message.get("refusal") or None,
                    tool_calls=tuple(message.get("tool_calls") or ()),
                    function_call=message.get("function_call") or None,
                )
            )
    except (AttributeError, TypeError) as exc:
        raise StreamBroken(
            f"malformed reply from {url}: a choice is not an object ({exc})",
            url=url,
            request_id=request_id,
        ) from exc
    choices.sort(key=lambda c: c.index)
    return Completion(
        id=str(data.get("id") or ""),
        model=str(data.get("model") or model),
        choices=tuple(choices),
        usage=Usage.from_api(usage) if isinstance(usage := data.get("usage"), dict) else None,
        request_id=request_id,
        latency_ms=latency_ms,
        system_fingerprint=data.get("system_fingerprint"),
        rate_headers=rate_headers,
    )


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
            tool_calls=tuple(_joined(self.tools[k]) for k in sorted(self.tools)),
            function_call=_joined(self.function) if self.function is not None else None,
        )


# Fragments of these fields are concatenated; any other string field keeps its first value
# (some servers repeat the id and name on every fragment).
_CONCATENATED = frozenset({"arguments", "input"})


def _merge(into: dict[str, Any], fragment: Mapping[str, Any]) -> None:
    for key, value in fragment.items():
        if key == "index" or value is None:
            continue
        if isinstance(value, Mapping):
            _merge(into.setdefault(key, {}), value)
        elif key in _CONCATENATED and isinstance(value, str):
            into.setdefault(key, []).append(value)
        elif key not in into or into[key] in ("", None):
            into[key] = value


def _joined(parts: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: "".join(v) if isinstance(v, list) else _joined(v) if isinstance(v, dict) else v
        for k, v in parts.items()
    }


class _StreamAssembler:
    """Builds a Completion from SSE events; raises StreamBroken for error events and bad data."""

    def __init__(
        self, *, url: str, request_id: str | None, n: int, on_delta: OnDelta | None, t0: float
    ) -> None:
        self.url, self.request_id, self.n, self.on_delta, self.t0 = url, request_id, n, on_delta, t0
        self.choices: dict[int, _ChoiceParts] = {}
        self.meta: dict[str, Any] = {}
        self.usage: Any = None
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
            chunk = json.loads(data)
        except ValueError:
            self._fail(f"malformed event stream from {self.url}: data is not JSON: {data[:80]!r}")
        if not isinstance(chunk, dict):
            self._fail(f"malformed event stream from {self.url}: data is not an object")
        if "error" in chunk and not chunk.get("choices"):
            self._fail(self._error_text(data))
        if not self.meta:
            self.meta = {k: chunk.get(k) for k in ("id", "model", "system_fingerprint")}
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        try:
            for item in chunk.get("choices") or ():
                self._feed_choice(item)
        except (AttributeError, TypeError) as exc:
            self._pending.clear()
            self._fail(f"malformed event stream from {self.url}: {exc}")
        if self._pending and self.on_delta is not None:
            # Called once the chunk is whole, so an error in the callback is never mistaken for
            # a malformed stream.
            for delta in self._pending:
                self.on_delta(delta)
            self._pending.clear()
        return False

    def _feed_choice(self, item: dict[str, Any]) -> None:
        index = item.get("index", 0)
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
                self._first_token()
                if self.on_delta is not None:
                    self._pending.append(StreamDelta(index, text=text))
        refusal = delta.get("refusal")
        if refusal is not None:
            if parts.refusal is None:
                parts.refusal = []
            if refusal:
                parts.refusal.append(_str(refusal, "refusal"))
                self._first_token()
                if self.on_delta is not None:
                    self._pending.append(StreamDelta(index, refusal=refusal))
        for call in delta.get("tool_calls") or ():
            _merge(parts.tools.setdefault(call.get("index", 0), {}), call)
            self._first_token()
        if delta.get("function_call"):
            if parts.function is None:
                parts.function = {}
            _merge(parts.function, delta["function_call"])
            self._first_token()
        if item.get("finish_reason"):
            parts.finish = item["finish_reason"]

    def _first_token(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = (time.perf_counter() - self.t0) * 1000

    def _error_text(self, data: str) -> str:
        error = _api_error(data.encode()) or {"message": data[:200] or "no details"}
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
            id=str(self.meta.get("id") or ""),
            model=str(self.meta.get("model") or model),
            choices=tuple(self.choices[i].choice(i) for i in sorted(self.choices)),
            usage=Usage.from_api(self.usage),
            request_id=self.request_id,
            latency_ms=(time.perf_counter() - self.t0) * 1000,
            ttft_ms=self.ttft_ms,
            system_fingerprint=self.meta.get("system_fingerprint"),
            rate_headers=rate_headers,
        )

    def _finished(self, index: int) -> bool:
        parts = self.choices.get(index)
        return parts is not None and parts.finish is not None


def _str(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"delta {field} is {type(value).__name__}, not a string")
    return value


def _rate_headers(headers: httpx2.Headers) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.startswith("x-ratelimit-")}


# --- in-process ASGI serving ----------------------------------------------------------------

_END = object()
_Receive = Callable[[], Awaitable[dict[str, Any]]]
_Send = Callable[[Mapping[str, Any]], Awaitable[None]]


class _QueueStream(httpx2.AsyncByteStream):
    def __init__(self, queue: asyncio.Queue[Any], task: asyncio.Task[None], gone: asyncio.Event):
        self._queue, self._task, self._gone = queue, task, gone

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def aclose(self) -> None:
        self._gone.set()
        if not self._task.done():
            self._task.cancel()
            # wait() never raises the task's error; a cancellation of our own still propagates.
            await asyncio.wait({self._task})


class ASGIStreamTransport(httpx2.AsyncBaseTransport):
    """Serve requests from an ASGI app in-process, handing body chunks over as the app sends
    them (httpx2.ASGITransport buffers the whole reply, which would flatten a stream).

    An app that fails before starting its reply looks like a server that hung up
    (RemoteProtocolError); one that fails or stops mid-reply looks like a dropped connection
    (ReadError). The lifespan protocol is not run.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": ("127.0.0.1", 123),
            "root_path": "",
        }
        loop = asyncio.get_running_loop()
        started: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = loop.create_future()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        gone = asyncio.Event()
        state = {"sent_request": False, "finished": False}

        async def receive() -> dict[str, Any]:
            if not state["sent_request"]:
                state["sent_request"] = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Mapping[str, Any]) -> None:
            if message["type"] == "http.response.start" and not started.done():
                started.set_result((message["status"], list(message.get("headers", []))))
            elif message["type"] == "http.response.body" and not state["finished"]:
                if message.get("body"):
                    queue.put_nowait(bytes(message["body"]))
                if not message.get("more_body", False):
                    state["finished"] = True
                    queue.put_nowait(_END)

        def app_done(task: asyncio.Task[None]) -> None:
            error = None if task.cancelled() else task.exception()
            if not started.done():
                detail = f": the app raised {error!r}" if error else ""
                started.set_exception(
                    httpx2.RemoteProtocolError(f"Server disconnected without a response{detail}")
                )
            elif not state["finished"]:
                state["finished"] = True
                why = f"the app raised {error!r}" if error else "the app stopped"
                queue.put_nowait(httpx2.ReadError(f"{why} before the reply was complete"))

        task = asyncio.ensure_future(self.app(scope, receive, send))
        task.add_done_callback(app_done)
        try:
            status, headers = await started
        except BaseException:
            gone.set()
            task.cancel()
            raise
        return httpx2.Response(status, headers=headers, stream=_QueueStream(queue, task, gone))


# --- the client -----------------------------------------------------------------------------

_RESERVED_HEADERS = frozenset({"content-type", "accept", "content-length", "host"})


def _header_value(name: str, value: str) -> str:
    """Refuse a value that cannot travel in an HTTP header, without echoing it (it may be a key)."""
    if not value.isascii() or any(c in value for c in "\r\n\0"):
        raise ConfigError(
            f"the {name} value contains characters that cannot be sent in an HTTP header "
            "(non-ASCII, or a line break): check for stray quotes or spaces"
        )
    return value


class ChatClient:
    """An OpenAI-compatible Chat Completions client: one HTTP request per call, no retries."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 120.0,
        connect_timeout: float = 10.0,
        max_connections: int = 100,
        transport: httpx2.AsyncBaseTransport | None = None,
        asgi_app: Any | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if transport is not None and asgi_app is not None:
            raise ValueError("give transport or asgi_app, not both")
        if timeout <= 0 or connect_timeout <= 0 or max_connections < 1:
            raise ValueError("timeouts must be positive and max_connections at least 1")
        if None in (base_url, api_key, organization, project):
            env = openai_env(environ)
            base_url = env.base_url if base_url is None else base_url
            api_key = env.api_key if api_key is None else api_key
            organization = env.organization if organization is None else organization
            project = env.project if project is None else project
        base = (base_url or DEFAULT_BASE_URL).rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise ConfigError(f"base URL {base!r} must start with http:// or https://")
        self.base_url = base
        self.timeout = float(timeout)
        self._chat_url = f"{base}/chat/completions"
        self._models_url = f"{base}/models"
        self._has_key = bool(api_key)
        self.organization = organization or None
        self.project = project or None

        common: dict[str, str] = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"}
        secrets: list[str] = []
        if api_key:
            common["Authorization"] = f"Bearer {_header_value('API key', api_key)}"
            secrets.append(api_key)
        if self.organization:
            common["OpenAI-Organization"] = _header_value("organization", self.organization)
        if self.project:
            common["OpenAI-Project"] = _header_value("project", self.project)
        for name, value in (headers or {}).items():
            lower = name.lower()
            if lower in _RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by the client for each request")
            if lower == "authorization" and api_key:
                raise ValueError("give the key as api_key or as an Authorization header, not both")
            if lower in ("authorization", "api-key", "x-api-key"):
                secrets.append(value.split(" ", 1)[-1])
            existing = next((k for k in common if k.lower() == lower), name)
            common.pop(existing, None)
            common[name] = _header_value(f"{name} header", value)
        self._redact = _redactor(secrets)
        # Parsed once: httpx2 copies a Headers or URL object faster than it parses a dict or str.
        json_type = {"Content-Type": "application/json"}
        self._json_headers = httpx2.Headers({**common, **json_type, "Accept": "application/json"})
        self._sse_headers = httpx2.Headers({**common, **json_type, "Accept": "text/event-stream"})
        self._get_headers = httpx2.Headers({**common, "Accept": "application/json"})
        self._chat_target = httpx2.URL(self._chat_url)
        self._models_target = httpx2.URL(self._models_url)
        self._connect_timeout = float(connect_timeout)
        self._timeouts: dict[float, dict[str, float]] = {}
        if asgi_app is not None:
            transport = ASGIStreamTransport(asgi_app)
        limits = httpx2.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        # A transport we build ourselves gets retries=0 (httpx2's default): policy retries, once.
        self._http = httpx2.AsyncClient(
            limits=limits,
            timeout=httpx2.Timeout(
                timeout, connect=connect_timeout, read=timeout, write=timeout, pool=timeout
            ),
            transport=transport,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        key = "<set>" if self._has_key else "<unset>"
        return (
            f"ChatClient(base_url={self.base_url!r}, api_key={key}, "
            f"organization={self.organization!r}, project={self.project!r})"
        )

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    def _extensions(self, limit: float) -> dict[str, Any]:
        found = self._timeouts.get(limit)
        if found is None:
            found = self._timeouts[limit] = {
                "connect": min(self._connect_timeout, limit),
                "read": limit,
                "write": limit,
                "pool": limit,
            }
        return {"timeout": found}

    @contextlib.asynccontextmanager
    async def _exchange(
        self,
        method: str,
        target: httpx2.URL,
        headers: httpx2.Headers,
        content: bytes | None,
        limit: float,
    ) -> AsyncIterator[httpx2.Response]:
        """Send one request and yield its open response; translate every failure, and cancel
        the request (closing the response) when `limit` seconds pass or the caller cancels."""
        url = self._chat_url if target is self._chat_target else self._models_url
        request = httpx2.Request(
            method, target, content=content, headers=headers, extensions=self._extensions(limit)
        )
        deadline = asyncio.timeout(limit)
        response: httpx2.Response | None = None
        try:
            async with deadline:
                response = await self._http.send(request, stream=True)
                try:
                    yield response
                finally:
                    await response.aclose()
        except TimeoutError as exc:
            if not deadline.expired():
                raise
            raise ReadTimedOut(
                f"no complete reply from {url} within the {limit:g} s timeout; the request was "
                "cancelled. Raise `timeout` if the model needs longer.",
                url=url,
                request_id=None if response is None else response.headers.get("x-request-id"),
            ) from exc
        except httpx2.HTTPError as exc:
            request_id = None if response is None else response.headers.get("x-request-id")
            raise error_from_transport(
                exc, url=url, request_id=request_id, limit=limit, redact=self._redact
            ) from exc

    async def _raise_for_status(self, response: httpx2.Response, url: str) -> None:
        if response.status_code >= 300 or response.status_code < 200:
            content = await response.aread()
            raise error_from_response(
                response.status_code,
                response.headers,
                content,
                url=url,
                redact=self._redact,
                reason=response.reason_phrase,
            )

    def _limit(self, timeout: float | None) -> float:
        if timeout is None:
            return self.timeout
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        return float(timeout)

    async def complete(
        self, body: Mapping[str, Any], *, timeout: float | None = None
    ) -> Completion:
        """Send a non-streaming request and return the whole completion (every choice)."""
        if body.get("stream"):
            raise ValueError("complete() got a body with stream: true; call stream() instead")
        url, limit = self._chat_url, self._limit(timeout)
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        t0 = time.perf_counter()
        async with self._exchange(
            "POST", self._chat_target, self._json_headers, content, limit
        ) as response:
            await self._raise_for_status(response, url)
            raw = await response.aread()
            request_id = response.headers.get("x-request-id")
            completion = _completion_from_reply(
                _loads(raw, url, request_id),
                url=url,
                request_id=request_id,
                model=str(body.get("model") or ""),
                latency_ms=(time.perf_counter() - t0) * 1000,
                rate_headers=_rate_headers(response.headers),
            )
        self._log(completion)
        return completion

    async def stream(
        self,
        body: Mapping[str, Any],
        *,
        timeout: float | None = None,
        on_delta: OnDelta | None = None,
    ) -> Completion:
        """Send a streaming request; hand text and refusal deltas to `on_delta` as they arrive
        and return the assembled completion. A reply that is plain JSON is accepted as whole."""
        if not body.get("stream"):
            raise ValueError("stream() needs a body built with stream=True")
        url, limit = self._chat_url, self._limit(timeout)
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        model = str(body.get("model") or "")
        t0 = time.perf_counter()
        async with self._exchange(
            "POST", self._chat_target, self._sse_headers, content, limit
        ) as response:
            await self._raise_for_status(response, url)
            request_id = response.headers.get("x-request-id")
            rate_headers = _rate_headers(response.headers)
            if response.headers.get("content-type", "").startswith("application/json"):
                raw = await response.aread()
                completion = _completion_from_reply(
                    _loads(raw, url, request_id),
                    url=url,
                    request_id=request_id,
                    model=model,
                    latency_ms=(time.perf_counter() - t0) * 1000,
                    rate_headers=rate_headers,
                )
            else:
                n = body.get("n")
                assembler = _StreamAssembler(
                    url=url,
                    request_id=request_id,
                    n=n if isinstance(n, int) else 1,
                    on_delta=on_delta,
                    t0=t0,
                )
                events = cast(
                    "AsyncGenerator[httpx2.ServerSentEvent, None]",
                    httpx2.EventSource(response).__aiter__(),
                )
                try:
                    async for event in events:
                        if assembler.feed(event):
                            break
                finally:
                    await events.aclose()  # now, rather than by a finalizer task later
                completion = assembler.completion(model=model, rate_headers=rate_headers)
        self._log(completion)
        return completion

    async def list_models(self) -> list[str]:
        """Return the ids of the models the server offers, sorted."""
        url = self._models_url
        async with self._exchange(
            "GET", self._models_target, self._get_headers, None, self.timeout
        ) as response:
            await self._raise_for_status(response, url)
            request_id = response.headers.get("x-request-id")
            data = _loads(await response.aread(), url, request_id)
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise StreamBroken(
                f"malformed reply from {url}: no `data` list", url=url, request_id=request_id
            )
        return sorted(str(m["id"]) for m in items if isinstance(m, dict) and "id" in m)

    def _log(self, completion: Completion) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s served %s in %.0f ms (request %s)",
                self._chat_url,
                completion.model,
                completion.latency_ms,
                completion.request_id,
            )


# --- the synchronous façade -----------------------------------------------------------------


class SyncChatClient:
    """ChatClient for synchronous callers: the async client runs on a private event loop in a
    background thread, so there is one request code path. `on_delta` runs in that thread."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 120.0,
        connect_timeout: float = 10.0,
        max_connections: int = 100,
        transport: httpx2.AsyncBaseTransport | None = None,
        asgi_app: Any | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        # Built first, so a configuration error leaves no thread behind.
        self._client = ChatClient(
            base_url=base_url,
            api_key=api_key,
            organization=organization,
            project=project,
            headers=headers,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
            transport=transport,
            asgi_app=asgi_app,
            environ=environ,
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="runner-client", daemon=True
        )
        self._thread.start()
        self._closed = False

    def __repr__(self) -> str:
        return f"Sync{self._client!r}"

    def __enter__(self) -> SyncChatClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise RuntimeError("this SyncChatClient is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # e.g. KeyboardInterrupt: cancel the request in the loop too
            raise

    def complete(self, body: Mapping[str, Any], *, timeout: float | None = None) -> Completion:
        """Send a non-streaming request and return the whole completion."""
        return self._run(self._client.complete(body, timeout=timeout))

    def stream(
        self,
        body: Mapping[str, Any],
        *,
        timeout: float | None = None,
        on_delta: OnDelta | None = None,
    ) -> Completion:
        """Send a streaming request; `on_delta` is called from the client's thread."""
        return self._run(self._client.stream(body, timeout=timeout, on_delta=on_delta))

    def list_models(self) -> list[str]:
        """Return the ids of the models the server offers, sorted."""
        return self._run(self._client.list_models())

    def close(self) -> None:
        """Close the connection pool and stop the background loop."""
        if self._closed:
            return
        try:
            self._run(self._client.aclose())
        finally:
            self._closed = True
            self._stop()

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
