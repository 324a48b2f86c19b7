"""Fault injection for the mock server: the `Faults` settings, the parsers behind the
`runner mock-server` flags and the `X-Mock-Fault` header, the seeded per-attempt decision, and
the OpenAI-shaped error a failed roll raises. It knows nothing of requests, answers or HTTP
serving, and imports only runner.errors.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from random import Random
from typing import Any

from runner.durations import parse_duration
from runner.errors import HTTPStatusFailure

__all__ = [
    "FAULT_HEADER",
    "QUOTA",
    "Decision",
    "Faults",
    "decide",
    "fault_error",
    "parse_fault_header",
    "parse_statuses",
]

FAULT_HEADER = "x-mock-fault"
QUOTA = "quota"  # in Faults.statuses: a 429 with code insufficient_quota


@dataclass(frozen=True)
class Faults:
    """What goes wrong, and how often. Rolls are seeded by (seed, request, attempt number)."""

    fail_rate: float = 0.0
    statuses: tuple[int | str, ...] = (500,)  # HTTP error statuses, or QUOTA
    retry_after: float | None = None  # seconds, sent as retry-after and retry-after-ms
    latency: float = 0.0  # seconds before answering (asyncio.sleep, never blocking)
    drop_rate: float = 0.0  # connection dropped mid-reply
    truncate_rate: float = 0.0  # stream cut before finish_reason and [DONE]
    malformed_rate: float = 0.0  # a garbage SSE data line
    invalid_output_rate: float = 0.0  # JSON that breaks the requested schema
    fail_first: int = 0  # each distinct request fails its first N tries
    seed: int = 0
    # Act as a server without structured outputs: a json_schema response_format gets a 400.
    no_json_schema: bool = False
    # Act as a server that takes a structured-output format (200) and ignores it: the answer
    # is what it would be without one (mlx_lm.server does this).
    ignore_json_schema: bool = False
    # Responses API streams only: a `response.failed` event, or an `error` event, ends the stream.
    response_failed_rate: float = 0.0
    error_event_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in (
            "fail_rate",
            "drop_rate",
            "truncate_rate",
            "malformed_rate",
            "invalid_output_rate",
            "response_failed_rate",
            "error_event_rate",
        ):
            _check_rate(name, getattr(self, name))
        if not self.statuses:
            raise ValueError("statuses must name at least one status")
        for status in self.statuses:
            if status != QUOTA and not (isinstance(status, int) and 400 <= status <= 599):
                raise ValueError(
                    f"status {status!r} is not an HTTP error status (400-599) or quota"
                )
        for name in ("latency", "retry_after"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise ValueError(f"{name} must be 0 or more seconds, not {value}")
        if self.fail_first < 0:
            raise ValueError(f"fail_first must be 0 or more, not {self.fail_first}")


def _check_rate(name: str, rate: float) -> None:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, not {rate}")


def parse_statuses(text: str) -> tuple[int | str, ...]:
    """Read "429,500,503" (and `quota`, a 429 insufficient_quota) into Faults.statuses."""
    out: list[int | str] = []
    for raw in text.split(","):
        item = raw.strip().lower()
        if item == QUOTA:
            out.append(QUOTA)
        elif item.isdigit() and 400 <= int(item) <= 599:
            out.append(int(item))
        else:
            raise ValueError(
                f"invalid status {raw.strip()!r} in {text!r}: use HTTP error statuses "
                "(400-599) or quota, separated by commas"
            )
    return tuple(out)


_FLAG_FAULTS = {
    "drop": "drop_rate",
    "truncate": "truncate_rate",
    "malformed": "malformed_rate",
    "invalid_output": "invalid_output_rate",
    "response_failed": "response_failed_rate",
    "error_event": "error_event_rate",
}
_HEADER_KEYS = (
    "status",
    "fail_first",
    "retry_after",
    "latency",
    "no_json_schema",
    "ignore_json_schema",
    *_FLAG_FAULTS,
)


def parse_fault_header(value: str, base: Faults) -> Faults:
    """Apply an `X-Mock-Fault` header ("status=503;retry_after=2s", "drop", "fail_first=2") to
    `base`. A named fault happens on every try: `status` fails every try, or only the first N
    with `fail_first=N`; `drop`, `truncate`, `malformed`, `invalid_output`, `response_failed`
    and `error_event` always happen; `no_json_schema` refuses every json_schema response_format
    (or text.format) with a 400; `ignore_json_schema` takes it and answers as without one."""
    changes: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in value.split(";"))):
        key, _, arg = (s.strip() for s in item.partition("="))
        key = key.lower()
        try:
            if key in _FLAG_FAULTS:
                changes[_FLAG_FAULTS[key]] = 1.0
            elif key in ("no_json_schema", "ignore_json_schema"):
                changes[key] = True
            elif key == "status":
                changes["statuses"] = parse_statuses(arg)
                changes.setdefault("fail_rate", 1.0)
            elif key == "fail_first":
                if not arg.lstrip("-").isdigit():
                    raise ValueError(f"fail_first must be a whole number, not {arg!r}")
                changes["fail_first"] = int(arg)
            elif key in ("retry_after", "latency"):
                changes[key] = parse_duration(arg)
            elif key.startswith("batch_"):
                continue  # a batch's own fault (runner.mock.batches reads it)
            else:
                raise ValueError(f"unknown fault {key!r}; use {', '.join(_HEADER_KEYS)}")
        except ValueError as exc:
            raise ValueError(f"invalid {FAULT_HEADER} header: {exc}") from None
    if "fail_first" in changes:
        changes["fail_rate"] = 0.0  # only the first N tries fail: the rest must succeed
    try:
        return dataclasses.replace(base, **changes)
    except ValueError as exc:
        raise ValueError(f"invalid {FAULT_HEADER} header: {exc}") from None


@dataclass(frozen=True)
class Decision:
    """One attempt's rolls: the status to fail with (None: no failure) and the faults to apply."""

    status: int | str | None
    drop: bool
    truncate: bool
    malformed: bool
    invalid_output: bool
    rng: Random  # for where to cut or inject
    response_failed: bool = False  # Responses API streams: end with `response.failed`
    error_event: bool = False  # ... or with an `error` event


def decide(faults: Faults, key: str, attempt: int) -> Decision:
    """Roll the dice for try number `attempt` of the request whose content key is `key`."""
    rng = Random(f"{faults.seed}:{key}:{attempt}")
    # Every roll is drawn whatever the rates, so one rate never shifts another fault's dice.
    rolls = [rng.random() for _ in range(5)]
    status = rng.choice(faults.statuses)
    failed = attempt <= faults.fail_first or rolls[0] < faults.fail_rate
    # The Responses API's stream faults roll on dice of their own: adding them moved no chat
    # request's rolls, nor the cut points drawn later from `rng`.
    events = Random(f"{faults.seed}:{key}:{attempt}:events")
    stream_rolls = [events.random() for _ in range(2)]
    return Decision(
        status=status if failed else None,
        drop=rolls[1] < faults.drop_rate,
        truncate=rolls[2] < faults.truncate_rate,
        malformed=rolls[3] < faults.malformed_rate,
        invalid_output=rolls[4] < faults.invalid_output_rate,
        rng=rng,
        response_failed=stream_rolls[0] < faults.response_failed_rate,
        error_event=stream_rolls[1] < faults.error_event_rate,
    )


def fault_error(status: int | str, faults: Faults, model: str) -> HTTPStatusFailure:
    """The error a failed roll raises, with the body and headers OpenAI sends for `status`."""
    headers: dict[str, str] = {}
    if faults.retry_after is not None:
        headers["retry-after"] = f"{faults.retry_after:g}"
        headers["retry-after-ms"] = str(round(faults.retry_after * 1000))
    if status == QUOTA:
        return HTTPStatusFailure(
            "You exceeded your current quota, please check your plan and billing details.",
            status=429,
            type="insufficient_quota",
            code="insufficient_quota",
            headers=headers,
        )
    assert isinstance(status, int)
    if status == 429:
        return HTTPStatusFailure(
            f"Rate limit reached for {model} on requests per min (RPM): Limit 500, Used 500, "
            "Requested 1. (mock fault)",
            status=429,
            type="requests",
            code="rate_limit_exceeded",
            headers=headers,
        )
    if status >= 500:
        message = {
            500: "The server had an error while processing your request. Sorry about that!",
            503: "The engine is currently overloaded, please try again later.",
        }.get(status, f"The server returned status {status}. (mock fault)")
        return HTTPStatusFailure(message, status=status, type="server_error", headers=headers)
    return HTTPStatusFailure(
        f"Mock fault: status {status}.",
        status=status,
        type="invalid_request_error",
        headers=headers,
    )
