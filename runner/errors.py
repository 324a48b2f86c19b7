"""Every exception runner raises, and nothing else: no I/O, no third-party imports.

The tree (kept in step with docs/errors.md)::

    RunnerError                 .exit_code, .retryable, .kind
    ├─ ConfigError              missing key, conflicting flags, no API key         exit 2
    │  └─ InputsInvalid         vars that break the spec's `inputs` schema         exit 2
    ├─ SpecError                YAML/schema failure: .problems (file:line:col)     exit 2
    │  └─ TemplateError         undefined variable, syntax, sandbox: .names        exit 2
    ├─ DatasetError             unreadable row: .path, .line                       exit 2
    ├─ ProviderError            endpoint trouble: .url, .request_id                exit 1
    │  ├─ ConnectFailed         retryable, kind "connection"
    │  ├─ ReadTimedOut          retryable, kind "timeout"
    │  │  └─ DeadlineExceeded   the whole call ran out of time, not retryable
    │  ├─ StreamBroken          malformed or truncated SSE, retryable, kind "connection"
    │  │  └─ ReplyTooLarge      past the size cap, not retryable, kind "reply_too_large"
    │  ├─ BatchRowLost          a batch ended without this row's answer: kind batch_expired,
    │  │                        batch_cancelled, batch_failed or batch_missing
    │  └─ HTTPStatusFailure     .status, .body_excerpt, .type, .code, .param, .headers
    │     ├─ RateLimited        429, .retry_after, retryable, kind "rate_limit"
    │     ├─ ServerFailed       5xx, 408, 409, retryable, kind "server_error"
    │     ├─ QuotaExhausted     429 with code insufficient_quota, kind "quota"
    │     └─ Rejected           other 4xx, not retryable
    │        ├─ AuthenticationFailed   401, kind "auth"
    │        ├─ PermissionDenied       403, kind "permission"
    │        ├─ NotFound               404, kind "not_found"
    │        ├─ BadRequest             400, 422 and other 4xx, kind "bad_request"
    │        └─ OutputModeUnsupported  the server refuses the response_format (400, or
    │                                  llama.cpp's 500), kind "output_mode"
    ├─ OutputError              the reply arrived but is not usable                exit 1
    │  ├─ OutputInvalid         not JSON, or JSON that breaks the schema: .errors, retryable
    │  │  └─ OutputEmpty        no content and no tool call (message null), same kind
    │  ├─ OutputRefused         the model refused: .refusal, kind "refusal"
    │  └─ OutputTruncated       finish_reason "length", kind "length"
    ├─ CircuitOpen              the breaker refused the call: .retry_at            exit 1
    ├─ BudgetExceeded           cost or token cap reached                          exit 1
    ├─ InternalError            a bug met after sending; the call is recorded      exit 1
    ├─ LedgerError              cannot write or parse the ledger: .unrecorded      exit 1
    │  └─ LedgerUnavailable     found before sending: nothing was sent             exit 2
    └─ NotRecorded              replay: the request is not in the replay ledger    exit 1

`kind` is the stable, lower-case name used in a spec's `retry.on` list and in the ledger's
`error.kind`. Whether a failure is retried is decided from `.retryable` and `.kind` alone
(runner.policy.retry), never from the class of a third-party exception. Messages never contain
secrets: every message, URL and request id is passed through runner.redact.redact on the way in,
so the key the process holds (whatever its shape) never reaches `str()`, `args` or `repr()`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from runner.redact import redact

if TYPE_CHECKING:
    from runner.types import Attempt, Usage

__all__ = [
    "AuthenticationFailed",
    "BadRequest",
    "BatchRowLost",
    "BudgetExceeded",
    "CircuitOpen",
    "ConfigError",
    "ConnectFailed",
    "DatasetError",
    "DeadlineExceeded",
    "HTTPStatusFailure",
    "InputsInvalid",
    "InternalError",
    "LedgerError",
    "LedgerUnavailable",
    "NotRecorded",
    "MAX_LISTED",
    "NotFound",
    "OutputError",
    "OutputInvalid",
    "OutputModeUnsupported",
    "OutputRefused",
    "OutputTruncated",
    "OutputEmpty",
    "PermissionDenied",
    "Problem",
    "ProviderError",
    "QuotaExhausted",
    "RateLimited",
    "ReadTimedOut",
    "Rejected",
    "ReplyTooLarge",
    "RunnerError",
    "RunnerWarning",
    "ServerFailed",
    "SpecError",
    "StreamBroken",
    "TemplateError",
    "listed",
]


MAX_LISTED = 20  # problems listed in a message; the rest are counted ("... and N more")


def listed(lines: Sequence[object], limit: int = MAX_LISTED) -> list[str]:
    """The first `limit` lines, then `... and N more` for the rest: what a person can read."""
    items = [str(line) for line in lines[: limit + 1]]
    if len(lines) <= limit:
        return items
    return [*items[:limit], f"... and {len(lines) - limit} more"]


class Problem(NamedTuple):
    """One problem in a user's file, printed as `file:line:col: message`.

    `line` and `col` are 1-based; 0 means "the whole file" (an empty or unreadable file).
    `pointer` is the JSON pointer of the offending value inside the document, when known.
    (A NamedTuple rather than a dataclass: this module is on the `runner --help` path.)
    """

    file: str
    line: int
    col: int
    message: str
    pointer: str = ""

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.col}: {self.message}"
        return f"{self.file}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "col": self.col, "message": self.message}


class RunnerError(Exception):
    """Base of every error runner raises on purpose."""

    exit_code: int = 1
    retryable: bool = False
    kind: str = "error"

    def __init__(self, message: str) -> None:
        message = redact(message)  # the one place every error's text passes: no secret in it
        super().__init__(message)
        self.message = message
        # Filled by runner.policy.retry when the error ends a retried call: every try, this one
        # included.
        self.attempts: list[Attempt] = []
        # What the failed try consumed, when known: the server's usage of an unusable reply,
        # or local counts of a stream that broke after text had arrived.
        self.usage: Usage | None = None

    def __str__(self) -> str:
        return self.message


# --- user input: exit 2 ---------------------------------------------------------------------


class ConfigError(RunnerError):
    """Bad flags, settings or environment (a missing API key, conflicting options)."""

    exit_code = 2
    kind = "config"


class InputsInvalid(ConfigError):
    """Template variables that do not satisfy the spec's `inputs` schema."""

    kind = "inputs"

    def __init__(self, message: str, errors: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.errors = list(errors)  # "pointer: problem" lines


class SpecError(RunnerError):
    """A spec file that cannot be used. Carries every problem found, not only the first."""

    exit_code = 2
    kind = "spec"

    def __init__(self, problems: Sequence[Problem], message: str | None = None) -> None:
        self.problems = list(problems)  # every one; the message lists the first MAX_LISTED
        super().__init__(message or "\n".join(listed(self.problems)))

    @property
    def path(self) -> str | None:
        return self.problems[0].file if self.problems else None

    @property
    def pointer(self) -> str | None:
        return self.problems[0].pointer if self.problems else None


class TemplateError(SpecError):
    """A template that cannot compile or render: undefined variables, syntax, sandbox."""

    kind = "template"

    def __init__(
        self,
        problems: Sequence[Problem],
        message: str | None = None,
        *,
        template: str = "",
        names: Sequence[str] = (),
    ) -> None:
        super().__init__(problems, message)
        self.template = template  # which template: a JSON pointer such as /messages/1/content
        self.names = list(names)  # the undefined variable names, when that is the problem


class DatasetError(RunnerError):
    """An input data set row that cannot be read."""

    exit_code = 2
    kind = "dataset"

    def __init__(self, message: str, *, path: str = "", line: int = 0) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


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
    """A batch ended without an answer for this row: it expired or was cancelled first, the
    batch failed, or the server's result files leave the row out. `kind` says which."""

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


class OutputEmpty(OutputInvalid):
    """A reply with no content, no tool call and no refusal (`message: null`, or `content:
    null`) that claims to have finished. No output is not a valid output: kind
    "invalid_output", retried like one (servers do this under load), status invalid_output."""


# --- guards and storage ---------------------------------------------------------------------


class CircuitOpen(RunnerError):
    """The circuit breaker for this endpoint is open; `retry_at` is a time.monotonic() value."""

    kind = "circuit_open"

    def __init__(self, message: str, *, retry_at: float | None = None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class BudgetExceeded(RunnerError):
    """A cost or token cap would be passed."""

    kind = "budget"


class InternalError(RunnerError):
    """Something runner did not expect broke a call after its request was sent (a bug, or a
    reply no check foresaw). The call is still recorded, with this kind, and what it consumed."""

    kind = "internal"

    def __init__(
        self, message: str, *, usage: Usage | None = None, request_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.usage = usage
        self.request_id = request_id


class LedgerError(RunnerError):
    """The ledger cannot be written or read. `unrecorded`: the JSON line a call could not record
    (secrets redacted), so that a caller can still show it; None when no call was lost."""

    kind = "ledger"

    def __init__(self, message: str, *, unrecorded: str | None = None) -> None:
        super().__init__(message)
        self.unrecorded = unrecorded  # the line a call sent but not recorded could not write


class LedgerUnavailable(LedgerError):
    """The ledger cannot take a line, found before the request was sent: nothing was sent."""

    exit_code = 2


class NotRecorded(RunnerError):
    """Replay (`runner test --replay`): the replay ledger has no usable answer for this request,
    because the prompt, model or parameters changed since it was recorded (or the recorded line
    kept no content). Nothing was sent. `messages` and `params` are the request as it is now,
    for a diff against the recorded one."""

    kind = "not_recorded"

    def __init__(
        self,
        message: str,
        *,
        fingerprint: str = "",
        messages: Sequence[Mapping[str, Any]] = (),
        params: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.fingerprint = fingerprint
        self.messages = [dict(m) for m in messages]
        self.params = dict(params or {})


class RunnerWarning(UserWarning):
    """Something the user should know that does not stop the run (an unknown model's
    tokenizer, a torn ledger line). The CLI prints these as `Warning: ...` on stderr."""


def _retryable_kinds() -> frozenset[str]:
    found: set[str] = set()
    todo: list[type[RunnerError]] = [RunnerError]
    while todo:
        cls = todo.pop()
        if cls.retryable:
            found.add(cls.kind)
        todo.extend(cls.__subclasses__())
    return frozenset(found)


# Every kind a retry can help with, read from the classes above (`retryable = True`); also the
# default `retry.on`. Everything else (auth, quota, refusal, deadline...) is never retried.
RETRYABLE_KINDS = _retryable_kinds()
