"""The values a probe hands back: one `Finding` per capability (what was sent, what came back,
the verdict), the `Suggestion`s that follow from them, the whole `ProbeReport` and, for a dry
run, the `PlannedRequest`s. Plain data; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CAPABILITIES",
    "Finding",
    "PlannedRequest",
    "ProbeReport",
    "Suggestion",
]

# Every capability, in the table's order: its key (in --json) and its label (in the table).
# The first two are runner's output modes.
CAPABILITIES = {
    "json_schema": "json_schema",
    "json_object": "json_object",
    "stream_usage": "usage in streams",
    "n": "n",
    "tools": "tools",
    "responses": "responses API",
    "files": "files API",
    "batches": "batches API",
    "models": "models list",
    "error_shape": "error shape",
    "rate_limit_headers": "rate-limit headers",
}


@dataclass(frozen=True)
class Finding:
    """What the probe learnt about one capability."""

    capability: str  # a key of CAPABILITIES
    verdict: str  # enforced, ignored, refused, honoured, missing, present, absent, ...
    detail: str  # what came back, in words
    sent: str  # what was sent, in words

    @property
    def label(self) -> str:
        return CAPABILITIES[self.capability]


@dataclass(frozen=True)
class Suggestion:
    """A spec setting (or a way of running) that fits the server, and why."""

    setting: str
    why: str

    def to_dict(self) -> dict[str, str]:
        return {"setting": self.setting, "why": self.why}


@dataclass(frozen=True)
class ProbeReport:
    """Everything a probe found about one server: a Finding per capability, in the order of
    CAPABILITIES, and the settings they suggest."""

    base_url: str  # secrets masked
    model: str
    api: str
    findings: tuple[Finding, ...]
    suggestions: tuple[Suggestion, ...] = ()

    def finding(self, capability: str) -> Finding:
        return next(f for f in self.findings if f.capability == capability)

    def verdicts(self) -> dict[str, str]:
        return {f.capability: f.verdict for f in self.findings}

    def to_dict(self) -> dict[str, Any]:
        """`runner probe --json`: one key per capability ({verdict, detail}), then
        `suggested`."""
        out: dict[str, Any] = {
            f.capability: {"verdict": f.verdict, "detail": f.detail} for f in self.findings
        }
        out["suggested"] = [s.to_dict() for s in self.suggestions]
        return out


@dataclass(frozen=True)
class PlannedRequest:
    """One request a probe would send (`--dry-run`): a GET has no body."""

    capability: str
    method: str
    url: str
    body: dict[str, Any] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "capability": self.capability,
            "method": self.method,
            "url": self.url,
            "body": self.body,
        }
