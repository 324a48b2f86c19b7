"""The command line's use of Python's cyclic garbage collector. The command line owns its
process; the library leaves the collector alone (a Python program that imports runner owns
its own).

- **Less often.** The first threshold is 10,000 new objects (Python's is 700). With 50 calls in
  flight, a collection every 700 found the in-flight calls' objects alive each time: 80-110 ms
  of collections in a 1,000-row run, 13-20 ms at this threshold. The cycles it leaves for later
  are a few MB at most.
- **Not during start-up.** From the process's start until the command's work begins (imports,
  the spec loaded, the session opened), what is built stays alive: collecting it found nothing
  and cost 25-30 ms of a data set's start. `settle` then freezes it (gc.freeze: later
  collections pass over it) and turns collection back on. Every command settles as it
  begins, except `exec`, which settles when it opens its session (`_common.open_session`,
  which every command that calls a model goes through): after loading its spec, before its
  calls. One that fails before then exits. The cost: the few hundred unreachable objects
  start-up leaves (487 for `exec`, whatever the spec's size) are frozen with the rest, kept
  until exit.
- **Not at exit.** Python collects over every object still alive, several times, as it exits:
  50-70 ms at the end of a data set's run, to free memory the OS takes back anyway. A handler
  added when the command line starts freezes them first; every handler added after it
  (logging's) runs before it. Nothing runner writes waits for that: the ledger, its lock and
  the outputs are closed by their own `with` blocks.
"""

from __future__ import annotations

import atexit
import gc

__all__ = ["settle", "start_up"]

YOUNG_THRESHOLD = 10_000
_paused = False


def start_up() -> None:
    """At the command line's start. A collector that is off (threshold 0, or disabled) stays
    off."""
    global _paused
    atexit.register(gc.freeze)
    young, middle, old = gc.get_threshold()
    if young == 0:
        return
    if young < YOUNG_THRESHOLD:
        gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    if gc.isenabled():
        gc.disable()
        _paused = True


def settle() -> None:
    """The command's work begins: what start-up built is frozen, and collection is back on.
    Idempotent; nothing unless `start_up` paused the collector."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
