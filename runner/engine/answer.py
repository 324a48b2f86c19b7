"""What a reply is worth: each choice turned into its value (parsed JSON checked against the
output schema, tool calls, or text), or the OutputError that says why it cannot be used; and
the re-ask that `output.repair` sends. No I/O.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from runner.client import reply_json
from runner.errors import (
    OutputEmpty,
    OutputInvalid,
    OutputRefused,
    OutputTruncated,
    RunnerWarning,
)
from runner.schema.validator import compile_validator
from runner.types import Completion

if TYPE_CHECKING:
    from runner.spec.model import OutputConfig

__all__ = ["completion_values", "max_output_tokens", "repair_body", "tool_call_value"]


def max_output_tokens(params: Mapping[str, Any]) -> int | None:
    """The output token limit the params set (max_completion_tokens or max_tokens), if any."""
    value = params.get("max_completion_tokens") or params.get("max_tokens")
    return int(value) if value else None


def completion_values(
    completion: Completion, output: OutputConfig | None, params: Mapping[str, Any]
) -> tuple[Any, tuple[Any, ...]]:
    """Turn every choice into its value (the first one's, and all of them), or raise the
    OutputError that describes why one cannot be used."""
    values = tuple(
        _choice_value(completion, i, output, params) for i in range(len(completion.choices))
    )
    if not values:
        raise OutputInvalid(
            "the reply has no choices",
            usage=completion.usage,
            request_id=completion.request_id,
        )
    asked = params.get("n") or 1
    if isinstance(asked, int) and len(values) < asked:
        # Some OpenAI-compatible servers (llama-cpp-python) ignore `n`; the choices that came
        # are still good, but the caller should not count on `n` of them.
        warnings.warn(
            f"the server sent {len(values)} choice(s), not the {asked} that `n` asks for: it "
            "may not support n",
            RunnerWarning,
            stacklevel=2,
        )
    return values[0], values


def _choice_value(
    completion: Completion, index: int, output: OutputConfig | None, params: Mapping[str, Any]
) -> Any:
    choice = completion.choices[index]
    where = f"choice {index}: " if len(completion.choices) > 1 else ""
    kw: dict[str, Any] = {
        "text": choice.text,
        "usage": completion.usage,
        "request_id": completion.request_id,
    }
    if choice.refusal:
        raise OutputRefused(
            f"{where}the model refused: {choice.refusal}", refusal=choice.refusal, **kw
        )
    calls = choice.tool_calls or (
        ({"function": choice.function_call},) if choice.function_call else ()
    )
    if choice.finish_reason == "length" and (calls or output is not None):
        # Cut JSON cannot be used; cut prose can, so text replies only report it.
        limit = max_output_tokens(params)
        raise OutputTruncated(
            f"{where}the reply stopped at the output token limit"
            + (f" (max_tokens {limit})" if limit else "")
            + " before its JSON was complete; raise max_tokens or ask for less",
            **kw,
        )
    if calls:
        return [tool_call_value(call) for call in calls]
    if not choice.text:
        # `message: null` or `content: null` that claims to be finished: no output is not an
        # output, with or without a schema (nothing quotes the reply: there is none).
        raise OutputEmpty(
            f"{where}the reply has no content (no text, no tool call; finish_reason "
            f"{choice.finish_reason!r})",
            errors=["/: no content"],
            **kw,
        )
    if output is None:
        return choice.text
    text = choice.text or ""
    try:
        value = reply_json(text)  # lone surrogates become U+FFFD, as in the reply itself
    except json.JSONDecodeError as exc:
        raise OutputInvalid(
            f"{where}the reply is not JSON ({exc.msg} at char {exc.pos})",
            errors=[f"/: not JSON: {exc.msg}"],
            **kw,
        ) from None
    except (ValueError, RecursionError) as exc:  # nested past the parser, or a 5000-digit number
        why = "it nests too deeply" if isinstance(exc, RecursionError) else str(exc)[:100]
        raise OutputInvalid(
            f"{where}the reply is JSON runner cannot read ({why})",
            errors=[f"/: unreadable JSON: {why}"],
            **kw,
        ) from None
    validator = compile_validator(output.schema)
    if not validator.is_valid(value):
        issues = [str(i) for i in validator.issues(value)]
        raise OutputInvalid(
            f"{where}the reply does not match the output schema: " + "; ".join(issues[:5]),
            errors=issues,
            **kw,
        )
    return value


def tool_call_value(call: Mapping[str, Any]) -> dict[str, Any]:
    """A tool call as the result shows it: name, parsed arguments (as written when not
    JSON) and id."""
    function = call.get("function")
    if not isinstance(function, Mapping):
        function = {}
    raw = function.get("arguments") or ""
    if not isinstance(raw, str):
        arguments: Any = raw  # a server that sent an object, not its JSON text: as it is
    else:
        try:
            arguments = reply_json(raw) if raw else {}
        except (ValueError, RecursionError):
            arguments = raw  # passed through as the model wrote it
    out: dict[str, Any] = {"name": function.get("name"), "arguments": arguments}
    if call.get("id"):
        out["id"] = call["id"]
    return out


def repair_body(
    body: Mapping[str, Any], completion: Completion, exc: OutputInvalid
) -> dict[str, Any]:
    """Re-ask the model with its invalid answer and the validation errors (as instructor does)."""
    errors = "\n".join(f"- {e}" for e in exc.errors[:20])
    messages = list(body["messages"])
    messages.append({"role": "assistant", "content": completion.text or ""})
    messages.append(
        {
            "role": "user",
            "content": "Your reply did not match the required JSON schema:\n"
            f"{errors}\nReply again with only the corrected JSON.",
        }
    )
    return {**body, "messages": messages}
