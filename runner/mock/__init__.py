"""The built-in OpenAI-compatible mock server: deterministic, schema-valid answers, seeded
faults, and its own SSE frames (so a client parsing bug cannot hide behind a matching bug
here). It imports only runner's base modules.

Modules, bottom up: `regex` (strings for a regex subset), `scalars` (leaf values),
`generate` (instances of a schema), `faults` (fault options and seeded decisions), `request`
(OpenAI's chat request checks), `reply` (answers, bodies and SSE frames), `files` and
`batch_input` (uploads, batch input checks), `responses_input`, `responses_request` and
`responses_reply` (the Responses API on the same answers), `wires` (each answering endpoint as
the handler sees it), `batches` (the Batch API), `transport` (HTTP pieces every route shares),
`server` (the Starlette app and `serve`).
"""

from runner.mock.faults import FAULT_HEADER, Faults, parse_fault_header, parse_statuses
from runner.mock.generate import generate_instance
from runner.mock.reply import REFUSAL
from runner.mock.request import REFUSE_MARKER
from runner.mock.server import DEFAULT_MODELS, create_app, serve

__all__ = [
    "DEFAULT_MODELS",
    "FAULT_HEADER",
    "REFUSAL",
    "REFUSE_MARKER",
    "Faults",
    "create_app",
    "generate_instance",
    "parse_fault_header",
    "parse_statuses",
    "serve",
]
