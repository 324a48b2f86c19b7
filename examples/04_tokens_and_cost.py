"""Token counting and cost, offline: the exact prompt tokens (OpenAI's tokenizer), the
worst-case cost before sending, and the real cost from the usage the server reports."""

from __future__ import annotations

from _common import PROMPTS, use_mock

import runner
from runner import tokens
from runner.pricing import PriceBook
from runner.types import Usage


def main() -> None:
    print("tokens in 'Hello, world!':", tokens.count_text("Hello, world!", "gpt-4o-mini"))
    short = tokens.truncate("The quick brown fox jumps over the lazy dog.", 5, "gpt-4o-mini")
    print(f"truncated to 5 tokens: {short!r}")

    spec = runner.load(PROMPTS / "city.yaml")
    with runner.Session(mock=use_mock()) as session:
        pre = session.preflight(spec, {"city": "Nairobi"})
        worst = f"{pre.max_cost} ({pre.max_cost.source})"
        print(f"prompt: {pre.prompt_tokens} tokens; worst case {worst}")
        result = session.run(spec, {"city": "Nairobi"})
    print(f"actual: {result.usage.prompt}+{result.usage.completion} tokens, cost {result.cost}")

    book = PriceBook({"my-finetune": {"input": 0.30, "output": 1.20}})
    print("override:", book.cost(Usage(prompt=1000, completion=500), "my-finetune"))
    print("unknown: ", book.cost(Usage(prompt=1000, completion=500), "no-such-model"))


if __name__ == "__main__":
    main()
