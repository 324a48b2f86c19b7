"""The report's vocabulary and inputs, without DuckDB: the group-by fields, the figures, the
`Report` value, and the --by and --since/--until parsers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from runner.durations import parse_duration
from runner.errors import ConfigError
from runner.ledger.encoding import MAX_LINE_BYTES
from runner.ledger.line import LEDGER_VERSION

__all__ = [
    "FIGURES",
    "GROUP_FIELDS",
    "LedgerRead",
    "Report",
    "SqlResult",
    "check_range",
    "parse_by",
    "parse_when",
]

# --by field -> the column of the `ledger` view it groups on.
GROUP_FIELDS: dict[str, str] = {
    "spec": "spec_name",
    "model": "model",
    "day": "day",
    "status": "status",
    "case": "case",
    "provider": "provider",
    "api": "api",
    "commit": "commit",
    "variant": "variant",
}

# The figures of every group, in output order (JSON keys and CSV columns after the group fields).
FIGURES: tuple[str, ...] = (
    "calls",
    "ok",
    "errors",
    "error_rate",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_usd",
    "unpriced_calls",
    "estimated_cost_usd",
    "estimated_calls",
    "latency_ms_p50",
    "latency_ms_p95",
    "latency_ms_max",
    "ttft_ms_p50",
    "replayed",
)


# What a CSV row holds for each --price-as model (JSON nests the whole object).
PRICED_AS_COLUMNS: tuple[str, ...] = ("cost_usd", "estimated")


@dataclass(frozen=True)
class LedgerRead:
    """What reading the ledgers found, line by line, and what to tell the user about it."""

    files: tuple[str, ...]
    lines: int  # non-blank lines read (batch state lines and over-long lines aside)
    calls: int  # calls counted: known format, readable, inside the time range, not replayed
    outside: int  # readable calls outside the time range
    bad_lines: int  # not JSON, or a field missing or of the wrong type: skipped
    newer_lines: int  # written by a newer runner (format version > LEDGER_VERSION): not counted
    newest_version: int | None
    torn_files: tuple[str, ...]  # ledgers whose last line is incomplete
    replayed: int = 0  # replayed calls in the time range: nothing sent, nothing spent
    long_lines: int = 0  # longer than MAX_LINE_BYTES (runner never writes one): skipped
    state_lines: int = 0  # batch state lines matched by a glob: passed over

    def warnings(self) -> list[str]:
        """At most one line about unreadable lines, one about over-long ones and one about
        newer ones."""
        out = []
        if self.bad_lines:
            line = f"{_lines(self.bad_lines)} skipped: not JSON, or a field missing or wrong"
            if self.torn_files:
                line += f"; the last line of {', '.join(self.torn_files)} is incomplete"
                line += " (a write was interrupted?)"
            out.append(line)
        if self.long_lines:
            out.append(
                f"{_lines(self.long_lines)} skipped: longer than {MAX_LINE_BYTES:,} bytes, "
                "more than runner ever writes (not a ledger line?)"
            )
        if self.newer_lines:
            out.append(
                f"{_lines(self.newer_lines)} written by a newer runner (ledger format "
                f"v{self.newest_version}; this runner reads v{LEDGER_VERSION}) not counted: "
                "upgrade runner to include them"
            )
        return out

    def notes(self) -> list[str]:
        """Why there is nothing to show, when there is nothing; and replayed calls, which are
        shown apart and never counted as calls or spend."""
        out = []
        if self.replayed:
            noun = "call" if self.replayed == 1 else "calls"
            out.append(
                f"{self.replayed:,} replayed {noun} (runner test --replay, --cache) not counted "
                "as calls or spend: nothing was sent; see the replayed column"
            )
        if self.lines == 0 and not self.long_lines:
            listed = ", ".join(self.files)
            if self.state_lines:
                return [f"only batch state lines in {listed} (the batches runner started): no "
                        "calls to report"]  # fmt: skip
            empty = "the ledger is empty" if len(self.files) == 1 else "the ledgers are empty"
            return [f"{empty} ({listed}): no calls to report"]
        if self.calls == 0 and self.outside and not self.replayed:
            out.append(f"no call in the time range ({self.outside:,} outside it)")
        return out


def _lines(n: int) -> str:
    return f"{n:,} ledger line" + ("" if n == 1 else "s")


@dataclass(frozen=True)
class Report(LedgerRead):
    """Figures per group of calls, and what was read to get them.

    `groups` are plain dicts: the `by` fields, then FIGURES (JSON-ready values; `day` is an ISO
    date string). `total` has the figures over every counted call (None when there is none).
    `breakdowns` holds the extra groupings the HTML page charts, keyed like "day,model".
    """

    by: tuple[str, ...] = ()
    groups: list[dict[str, Any]] = field(default_factory=list)
    total: dict[str, Any] | None = None
    first_ts: datetime | None = None  # earliest and latest counted call (UTC)
    last_ts: datetime | None = None
    since: datetime | None = None  # the requested range: since <= ts < until (UTC)
    until: datetime | None = None
    breakdowns: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # --price-as: the models every group (and the total) is priced on too, each group's
    # `priced_as` {model: {cost_usd, estimated, ...}}, and how the tokens were counted.
    price_as: tuple[str, ...] = ()
    pricing_notes: tuple[str, ...] = ()

    @property
    def columns(self) -> list[str]:
        """The JSON keys and CSV columns: --by fields, FIGURES, then per --price-as model
        `priced_as.MODEL.cost_usd` and `priced_as.MODEL.estimated` (nested in JSON)."""
        priced = [
            f"priced_as.{model}.{key}" for model in self.price_as for key in PRICED_AS_COLUMNS
        ]
        return [*self.by, *FIGURES, *priced]

    def notes(self) -> list[str]:
        return [*super().notes(), *self.pricing_notes]

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.groups


@dataclass(frozen=True)
class SqlResult(LedgerRead):
    """The rows of a --sql query over the `ledger` view, and the same line counts as a Report."""

    columns: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def parse_by(values: Iterable[str]) -> tuple[str, ...]:
    """`["spec,model", "day"]` -> ("spec", "model", "day"); unknown names raise ConfigError."""
    fields: list[str] = []
    for value in values:
        for name in (part.strip() for part in value.split(",")):
            if not name:
                continue
            if name not in GROUP_FIELDS:
                known = ", ".join(GROUP_FIELDS)
                raise ConfigError(f"--by {name}: unknown field; the known ones are {known}")
            if name not in fields:
                fields.append(name)
    return tuple(fields)


def _ago(value: str) -> float | None:
    """Seconds in a duration as specs write them (250ms, 30s, 2m, 1h), plus days: "7d" is read
    as "168h" by the same parser. None when `value` is not a duration."""
    try:
        if value.endswith("d") and value[:-1]:
            return parse_duration(value[:-1] + "h") * 24
        return parse_duration(value)
    except ValueError:
        return None


def parse_when(text: str, *, what: str = "--since", now: datetime | None = None) -> datetime:
    """A point in time, UTC (naive): a duration ago ("7d", "12h", "30m") or an ISO date or
    date-time ("2025-03-14", "2025-03-14T09:00:00Z"; without an offset it is UTC).

    A bare date means its midnight for --since and the midnight after it for --until, so
    `--until 2025-03-14` includes that day.
    """
    value = text.strip()
    seconds = _ago(value)
    if seconds is not None:
        current = now or datetime.now(UTC).replace(tzinfo=None)
        try:
            return current - timedelta(seconds=seconds)
        except (OverflowError, ValueError):
            raise ConfigError(f"{what} {text}: too far back (before the year 1)") from None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        pass
    else:
        start = datetime(day.year, day.month, day.day)
        if what != "--until":
            return start
        try:
            return start + timedelta(days=1)
        except OverflowError:
            raise ConfigError(f"{what} {text}: too late (after the year 9999)") from None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"{what} {text!r}: not a duration (7d, 12h, 30m) or an ISO date or date-time "
            "(2025-03-14, 2025-03-14T09:00:00Z)"
        ) from None
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            raise ConfigError(f"{what} {text}: outside the years 1 to 9999 in UTC") from None
    return moment


def check_range(since: datetime | None, until: datetime | None) -> None:
    """Refuse a time range that holds nothing: since must be earlier than until."""
    if since is not None and until is not None and since >= until:
        raise ConfigError("--since must be earlier than --until")
