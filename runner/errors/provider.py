"""The errors of the endpoint (transport, HTTP statuses, batches) and of the reply (invalid,
refused, truncated, empty output). The tree is drawn in runner.errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from runner.redact import redact

if TYPE_CHECKING:
    from runner.types import Usage

from runner.errors.core import RunnerError

__all__ = [
    "AuthenticationFailed",
    "BadRequest",
    "BatchRowLost",
    "ConnectFailed",
    "DeadlineExceeded",
    "HTTPStatusFailure",
    "NotFound",
    "OutputEmpty",
    "OutputError",
    "OutputInvalid",
    "OutputModeUnsupported",
    "OutputRefused",
    "OutputTruncated",
    "PermissionDenied",
    "ProviderError",
    "QuotaExhausted",
    "RateLimited",
    "ReadTimedOut",
    "Rejected",
    "ReplyTooLarge",
    "ServerFailed",
    "StreamBroken",
]


# --- the endpoint: exit 1 -------------------------------------------------------------------


class ProviderError(RunnerError):
    """The endpoint could not give an answer."""

    kind = "provider"

    def __init__(self, message: str, *, url: str = "", request_id: str | None = None) -> None:
        super().__init__(message)
        self.url = redact(url)
        # A server may echo anything in x-request-id, the key included.
        self.request_id = None if request_id is None else redact(request_id)


class ConnectFailed(ProviderError):
    """No connection, or it dropped before the reply was complete."""

    retryable = True
    kind = "connection"


class ReadTimedOut(ProviderError):
    """One attempt ran past its `timeout`."""

    retryable = True
    kind = "timeout"


class DeadlineExceeded(ReadTimedOut):
    """The whole call, retries and waits included, ran past its `deadline`."""

    retryable = False
    kind = "deadline"


class StreamBroken(ProviderError):
    """A stream that was malformed, reported an error, or ended before it finished."""

    retryable = True
    kind = "connection"


class ReplyTooLarge(StreamBroken):
    """A reply past the client's size cap (`max_reply_bytes`): not read further, not retried."""

    retryable = False
    kind = "reply_too_large"


class BatchRowLost(ProviderError):
    """A batch ended without a usable answer for this row: it expired or was cancelled first,
    the batch failed, the server's result files leave the row out or hold an unreadable line
    for it (`batch_malformed`), or the server's input file holds another request for it
    (`batch_mismatch`). `kind` says which."""

    kind = "batch_missing"

    def __init__(
        self,
        message: str,
        *,
        kind: str = "batch_missing",
        url: str = "",
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, url=url, request_id=request_id)
        self.kind = kind


class HTTPStatusFailure(ProviderError):
    """The server answered with an error status. Carries the API's error fields."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        url: str = "",
        request_id: str | None = None,
        body_excerpt: str = "",
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, url=url, request_id=request_id)
        self.status = status
        self.body_excerpt = redact(body_excerpt)
        self.type = type
        self.code = code
        self.param = param
        # Response headers (lower-case names) such as x-ratelimit-*; never request headers.
        self.headers: dict[str, str] = dict(headers or {})


class RateLimited(HTTPStatusFailure):
    """429: slow down. `retry_after` is the server's wait in seconds, when it said one."""

    retryable = True
    kind = "rate_limit"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerFailed(HTTPStatusFailure):
    """5xx, or 408/409: a failure on the server's side that another try may not meet."""

    retryable = True
    kind = "server_error"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class QuotaExhausted(HTTPStatusFailure):
    """429 with code insufficient_quota: no retry can succeed until billing changes."""

    kind = "quota"


class Rejected(HTTPStatusFailure):
    """A 4xx the request itself caused; sending it again cannot succeed."""

    kind = "bad_request"


class AuthenticationFailed(Rejected):
    kind = "auth"


class PermissionDenied(Rejected):
    kind = "permission"


class NotFound(Rejected):
    kind = "not_found"


class BadRequest(Rejected):
    kind = "bad_request"


class OutputModeUnsupported(Rejected):
    """The server does not accept the response_format runner sent (many OpenAI-compatible
    servers lack json_schema; llama.cpp even answers 500): resending cannot help, another
    `output.mode` can. `output.mode: auto` falls back by itself."""

    kind = "output_mode"


# --- the reply: exit 1 ----------------------------------------------------------------------


class OutputError(RunnerError):
    """The server answered, but the answer cannot be used. Carries what it cost."""

    kind = "output"

    def __init__(
        self,
        message: str,
        *,
        text: str | None = None,
        usage: Usage | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.text = text
        self.usage = usage
        self.request_id = request_id


class OutputInvalid(OutputError):
    """Not JSON, or JSON that breaks the output schema. `errors` are "pointer: problem" lines."""

    retryable = True
    kind = "invalid_output"

    def __init__(self, message: str, *, errors: Sequence[str] = (), **kw: Any) -> None:
        super().__init__(message, **kw)
        self.errors = list(errors)


class OutputRefused(OutputError):
    """The model refused to answer (the `refusal` field of the message)."""

    kind = "refusal"

    def __init__(self, message: str, *, refusal: str = "", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.refusal = refusal


class OutputTruncated(OutputError):
    """The reply stopped at the token limit (finish_reason "length")."""

    kind = "length"


class OutputSchemaIgnored(OutputError):
    """The server took a json_schema output format (HTTP 200) and ignored it: the reply is not
    JSON at all, or JSON of another top-level type than the schema's. Not retried (the same
    request gets the same treatment); under `output.mode: auto` the call falls back to prompt
    mode instead."""

    kind = "schema_ignored"


class OutputFiltered(OutputError):
    """The server's content filter stopped the reply (finish reason "content_filter", or a
    Responses API reply left incomplete for that reason). Not retried: the same request is
    filtered again."""

    kind = "content_filter"


class OutputEmpty(OutputInvalid):
    """A reply with no content, no tool call and no refusal (`message: null`, or `content:
    null`) that claims to have finished. No output is not a valid output: kind
    "invalid_output", retried like one (servers do this under load), status invalid_output."""
