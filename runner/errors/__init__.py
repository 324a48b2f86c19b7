"""Every exception runner raises, and nothing else: no I/O, no third-party imports.

The tree (kept in step with docs/errors.md)::

    RunnerError                 .exit_code, .retryable, .kind
    ├─ ConfigError              missing key, conflicting flags, no API key         exit 2
    │  ├─ InputsInvalid         vars that break the spec's `inputs` schema         exit 2
    │  ├─ PromptTooLong         this call's prompt + max_tokens pass the context   exit 2
    │  │                        window (a data-set row fails alone), kind "context_window"
    │  └─ RunLocked             another run of this spec holds its ledger's lock   exit 2
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
    │  │                        batch_cancelled, batch_failed, batch_missing, batch_malformed
    │  │                        or batch_mismatch
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
    │  ├─ OutputSchemaIgnored   a json_schema the server took and ignored, kind
    │  │                        "schema_ignored" (auto falls back to prompt mode)
    │  ├─ OutputTruncated       finish_reason "length", kind "length"
    │  └─ OutputFiltered        the content filter stopped it, kind "content_filter"
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

from runner.errors.core import (
    MAX_LISTED,
    BudgetExceeded,
    CircuitOpen,
    ConfigError,
    DatasetError,
    InputsInvalid,
    InternalError,
    LedgerError,
    LedgerUnavailable,
    NotRecorded,
    Problem,
    PromptTooLong,
    RunLocked,
    RunnerError,
    RunnerWarning,
    SpecError,
    TemplateError,
    listed,
)
from runner.errors.provider import (
    AuthenticationFailed,
    BadRequest,
    BatchRowLost,
    ConnectFailed,
    DeadlineExceeded,
    HTTPStatusFailure,
    NotFound,
    OutputEmpty,
    OutputError,
    OutputFiltered,
    OutputInvalid,
    OutputModeUnsupported,
    OutputRefused,
    OutputSchemaIgnored,
    OutputTruncated,
    PermissionDenied,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    ReadTimedOut,
    Rejected,
    ReplyTooLarge,
    ServerFailed,
    StreamBroken,
)

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
    "OutputFiltered",
    "OutputSchemaIgnored",
    "OutputTruncated",
    "OutputEmpty",
    "PermissionDenied",
    "Problem",
    "PromptTooLong",
    "ProviderError",
    "QuotaExhausted",
    "RateLimited",
    "ReadTimedOut",
    "Rejected",
    "ReplyTooLarge",
    "RunLocked",
    "RunnerError",
    "RunnerWarning",
    "ServerFailed",
    "SpecError",
    "StreamBroken",
    "TemplateError",
    "listed",
]


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
