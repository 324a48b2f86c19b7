"""runner.providers.probe: the GETs of `runner probe` (an error status is an answer, a server
that cannot be reached is an error) and the shapes of error bodies that servers send."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
import pytest

from runner.errors import ConnectFailed
from runner.providers import ChatClient
from runner.providers._errors import EXCERPT_CHARS
from runner.providers.probe import (
    ErrorShape,
    Listing,
    error_message,
    error_shape,
    get_listing,
    model_path,
)

KEY = "sk-proj-LISTINGFAKEKEY0123456789abcdefABCDEFghij"


def listing(handler: Any, path: str) -> tuple[Listing, list[httpx2.Request]]:
    seen: list[httpx2.Request] = []

    def record(request: httpx2.Request) -> Any:
        seen.append(request)
        return handler(request)

    async def go() -> Listing:
        client = ChatClient(
            base_url="http://server.test/v1",
            api_key=KEY,
            environ={},
            transport=httpx2.MockTransport(record),
        )
        async with client:
            return await get_listing(client, path)

    return asyncio.run(go()), seen


def test_a_list_its_ids_and_rate_limit_headers() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        data = {"object": "list", "data": [{"id": "a"}, {"id": 7}, {"id": "b"}, "c"]}
        headers = {"x-ratelimit-remaining-requests": "99", "x-other": "1"}
        return httpx2.Response(200, json=data, headers=headers)

    found, seen = listing(handler, "/files?limit=1")
    assert (found.ok, found.missing, found.status, found.ids) == (True, False, 200, ("a", "b"))
    assert dict(found.rate_headers) == {"x-ratelimit-remaining-requests": "99"}
    assert found.url == "http://server.test/v1/files?limit=1"
    (request,) = seen
    assert request.method == "GET" and request.content == b""
    assert request.headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(
    ("reply", "ok", "missing", "ids"),
    [
        (httpx2.Response(200, text="<html>a web app</html>"), True, False, None),
        (httpx2.Response(200, json={"object": "list"}), True, False, None),
        (httpx2.Response(404, text="Not Found"), False, True, None),
        (httpx2.Response(405, json={"error": {"message": "no", "type": "t"}}), False, True, None),
        (httpx2.Response(401, json={"error": {"message": "key", "type": "t"}}), False, False, None),
        (httpx2.Response(500, text=""), False, False, None),
    ],
)
def test_an_error_status_is_an_answer(
    reply: httpx2.Response, ok: bool, missing: bool, ids: Any
) -> None:
    found, _ = listing(lambda request: reply, "/batches?limit=1")
    assert (found.ok, found.missing, found.ids, found.status) == (
        ok,
        missing,
        ids,
        reply.status_code,
    )


def test_the_error_body_is_kept_with_the_key_masked() -> None:
    body = {"error": {"message": f"bad key {KEY}", "type": "invalid_request_error"}}
    found, _ = listing(lambda request: httpx2.Response(401, json=body), "/models")
    assert KEY not in found.body and "bad key" in found.body
    assert error_message(found.body) == "bad key sk-***"


def test_a_server_that_cannot_be_reached_raises() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    with pytest.raises(ConnectFailed, match=r"could not connect to http://server\.test/v1/models"):
        listing(handler, "/models")


def test_model_path_keeps_the_name_one_segment() -> None:
    assert model_path("runner-no-such-model") == "/models/runner-no-such-model"
    assert model_path("org/model:latest") == "/models/org%2Fmodel%3Alatest"


@pytest.mark.parametrize(
    ("body", "shape"),
    [
        (
            '{"error": {"message": "The model does not exist", "type": "invalid_request_error",'
            ' "param": "model", "code": "model_not_found"}}',
            ErrorShape(True, '{"error": {"message", "type", "param", "code"}}'),
        ),
        (
            '{"error": {"message": "no", "type": "t", "param": null, "code": null, "object":'
            ' "error", "x": 1}}',
            ErrorShape(True, '{"error": {"message", "type", "param", "code", "object", ...}}'),
        ),
        # vLLM before its OpenAI shape, and some proxies: no type.
        ('{"error": {"message": "no"}}', ErrorShape(False, '{"error": {"message"}}')),
        ('{"error": "model not found"}', ErrorShape(False, '{"error": "<string>"}')),
        ('{"detail": [{"loc": ["body"], "msg": "bad"}]}', ErrorShape(False, '{"detail": ...}')),
        ('{"message": "no", "status": 404}', ErrorShape(False, '{"message", "status"}')),
        ('["no"]', ErrorShape(False, 'JSON that is not an object ("["no"]")')),
        ("<html><body>502 Bad Gateway</body></html>", ErrorShape(False, "an HTML page")),
        ("Not Found", ErrorShape(False, 'plain text ("Not Found")')),
        ("  ", ErrorShape(False, "an empty body")),
        (
            '{"error": {"message": "' + "x" * EXCERPT_CHARS,
            ErrorShape(True, '{"error": {"message", ...}} (a long body)'),
        ),
    ],
)
def test_error_shapes(body: str, shape: ErrorShape) -> None:
    assert error_shape(body) == shape


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"error": {"message": "The  model\\nx", "type": "t"}}', "The model x"),
        ('{"error": "model not found"}', "model not found"),
        ('{"detail": "Not here"}', "Not here"),
        ("<!doctype html><p>no</p>", "an HTML page"),
        ("Not Found", "Not Found"),
        ("", ""),
    ],
)
def test_error_message(body: str, message: str) -> None:
    assert error_message(body) == message
