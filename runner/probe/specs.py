"""The probe's model calls as tiny specs built in memory (checked as spec files are, run by the
engine like any other call, each recorded in the ledger with its cost): retries off, so that one
call is one request and one ledger line, and a few output tokens each. Also which model is
probed and the environment the probe's Session sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.providers import wire_api
from runner.spec.load import spec_from_data
from runner.spec.model import PromptSpec

__all__ = [
    "DEFAULT_MODEL",
    "PROBE_SCHEMA",
    "PROBE_TOOL",
    "UNKNOWN_MODEL",
    "probe_environ",
    "probe_specs",
    "wanted_model",
]

# Probed when no model is named and the server lists none (or is OpenAI's).
DEFAULT_MODEL = "gpt-4o-mini"
# A model no server has: the request that must fail, to see the server's error body.
UNKNOWN_MODEL = "runner-no-such-model"
# The only valid answer is {"probe_token": "runner-probe"}, which the prompt never mentions:
# a reply that matches it was shaped by the server, not by a model following the prompt.
PROBE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"probe_token": {"type": "string", "enum": ["runner-probe"]}},
    "required": ["probe_token"],
    "additionalProperties": False,
}
PROBE_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "runner_probe",
        "description": "Tell runner's probe that tool calls work.",
        "parameters": {
            "type": "object",
            "properties": {"ok": {"type": "boolean"}},
            "required": ["ok"],
            "additionalProperties": False,
        },
    },
}
# Output tokens: enough for the probe's JSON or tool call; a plain answer needs fewer (the
# Responses API takes no fewer than 16).
JSON_TOKENS = 64
TEXT_TOKENS = 16
_MESSAGES = [
    {"role": "system", "content": "You are answering runner's probe of this server."},
    {"role": "user", "content": "Say hello in a few words."},
]
# Variables the probe's Session must not see: each probe decides whether it streams, and the
# request that must fail keeps its model that cannot exist.
_IGNORED_ENV = ("RUNNER_STREAM", "RUNNER_MODEL")


def wanted_model(given: str | None, environ: Mapping[str, str]) -> str | None:
    """The model to probe: --model, else RUNNER_MODEL; None lets the probe pick one."""
    return given or (environ.get("RUNNER_MODEL") or "").strip() or None


def probe_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of the probe's Session: as given, without RUNNER_STREAM and
    RUNNER_MODEL."""
    return {k: v for k, v in environ.items() if k not in _IGNORED_ENV}


def probe_specs(model: str, api: str) -> dict[str, PromptSpec]:
    """The spec of each model call, by capability, in the order they are sent. `api` is the
    wire of every call but the one that asks whether the Responses API exists; on a wire
    without `n` there is no call for it."""
    limit = wire_api(api).capabilities.output_limit
    found: dict[str, dict[str, Any]] = {
        "json_schema": {
            "params": {limit: JSON_TOKENS},
            "output": {"schema": PROBE_SCHEMA, "strict": True, "mode": "json_schema"},
        },
        "json_object": {
            "params": {limit: JSON_TOKENS},
            "output": {"schema": {"type": "object"}, "strict": False, "mode": "json_object"},
        },
        "stream_usage": {"params": {limit: TEXT_TOKENS}, "stream": True},
        "n": {"params": {limit: TEXT_TOKENS, "n": 2}},
        "tools": {
            "params": {limit: JSON_TOKENS},
            "tools": [PROBE_TOOL],
            "tool_choice": "required",
        },
        "responses": {
            "provider": {"api": "responses"},
            "params": {wire_api("responses").capabilities.output_limit: TEXT_TOKENS},
        },
        "error_shape": {"model": UNKNOWN_MODEL, "params": {limit: TEXT_TOKENS}},
    }
    if not wire_api(api).capabilities.choices:
        del found["n"]
    return {key: _spec(key, model, api, fields) for key, fields in found.items()}


def _spec(key: str, model: str, api: str, fields: Mapping[str, Any]) -> PromptSpec:
    data: dict[str, Any] = {
        "name": f"probe.{key}",
        "description": f"runner probe: {key}",
        "model": model,
        "provider": {"api": api},
        "messages": _MESSAGES,
        "timeout": "60s",
        "retry": {"attempts": 1},
        # The probe expects failures (a refused format, a missing endpoint): none may stop it.
        "breaker": {"failures": 100},
        **fields,
    }
    return spec_from_data(data, path=Path("runner-probe") / f"{key}.yaml")
