"""Data sets through the OpenAI Batch API, at the batch price: the same requests as live calls,
sent as batch input files, collected later into the same ledger (lines with a `batch_id`).

Modules: `build` (render rows into input files within the API's limits), `remote` (upload,
create, wait), `collect` (results into ledger lines, once), `state` (which batches this machine
started: runs/batches.jsonl, `rows_in_open_batches` for --resume), `flow` (start, finish, retry
live: what the CLI calls).
"""

from runner.batch.build import BatchLimits, BuiltInput, build_input
from runner.batch.collect import CollectSummary, collect
from runner.batch.flow import (
    Started,
    finish_batches,
    resolve_ids,
    retry_live,
    start_batches,
    vars_by_row,
)
from runner.batch.remote import PollPolicy
from runner.batch.state import read_state, rows_in_open_batches

__all__ = [
    "BatchLimits",
    "BuiltInput",
    "CollectSummary",
    "PollPolicy",
    "Started",
    "build_input",
    "collect",
    "finish_batches",
    "read_state",
    "resolve_ids",
    "retry_live",
    "rows_in_open_batches",
    "start_batches",
    "vars_by_row",
]
