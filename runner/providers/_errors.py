"""Every failure an HTTP exchange can meet, mapped once into runner.errors: error replies (status,
body, Retry-After) and httpx2 exceptions, with secrets redacted from every message. It knows no
wire format: a wire recognises its own refusals through `WireErrors`. It builds exceptions and
never raises, retries or sends anything itself.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx2

from runner import redact as _redact
from runner.errors import (
    AuthenticationFailed,
    BadRequest,
    ConfigError,
    ConnectFailed,
    HTTPStatusFailure,
    NotFound,
    OutputModeUnsupported,
    PermissionDenied,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    ReadTimedOut,
    RunnerError,
    ServerFailed,
    StreamBroken,
)
from runner.providers._json import reply_json

__all__ = [
    "WireErrors",
    "api_error",
    "error_from_response",
    "error_from_transport",
    "parse_retry_after",
    "redactor",
]

EXCERPT_CHARS = 500
_TAG = re.compile(r"<[^>]*>")


class WireErrors(Protocol):
    """What a wire API says about error replies only it can read (runner.providers.wire)."""

    def refuses_output_format(
        self, status: int, code: str | None, param: str | None, message: str
    ) -> str | None: ...

    def missing_endpoint_hint(self, status: int, message: str) -> str | None: ...


# --- secrets --------------------------------------------------------------------------------


def redactor(secrets: Sequence[str]) -> Callable[[str], str]:
    """Remember these secrets process-wide (runner.redact owns them) and return the function
    that masks them, with anything that looks like a key, as `sk-***`."""
    _redact.remember(secrets)
    return _redact.redact


_no_redaction = _redact.redact  # the process-wide secrets and the key-shaped net still apply


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


def api_error(content: bytes) -> dict[str, Any] | None:
    """OpenAI's `{"error": {...}}`, or the `{"error": "..."}` / `{"detail": ...}` that some
    OpenAI-compatible servers send; None when the body is not JSON."""
    try:
        data = reply_json(content)
    except (ValueError, UnicodeDecodeError, RecursionError):
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


def _masked(value: Any, redact: Callable[[str], str]) -> str | None:
    return None if value is None or value == "" else redact(str(value))


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    content: bytes,
    *,
    url: str,
    redact: Callable[[str], str] = _no_redaction,
    reason: str = "",
    now: float | None = None,
    wire: WireErrors | None = None,
) -> HTTPStatusFailure:
    """Turn an error reply (any status outside 2xx) into the HTTPStatusFailure subclass that says
    what to do about it; `wire` recognises the refusals of its own format. `headers` must look
    names up case-insensitively (httpx2.Headers does)."""
    error = api_error(content)
    # Mask the whole body before anything is cut from it: a key cut in half is not masked.
    raw = redact(content.decode("utf-8", "replace"))
    excerpt = raw[:EXCERPT_CHARS]
    if error is not None:
        message = redact(str(error.get("message") or "")).strip() or reason or "no message"
        type_, code, param = (
            _masked(error.get("type"), redact),
            _masked(error.get("code"), redact),
            _masked(error.get("param"), redact),
        )
    else:
        # Shown as the server sent it, cut (and masked above): a plain string, a `detail`
        # object's text, or an HTML page's text without its tags (a proxy's error page).
        text = _TAG.sub(" ", raw) if raw.lstrip().startswith("<") else raw
        flat = " ".join(text.split())
        message = (flat[:199] + "…" if len(flat) > 200 else flat) or reason or "no message"
        type_ = code = param = None
    request_id = headers.get("x-request-id")
    if request_id is not None and len(request_id) > 256:
        request_id = None  # not a request id: an echo of something else
    request_id = _masked(request_id, redact)
    details = ", ".join(
        x for x in (type_, code and f"code {code}", param and f"param {param}") if x
    )
    if request_id:
        details = f"{details}; request {request_id}" if details else f"request {request_id}"
    cls, hint, retry_after = _classify(status, code, param, message, headers, now, url, wire)
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
            k.lower(): redact(v) for k, v in headers.items() if k.lower().startswith("x-ratelimit-")
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
    url: str,
    wire: WireErrors | None,
) -> tuple[type[HTTPStatusFailure], str, float | None]:
    """Pick the error class and the sentence that tells a person what to do."""
    refusal = None if wire is None else wire.refuses_output_format(status, code, param, message)
    if refusal is not None:
        return OutputModeUnsupported, refusal, None
    if status in (404, 405) and wire is not None:
        missing = wire.missing_endpoint_hint(status, message)
        if missing is not None:
            return (NotFound if status == 404 else BadRequest), missing, None
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
        if "/v1/" not in urlsplit(url).path + "/":
            return NotFound, "Check base_url: OpenAI-compatible servers usually end in /v1.", None
        return NotFound, "Check base_url and `model`: the server has nothing at this URL.", None
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
    detail = redact(str(exc)) or type(exc).__name__
    message = template.format(url=url, detail=detail)
    if cls is ReadTimedOut and limit is not None:
        message += f" within the {limit:g} s timeout; raise `timeout` if the model needs longer"
    message = redact(message)
    if issubclass(cls, ProviderError):
        return cls(message, url=url, request_id=request_id)
    return cls(message)
