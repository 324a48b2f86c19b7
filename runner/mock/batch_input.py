"""A batch's input as OpenAI checks it: the metadata, and the input file's lines (JSON, unique
custom_id, POST to the batch's endpoint, chat completions or responses, one model, at most
50,000 requests and 200 MB), each problem named with its line as the `errors` of a failed
batch. Pure functions, no state.
"""

from __future__ import annotations

import json
from typing import Any

from runner.mock.request import api_error

__all__ = [
    "ENDPOINT",
    "ENDPOINTS",
    "MAX_FILE_BYTES",
    "MAX_REQUESTS",
    "check_metadata",
    "read_input",
]

MAX_REQUESTS = 50_000
MAX_FILE_BYTES = 200 * 1024 * 1024
ENDPOINT = "/v1/chat/completions"
ENDPOINTS = (ENDPOINT, "/v1/responses")  # the endpoints the mock's batches answer


def check_metadata(metadata: Any) -> dict[str, str] | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or len(metadata) > 16:
        raise api_error(400, "metadata must be an object of at most 16 pairs.", param="metadata")
    for key, value in metadata.items():
        if not isinstance(value, str) or len(key) > 64 or len(value) > 512:
            raise api_error(
                400,
                "metadata keys must be at most 64 characters and values strings of at most "
                "512 characters.",
                param="metadata",
            )
    return dict(metadata)


def read_input(
    data: bytes, endpoint: str = ENDPOINT
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
    """The input file's rows, the problems OpenAI would fail the batch for, and its model: every
    row must POST to the batch's `endpoint`."""
    rows: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    seen: set[str] = set()
    models: set[str] = set()

    def problem(code: str, message: str, line: int, param: str | None = None) -> None:
        if len(problems) < 100:
            problems.append({"code": code, "message": message, "param": param, "line": line})

    if len(data) > MAX_FILE_BYTES:
        problem("file_too_large", f"The input file is larger than {MAX_FILE_BYTES} bytes.", 0)
    for number, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except ValueError:
            problem("invalid_json_line", "This line is not parseable as valid JSON.", number)
            continue
        if not isinstance(row, dict) or not isinstance(row.get("custom_id"), str):
            problem("missing_required_parameter", "Missing custom_id.", number, "custom_id")
            continue
        if row["custom_id"] in seen:
            problem(
                "duplicate_custom_id",
                f"The custom_id for this request is a duplicate of another request: "
                f"{row['custom_id']}.",
                number,
                "custom_id",
            )
        seen.add(row["custom_id"])
        if row.get("method") != "POST":
            problem("invalid_method", "The method must be POST.", number, "method")
        if row.get("url") != endpoint:
            problem(
                "mismatched_endpoint",
                f"The URL provided for this request does not match the batch endpoint {endpoint}.",
                number,
                "url",
            )
        body = row.get("body")
        if not isinstance(body, dict):
            problem("invalid_request", "The body must be an object.", number, "body")
            continue
        models.add(str(body.get("model")))
        rows.append(row)
    if len(models) > 1:
        problem(
            "mismatched_model",
            "All requests in a batch must use the same model: " + ", ".join(sorted(models)),
            0,
            "model",
        )
    if len(rows) > MAX_REQUESTS:
        problem("too_many_requests", f"A batch may hold at most {MAX_REQUESTS} requests.", 0, None)
    if not rows and not problems:
        problem("empty_file", "The input file has no requests.", 0)
    return rows, problems, next(iter(models), None)
