"""ModelClient: one wire API (runner.providers.wire) over the wire-neutral HTTP layer
(runner.providers.http). `complete(body)` and `stream(body, on_delta=)` send a body the wire
built and return its reply as the neutral Completion. `ChatClient` and `ResponsesClient` are
the two OpenAI wires' clients. It never retries or waits (runner.policy.retry does).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from runner.fastjson import plain_json
from runner.providers._files import BatchAPI
from runner.providers._stream import OnDelta
from runner.providers.http import HttpClient, rate_headers, request_id
from runner.providers.wire import WireAPI
from runner.types import Completion

__all__ = ["ChatClient", "ModelClient", "ResponsesClient"]

logger = logging.getLogger("runner.providers")


class ModelClient:
    """A wire API's client: one HTTP request per call, no retries. Takes HttpClient's
    configuration (base_url, api_key, headers, timeouts, transport...) as keywords."""

    def __init__(self, wire: WireAPI, **http: Any) -> None:
        self.wire = wire
        self.http = HttpClient(**http)
        self._target = self.http.target(wire.capabilities.path)

    @property
    def base_url(self) -> str:
        return self.http.base_url

    @property
    def max_reply_bytes(self) -> int:
        return self.http.max_reply_bytes

    @property
    def timeout(self) -> float:
        return self.http.timeout

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.http!r})"

    async def __aenter__(self) -> ModelClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pools."""
        await self.http.aclose()

    async def complete(
        self, body: Mapping[str, Any], *, timeout: float | None = None
    ) -> Completion:
        """Send a non-streaming request and return the whole completion (every choice)."""
        if body.get("stream"):
            raise ValueError("complete() got a body with stream: true; call stream() instead")
        http, target = self.http, self._target
        content = _body_bytes(body)
        t0 = time.perf_counter()
        async with http.exchange(
            "POST", target, http.json_headers, content, http.limit(timeout), wire=self.wire
        ) as response:
            data = await http.read_json(response, target.url)
            completion = self.wire.completion(
                data,
                url=target.url,
                request_id=request_id(response),
                model=str(body.get("model") or ""),
                latency_ms=(time.perf_counter() - t0) * 1000,
                rate_headers=rate_headers(response),
            )
        self._log(completion)
        return completion

    async def stream(
        self,
        body: Mapping[str, Any],
        *,
        timeout: float | None = None,
        on_delta: OnDelta | None = None,
    ) -> Completion:
        """Send a streaming request; hand text and refusal deltas to `on_delta` as they arrive
        and return the assembled completion. A reply that is plain JSON is accepted as whole."""
        if not body.get("stream"):
            raise ValueError("stream() needs a body built with stream=True")
        http, target = self.http, self._target
        content = _body_bytes(body)
        model = str(body.get("model") or "")
        t0 = time.perf_counter()
        async with http.exchange(
            "POST", target, http.sse_headers, content, http.limit(timeout), wire=self.wire
        ) as response:
            rid, headers = request_id(response), rate_headers(response)
            if response.headers.get("content-type", "").startswith("application/json"):
                completion = self.wire.completion(
                    await http.read_json(response, target.url),
                    url=target.url,
                    request_id=rid,
                    model=model,
                    latency_ms=(time.perf_counter() - t0) * 1000,
                    rate_headers=headers,
                )
            else:
                reader = self.wire.stream_reader(
                    url=target.url, request_id=rid, body=body, on_delta=on_delta, t0=t0
                )
                await http.feed_events(response, target.url, reader.feed)
                completion = reader.completion(model=model, rate_headers=headers)
        self._log(completion)
        return completion

    def batch_api(self) -> BatchAPI:
        """The Files and Batches endpoints of this server, on this client's connections."""
        return self.http.batch_api()

    async def list_models(self) -> list[str]:
        """Return the ids of the models the server offers, sorted."""
        from runner.errors import StreamBroken

        url = self.http.target("/models").url
        data = await self.http.get_json("/models")
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise StreamBroken(f"malformed reply from {url}: no `data` list", url=url)
        return sorted(
            m["id"] for m in items if isinstance(m, dict) and isinstance(m.get("id"), str)
        )

    def _log(self, completion: Completion) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s served %s in %.0f ms (request %s)",
                self._target.url,
                completion.model,
                completion.latency_ms,
                completion.request_id,
            )


class ChatClient(ModelClient):
    """A client of OpenAI's Chat Completions API (or any compatible server)."""

    def __init__(self, **http: Any) -> None:
        from runner.providers.openai_chat import CHAT

        super().__init__(CHAT, **http)


class ResponsesClient(ModelClient):
    """A client of OpenAI's Responses API."""

    def __init__(self, **http: Any) -> None:
        from runner.providers.openai_responses import RESPONSES

        super().__init__(RESPONSES, **http)


def _body_bytes(body: Mapping[str, Any]) -> bytes:
    """The request body as sent: compact UTF-8 JSON (runner.fastjson when the body is plain)."""
    fast = plain_json(body)
    if fast is not None:
        return fast
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
