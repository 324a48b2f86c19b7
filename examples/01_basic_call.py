"""Basic call: load a spec, run it once, print the output and what it cost."""

from __future__ import annotations

from _common import PROMPTS, use_mock

import runner


def main() -> None:
    spec = runner.load(PROMPTS / "haiku.yaml")
    with runner.Session(mock=use_mock(), stream=False) as session:
        result = session.run(spec, {"topic": "autumn rain"})
    print(result.text)
    print(f"-- {result.usage.prompt}+{result.usage.completion} tokens, cost {result.cost}")


if __name__ == "__main__":
    main()
