"""The mock server's Files API: multipart uploads (parsed here, so no python-multipart), file
objects and their content, kept in memory per app. Handlers return a payload (a dict sent as
JSON, or bytes sent as a file) or raise the OpenAI-shaped HTTPStatusFailure; server.py wraps
them with the API key check and the reply headers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runner.mock.request import api_error, digest

if TYPE_CHECKING:
    from starlette.requests import Request

__all__ = [
    "FileStore",
    "StoredFile",
    "file_content",
    "list_files",
    "parse_upload",
    "retrieve_file",
    "upload",
]

PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")


@dataclass
class StoredFile:
    """One uploaded (or server-written) file and its bytes."""

    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def to_object(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


class FileStore:
    """Every file of one app, by id."""

    def __init__(self) -> None:
        self.files: dict[str, StoredFile] = {}

    def add(self, filename: str, purpose: str, data: bytes) -> StoredFile:
        file_id = f"file-{digest('file', len(self.files), time.time_ns())[:24]}"
        stored = StoredFile(file_id, filename, purpose, data, int(time.time()))
        self.files[file_id] = stored
        return stored

    def get(self, file_id: str) -> StoredFile:
        found = self.files.get(file_id)
        if found is None:
            raise api_error(404, f"No such File object: {file_id}", param="id")
        return found


def parse_upload(content_type: str, body: bytes) -> tuple[str, str, bytes]:
    """(filename, purpose, data) of a multipart/form-data upload with `file` and `purpose`."""
    kind, _, rest = content_type.partition(";")
    boundary = ""
    for item in rest.split(";"):
        key, _, value = item.strip().partition("=")
        if key.lower() == "boundary":
            boundary = value.strip('"')
    if kind.strip().lower() != "multipart/form-data" or not boundary:
        raise api_error(400, "The request must be multipart/form-data with a file and a purpose.")
    fields: dict[str, tuple[str | None, bytes]] = {}
    delimiter = b"--" + boundary.encode()
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        name = filename = None
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if line.lower().startswith("content-disposition:"):
                for item in line.split(";")[1:]:
                    key, _, value = item.strip().partition("=")
                    if key == "name":
                        name = value.strip('"')
                    elif key == "filename":
                        filename = value.strip('"')
        if name is not None:
            fields[name] = (filename, content.removesuffix(b"\r\n"))
    if "file" not in fields:
        raise api_error(400, "Missing required parameter: 'file'.", param="file")
    if "purpose" not in fields:
        raise api_error(400, "Missing required parameter: 'purpose'.", param="purpose")
    purpose = fields["purpose"][1].decode("utf-8", "replace").strip()
    if purpose not in PURPOSES:
        raise api_error(
            400,
            f"Invalid value for 'purpose': '{purpose}'. Supported values are: "
            + ", ".join(f"'{p}'" for p in PURPOSES)
            + ".",
            param="purpose",
        )
    filename, data = fields["file"]
    return filename or "upload", purpose, data


async def upload(request: Request) -> dict[str, Any]:
    """POST /v1/files."""
    store: FileStore = request.app.state.files
    filename, purpose, data = parse_upload(
        request.headers.get("content-type", ""), await request.body()
    )
    return store.add(filename, purpose, data).to_object()


async def list_files(request: Request) -> dict[str, Any]:
    """GET /v1/files?purpose=&limit=&order=&after=, newest first unless `order=asc`."""
    store: FileStore = request.app.state.files
    query = request.query_params
    try:
        limit = int(query.get("limit", "10000"))
    except ValueError:
        raise api_error(400, "limit must be an integer.", param="limit") from None
    if not 1 <= limit <= 10000:
        raise api_error(400, "limit must be between 1 and 10000.", param="limit")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise api_error(400, "order must be 'asc' or 'desc'.", param="order")
    files = list(store.files.values())  # in upload order
    if order == "desc":
        files.reverse()
    purpose = query.get("purpose")
    if purpose:
        files = [f for f in files if f.purpose == purpose]
    after = query.get("after")
    if after:
        ids = [f.id for f in files]
        files = files[ids.index(after) + 1 :] if after in ids else []
    data = [f.to_object() for f in files[:limit]]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(files) > limit,
    }


async def retrieve_file(request: Request) -> dict[str, Any]:
    """GET /v1/files/{file_id}."""
    store: FileStore = request.app.state.files
    return store.get(request.path_params["file_id"]).to_object()


async def file_content(request: Request) -> bytes:
    """GET /v1/files/{file_id}/content."""
    store: FileStore = request.app.state.files
    return store.get(request.path_params["file_id"]).data
