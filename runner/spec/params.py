"""The parameters of a spec's `params:` as the two wire APIs take them: which keys look like
parameters but have a field of their own, which ones only one API takes and what to write
instead on the other. runner.spec.check reports by these tables."""

from __future__ import annotations

__all__ = ["API_NAMES", "CHAT_ONLY", "NOT_PARAMS", "RESPONSES_ONLY", "partner"]

# Keys that look like parameters but have a field of their own in a spec.
NOT_PARAMS = {
    "messages": "write the conversation under the top-level 'messages'",
    "model": "use the top-level 'model'",
    "stream": "use the top-level 'stream'",
    "stream_options": "runner sets stream_options itself",
    "tools": "use the top-level 'tools'",
    "tool_choice": "use the top-level 'tool_choice'",
    "response_format": "use 'output' (schema, strict)",
    "functions": "use the top-level 'tools' (functions is deprecated)",
    "function_call": "use the top-level 'tool_choice' (function_call is deprecated)",
    "input": "write the conversation under the top-level 'messages'",
    "instructions": "write them as a system message under 'messages'",
    "text": "use 'output' (schema, strict, mode)",
}
# The params of one wire API that the other does not take, and what to write instead there.
CHAT_ONLY = {
    "max_tokens": "use max_output_tokens",
    "max_completion_tokens": "use max_output_tokens",
    "n": "it has no n: every request gives one answer",
    "reasoning_effort": "use reasoning: {effort: ...}",
    "seed": "it takes no seed",
    "stop": "it takes no stop sequences",
    "presence_penalty": "it takes no presence_penalty",
    "frequency_penalty": "it takes no frequency_penalty",
    "logit_bias": "it takes no logit_bias",
    "logprobs": "use top_logprobs alone",
    "verbosity": "it is not supported there by runner",
    "prediction": "it takes no prediction",
}
RESPONSES_ONLY = {
    "max_output_tokens": "use max_tokens (or max_completion_tokens)",
    "reasoning": "use reasoning_effort",
    "truncation": "it has no truncation setting",
    "max_tool_calls": "it has no max_tool_calls",
}
API_NAMES = {"chat": "Chat Completions", "responses": "Responses API"}
# The param whose presence (or absence) makes another one wrong.
_PARTNERS = {"max_completion_tokens": "max_tokens", "top_logprobs": "logprobs"}


def partner(name: str) -> str:
    return _PARTNERS.get(name, name)
