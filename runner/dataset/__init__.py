"""Data sets: one spec over many rows — rows in, results out, resumed, under a cost cap.

Modules: `rows` (read_rows: JSONL/CSV input, checked in a first pass), `run` (DatasetRun,
DatasetSummary, map_rows, map_rows_sync, row_line), `resume` (done_rows). The row loop
itself (Item, ItemResult, RowGate, run_items) and the cost cap (CostBudget) are the engine's
(runner.engine.loop, runner.engine.budget), so `runner test` and batches run on them without
this family; the loop's names stay importable from here. It never prints: the progress bar and
the summary are the CLI's (runner.cli._progress).
"""

from runner.dataset.rows import RowStream, open_rows, read_rows
from runner.dataset.run import DatasetRun, DatasetSummary, map_rows, map_rows_sync, row_line
from runner.engine.loop import Item, ItemResult, RowGate, run_items

__all__ = [
    "DatasetRun",
    "DatasetSummary",
    "Item",
    "ItemResult",
    "RowGate",
    "RowStream",
    "map_rows",
    "map_rows_sync",
    "open_rows",
    "read_rows",
    "row_line",
    "run_items",
]
