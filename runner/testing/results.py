"""What `runner test` says about one case: `CaseResult` (its verdict on one variant, with every
failure, its runs under `--repeat`, their pass rate and Wilson interval, cost and latency), and
`combined`, which turns a case's runs into one verdict against its min_pass_rate. Plain data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from runner.testing.compare import Comparison
from runner.testing.expectations import Failure
from runner.testing.stats import percentile, wilson

if TYPE_CHECKING:
    from runner.ledger.line import LedgerRecord
    from runner.spec.model import TestCase

__all__ = ["CaseResult", "Status", "combined"]

Status = Literal["passed", "failed", "skipped"]


@dataclass
class CaseResult:
    """One case: passed or failed (with every failure), what it cost and how long it took."""

    spec: str
    path: str
    case: str
    line: int
    status: Status
    failures: tuple[Failure, ...] = ()
    cost_usd: Decimal | None = None  # the call's and its judges'; None when unknown
    cost_estimated: bool = False
    tokens: int = 0
    latency_ms: float | None = None  # the recorded call's, for a replayed case
    value: Any = None
    text: str | None = None
    has_value: bool = False
    replayed: bool = False
    ledger_ids: tuple[str, ...] = ()
    comparison: Comparison | None = None
    skip_reason: str | None = None
    records: tuple[LedgerRecord, ...] = field(default=(), repr=False)
    # The variant the case ran under (`--model`, `variants:`), and the model it called.
    variant: str | None = None
    model: str | None = None
    # `--repeat N`: how many runs there were and passed; the share that must pass; each run's
    # latency and cost; what made runs fail when the case still passed (a flaky pass).
    runs: int = 1
    passes: int = 0
    min_pass_rate: float = 1.0
    run_latencies: tuple[float, ...] = ()
    flaky_failures: tuple[Failure, ...] = ()

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def name(self) -> str:
        """`spec::case`, and `[variant]` when it ran under one."""
        suffix = "" if self.variant is None else f"[{self.variant}]"
        return f"{self.spec}::{self.case}{suffix}"

    @property
    def pass_rate(self) -> float | None:
        return None if not self.runs or self.status == "skipped" else self.passes / self.runs

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95% Wilson interval of the pass rate (None when the case did not run)."""
        return None if self.pass_rate is None else wilson(self.passes, self.runs)

    @property
    def pass_all(self) -> bool:
        """pass^k: every one of the k runs passed."""
        return self.runs > 0 and self.passes == self.runs and self.status != "skipped"

    @property
    def flaky(self) -> bool:
        """Some runs passed and some failed, whatever the verdict."""
        return 0 < self.passes < self.runs

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "path": self.path,
            "case": self.case,
            "line": self.line,
            "status": self.status,
            "skip_reason": self.skip_reason,
            "failures": [
                {"what": f.what, "expected": f.expected, "actual": f.actual, "detail": f.detail}
                for f in self.failures
            ],
            "cost_usd": None if self.cost_usd is None else float(self.cost_usd),
            "cost_estimated": self.cost_estimated,
            "tokens": self.tokens,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 1),
            "output": self.value if self.has_value else None,
            "replayed": self.replayed,
            "ledger_ids": list(self.ledger_ids),
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
            "variant": self.variant,
            "model": self.model,
            "runs": self.runs if self.status != "skipped" else 0,
            "passes": self.passes,
            "pass_rate": None if self.pass_rate is None else round(self.pass_rate, 4),
            "interval": None if self.interval is None else [round(x, 4) for x in self.interval],
            "pass_all": self.pass_all,
            "min_pass_rate": self.min_pass_rate,
            "flaky": self.flaky,
        }


def combined(runs: list[CaseResult], case: TestCase) -> CaseResult:
    """One case's runs as one result: it passes when the share of runs that passed reaches
    the case's min_pass_rate. Costs and tokens add up; the latency is the runs' median; the
    output, the comparison and what failed are the first run's that shows them."""
    if len(runs) == 1 and (runs[0].passes or case.min_pass_rate > 0):
        return runs[0]
    first = runs[0]
    passes = sum(r.passes for r in runs)
    passed = passes / len(runs) >= case.min_pass_rate
    failed_runs = [r for r in runs if not r.passes]
    failures = _unique(f for r in failed_runs for f in r.failures)
    cost: Decimal | None = Decimal(0)
    for r in runs:
        if r.ledger_ids:  # a run that sent nothing (not recorded, bad vars) cost nothing
            cost = None if cost is None or r.cost_usd is None else cost + r.cost_usd
    latencies = tuple(x for r in runs for x in r.run_latencies)
    return replace(
        failed_runs[0] if failed_runs and not passed else first,
        status="passed" if passed else "failed",
        failures=() if passed else failures,
        flaky_failures=failures if passed else (),
        cost_usd=cost,
        cost_estimated=any(r.cost_estimated for r in runs),
        tokens=sum(r.tokens for r in runs),
        latency_ms=percentile(latencies, 0.5),
        replayed=all(r.replayed for r in runs),
        ledger_ids=tuple(i for r in runs for i in r.ledger_ids),
        records=tuple(x for r in runs for x in r.records),
        runs=len(runs),
        passes=passes,
        run_latencies=latencies,
    )


def _unique(failures: Iterable[Failure]) -> tuple[Failure, ...]:
    seen: dict[tuple[str, str, str], Failure] = {}
    for f in failures:
        seen.setdefault((f.what, f.expected, f.actual), f)
    return tuple(seen.values())
