"""The `judge:` expectation: another spec called with the case's `output`, `text` and `vars`,
whose `pass` and `reason` decide it. The judge's call goes through the same Session, so it is
in the ledger (or replayed) like any other, and its cost is added to the case's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import ConfigError, InputsInvalid, RunnerError, SpecError
from runner.spec.judges import judge_path
from runner.spec.load import find_root, load_spec
from runner.testing.expectations import Failure

if TYPE_CHECKING:
    from runner.engine.session import Session
    from runner.ledger.line import LedgerRecord
    from runner.spec.model import PromptSpec, TestCase

__all__ = ["Judges", "Verdict"]


@dataclass(frozen=True)
class Verdict:
    """What one judge call said (`failure` None when it passed) and what it consumed."""

    failure: Failure | None
    records: tuple[LedgerRecord, ...]


class Judges:
    """Judge specs by path, each loaded once per run."""

    def __init__(self) -> None:
        self._specs: dict[Path, PromptSpec] = {}

    def spec_for(self, spec: PromptSpec, value: str) -> PromptSpec:
        root = find_root(spec.path.resolve().parent) or Path.cwd()
        target = judge_path(spec.path, value, root)
        if target is None:  # checked when the spec was loaded; the file went away since
            raise SpecError([], f"judge {value}: no such spec (named by {spec.path})")
        found = self._specs.get(target)
        if found is None:
            found = self._specs[target] = load_spec(target)
        return found

    async def judge(
        self,
        session: Session,
        spec: PromptSpec,
        case: TestCase,
        value: str,
        *,
        output: Any,
        text: str | None,
        pointer: str,
    ) -> Verdict:
        """Ask the judge spec `value` about one case's output."""
        judge = self.spec_for(spec, value)
        records: list[LedgerRecord] = []
        what = f"judge {value}"
        try:
            result = await session.arun(
                judge,
                {"output": output, "text": text, "vars": dict(case.vars)},
                # The judged call's spec, case and variant; the judge itself never varies.
                case=f"{spec.name}/{case.name}"
                + ("" if spec.variant is None else f"[{spec.variant.name}]"),
                on_record=records.append,
            )
        except RunnerError as exc:
            if not records and isinstance(exc, ConfigError) and not isinstance(exc, InputsInvalid):
                raise  # no key, a bad setting: a problem of the whole run, as in the row loop
            failure = Failure(what, "a verdict", f"the judge's call failed: {exc}", pointer)
            return Verdict(failure, tuple(records))
        verdict = result.value if isinstance(result.value, dict) else {}
        reason = str(verdict.get("reason", ""))
        if verdict.get("pass") is True:
            return Verdict(None, tuple(records))
        failure = Failure(what, "pass: true", f"pass: false ({reason})", pointer)
        return Verdict(failure, tuple(records))
