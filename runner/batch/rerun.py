"""The rows of a batch that got no answer, rerun live: which rows failed in the batch and were not
rerun since, what the batch's lines cost, and the live rerun itself, within the budget (the cap
less what the batch spent), through the normal Session (lines without batch_id).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from runner.engine.loop import ItemResult, run_items
from runner.ledger.reading import read_records

if TYPE_CHECKING:
    from runner.engine.loop import Item
    from runner.engine.session import Session
    from runner.spec.model import PromptSpec

__all__ = ["budget_of", "retry_live", "rows_to_retry", "spent_by"]


def budget_of(spec: PromptSpec, max_cost: Decimal | float | str | None) -> Decimal | None:
    """The cost cap that applies: `max_cost` when given, else the spec's budget.max_cost_usd."""
    if max_cost is None:
        max_cost = spec.budget.max_cost_usd
    return None if max_cost is None else Decimal(str(max_cost))


def rows_to_retry(ledger_path: Path, batch_ids: Iterable[str], spec_sha256: str) -> set[str]:
    """Rows that failed in these batches and have not been rerun live since (a later line of the
    same spec and row without a batch_id)."""
    ids = set(batch_ids)
    failed: dict[str, str] = {}
    rerun: dict[str, str] = {}
    if not ledger_path.exists():
        return set()
    for line in read_records(ledger_path, warn=lambda _message: None):
        row = line.get("row")
        if row is None or line.get("spec", {}).get("sha256") != spec_sha256:
            continue
        if line.get("batch_id") in ids:
            if line.get("status") != "ok":
                failed[str(row)] = str(line["id"])
        elif "batch_id" not in line:
            rerun[str(row)] = max(rerun.get(str(row), ""), str(line["id"]))
    return {row for row, made in failed.items() if rerun.get(row, "") <= made}


def spent_by(ledger_path: Path, batch_ids: Iterable[str]) -> Decimal:
    """What the lines of these batches cost (priced lines only)."""
    ids = set(batch_ids)
    total = Decimal(0)
    if not ledger_path.exists():
        return total
    for line in read_records(ledger_path, warn=lambda _message: None):
        if line.get("batch_id") in ids:
            usd = (line.get("cost") or {}).get("usd")
            if isinstance(usd, int | float) and not isinstance(usd, bool):
                total += Decimal(str(usd))
    return total


async def retry_live(
    session: Session,
    spec: PromptSpec,
    keys: Iterable[str],
    rows: Iterable[Item],
    *,
    concurrency: int | None = None,
    max_cost: Decimal | None = None,
    spent: Decimal = Decimal(0),
) -> list[ItemResult]:
    """Run these rows live through the normal Session (their lines carry no batch_id; the
    batch's own lines stay). Rows the data set no longer has are left out; at most
    `concurrency` at a time (None: the spec's rate.concurrency). With a budget
    (`max_cost`, else the spec's), a row starts only while `spent` (what the batch cost) plus
    the worst case of the calls in flight stays within it; the others are `skipped`."""
    from runner.engine.budget import CostBudget

    wanted = set(keys)
    items = [item for item in rows if item.key in wanted]
    limit = budget_of(spec, max_cost)
    gate = None
    if limit is not None:
        gate = CostBudget(session, spec, limit)
        gate.spent = spent
    return [r async for r in run_items(session, spec, items, concurrency=concurrency, gate=gate)]
