"""What an attempt consumed, as the ledger records it: the server's usage checked against what
was asked (kept as the server said it, flagged when implausible), or local token counts,
marked estimated, when the server sent none or none that could be read. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runner.engine.results import Preflight
from runner.types import Completion, Usage

__all__ = ["UsageCheck", "completion_texts"]

# The prompt tokens a server may report above the local count before they look made up:
# other tokenizers and image parts differ, a thousandfold prompt does not.
PROMPT_FACTOR = 10
PROMPT_SLACK = 1000


@dataclass(frozen=True)
class UsageCheck:
    """What one call asked for (its preflight, `n` choices), against which each attempt's usage
    is checked or estimated."""

    model: str
    pre: Preflight
    n: int

    def recorded(
        self, server: Usage | None, body: Mapping[str, Any], texts: Iterable[str]
    ) -> Usage:
        """The usage to record for an attempt that sent `body` and received `texts`."""
        local_prompt = self.prompt_count(body)
        if server is None or server.estimated:
            from runner.tokens import count_text

            completion = sum(count_text(t, self.model) for t in texts if t)
            return (server or Usage()).filled(local_prompt, completion)
        flags = list(server.implausible) + self.implausible(server, local_prompt)
        if not flags:
            return server
        return Usage(
            server.prompt,
            server.completion,
            server.cached,
            server.reasoning,
            implausible=tuple(flags),
        )

    def prompt_count(self, body: Mapping[str, Any]) -> int:
        if body is self.pre.body:
            return self.pre.prompt_tokens
        from runner.tokens import count_messages

        return count_messages(
            body.get("messages") or [],
            self.model,
            tools=body.get("tools"),
            tool_choice=body.get("tool_choice"),
        )

    def implausible(self, usage: Usage, local_prompt: int) -> list[str]:
        flags = [
            f"{name} {value} is negative"
            for name, value in (
                ("prompt", usage.prompt),
                ("completion", usage.completion),
                ("cached", usage.cached),
                ("reasoning", usage.reasoning),
            )
            if value < 0
        ]
        if usage.cached > usage.prompt:
            flags.append(f"cached {usage.cached} > prompt {usage.prompt}")
        if usage.reasoning > usage.completion:
            flags.append(f"reasoning {usage.reasoning} > completion {usage.completion}")
        limit, window = self.pre.max_output_tokens, self.pre.context_window
        if limit is not None and usage.completion > limit * self.n:
            flags.append(f"completion {usage.completion} > max_tokens {limit} × n {self.n}")
        if window is not None and usage.prompt > window:
            flags.append(f"prompt {usage.prompt} > the model's context window {window}")
        elif usage.prompt > local_prompt * PROMPT_FACTOR + PROMPT_SLACK:
            flags.append(
                f"prompt {usage.prompt} > {PROMPT_FACTOR} × the local count {local_prompt} "
                f"+ {PROMPT_SLACK}"
            )
        return flags


def completion_texts(completion: Completion) -> list[str]:
    """Everything the model wrote in a completion, for counting: text, refusals, arguments."""
    texts: list[str] = []
    for choice in completion.choices:
        texts.extend(t for t in (choice.text, choice.refusal) if isinstance(t, str))
        calls = [*choice.tool_calls, *([choice.function_call] if choice.function_call else [])]
        for call in calls:
            function = call.get("function", call) if isinstance(call, Mapping) else None
            if isinstance(function, Mapping):
                texts.extend(
                    v for k in ("name", "arguments") if isinstance(v := function.get(k), str)
                )
    return texts
