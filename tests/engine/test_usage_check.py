"""UsageCheck, the one set of usage checks every path uses: estimates never exceed what the
request allowed, and are counted without joining or tokenizing a huge text whole."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runner.engine.usage import UsageCheck
from runner.tokens import count_text
from runner.types import Usage

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hi."}]}


def check(max_tokens: int | None, window: int | None = None, n: int = 1) -> UsageCheck:
    return UsageCheck.for_request(
        "gpt-4o-mini",
        {**BODY, "n": n},
        api="chat",
        max_output_tokens=max_tokens,
        context_window=window,
    )


def test_an_estimate_is_the_local_count_within_the_allowance() -> None:
    usage = check(50).recorded(None, BODY, ["hello there"])
    assert usage.estimated and usage.completion == 2 and usage.prompt == check(50).pre.prompt_tokens


@pytest.mark.parametrize(
    ("max_tokens", "window", "n", "allowed"),
    [(50, None, 1, 50), (50, None, 3, 150), (None, 1000, 1, None), (None, None, 1, None)],
)
def test_an_estimate_never_exceeds_the_allowance(
    max_tokens: int | None, window: int | None, n: int, allowed: int | None
) -> None:
    c = check(max_tokens, window, n)
    if allowed is None and window is not None:
        allowed = window - c.pre.prompt_tokens
    text = "word " * 20_000
    usage = c.recorded(None, BODY, [text])
    assert usage.completion == (count_text(text, "gpt-4o-mini") if allowed is None else allowed)


def test_streamed_pieces_count_as_their_joined_text() -> None:
    pieces = ["hel", "lo", " wor", "ld"] * 1000
    c = check(None)
    assert c.completion_estimate([pieces]) == c.completion_estimate(["".join(pieces)])


def test_a_huge_text_past_the_allowance_is_not_tokenized() -> None:
    c = check(50)
    # 64 MiB: counting it whole would take seconds and gigabytes; the length alone decides.
    assert c.completion_estimate([["x" * (1 << 20)] * 64]) == 50


def test_server_usage_over_max_tokens_is_flagged_not_capped() -> None:
    usage = check(50).recorded(Usage(12, 5000), BODY, [])
    assert usage.completion == 5000 and any("max_tokens 50" in f for f in usage.implausible)


_USAGES = st.builds(
    Usage,
    prompt=st.integers(min_value=0, max_value=10**9),
    completion=st.integers(min_value=0, max_value=10**9),
    cached=st.integers(min_value=0, max_value=10**9),
    reasoning=st.integers(min_value=0, max_value=10**9),
    estimated=st.booleans(),
    implausible=st.lists(st.text(max_size=5), max_size=2).map(tuple),
    unreadable=st.none() | st.text(max_size=5),
)


@given(st.lists(_USAGES | st.none(), max_size=4))
def test_a_calls_usage_is_the_sum_of_its_attempts(usages: list[Usage | None]) -> None:
    # One attempt with usage (nearly every call) is returned as it is, not added to Usage().
    from runner.engine.call import _sum_usage
    from runner.types import Attempt

    attempts = [Attempt(number=i + 1, outcome="ok", usage=u) for i, u in enumerate(usages)]
    expected = Usage()
    for u in usages:
        if u:
            expected = expected + u
    assert _sum_usage(attempts) == expected
