"""The spec settings that fit a probed server, from its verdicts: the output mode its structured
output allows, the wire API, what to do without usage in streams, without `n`, tools, the Batch
API or rate-limit headers. Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from runner.probe.findings import Suggestion

__all__ = ["suggestions"]


def suggestions(verdicts: Mapping[str, str], *, api: str) -> list[Suggestion]:
    """What the verdicts (capability -> verdict) suggest, most important first."""
    found: list[Suggestion] = []
    mode = _output_mode(verdicts.get("json_schema"), verdicts.get("json_object"))
    if mode is not None:
        found.append(mode)
    if verdicts.get("responses") == "absent":
        found.append(
            Suggestion(
                "provider.api: chat",
                "the server has no Responses API"
                + (": a spec with provider.api responses cannot run here" if api != "chat" else ""),
            )
        )
    if verdicts.get("stream_usage") == "missing":
        found.append(
            Suggestion(
                "stream: false",
                "the server sends no usage in streams: a streamed call's tokens are counted "
                "locally and marked estimated in the ledger",
            )
        )
    if verdicts.get("n") in ("ignored", "refused"):
        found.append(
            Suggestion(
                "no params.n",
                f"the server {verdicts['n']} n: one choice per call; run the call again for more",
            )
        )
    if verdicts.get("tools") in ("ignored", "refused"):
        found.append(
            Suggestion(
                "no tools",
                f"the server {verdicts['tools']} tools: ask for structured output with an "
                "output schema instead",
            )
        )
    if "absent" in (verdicts.get("files"), verdicts.get("batches")):
        found.append(
            Suggestion(
                "no --batch",
                "the server has no Files or Batches API: run data sets live (runner exec "
                "--input without --batch)",
            )
        )
    if verdicts.get("rate_limit_headers") == "absent":
        found.append(
            Suggestion(
                "rate: {rpm, tpm, concurrency}",
                "the server sends no x-ratelimit-* headers for runner's limiter to follow: "
                "set the limits it can take yourself",
            )
        )
    return found


def _output_mode(schema: str | None, json_object: str | None) -> Suggestion | None:
    if schema == "enforced":
        return Suggestion(
            "output.mode: json_schema",
            "the server enforces a strict JSON Schema (the default mode)",
        )
    if schema not in ("ignored", "refused"):
        return None  # the probe could not tell
    said = (
        "answers json_schema but does not enforce it"
        if schema == "ignored"
        else "refuses json_schema"
    )
    if json_object == "enforced":
        auto = "; `output.mode: auto` falls back to it by itself" if schema == "refused" else ""
        return Suggestion(
            "output.mode: json_object",
            f"the server {said}, and answers json_object with JSON{auto}",
        )
    return Suggestion(
        "output.mode: prompt",
        f"the server {said}, and json_object is {json_object or 'not known'}: prompt mode puts "
        "the schema in the system message, and runner checks every reply against it",
    )
