"""The figures of the hostile-input work, one process per figure so peak memory is its own:

  python bench/bench_hostile.py pattern 40        # validate ^(a+)+$ against 'a'*40 + '!'
  python bench/bench_hostile.py pattern 10000
  python bench/bench_hostile.py template          # render two nested range(100000) loops
  python bench/bench_hostile.py reply 300         # a 300 MB reply served on loopback

`python -m bench hostile` runs them all (each against a benign baseline) for the summary table.

Each prints one line: what, seconds, peak RSS in MiB (VmHWM, else ru_maxrss), and the
outcome. Works on any version of runner (it only uses compile_validator, compile_template and
ChatClient).
"""

from __future__ import annotations

import re
import resource
import socket
import sys
import threading
import time
from typing import Any

_START = [0.0]  # when the measured operation started (set by each figure)


def _peak_mib() -> float:
    """Peak resident memory of this process: VmHWM, which exec resets (ru_maxrss of a child
    starts at its parent's peak on Linux), else ru_maxrss."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pattern(length: int, *, benign: bool = False) -> str:
    """Times one is_valid and one issues() (the engine calls both on an invalid reply); the
    benign text is the same run of a's without the '!' that makes a backtracker explode."""
    from runner.schema import compile_validator

    validator = compile_validator({"type": "string", "pattern": "^(a+)+$"})
    text = "a" * length + ("" if benign else "!")
    _START[0] = time.perf_counter()
    valid = validator.is_valid(text)
    issues = validator.issues(text)
    return f"is_valid {valid}, {len(issues)} issue(s)"


def template() -> str:
    """Times the render alone (the template is compiled first)."""
    from runner.errors import RunnerError
    from runner.spec.templates import compile_template

    source = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
    compiled = compile_template(source, origin="/messages/0/content")
    _START[0] = time.perf_counter()
    try:
        compiled.render({})
    except RunnerError as exc:
        return f"{type(exc).__name__}: {str(exc)[:90]}"
    return "rendered"


def _serve(megabytes: int) -> int:
    """A loopback server answering one request with a 200 JSON body of `megabytes` MB,
    sent as fast as the client reads it (no Content-Length, so nothing announces its size)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = int(listener.getsockname()[1])

    def run() -> None:
        conn, _ = listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(65536)
            head, _, content = request.partition(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            while length and len(content) < int(length.group(1)):
                content += conn.recv(65536)
            head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n"
            conn.sendall(head + b'{"choices": [{"message": {"content": "')
            block = b"x" * (1 << 20)
            try:
                for _ in range(megabytes):
                    conn.sendall(block)
                conn.sendall(b'"}, "finish_reason": "stop"}]}')
            except OSError:
                pass  # the client stopped reading
        listener.close()

    threading.Thread(target=run, daemon=True).start()
    return port


def reply(megabytes: int) -> str:
    import asyncio

    from runner.errors import RunnerError
    from runner.providers import ChatClient
    from runner.providers.openai_chat import build_body

    port = _serve(megabytes)
    body = build_body("gpt-4o-mini", [{"role": "user", "content": "hi"}], params={})
    _START[0] = time.perf_counter()

    async def call() -> str:
        async with ChatClient(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-x") as client:
            try:
                completion = await client.complete(body, timeout=300)
            except RunnerError as exc:
                return f"{type(exc).__name__}: {str(exc)[:90]}"
            return f"Completion with {len(completion.text or ''):,} characters"

    return asyncio.run(call())


def main() -> None:
    what, *rest = sys.argv[1:]
    if what == "pattern":
        outcome = pattern(int(rest[0]))
    elif what == "pattern-ok":
        outcome = pattern(int(rest[0]), benign=True)
    elif what == "template":
        outcome = template()
    else:
        outcome = reply(int(rest[0]))
    seconds = time.perf_counter() - _START[0]
    print(f"{what} {' '.join(rest)}: {seconds:.6f} s, peak {_peak_mib():.0f} MiB, {outcome}")


if __name__ == "__main__":
    main()


# --- python -m bench hostile ---------------------------------------------------------------------


def _figure(*args: str) -> tuple[float, float, str]:
    """(seconds, peak MiB, outcome) of one figure in a fresh process."""
    import subprocess

    out = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=True
    ).stdout
    found = re.search(r": ([\d.]+) s, peak (\d+) MiB, (.*)$", out.strip())
    assert found, out
    return float(found.group(1)), float(found.group(2)), found.group(3)[:70]


def run(quick: bool = False) -> tuple[str, list[str], list[list[object]], list[str], list[Any]]:
    from _table import Headline

    size = 100 if quick else 300
    ok = _figure("pattern-ok", "10000")
    bad = _figure("pattern", "10000")
    loops = _figure("template")
    small = _figure("reply", "30")  # just under the client's 32 MiB cap: read whole
    big = _figure("reply", str(size))
    for figure in (ok, bad, loops, small, big):
        assert "Error" not in figure[2] or figure in (loops, big), figure
    rows: list[list[object]] = [
        ["^(a+)+$ against 10,000 a's (baseline)", ok[0] * 1000, ok[1], ok[2]],
        ["^(a+)+$ against 10,000 a's and a '!'", bad[0] * 1000, bad[1], bad[2]],
        ["nested range(100000) loops in a template", loops[0] * 1000, loops[1], loops[2]],
        ["a 30 MB reply, under the 32 MiB cap (baseline)", small[0] * 1000, small[1], small[2]],
        [f"a {size} MB reply", big[0] * 1000, big[1], big[2]],
    ]
    headlines = [
        Headline(
            "backtracking schema pattern, 10,000 characters",
            f"{bad[0] * 1000:.2f} ms",
            f"the benign text: {ok[0] * 1000:.2f} ms",
            bad[0] / ok[0],
            "< 100 ms",
            bad[0] < 0.1,
        ),
        Headline(
            "template with 10^10 loop steps: stopped by the render budget",
            f"{loops[0]:.2f} s",
            "the budget's time limit: 5 s",
            loops[0] / 5,
            "<= 1.2x, an error",
            loops[0] <= 6 and "Error" in loops[2],
        ),
        Headline(
            f"a {size} MB reply body: peak memory",
            f"{big[1]:.0f} MiB",
            f"a 30 MB reply (accepted): {small[1]:.0f} MiB",
            big[1] / small[1],
            "<= 1.0x, ReplyTooLarge",
            big[1] <= small[1] and "ReplyTooLarge" in big[2],
        ),
    ]
    notes = [
        "each figure in a fresh process; ms: the operation alone; peak: VmHWM of that process",
        "targets (hostile-input issue): every hostile case bounded in time and memory",
    ]
    columns = ["case", "ms", "peak MiB", "outcome"]
    return "Hostile input: bounded time and memory", columns, rows, notes, headlines
