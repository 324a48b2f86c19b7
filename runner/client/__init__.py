"""The OpenAI-compatible Chat Completions client on httpx2 (the only owner of httpx2): one HTTP
request per call, every failure mapped into runner.errors, secrets redacted. This file only
re-exports; the code lives in the private modules beside it.
"""

from __future__ import annotations

from runner.client._asgi import ASGIStreamTransport
from runner.client._body import (
    FALLBACK,
    OUTPUT_MODES,
    SCHEMA_INSTRUCTION,
    build_body,
    is_reasoning_model,
    response_format_for,
    with_output_mode,
)
from runner.client._client import ChatClient
from runner.client._errors import error_from_response, error_from_transport, parse_retry_after
from runner.client._files import BatchAPI
from runner.client._reply import completion_from_reply, reply_json
from runner.client._sync import SyncChatClient

__all__ = [
    "FALLBACK",
    "OUTPUT_MODES",
    "SCHEMA_INSTRUCTION",
    "ASGIStreamTransport",
    "BatchAPI",
    "ChatClient",
    "SyncChatClient",
    "build_body",
    "completion_from_reply",
    "error_from_response",
    "error_from_transport",
    "is_reasoning_model",
    "parse_retry_after",
    "reply_json",
    "response_format_for",
    "with_output_mode",
]
