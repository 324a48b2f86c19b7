"""What an attempt consumed, as the ledger records it: the server's usage checked against what
was asked (kept as the server said it, flagged when implausible), or local token counts,
marked estimated, when the server sent none or none that could be read; an estimate never
exceeds what the request allowed (`Preflight.output_allowance`). One set of checks for every
path: live calls, streams and batch rows. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.engine.results import Preflight
from runner.providers import wire_api
from runner.types import Completion, Cost, Usage, quick_init

__all__ = ["Text", "UsageCheck", "completion_texts"]

# What a model wrote in one choice: a string, or its pieces in order (as streamed).
Text = str | Sequence[str]

# The prompt tokens a server may report above the local count before they look made up:
# other tokenizers and image parts differ, a thousandfold prompt does not.
PROMPT_FACTOR = 10
PROMPT_SLACK = 1000
# Characters counted at a time for an estimate: the token list of one piece stays small (a
# whole 32 MiB reply counted at once held ~200 MB of Python ints).
_COUNT_PIECE = 1 << 20


@quick_init
@dataclass(frozen=True)
class UsageCheck:
    """What one call asked for (its preflight, `n` choices), against which each attempt's usage
    is checked or estimated."""

    model: str
    pre: Preflight
    n: int

    @classmethod
    def for_request(
        cls,
        model: str,
        body: Mapping[str, Any],
        *,
        api: str,
        max_output_tokens: int | None,
        context_window: int | None,
    ) -> UsageCheck:
        """The checks for a request that was not rendered by this process's preflight (a batch
        row read back from its input file): its prompt counted now, by its wire `api`."""
        wire = wire_api(api)
        try:
            prompt = wire.count_body(body)
        except (ValueError, TypeError, KeyError, AttributeError):
            prompt = 0
        pre = Preflight(
            model,
            {},
            [],
            dict(body),
            prompt,
            max_output_tokens,
            context_window,
            Cost(None, "not priced here"),
            api=api,
            choices=wire.body_choices(body),
            output_limit_name=wire.capabilities.output_limit,
        )
        return cls(model, pre, wire.body_choices(body))

    @property
    def allowance(self) -> int | None:
        """The most completion tokens the request allowed over its choices (None: no bound)."""
        return self.pre.output_allowance(self.n)

    def recorded(
        self, server: Usage | None, body: Mapping[str, Any], texts: Iterable[Text]
    ) -> Usage:
        """The usage to record for an attempt that sent `body` and received `texts` (each a
        string, or the pieces of one, as a stream delivered them)."""
        local_prompt = self.prompt_count(body)
        if server is None or server.estimated:
            completion = self.completion_estimate(texts)
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

    def completion_estimate(self, texts: Iterable[Text]) -> int:
        """The local count of what the model wrote, never more than the request allowed: what
        arrived past that limit was not the model's answer to this request. A text is counted
        a block at a time (never joined whole), and not at all once it is long enough to
        reach the allowance (no token is longer than MAX_TOKEN_BYTES)."""
        from runner.tokens import MAX_TOKEN_BYTES, count_text

        allowance = self.allowance
        total = 0
        for text in texts:
            pieces = [text] if isinstance(text, str) else text
            length = sum(len(p) for p in pieces)
            if allowance is not None and length >= (allowance - total) * MAX_TOKEN_BYTES:
                return allowance
            for block in _blocks(pieces):
                total += count_text(block, self.model)
                if allowance is not None and total >= allowance:
                    return allowance
        return total

    def prompt_count(self, body: Mapping[str, Any]) -> int:
        if body is self.pre.body:
            return self.pre.prompt_tokens
        return wire_api(self.pre.api).count_body(body)

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
            name = self.pre.output_limit_name
            flags.append(f"completion {usage.completion} > {name} {limit} × n {self.n}")
        if window is not None and usage.prompt > window:
            flags.append(f"prompt {usage.prompt} > the model's context window {window}")
        elif usage.prompt > local_prompt * PROMPT_FACTOR + PROMPT_SLACK:
            flags.append(
                f"prompt {usage.prompt} > {PROMPT_FACTOR} × the local count {local_prompt} "
                f"+ {PROMPT_SLACK}"
            )
        return flags


def _blocks(pieces: Sequence[str]) -> Iterator[str]:
    """The pieces of one text, joined into blocks of about _COUNT_PIECE characters (a long
    piece cut into such blocks): never the whole text at once."""
    held: list[str] = []
    size = 0
    for piece in pieces:
        if len(piece) > _COUNT_PIECE:
            if held:
                yield "".join(held)
                held, size = [], 0
            for start in range(0, len(piece), _COUNT_PIECE):
                yield piece[start : start + _COUNT_PIECE]
            continue
        held.append(piece)
        size += len(piece)
        if size >= _COUNT_PIECE:
            yield "".join(held)
            held, size = [], 0
    if held:
        yield "".join(held)


def completion_texts(completion: Completion) -> list[str]:
    """Everything the model wrote in a completion, for counting: text, refusals, arguments."""
    texts: list[str] = []
    for choice in completion.choices:
        texts.extend(t for t in (choice.text, choice.refusal) if isinstance(t, str))
        for call in choice.tool_calls:
            texts.extend(v for k in ("name", "arguments") if isinstance(v := call.get(k), str))
    return texts
