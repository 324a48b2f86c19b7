"""The Files and Batches endpoints of an OpenAI-compatible server: upload a batch input file,
create, read, list and cancel batches, and download a file's content to disk. One HTTP request
per method, every failure mapped by _errors as a model call's are; no retries, no waiting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2

from runner.errors import StreamBroken
from runner.providers._errors import error_from_response, error_from_transport
from runner.providers._json import load_json

__all__ = ["BatchAPI"]


class BatchAPI:
    """Files and Batches calls that share a client's connection pool, headers and key."""

    def __init__(
        self,
        http: httpx2.AsyncClient,
        base_url: str,
        headers: httpx2.Headers,
        redact: Callable[[str], str],
        timeout: float,
    ) -> None:
        self._http = http
        self.base_url = base_url
        self._headers = headers  # the client's common headers with Accept: application/json
        self._redact = redact
        self._timeout = timeout

    async def _send(self, method: str, path: str, **kw: Any) -> httpx2.Response:
        url = f"{self.base_url}{path}"
        try:
            response = await self._http.request(
                method, url, headers=self._headers, timeout=self._timeout, **kw
            )
        except httpx2.HTTPError as exc:
            raise error_from_transport(
                exc, url=url, limit=self._timeout, redact=self._redact
            ) from exc
        if not 200 <= response.status_code < 300:
            raise error_from_response(
                response.status_code,
                response.headers,
                response.content,
                url=url,
                redact=self._redact,
                reason=response.reason_phrase,
            )
        return response

    async def _json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        response = await self._send(method, path, **kw)
        url = f"{self.base_url}{path}"
        data = load_json(response.content, url, response.headers.get("x-request-id"))
        if not isinstance(data, dict) or "id" not in data and "data" not in data:
            raise StreamBroken(f"malformed reply from {url}: not an API object", url=url)
        return data

    async def upload(self, path: Path, *, purpose: str = "batch") -> dict[str, Any]:
        """POST /files (multipart, streamed from disk): the file object."""
        with path.open("rb") as f:
            return await self._json(
                "POST",
                "/files",
                files={"file": (path.name, f, "application/jsonl")},
                data={"purpose": purpose},
            )

    async def create_batch(
        self,
        input_file_id: str,
        *,
        endpoint: str = "/v1/chat/completions",
        completion_window: str = "24h",
        metadata: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """POST /batches: the batch object."""
        body: dict[str, Any] = {
            "input_file_id": input_file_id,
            "endpoint": endpoint,
            "completion_window": completion_window,
        }
        if metadata:
            body["metadata"] = dict(metadata)
        return await self._json("POST", "/batches", json=body)

    async def get_batch(self, batch_id: str) -> dict[str, Any]:
        """GET /batches/{id}."""
        return await self._json("GET", f"/batches/{_segment(batch_id)}")

    async def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        """POST /batches/{id}/cancel."""
        return await self._json("POST", f"/batches/{_segment(batch_id)}/cancel")

    async def list_batches(self, *, limit: int = 100, after: str | None = None) -> dict[str, Any]:
        """GET /batches (one page, newest first)."""
        params: dict[str, Any] = {"limit": limit}
        if after:
            params["after"] = after
        return await self._json("GET", "/batches", params=params)

    async def download(self, file_id: str, dest: Path) -> int:
        """GET /files/{id}/content, streamed to `dest`; the number of bytes written."""
        url = f"{self.base_url}/files/{_segment(file_id)}/content"
        written = 0
        try:
            async with self._http.stream(
                "GET", url, headers=self._headers, timeout=self._timeout
            ) as response:
                if not 200 <= response.status_code < 300:
                    content = await response.aread()
                    raise error_from_response(
                        response.status_code,
                        response.headers,
                        content,
                        url=url,
                        redact=self._redact,
                        reason=response.reason_phrase,
                    )
                with dest.open("wb") as out:
                    async for chunk in response.aiter_bytes():
                        out.write(chunk)
                        written += len(chunk)
        except httpx2.HTTPError as exc:
            raise error_from_transport(
                exc, url=url, limit=self._timeout, redact=self._redact
            ) from exc
        return written


def _segment(ident: str) -> str:
    """An id as one URL path segment: whatever it holds (`/`, `..`, `?`), it cannot address
    another path on the server."""
    return quote(ident, safe="").replace(".", "%2E") or "%20"
