"""Data sets: one spec over many rows — rows in, results out, at most N calls in flight.

Modules: `loop` (Item, ItemResult, run_items: the row loop shared by data-set runs and
`runner test`).
"""

from runner.dataset.loop import Item, ItemResult, run_items

__all__ = ["Item", "ItemResult", "run_items"]
