"""Ctrl-C, SIGTERM and SIGHUP during long synchronous work inside an asyncio loop.

asyncio's own SIGINT handler (installed by `asyncio.run`) only cancels the main task on the
first Ctrl-C; the cancellation is delivered at the task's next `await`. Work that runs for a
long time without awaiting (rendering a template, checking a reply, diffing two outputs) would
hold the signal back until it ends. `interruptible()` marks such work: while it runs, the
signal raises KeyboardInterrupt at once, where Python's default handler would have raised it.
The command line turns SIGTERM and SIGHUP into the SIGINT handler (runner.cli._common), so all
three stop it. Standard library only.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # no enum wrapping: this runs on every render
import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

__all__ = ["interruptible", "request_stop", "reset", "stop_requested"]

_requested = False
_SIGINT = int(signal.SIGINT)


def request_stop() -> None:
    """Note that the process was asked to stop (the command line's SIGTERM and SIGHUP handler
    calls it): synchronous work that begins after it stops at once, even if the cancellation
    of its task has not reached it yet."""
    global _requested
    _requested = True


def stop_requested() -> bool:
    return _requested


def reset() -> None:
    global _requested
    _requested = False


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """While the block runs in the main thread, a SIGINT first runs the handler in force (so
    asyncio still cancels its task) and then raises KeyboardInterrupt inside the block. Outside
    the main thread, or under Python's default handler (which raises already), it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _requested:  # the signal came just before: its cancellation may not have arrived yet
        raise KeyboardInterrupt
    previous: Any = _signal.getsignal(_SIGINT)
    if previous is signal.default_int_handler or not callable(previous):
        yield
        return

    def stop_now(signum: int, frame: FrameType | None) -> None:
        request_stop()
        previous(signum, frame)
        raise KeyboardInterrupt

    _signal.signal(_SIGINT, stop_now)
    try:
        yield
    finally:
        if _signal.getsignal(_SIGINT) is stop_now:
            _signal.signal(_SIGINT, previous)
