"""What a reply is worth: each choice turned into its value (parsed JSON checked against the
output schema, tool calls, or text), or the OutputError that says why it cannot be used; and
the re-ask that `output.repair` sends. No I/O.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from runner.errors import (
    OutputEmpty,
    OutputFiltered,
    OutputInvalid,
    OutputRefused,
    OutputSchemaIgnored,
    OutputTruncated,
    RunnerWarning,
)
from runner.ledger.encoding import loads_text as reply_json
from runner.schema.validator import compile_validator
from runner.types import Completion, Message

if TYPE_CHECKING:
    from runner.engine.results import Preflight
    from runner.spec.model import OutputConfig

__all__ = ["completion_values", "repair_messages", "tool_call_value"]


def completion_values(
    completion: Completion,
    output: OutputConfig | None,
    pre: Preflight,
    *,
    mode: str | None = None,
) -> tuple[Any, tuple[Any, ...]]:
    """Turn every choice into its value (the first one's, and all of them), or raise the
    OutputError that describes why one cannot be used. `pre` says what the request asked for:
    its output limit and how many choices; `mode`, how the output schema was sent (a reply
    to a json_schema request that ignores it is OutputSchemaIgnored)."""
    values = tuple(
        _choice_value(completion, i, output, pre, mode) for i in range(len(completion.choices))
    )
    if not values:
        raise OutputInvalid(
            "the reply has no answer in it",
            usage=completion.usage,
            request_id=completion.request_id,
        )
    asked = pre.choices
    if len(values) < asked:
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
    completion: Completion,
    index: int,
    output: OutputConfig | None,
    pre: Preflight,
    mode: str | None,
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
    calls = choice.tool_calls
    if choice.finish_reason == "content_filter":
        raise OutputFiltered(f"{where}the server's content filter stopped the reply", **kw)
    read = None  # the reply's JSON, parsed once for both checks below
    if mode == "json_schema" and output is not None and not calls and choice.text:
        read = _read(choice.text)
        ignored = schema_ignored(choice.text, output.schema, read=read)
        if ignored is not None:
            raise OutputSchemaIgnored(
                f"{where}the server seems to ignore the output schema: runner sent it as "
                f"json_schema and the reply is {ignored}. Set `output.mode: auto` in the spec "
                "(it falls back to prompt mode by itself) or `output.mode: prompt`",
                **kw,
            )
    if choice.finish_reason == "length" and (calls or output is not None):
        # Cut JSON cannot be used; cut prose can, so text replies only report it.
        limit, name = pre.max_output_tokens, pre.output_limit_name
        cut = (
            "before its JSON was complete"
            if calls or output is None or not schema_ignored(choice.text or "{", output.schema)
            else "and its text is not JSON"
        )
        raise OutputTruncated(
            f"{where}the reply stopped at the output token limit"
            + (f" ({name} {limit})" if limit else "")
            + f" {cut}; raise {name} or ask for less",
            **kw,
        )
    if calls:
        return [tool_call_value(call) for call in calls]
    if not choice.text:
        # `message: null` or `content: null` that claims to be finished: no output is not an
        # output, with or without a schema (nothing quotes the reply: there is none).
        raise OutputEmpty(
            f"{where}the reply has no content (no text, no tool call; finish reason "
            f"{choice.finish_reason!r})",
            errors=["/: no content"],
            **kw,
        )
    if output is None:
        return choice.text
    value, failed = read if read is not None else _read(choice.text)
    if isinstance(failed, json.JSONDecodeError):
        raise OutputInvalid(
            f"{where}the reply is not JSON ({failed.msg} at char {failed.pos})",
            errors=[f"/: not JSON: {failed.msg}"],
            **kw,
        ) from None
    if failed is not None:  # nested past the parser, or a 5000-digit number
        why = "it nests too deeply" if isinstance(failed, RecursionError) else str(failed)[:100]
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


# The characters a JSON value of each type can start with.
_STARTS = {
    "object": "{",
    "array": "[",
    "string": '"',
    "number": "-0123456789",
    "integer": "-0123456789",
    "boolean": "tf",
    "null": "n",
}
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "null": (type(None),),
}


def _read(text: str) -> tuple[Any, ValueError | RecursionError | None]:
    """The reply's JSON (lone surrogates become U+FFFD, as in the reply itself), or why it
    cannot be read."""
    try:
        return reply_json(text), None
    except (ValueError, RecursionError) as exc:
        return None, exc


def schema_ignored(
    text: str,
    schema: Mapping[str, Any],
    *,
    read: tuple[Any, ValueError | RecursionError | None] | None = None,
) -> str | None:
    """Why a reply to a json_schema request shows that the server ignored the schema ("not
    JSON at all", "JSON of another type"), or None when it may just be wrong or cut short: only
    a reply that cannot even begin a value of the schema's top-level type counts. `read` is
    `text` already parsed (`_read`), so that a reply is parsed once."""
    types = schema.get("type")
    allowed = [types] if isinstance(types, str) else list(types or [])
    allowed = [t for t in allowed if t in _STARTS] or list(_STARTS)
    stripped = text.lstrip()
    if not stripped:
        return None
    starts = "".join(_STARTS[t] for t in allowed)
    if stripped[0] not in starts:
        kind = "not JSON at all" if stripped[0] not in '{["-0123456789tfn' else "JSON"
        shown = stripped[:40] + ("…" if len(stripped) > 40 else "")
        return f"{kind} where the schema asks for {' or '.join(allowed)} ({shown!r})"
    value, failed = read if read is not None else _read(text)
    if failed is not None:
        return None  # the right start: a broken or cut answer, not an ignored schema
    python = tuple(t for name in allowed for t in _PYTHON_TYPES[name])
    if isinstance(value, bool) and "boolean" not in allowed:
        python = ()
    if not isinstance(value, python):
        return f"JSON of another type ({type(value).__name__}) than the schema's"
    return None


def tool_call_value(call: Mapping[str, Any]) -> dict[str, Any]:
    """A tool call as the result shows it: name, parsed arguments (as written when not
    JSON) and id."""
    raw = call.get("arguments") or ""
    if not isinstance(raw, str):
        arguments: Any = raw  # a server that sent an object, not its JSON text: as it is
    else:
        try:
            arguments = reply_json(raw) if raw else {}
        except (ValueError, RecursionError):
            arguments = raw  # passed through as the model wrote it
    out: dict[str, Any] = {"name": call.get("name"), "arguments": arguments}
    if call.get("id"):
        out["id"] = call["id"]
    return out


def repair_messages(
    messages: Sequence[Message], completion: Completion, exc: OutputInvalid
) -> list[Message]:
    """The conversation that re-asks the model with its invalid answer and the validation
    errors (as instructor does): the wire builds the request from it as from any other."""
    errors = "\n".join(f"- {e}" for e in exc.errors[:20])
    return [
        *messages,
        {"role": "assistant", "content": completion.text or ""},
        {
            "role": "user",
            "content": "Your reply did not match the required JSON schema:\n"
            f"{errors}\nReply again with only the corrected JSON.",
        },
    ]
