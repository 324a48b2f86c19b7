"""Data sets through the OpenAI Batch API, at the batch price: the same requests as live calls,
sent as batch input files, collected later into the same ledger (lines with a `batch_id`).

Modules: `build` (render rows into input files within the API's limits, each row's
fingerprint, the worst case at the batch price), `remote` (upload, create, wait), `collect`
(results into ledger lines, once, from the local record of the rows), `serverfiles` (the
server's result and input files read against that record), `state` (which batches this machine
started: runs/batches/state.jsonl, the rows files, the server each was made on), `rerun` (rows
the batch could not answer, rerun live within the budget), `flow` (start, finish under the run lock:
what the CLI calls).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runner.batch.build import BatchLimits, BuiltInput, build_input
    from runner.batch.collect import CollectSummary
    from runner.batch.flow import (
        Started,
        finish_batches,
        resolve_ids,
        start_batches,
        vars_by_row,
    )
    from runner.batch.remote import PollPolicy
    from runner.batch.rerun import retry_live
    from runner.batch.state import read_state, rows_in_open_batches

# What the package offers, by module: imported on first use. A data-set run asks only
# `rows_in_open_batches`, and importing every module here was about 10 ms of its start.
# (`collect`, the function, is runner.batch.collect's: the name is its module's here.)
_WHERE = {
    "BatchLimits": "build",
    "BuiltInput": "build",
    "build_input": "build",
    "CollectSummary": "collect",
    "Started": "flow",
    "finish_batches": "flow",
    "resolve_ids": "flow",
    "start_batches": "flow",
    "vars_by_row": "flow",
    "PollPolicy": "remote",
    "retry_live": "rerun",
    "read_state": "state",
    "rows_in_open_batches": "state",
}

__all__ = [
    "BatchLimits",
    "BuiltInput",
    "CollectSummary",
    "PollPolicy",
    "Started",
    "build_input",
    "finish_batches",
    "read_state",
    "resolve_ids",
    "retry_live",
    "rows_in_open_batches",
    "start_batches",
    "vars_by_row",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'runner.batch' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"runner.batch.{module}"), name)
    globals()[name] = value
    return value
