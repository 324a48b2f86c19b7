"""Usage statistics: a Session keeps totals across its calls (calls, failures, tokens, average
per call, cost); every call is also a line in the ledger."""

from __future__ import annotations

import json

from _common import PROMPTS, use_mock

import runner


def main() -> None:
    spec = runner.load(PROMPTS / "sentiment.yaml")
    reviews = [
        "Absolutely loved it, would buy again.",
        "It broke after two days.",
        "It is a chair.",
    ]
    with runner.Session(mock=use_mock()) as session:
        for review in reviews:
            result = session.run(spec, {"text": review})
            print(f"{result.value['label']:>8}  {review}")
        stats = session.stats
    print(json.dumps(stats.to_dict(), indent=2))
    print(f"average tokens per call: {stats.average_tokens:.1f}")


if __name__ == "__main__":
    main()
