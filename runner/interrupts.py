"""Ctrl-C, SIGTERM and SIGHUP during long synchronous work inside an asyncio loop.

asyncio's own SIGINT handler (installed by `asyncio.run`) only cancels the main task on the
first Ctrl-C; the cancellation is delivered at the task's next `await`. Work that runs for a
long time without awaiting (rendering a template, checking a reply, diffing two outputs) would
hold the signal back until it ends. `interruptible()` marks such work: while it runs, the
signal raises KeyboardInterrupt at once, where Python's default handler would have raised it.
The command line turns SIGTERM and SIGHUP into the SIGINT handler (runner.cli._common), so all
three stop it. `run_async` runs a coroutine on an event loop that a signal cannot leave half
built (the signal is held while the loop is made, then handled). Standard library only.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # no enum wrapping: this runs on every render
import asyncio
import contextlib
import signal
import threading
from collections.abc import Coroutine, Iterator
from types import FrameType
from typing import Any, TypeVar

__all__ = [
    "LateInterruptible",
    "held_signals",
    "interruptible",
    "new_event_loop",
    "request_stop",
    "reset",
    "run_async",
    "stop_requested",
]

T = TypeVar("T")
_STOPPING = ("SIGINT", "SIGTERM", "SIGHUP")

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


class LateInterruptible:
    """`interruptible()` for work that is nearly always short (rendering a prompt): entered
    only when `arm()` is called, once the work has run for a while, and left by `close()`.
    Swapping the SIGINT handler costs two system calls, more than a short render itself; a
    signal that came before `arm()` has already had asyncio cancel the task, and `arm()` raises
    that cancellation at once rather than at the task's next await."""

    __slots__ = ("_entered",)

    def __init__(self) -> None:
        self._entered: contextlib.AbstractContextManager[None] | None = None

    def arm(self) -> None:
        if self._entered is not None:
            return
        entered = interruptible()
        entered.__enter__()  # KeyboardInterrupt when a stop was already requested
        self._entered = entered
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no running loop: Python's own handler raises already
            return
        if task is not None and task.cancelling():
            raise asyncio.CancelledError

    def close(self) -> None:
        entered, self._entered = self._entered, None
        if entered is not None:
            entered.__exit__(None, None, None)


@contextlib.contextmanager
def held_signals() -> Iterator[None]:
    """While the block runs in the main thread, SIGINT, SIGTERM and SIGHUP are noted, not
    handled; the first one noted is handled as soon as the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: list[int] = []
    previous: dict[int, Any] = {}
    for name in _STOPPING:
        number = getattr(signal, name, None)
        if number is None:
            continue
        handler = signal.getsignal(number)
        if callable(handler):  # only what Python handles: an ignored signal stays ignored
            previous[number] = handler
            signal.signal(number, lambda signum, frame: noted.append(signum))
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if noted:
            previous[noted[0]](noted[0], None)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop, made whole before a signal is handled: a KeyboardInterrupt raised inside
    the loop's constructor leaves an object whose finaliser prints a traceback at exit."""
    with held_signals():
        loop = asyncio.new_event_loop()
    return loop


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`, on a loop from `new_event_loop`."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(coroutine)
