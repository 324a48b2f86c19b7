"""Data sets: one spec over many rows — rows in, results out, at most N calls in flight.

Modules: `loop` (Item, ItemResult, run_items: the row loop shared by data-set runs and
`runner test`), `rows` (read_rows: JSONL/CSV input, checked in a first pass), `run`
(DatasetRun, DatasetSummary, map_rows, map_rows_sync, row_line), `resume` (done_rows),
`budget` (CostBudget), `progress` (the progress bar, plain lines and the summary; rich).
"""

from runner.dataset.loop import Item, ItemResult, RowGate, run_items
from runner.dataset.rows import RowStream, open_rows, read_rows
from runner.dataset.run import DatasetRun, DatasetSummary, map_rows, map_rows_sync, row_line

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
