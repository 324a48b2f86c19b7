"""Wire APIs and the HTTP they travel on (the only owner of httpx2). `wire.py` is the seam: a
WireAPI turns runner's neutral request into its exact body and its replies into the neutral
Completion. `openai_chat/` (Chat Completions) and `openai_responses/` (Responses) implement it;
`http.py` is the HTTP layer that knows no wire format; `client.py` puts a wire on it. Nothing
outside this package (and runner.mock) names a wire field. This file only re-exports.
"""

from __future__ import annotations

from runner.providers._asgi import ASGIStreamTransport
from runner.providers._errors import error_from_response, error_from_transport, parse_retry_after
from runner.providers._files import BatchAPI
from runner.providers._sync import SyncChatClient, SyncModelClient, SyncResponsesClient
from runner.providers.client import ChatClient, ModelClient, ResponsesClient
from runner.providers.wire import (
    OUTPUT_MODES,
    SCHEMA_INSTRUCTION,
    Capabilities,
    OutputFormat,
    WireAPI,
    WireRequest,
    format_for_mode,
    messages_for_mode,
)

__all__ = [
    "OUTPUT_MODES",
    "SCHEMA_INSTRUCTION",
    "WIRE_APIS",
    "ASGIStreamTransport",
    "BatchAPI",
    "Capabilities",
    "ChatClient",
    "ModelClient",
    "OutputFormat",
    "ResponsesClient",
    "SyncChatClient",
    "SyncModelClient",
    "SyncResponsesClient",
    "WireAPI",
    "WireRequest",
    "error_from_response",
    "error_from_transport",
    "format_for_mode",
    "messages_for_mode",
    "parse_retry_after",
    "wire_api",
]

# A spec's `provider.api` values (the spec schema's enum says the same).
WIRE_APIS = ("chat", "responses")


def wire_api(name: str) -> WireAPI:
    """The wire a spec's `provider.api` names (its module imported on first use)."""
    found = _WIRES.get(name)
    if found is not None:
        return found  # asked three times a call: no import statement each time
    if name == "chat":
        from runner.providers.openai_chat import CHAT

        found = CHAT
    elif name == "responses":
        from runner.providers.openai_responses import RESPONSES

        found = RESPONSES
    else:
        raise ValueError(f"provider.api {name!r} is not one of {', '.join(WIRE_APIS)}")
    _WIRES[name] = found
    return found


_WIRES: dict[str, WireAPI] = {}
