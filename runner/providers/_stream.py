"""What every wire API's stream reader shares: the delta callback's type, and the rule that cuts
a stream which has certainly written more than its request allowed. No wire format lives here.
"""

from __future__ import annotations

from collections.abc import Callable

from runner.errors import ReplyTooLarge
from runner.tokens import MAX_TOKEN_BYTES
from runner.types import StreamDelta

__all__ = ["OVERRUN_CHARS_PER_TOKEN", "OVERRUN_SLACK", "OnDelta", "Overrun"]

OnDelta = Callable[[StreamDelta], None]

# A stream is cut once the model's text passes this many characters per token the request
# allowed (plus OVERRUN_SLACK): twice the longest token of OpenAI's encodings, so that no
# tokenizer a compatible server may use is cut short while the answer could still be
# within its limit.
OVERRUN_CHARS_PER_TOKEN = 2 * MAX_TOKEN_BYTES
OVERRUN_SLACK = 4096


class Overrun:
    """Counts the characters of model text a stream has carried (content, refusals, tool-call
    arguments) and raises ReplyTooLarge once they certainly pass what the request allowed
    (`allowance` output tokens, None: no bound). `limit_name` names the request's setting."""

    def __init__(
        self, *, url: str, request_id: str | None, allowance: int | None, limit_name: str
    ) -> None:
        self.url, self.request_id = url, request_id
        self.allowance = allowance
        self.limit_name = limit_name
        self.written = 0
        self._room = (
            None if allowance is None else allowance * OVERRUN_CHARS_PER_TOKEN + OVERRUN_SLACK
        )

    def add(self, characters: int) -> None:
        self.written += characters

    def check(self) -> None:
        """Stop reading: far more text than the request allowed has arrived. The deltas so far
        were handed on, so the call records them (its estimate capped at the allowance)."""
        if self._room is None or self.written <= self._room:
            return
        raise ReplyTooLarge(
            f"the stream from {self.url} sent {self.written:,} characters of answer, far more "
            f"than the request allowed ({self.allowance:,} output tokens: {self.limit_name}); "
            "it was cut there. The server ignores the limit, or never ends its answer.",
            url=self.url,
            request_id=self.request_id,
        )
