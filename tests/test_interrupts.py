"""runner.interrupts: a signal never leaves an event loop half built. Seen as `runner init`
caught by SIGTERM as it made its loop: exit 143, then "Exception ignored in
BaseEventLoop.__del__" and a traceback at exit, from the loop whose constructor the
KeyboardInterrupt had cut short."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from runner.interrupts import held_signals, run_async


def test_a_signal_inside_the_block_is_handled_when_it_ends() -> None:
    reached = False
    with pytest.raises(KeyboardInterrupt), held_signals():
        os.kill(os.getpid(), signal.SIGINT)
        reached = True  # not interrupted here
    assert reached
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


_CHILD = """
import asyncio, os, signal
from runner.interrupts import run_async
from asyncio import selector_events

real = selector_events.BaseSelectorEventLoop._make_self_pipe
def interrupted(self):  # the signal lands while the loop is being made
    os.kill(os.getpid(), signal.SIGINT)
    real(self)
selector_events.BaseSelectorEventLoop._make_self_pipe = interrupted

async def main():
    return "ran"
try:
    run_async(main())
except KeyboardInterrupt:
    print("interrupted after the loop was made")
"""


def test_a_signal_while_the_loop_is_made_leaves_no_half_built_loop() -> None:
    ran = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True)
    assert ran.stdout.strip() == "interrupted after the loop was made", ran
    assert "Traceback" not in ran.stderr and "Exception ignored" not in ran.stderr, ran.stderr
    broken = _CHILD.replace("from runner.interrupts import run_async", "run_async = asyncio.run")
    before = subprocess.run([sys.executable, "-c", broken], capture_output=True, text=True)
    assert "Exception ignored" in before.stderr  # what the plain asyncio.run leaves


def test_run_async_runs() -> None:
    async def answer() -> int:
        return 42

    assert run_async(answer()) == 42
