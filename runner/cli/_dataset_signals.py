"""The signals of a data-set run: SIGINT, SIGTERM and SIGHUP handled on the event loop. The
first stops the intake (the calls in flight finish and are recorded), a second cancels the calls
in flight (recorded as interrupted); the exit status is 128 + the first signal.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import click

from runner.cli._common import EXIT_INTERRUPTED

if TYPE_CHECKING:
    from runner.dataset import DatasetRun

__all__ = ["Caught", "signals"]


class Caught:
    """Which signal interrupted the run (the first one), and whether a second aborted it."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self.aborted = False

    @property
    def exit_code(self) -> int:
        return EXIT_INTERRUPTED if self.signal is None else 128 + self.signal


@contextlib.asynccontextmanager
async def signals(run: DatasetRun, caught: Caught) -> AsyncIterator[None]:
    """SIGINT, SIGTERM and SIGHUP handled on the event loop while the block runs: the first
    stops the intake (the calls in flight finish and are recorded), a second cancels the calls
    in flight (recorded as interrupted). The handlers that were there before come back after."""
    import asyncio
    import signal

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()

    def on_signal(signum: int) -> None:
        if caught.signal is None:
            caught.signal = signum
            click.echo(
                "\nStopping: no new rows; waiting for the calls in flight "
                "(press Ctrl-C again to abort them).",
                err=True,
            )
            run.request_stop()
        elif task is not None:
            task.cancel()

    installed: dict[int, Any] = {}
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is None:
            continue
        try:
            previous = signal.getsignal(number)
            loop.add_signal_handler(number, on_signal, number)
            installed[number] = previous
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass
    try:
        yield
    finally:
        for number, previous in installed.items():
            loop.remove_signal_handler(number)
            with contextlib.suppress(TypeError, ValueError, OSError):
                signal.signal(number, previous)
