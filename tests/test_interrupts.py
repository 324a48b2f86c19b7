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


# --- a render becomes interruptible only once it is long ---------------------------------------


def _render_under(handler: object, text: str, vars: dict[str, object]) -> tuple[str, int]:
    """Render `text` with `handler` as the SIGINT handler; return the text and how many times
    the handler was swapped meanwhile."""
    from runner import interrupts
    from runner.spec.sandbox import ENV, render

    swaps = 0
    real = interrupts._signal.signal

    def counted(signum: int, new: object) -> object:
        nonlocal swaps
        swaps += 1
        return real(signum, new)

    previous = signal.signal(signal.SIGINT, handler)  # type: ignore[arg-type]
    interrupts._signal.signal = counted
    try:
        return render(ENV.from_string(text), vars), swaps
    finally:
        interrupts._signal.signal = real
        signal.signal(signal.SIGINT, previous)


def test_a_short_render_leaves_the_signal_handler_alone() -> None:
    # Swapping SIGINT's handler costs more than rendering a prompt: it is done for long
    # renders only (Budget.on_long), not on every row.
    text, swaps = _render_under(lambda *_: None, "Tell me about {{ city }}.", {"city": "Oslo"})
    assert text == "Tell me about Oslo."
    assert swaps == 0


def test_a_long_render_becomes_interruptible_and_a_signal_stops_it() -> None:
    seen: list[int] = []
    slow = (
        "{% for i in range(100000) %}{% for j in range(9) %}"
        "{{ (i ~ j)|center(20)|trim|length }}{% endfor %}{% endfor %}"
    )
    with pytest.raises(KeyboardInterrupt):
        # The handler in force (asyncio's, in a run) still runs first: it cancels the task.
        def handler(signum: int, frame: object) -> None:
            seen.append(signum)

        import threading

        timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.start()
        try:
            _render_under(handler, slow, {})
        finally:
            timer.cancel()
            from runner import interrupts

            interrupts.reset()  # the stop it noted is this test's only
    assert seen == [signal.SIGINT]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_the_long_render_hook_runs_once_after_the_threshold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from runner.spec import budget as budget_mod

    now = [1000.0]
    monkeypatch.setattr(budget_mod.time, "monotonic", lambda: now[0])
    calls: list[float] = []
    b = budget_mod.Budget(on_long=lambda: calls.append(now[0]))
    b.step()
    assert calls == []  # a short render never calls it
    now[0] += budget_mod.LONG_SECONDS * 2
    b.step()
    b.step()
    assert calls == [now[0]]


def test_arming_in_a_cancelled_task_raises_the_cancellation_at_once() -> None:
    import asyncio

    from runner.interrupts import LateInterruptible

    said: list[str] = []

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()  # what asyncio's SIGINT handler did before the render was long
        late = LateInterruptible()
        try:
            late.arm()
            said.append("went on")
        except asyncio.CancelledError:
            said.append("cancelled at arm")
            raise
        finally:
            late.close()

    previous = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        with pytest.raises(asyncio.CancelledError):
            asyncio.run(main())
    finally:
        signal.signal(signal.SIGINT, previous)
    assert said == ["cancelled at arm"]
