"""The base of runner's error tree (RunnerError, Problem, RunnerWarning), the errors of the
user's input (exit 2), and those of the guards and the ledger. The tree is drawn in
runner.errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from runner.redact import redact

if TYPE_CHECKING:
    from runner.types import Attempt, Usage

__all__ = [
    "BudgetExceeded",
    "CircuitOpen",
    "ConfigError",
    "DatasetError",
    "InputsInvalid",
    "InternalError",
    "LedgerError",
    "LedgerUnavailable",
    "MAX_LISTED",
    "NotRecorded",
    "Problem",
    "RunnerError",
    "RunnerWarning",
    "SpecError",
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


class PromptTooLong(ConfigError):
    """This call's own prompt (with its `max_tokens`) does not fit the model's context window:
    a problem of one call's variables, not of the run (a data-set row fails alone)."""

    kind = "context_window"


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


class RunLocked(ConfigError):
    """Another process holds the lock of this run (a data-set run, a resume or a batch collect
    of the same spec on the same ledger): nothing was sent. `holder` says who, when known."""

    kind = "locked"

    def __init__(self, message: str, *, holder: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.holder = dict(holder or {})


class DatasetError(RunnerError):
    """An input data set row that cannot be read."""

    exit_code = 2
    kind = "dataset"

    def __init__(self, message: str, *, path: str = "", line: int = 0) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


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
    because the prompt, model or parameters changed since it was recorded, the recorded line
    kept no content, or the run asks for it more often (`--repeat N`) than it was recorded
    (`recorded` answers). Nothing was sent. `messages` and `params` are the request as it is now,
    for a diff against the recorded one."""

    kind = "not_recorded"

    def __init__(
        self,
        message: str,
        *,
        fingerprint: str = "",
        messages: Sequence[Mapping[str, Any]] = (),
        params: Mapping[str, Any] | None = None,
        recorded: int = 0,
    ) -> None:
        super().__init__(message)
        self.fingerprint = fingerprint
        self.messages = [dict(m) for m in messages]
        self.params = dict(params or {})
        # How many answers the replay ledger holds for this very request: more than 0 when a
        # run asks for it more often (`--repeat N`) than it was recorded.
        self.recorded = recorded


class RunnerWarning(UserWarning):
    """Something the user should know that does not stop the run (an unknown model's
    tokenizer, a torn ledger line). The CLI prints these as `Warning: ...` on stderr."""
