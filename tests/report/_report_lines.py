"""Ledger lines for the report tests: `record(...)` makes one valid v1 line (overrides merge into
nested objects), `sample_records()` a small fixed ledger with every case the report must handle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

COMMIT_A = "9bd960c2f4a1e8b7d6c5a4f3e2d1c0b9a8f7e6d5"
COMMIT_B = "1111111111111111111111111111111111111111"
_SHA = "5f0c4be1d2a7c8e9f3b6a1d4c7e0f2a5b8d1e4f7a0c3b6d9e2f5a8b1c4d7e0f3"


def record(n: int = 0, **over: Any) -> dict[str, Any]:
    """A v1 ledger line; `over` replaces top-level fields, merging into `spec`, `usage`, `cost`."""
    rec: dict[str, Any] = {
        "v": 1,
        "id": f"01JP9ZMQCNBRX9RWDJTG7R{n:04d}",
        "ts": "2025-03-14T09:26:53.589Z",
        "spec": {
            "path": "prompts/city.yaml",
            "name": "city",
            "sha256": _SHA,
            "commit": COMMIT_A,
            "dirty": False,
        },
        "request_sha256": _SHA,
        "case": None,
        "row": None,
        "model": "gpt-4o-mini",
        "served_model": "gpt-4o-mini-2024-07-18",
        "params": {"temperature": 0.3},
        "vars": None,
        "messages": None,
        "status": "ok",
        "output": {"text": "{}", "json": {}},
        "error": None,
        "attempts": [{"n": 1, "outcome": "ok", "waited_s": 0.0, "latency_ms": 800.0}],
        "usage": {"prompt": 100, "completion": 20, "cached": 0, "reasoning": 0, "total": 120},
        "cost": {"usd": 0.000027, "source": "genai-prices 0.2.3", "estimated": False},
        "latency_ms": 800.0,
        "ttft_ms": None,
        "request_id": "req_1",
        "mock": False,
    }
    for key, value in over.items():
        if key in ("spec", "usage", "cost") and isinstance(value, dict):
            rec[key] = rec[key] | value
        else:
            rec[key] = value
    if "usage" in over and isinstance(over["usage"], dict):
        usage = rec["usage"]
        usage["total"] = usage["prompt"] + usage["completion"]
    if rec["status"] != "ok" and "error" not in over:
        kind = "invalid_output" if rec["status"] == "invalid_output" else "rate_limit"
        rec["error"] = {"kind": kind, "message": "it failed"}
        rec["output"] = None
    return rec


def _failed(n: int, ts: str, **over: Any) -> dict[str, Any]:
    extra = [{"n": 1, "outcome": "rate_limit", "waited_s": 0.0, "latency_ms": 90.0}]
    return record(n, ts=ts, status="error", attempts=extra * 3, **over)


def sample_records() -> list[dict[str, Any]]:
    """Three days, three specs, four models; real, mock (estimated) and unpriced calls; errors
    and invalid output; cached tokens, streamed calls (ttft), test cases and two commits."""
    sentiment = {"path": "prompts/sentiment.yaml", "name": "sentiment"}
    haiku = {"path": "prompts/haiku.yaml", "name": "haiku", "commit": COMMIT_B}
    return [
        record(1, ts="2025-03-12T08:00:00.000Z", latency_ms=700.0),
        record(2, ts="2025-03-12T09:30:00.000Z", latency_ms=900.0, usage={"cached": 64}),
        record(
            3,
            ts="2025-03-12T10:00:00.000Z",
            model="gpt-4o",
            usage={"prompt": 1000, "completion": 200},
            cost={"usd": 0.0045},
            latency_ms=2100.0,
        ),
        _failed(4, "2025-03-12T11:00:00.000Z", latency_ms=4000.0, cost={"usd": 0.0}),
        record(
            5,
            ts="2025-03-13T08:15:00.000Z",
            spec=sentiment,
            case="positive",
            latency_ms=400.0,
            ttft_ms=150.0,
        ),
        record(
            6,
            ts="2025-03-13T08:16:00.000Z",
            spec=sentiment,
            case="negative",
            status="invalid_output",
            latency_ms=650.0,
            ttft_ms=210.0,
        ),
        record(
            7,
            ts="2025-03-13T12:00:00.000Z",
            spec=sentiment,
            mock=True,
            served_model="gpt-4o-mini",
            cost={"usd": 0.0000213, "estimated": True},
            latency_ms=3.5,
        ),
        record(
            8,
            ts="2025-03-13T12:00:01.000Z",
            spec=sentiment,
            mock=True,
            served_model="gpt-4o-mini",
            cost={"usd": 0.0000187, "estimated": True},
            latency_ms=4.1,
        ),
        record(
            9,
            ts="2025-03-14T07:00:00.000Z",
            spec=haiku,
            model="my-finetune",
            served_model="my-finetune",
            cost={"usd": None, "source": "unknown"},
            latency_ms=1200.0,
        ),
        record(
            10,
            ts="2025-03-14T07:05:00.000Z",
            spec=haiku,
            model="my-finetune",
            served_model="my-finetune",
            cost={"usd": None, "source": "unknown"},
            latency_ms=1350.0,
            provider="https://llm.internal.example:8443/v1",
        ),
        _failed(11, "2025-03-14T07:10:00.000Z", spec=haiku, model="o3-mini", latency_ms=3000.0),
        record(
            12,
            ts="2025-03-14T23:59:59.999Z",
            model="gpt-4o",
            usage={"prompt": 800, "completion": 150, "cached": 512},
            cost={"usd": 0.00265},
            latency_ms=1800.0,
        ),
    ]


def write_lines(path: Path, lines: list[dict[str, Any] | str | bytes]) -> Path:
    """Write records (as JSON), strings and bytes (as they are), one per line."""
    with open(path, "wb") as f:
        for line in lines:
            if isinstance(line, dict):
                f.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")
            elif isinstance(line, str):
                f.write(line.encode() + b"\n")
            else:
                f.write(line)
    return path


GOLDEN = Path(__file__).resolve().parent.parent / "data" / "golden"


def check_golden(name: str, text: str, update: bool) -> None:
    """Compare `text` with tests/data/golden/<name> exactly (pytest --update-golden rewrites it)."""
    path = GOLDEN / name
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        return
    assert path.exists(), f"no golden file {path}: run pytest --update-golden once and review it"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"{name} differs from its golden file (pytest --update-golden)"
