"""One prompt end to end, and the Session that shares clients, guards, prices and ledgers
across calls. The Session resolves everything a call needs and hands it over; a call never
reaches back into the Session. The row loop runs one spec over many items on it.

Modules: `session` (Session, load, run, arun), `call` (one call and its ledger line),
`callstate` (CallState: a call's typed state while it runs), `preflight` (render, count, bound
the cost), `answer` (a completion's value for the spec), `results` (Result, Preflight,
SessionStats), `loop` (Item, ItemResult, RowGate, run_items: the row loop of data sets,
`runner test` and batch reruns), `budget` (CostBudget: a cost cap over many calls, a RowGate).
"""

from runner.engine.results import Preflight, Result, SessionStats
from runner.engine.session import Session, arun, load, run

__all__ = ["Preflight", "Result", "Session", "SessionStats", "arun", "load", "run"]
