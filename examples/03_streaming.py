"""Streaming: text arrives in pieces through `on_delta`; time to first token is measured."""

from __future__ import annotations

import sys

from _common import PROMPTS, use_mock

import runner
from runner.types import StreamDelta


def show(delta: StreamDelta) -> None:
    if delta.restart:  # a retry after a broken stream: the answer starts over
        print("\n[starting over]", file=sys.stderr)
    sys.stdout.write(delta.text)
    sys.stdout.flush()


def main() -> None:
    spec = runner.load(PROMPTS / "haiku.yaml")
    with runner.Session(mock=use_mock(), stream=True) as session:
        result = session.run(spec, {"topic": "the sea at night"}, on_delta=show)
    print(f"\n-- first token after {result.ttft_ms:.1f} ms, whole reply {result.latency_ms:.1f} ms")


if __name__ == "__main__":
    main()
