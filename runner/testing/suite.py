"""A test run: collect the specs' `tests:` cases (`-k` filters them), run each spec's cases on the
engine's row loop (runner.engine.loop), and check every case's expectations into a CaseResult.
It never prints: runner.testing.formats and runner.testing.junit turn results into output.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.engine.loop import Item, ItemResult, run_items
from runner.errors import ConfigError, NotRecorded, OutputError, Problem, SpecError
from runner.spec.load import load_spec
from runner.testing.compare import compare_case
from runner.testing.expectations import Failure, Observed, check
from runner.testing.judge import Judges
from runner.testing.replay import BaselineRecorder, explain_miss
from runner.testing.results import CaseResult, combined

if TYPE_CHECKING:
    from runner.engine.session import Session
    from runner.ledger.line import LedgerRecord
    from runner.ledger.replay import ReplaySource
    from runner.spec.model import PromptSpec, TestCase, Variant

__all__ = ["CaseResult", "Collection", "SpecCases", "Suite", "collect"]

DEFAULT_TARGET = "prompts"


@dataclass(frozen=True)
class SpecCases:
    """One spec and the cases of it that were selected, with their index in `tests:`."""

    spec: PromptSpec
    cases: tuple[tuple[int, TestCase], ...]


@dataclass(frozen=True)
class Collection:
    """What a run will test."""

    specs: tuple[SpecCases, ...]
    without_tests: tuple[str, ...]  # spec files that have no `tests:`
    deselected: int  # cases left out by -k

    @property
    def count(self) -> int:
        return sum(len(s.cases) for s in self.specs)


# --- collecting -----------------------------------------------------------------------------


def collect(paths: Sequence[str], pattern: str | None = None) -> Collection:
    """The cases of the specs at `paths` (files or folders; default prompts/), those whose
    `spec::case` matches `pattern` (a substring, or a glob with * ? [). Every spec that cannot
    be loaded is reported at once (SpecError); a missing path is a ConfigError."""
    files = _spec_files(paths or [DEFAULT_TARGET])
    problems: list[Problem] = []
    specs: list[SpecCases] = []
    without: list[str] = []
    deselected = 0
    for file in files:
        try:
            spec = load_spec(file, case_vars_fatal=False)
        except SpecError as exc:
            problems.extend(exc.problems or [Problem(file, 0, 0, exc.message)])
            continue
        if not spec.tests:
            without.append(file)
            continue
        chosen = tuple(
            (i, case)
            for i, case in enumerate(spec.tests)
            if pattern is None or _matches(pattern, f"{spec.name}::{case.name}")
        )
        deselected += len(spec.tests) - len(chosen)
        if chosen:
            specs.append(SpecCases(spec, chosen))
    if problems:
        raise SpecError(problems)
    return Collection(tuple(specs), tuple(without), deselected)


def _matches(pattern: str, name: str) -> bool:
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(name.lower(), pattern.lower())
    return pattern.lower() in name.lower()


def _spec_files(paths: Sequence[str]) -> list[str]:
    files: list[str] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for folder, dirs, names in os.walk(given):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                files.extend(
                    os.path.join(folder, n)
                    for n in sorted(names)
                    if n.endswith((".yaml", ".yml"))
                    and not n.startswith(".")
                    and n not in ("runner.yaml", "runner.yml")
                )
        elif path.is_file():
            files.append(given)
        elif given == DEFAULT_TARGET and not paths[1:]:
            raise ConfigError("no prompts/ folder here: name the specs or folders to test")
        else:
            raise ConfigError(f"{given}: no such file or directory")
    return files


# --- running --------------------------------------------------------------------------------


class Suite:
    """Runs collected cases through one Session and checks them: every case on every variant
    (`variants`, else each spec's own `variants:`, else the spec as written), `repeat` times
    each; a case passes when the share of its runs that passed reaches its `min_pass_rate`."""

    def __init__(
        self,
        session: Session,
        *,
        concurrency: int | None = None,  # None: each spec's rate.concurrency
        replay: ReplaySource | None = None,
        compare: ReplaySource | None = None,
        recorder: BaselineRecorder | None = None,
        variants: Sequence[Variant] = (),
        repeat: int = 1,
    ) -> None:
        if repeat < 1:
            raise ValueError(f"repeat must be at least 1, got {repeat}")
        self.session = session
        self.concurrency = concurrency
        self.replay = replay
        self.compare = compare
        self.recorder = recorder
        self.variants = tuple(variants)
        self.repeat = repeat
        self.judges = Judges()

    async def run(
        self,
        collection: Collection,
        on_spec: Callable[[list[CaseResult]], None] | None = None,
    ) -> list[CaseResult]:
        """Run every case, spec by spec; `on_spec` gets each spec's results in case order."""
        everything: list[CaseResult] = []
        for spec_cases in collection.specs:
            results = await self.run_spec(spec_cases)
            everything.extend(results)
            if on_spec is not None:
                on_spec(results)
        return everything

    async def run_spec(self, spec_cases: SpecCases) -> list[CaseResult]:
        """Every selected case of one spec on each of its variants, in case order, then
        variant order."""
        spec = spec_cases.spec
        variants: Sequence[Variant | None] = self.variants or spec.variants or (None,)
        results: list[CaseResult] = []
        for variant in variants:
            run = spec if variant is None else spec.with_variant(variant)
            results += await self._run_variant(run, spec_cases)
        order = {case.name: n for n, (_, case) in enumerate(spec_cases.cases)}
        rank = {None if v is None else v.name: n for n, v in enumerate(variants)}
        return sorted(results, key=lambda r: (order[r.case], rank[r.variant]))

    async def _run_variant(self, spec: PromptSpec, spec_cases: SpecCases) -> list[CaseResult]:
        """The cases on one variant (`spec` is the variant's copy), each run `repeat` times:
        a case's runs go one after the other into the loop, so that under replay the k-th
        run of a request gets its k-th recorded answer."""
        by_name = {case.name: (i, case) for i, case in spec_cases.cases}
        variant = None if spec.variant is None else spec.variant.name
        items = [
            Item(c.name, c.vars, c.line)
            for _, c in spec_cases.cases
            if c.skip is None
            for _ in range(self.repeat)
        ]
        results = [
            CaseResult(
                spec.name,
                str(spec.path),
                c.name,
                c.line,
                "skipped",
                skip_reason=c.skip,
                variant=variant,
                model=spec.model,
                runs=0,
                min_pass_rate=c.min_pass_rate,
            )
            for _, c in spec_cases.cases
            if c.skip is not None
        ]
        runs: dict[str, list[CaseResult]] = {}
        async for item in run_items(
            self.session, spec, items, concurrency=self.concurrency, label="case"
        ):
            index, case = by_name[item.key]
            result = await self._evaluate(spec, index, case, item)
            if self.recorder is not None:
                self.recorder.add(result.records)
            runs.setdefault(case.name, []).append(result)
        for name, done in runs.items():
            results.append(combined(done, by_name[name][1]))
        return results

    async def _evaluate(
        self, spec: PromptSpec, index: int, case: TestCase, item: ItemResult
    ) -> CaseResult:
        seen, records = self._observed(item)
        at = f"/tests/{index}"
        failures: list[Failure] = []
        if seen.status == "error":
            failures.append(self._call_failure(spec, case, item, at))
        elif seen.status == "invalid_output" and not any("schema_valid" in a for a in case.expect):
            errors = "; ".join(seen.schema_errors[:3]) or "invalid output"
            failures.append(Failure("the call", "output valid against the schema", errors, at))
        cost = seen.cost_usd
        if seen.status != "error":
            # Judges first: their cost is part of the case's, which max_cost_usd checks.
            for j, assertion in enumerate(case.expect):
                if "judge" not in assertion or seen.status != "ok":
                    continue
                verdict = await self.judges.judge(
                    self.session,
                    spec,
                    case,
                    str(assertion["judge"]),
                    output=seen.value,
                    text=seen.text,
                    pointer=f"{at}/expect/{j}",
                )
                records.extend(verdict.records)
                cost = _add_costs(cost, verdict.records)
                if verdict.failure is not None:
                    failures.append(verdict.failure)
            total = replace(seen, cost_usd=cost)
            for j, assertion in enumerate(case.expect):
                if "judge" not in assertion:
                    failure = check(assertion, total, pointer=f"{at}/expect/{j}")
                    if failure is not None:
                        failures.append(failure)
        result = CaseResult(
            spec=spec.name,
            path=str(spec.path),
            case=case.name,
            line=case.line,
            variant=None if spec.variant is None else spec.variant.name,
            model=spec.model,
            passes=0 if failures else 1,
            min_pass_rate=case.min_pass_rate,
            status="failed" if failures else "passed",
            failures=tuple(replace(f, line=spec.position(f.pointer)[0]) for f in failures),
            cost_usd=cost,
            cost_estimated=any((r.get("cost") or {}).get("estimated") for r in records),
            tokens=seen.tokens,
            latency_ms=None if not records else seen.latency_ms,
            value=seen.value,
            text=seen.text,
            has_value=seen.has_value,
            replayed=bool(records) and "replayed" in records[0],
            ledger_ids=tuple(str(r["id"]) for r in records),
            records=tuple(records),
        )
        if result.latency_ms is not None:
            result.run_latencies = (result.latency_ms,)
        if self.compare is not None:
            result.comparison = compare_case(
                self.compare,
                spec.name,
                case.name,
                variant=result.variant,
                value=seen.value,
                text=seen.text,
                has_value=seen.has_value,
                cost_usd=seen.cost_usd,
                latency_ms=result.latency_ms,
            )
        return result

    def _observed(self, item: ItemResult) -> tuple[Observed, list[LedgerRecord]]:
        record = item.record
        records = [] if record is None else [record]
        if item.status == "ok" and item.result is not None:
            res = item.result
            # A replayed case shows the recorded call's latency (the replay's own is noise).
            latency = res.latency_ms if res.recorded_latency_ms is None else res.recorded_latency_ms
            return (
                Observed(
                    "ok",
                    value=res.value,
                    text=res.text,
                    cost_usd=res.cost.usd,
                    tokens=res.usage.total,
                    latency_ms=latency,
                ),
                records,
            )
        error = item.error
        text = error.text if isinstance(error, OutputError) else None
        value, has_value = _parsed(text)
        cost = None if record is None else (record.get("cost") or {}).get("usd")
        return (
            Observed(
                "error" if item.status != "invalid_output" else "invalid_output",
                value=value,
                text=text,
                has_value=has_value,
                schema_errors=tuple(getattr(error, "errors", ()) or ()),
                error=None if error is None else f"{error.kind}: {error}",
                cost_usd=None if cost is None else Decimal(str(cost)),
                tokens=0 if record is None else int((record.get("usage") or {}).get("total") or 0),
                latency_ms=0.0 if record is None else float(record.get("latency_ms") or 0.0),
            ),
            records,
        )

    def _call_failure(self, spec: PromptSpec, case: TestCase, item: ItemResult, at: str) -> Failure:
        error = item.error
        if isinstance(error, NotRecorded):
            variant = None if spec.variant is None else spec.variant.name
            detail = (
                ""
                if self.replay is None
                else explain_miss(self.replay, spec.name, case.name, error, variant=variant)
            )
            return Failure("replay", "", str(error), at, detail=detail)
        if error is None:
            return Failure("the call failed", "", item.status, at)
        message = " ".join(str(error).split())  # one line: InputsInvalid lists its errors
        extra = [e for e in getattr(error, "errors", None) or [] if e not in message]
        actual = f"{error.kind}: {message}" + (f" ({'; '.join(extra[:3])})" if extra else "")
        return Failure("the call failed", "", actual, at)


def _parsed(text: str | None) -> tuple[Any, bool]:
    if text is None:
        return None, False
    try:
        return json.loads(text), True
    except ValueError:
        return text, True


def _add_costs(cost: Decimal | None, records: Sequence[LedgerRecord]) -> Decimal | None:
    for record in records:
        usd = (record.get("cost") or {}).get("usd")
        if usd is None or cost is None:
            return None
        cost += Decimal(str(usd))
    return cost
