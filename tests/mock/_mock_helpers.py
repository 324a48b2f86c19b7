"""Shared by the mock server tests (test_mockserver, test_mockreply, test_mockfaults,
test_mockrequest, test_mockgen, test_mockscalars): request bodies, tools, the strict-schema
corpus, a format-checking validator and the app in-process. Not a test module (pytest does not
collect it)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import jsonschema

from runner.mock import create_app

MODEL = "gpt-4o-mini"
CORPUS = Path(__file__).resolve().parents[1] / "data" / "strict-schemas"
CITY = json.loads((CORPUS / "city.json").read_text())
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city.",
        "strict": True,
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit", "days"],
            "additionalProperties": False,
        },
    },
}
TIME_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"timezone": {"type": "string", "pattern": "^[A-Z][a-z]+/[A-Z][a-z]+$"}},
            "required": ["timezone"],
            "additionalProperties": False,
        },
    },
}


def body(text: str = "Tell me about Paris.", **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], **extra}


def schema_format(schema: dict[str, Any], name: str = "answer") -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}}


def format_validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """Draft 2020-12, checking the formats jsonschema can check without optional packages."""
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def valid(schema: dict[str, Any], instance: Any) -> bool:
    return bool(format_validator(schema).is_valid(instance))


@contextlib.asynccontextmanager
async def in_process(app: Any = None, **kw: Any) -> AsyncIterator[httpx2.AsyncClient]:
    """A client for `app` (or `create_app(**kw)`) over httpx2's ASGITransport: no socket."""
    transport = httpx2.ASGITransport(app or create_app(**kw))
    async with httpx2.AsyncClient(transport=transport, base_url="http://mock/v1") as client:
        yield client


async def chat(
    client: httpx2.AsyncClient, payload: Any, headers: dict[str, str] | None = None
) -> httpx2.Response:
    return await client.post("/chat/completions", json=payload, headers=headers)
