"""runner.providers error mapping: error replies over real HTTP (every status class, exact
messages), Retry-After, every httpx2 exception, real connection failures on loopback,
redaction."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
import pytest
from _client_helpers import KEY, URL, api_error, body, http_reply, mock_client, raw_server

from runner.errors import (
    AuthenticationFailed,
    BadRequest,
    ConfigError,
    ConnectFailed,
    HTTPStatusFailure,
    NotFound,
    PermissionDenied,
    QuotaExhausted,
    RateLimited,
    ReadTimedOut,
    RunnerError,
    ServerFailed,
    StreamBroken,
)
from runner.providers import (
    ChatClient,
    _errors,
    error_from_response,
    error_from_transport,
    parse_retry_after,
)

ERROR_CASES = [
    (401, api_error("Incorrect API key provided: sk-test-********************cdef. You can "
                    "find your API key at https://platform.openai.com/account/api-keys.",
                    "invalid_request_error", "invalid_api_key"), {},
     AuthenticationFailed, "auth", False, None,
     "401 from {url}: Incorrect API key provided: sk-***. You can find your API key at "
     "https://platform.openai.com/account/api-keys (invalid_request_error, code "
     "invalid_api_key; request req_abc). Check the API key (OPENAI_API_KEY, or the variable "
     "the spec's provider.api_key_env names)."),
    (403, api_error("Project `proj_1` does not have access to model `o3`",
                    "invalid_request_error", "model_not_found"), {},
     PermissionDenied, "permission", False, None,
     "403 from {url}: Project `proj_1` does not have access to model `o3` "
     "(invalid_request_error, code model_not_found; request req_abc). The key may not use "
     "this model or endpoint: check its project, organization and permissions."),
    (404, api_error("The model `gpt-9` does not exist or you do not have access to it.",
                    "invalid_request_error", "model_not_found"), {},
     NotFound, "not_found", False, None,
     "404 from {url}: The model `gpt-9` does not exist or you do not have access to it "
     "(invalid_request_error, code model_not_found; request req_abc). Check `model`: this "
     "server does not serve it to this key."),
    # The URL already ends in /v1: no "/v1" hint (see the next test for one that does not).
    (404, b"404 page not found", {}, NotFound, "not_found", False, None,
     "404 from {url}: 404 page not found (request req_abc). Check base_url and `model`: the "
     "server has nothing at this URL."),
    (400, api_error("Invalid type for 'temperature': expected a decimal, but got a string "
                    "instead.", "invalid_request_error", "invalid_type", "temperature"), {},
     BadRequest, "bad_request", False, None,
     "400 from {url}: Invalid type for 'temperature': expected a decimal, but got a string "
     "instead (invalid_request_error, code invalid_type, param temperature; request "
     "req_abc). Fix `temperature` in the request; resending it unchanged cannot work."),
    (422, b'{"detail":[{"loc":["body","messages"],"msg":"Field required"}]}', {},
     BadRequest, "bad_request", False, None,
     "422 from {url}: body.messages: Field required (request req_abc). The server refused "
     "the request; resending it unchanged cannot work."),
    (413, b"", {}, BadRequest, "bad_request", False, None,
     "413 from {url}: Content Too Large (request req_abc). The server refused the "
     "request; resending it unchanged cannot work."),
    (429, api_error("Rate limit reached for gpt-4o on requests per min (RPM): Limit 3.",
                    "requests", "rate_limit_exceeded"),
     {"retry-after-ms": "1500", "retry-after": "2", "x-ratelimit-remaining-requests": "0",
      "x-ratelimit-reset-requests": "1.5s"},
     RateLimited, "rate_limit", True, 1.5,
     "429 from {url}: Rate limit reached for gpt-4o on requests per min (RPM): Limit 3 "
     "(requests, code rate_limit_exceeded; request req_abc). Rate limited: the server asks "
     "to wait 1.5 s; lower `rate` (rpm, tpm, concurrency) if it keeps happening."),
    (429, api_error("You exceeded your current quota, please check your plan and billing "
                    "details.", "insufficient_quota", "insufficient_quota"), {},
     QuotaExhausted, "quota", False, None,
     "429 from {url}: You exceeded your current quota, please check your plan and billing "
     "details (insufficient_quota, code insufficient_quota; request req_abc). The account "
     "is out of quota: check its plan and billing; retries cannot help."),
    (500, api_error("The server had an error while processing your request.",
                    "server_error", None), {},
     ServerFailed, "server_error", True, None,
     "500 from {url}: The server had an error while processing your request (server_error; "
     "request req_abc). The server failed; another try may succeed."),
    # An HTML page is shown by its text, as the server sent it.
    (503, b"<html><h1>503 Service Unavailable</h1></html>", {"retry-after": "7"},
     ServerFailed, "server_error", True, 7.0,
     "503 from {url}: 503 Service Unavailable (request req_abc). The server failed; another "
     "try may succeed."),
    (408, b"", {}, ServerFailed, "server_error", True, None,
     "408 from {url}: Request Timeout (request req_abc). The server failed; another try may "
     "succeed."),
    (409, b"", {}, ServerFailed, "server_error", True, None,
     "409 from {url}: Conflict (request req_abc). The server failed; another try may "
     "succeed."),
    (307, b"", {"location": "https://elsewhere.test/v1/chat/completions"},
     BadRequest, "bad_request", False, None,
     "307 from {url}: Temporary Redirect (request req_abc). The server redirects to "
     "https://elsewhere.test/v1/chat/completions: check base_url."),
]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "content", "headers", "cls", "kind", "retryable", "retry_after", "message"),
    ERROR_CASES,
)
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.anyio
async def test_error_replies_over_real_http(
    status: int,
    content: bytes,
    headers: dict[str, str],
    cls: type[HTTPStatusFailure],
    kind: str,
    retryable: bool,
    retry_after: float | None,
    message: str,
    stream: bool,
) -> None:
    reply = http_reply(status, content, {"x-request-id": "req_abc", **headers})

    async def script(request: bytes, reader: Any, writer: asyncio.StreamWriter) -> None:
        writer.write(reply)
        await writer.drain()

    async with (
        raw_server(script) as (base, _),
        ChatClient(base_url=base, api_key=KEY, environ={}) as client,
    ):
        with pytest.raises(HTTPStatusFailure) as info:
            if stream:
                await client.stream(body(stream=True))
            else:
                await client.complete(body())
    error = info.value
    url = f"{base}/chat/completions"
    assert type(error) is cls
    assert (error.kind, error.retryable, error.status) == (kind, retryable, status)
    assert str(error) == message.format(url=url)
    assert error.url == url
    assert error.request_id == "req_abc"
    assert getattr(error, "retry_after", None) == retry_after
    assert error.headers == {k: v for k, v in headers.items() if k.startswith("x-ratelimit-")}
    assert error.body_excerpt == content.decode().replace(
        "sk-test-********************cdef", "sk-***"
    )
    assert KEY not in repr(error.__dict__)


def test_error_fields_and_long_bodies() -> None:
    content = api_error("bad " * 300, "invalid_request_error", "c1", "messages[0]")
    error = error_from_response(400, httpx2.Headers(), content, url=URL)
    assert (error.type, error.code, error.param) == ("invalid_request_error", "c1", "messages[0]")
    assert len(error.body_excerpt) == 500
    assert str(error).startswith(f"400 from {URL}: {'bad ' * 74}bad… (invalid_request_error")
    assert error.request_id is None
    odd = error_from_response(400, httpx2.Headers(), b'{"error": "plain text"}', url=URL)
    assert str(odd) == (
        f"400 from {URL}: plain text. The server refused the request; resending it "
        "unchanged cannot work."
    )


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "nan", "retry-after": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "-4"}, 0.0),
        (
            {
                "retry-after": "Wed, 21 Oct 2015 07:28:30 GMT",
                "date": "Wed, 21 Oct 2015 07:28:00 GMT",
            },
            30.0,
        ),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}, 10.0),  # relative to `now`
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    now = 1445412500.0  # 07:28:20 GMT that day
    assert parse_retry_after(httpx2.Headers(headers), now=now) == expected


# --- transport errors ------------------------------------------------------------------------

TRANSPORT_TARGETS: dict[type[httpx2.HTTPError], type[RunnerError]] = {
    httpx2.HTTPError: ConnectFailed,
    httpx2.RequestError: ConnectFailed,
    httpx2.TransportError: ConnectFailed,
    httpx2.TimeoutException: ReadTimedOut,
    httpx2.ConnectTimeout: ConnectFailed,
    httpx2.ReadTimeout: ReadTimedOut,
    httpx2.WriteTimeout: ReadTimedOut,
    httpx2.PoolTimeout: ReadTimedOut,
    httpx2.NetworkError: ConnectFailed,
    httpx2.ConnectError: ConnectFailed,
    httpx2.ReadError: ConnectFailed,
    httpx2.WriteError: ConnectFailed,
    httpx2.CloseError: ConnectFailed,
    httpx2.ProtocolError: ConnectFailed,
    httpx2.LocalProtocolError: ConfigError,
    httpx2.RemoteProtocolError: ConnectFailed,
    httpx2.ProxyError: ConnectFailed,
    httpx2.UnsupportedProtocol: ConfigError,
    httpx2.DecodingError: StreamBroken,
    httpx2.TooManyRedirects: ConfigError,
    httpx2.SSEError: StreamBroken,
    httpx2.HTTPStatusError: ServerFailed,
}


def test_every_exported_httpx2_error_is_mapped() -> None:
    exported = {
        obj
        for name in httpx2.__all__
        if isinstance(obj := getattr(httpx2, name), type) and issubclass(obj, httpx2.HTTPError)
    }
    # A new httpx2 error class fails here until someone decides what it means for runner.
    assert exported == set(TRANSPORT_TARGETS)
    assert exported == set(_errors._TRANSPORT_ERRORS)
    request = httpx2.Request("POST", URL)
    for cls, target in TRANSPORT_TARGETS.items():
        if cls is httpx2.HTTPStatusError:
            response = httpx2.Response(502, content=b"", request=request)
            exc: httpx2.HTTPError = cls("x", request=request, response=response)
        else:
            exc = cls("boom")
        mapped = error_from_transport(exc, url=URL, request_id="req_1", limit=5)
        assert type(mapped) is target, cls
        assert URL in str(mapped) or cls is httpx2.HTTPStatusError


@pytest.mark.parametrize(
    ("exc", "cls", "message"),
    [
        (httpx2.ConnectError("[Errno 111] Connection refused"), ConnectFailed,
         "could not connect to {url} ([Errno 111] Connection refused); check base_url and "
         "the network"),
        (httpx2.ReadTimeout(""), ReadTimedOut,
         "{url} stopped sending before the reply was complete within the 5 s timeout; raise "
         "`timeout` if the model needs longer"),
        (httpx2.SSEError("Expected response with content type 'text/event-stream', got "
                         "'text/html'."), StreamBroken,
         "malformed event stream from {url} (Expected response with content type "
         "'text/event-stream', got 'text/html'.)"),
        (httpx2.UnsupportedProtocol("Request URL has an unsupported protocol 'ftp://'."),
         ConfigError,
         "cannot send a request to {url} (Request URL has an unsupported protocol 'ftp://'.); "
         "base_url must start with http:// or https://"),
    ],
)  # fmt: skip
def test_transport_error_messages(exc: httpx2.HTTPError, cls: type, message: str) -> None:
    mapped = error_from_transport(exc, url=URL, limit=5)
    assert type(mapped) is cls
    assert str(mapped) == message.format(url=URL)


@pytest.mark.anyio
async def test_transport_errors_are_chained() -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("[Errno 111] Connection refused")

    client, _ = mock_client(refuse)
    async with client:
        with pytest.raises(ConnectFailed) as info:
            await client.complete(body())
    assert isinstance(info.value.__cause__, httpx2.ConnectError)
    assert info.value.url == URL and info.value.retryable


@pytest.mark.anyio
async def test_real_connection_failures_on_loopback() -> None:
    async def hang_up(request: bytes, reader: Any, writer: asyncio.StreamWriter) -> str:
        return "close"

    async def garbage(request: bytes, reader: Any, writer: asyncio.StreamWriter) -> str:
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        return "close"

    async def short_body(request: bytes, reader: Any, writer: asyncio.StreamWriter) -> str:
        writer.write(b'HTTP/1.1 200 OK\r\ncontent-length: 500\r\n\r\n{"id": ')
        await writer.drain()
        return "close"

    for script in (hang_up, garbage, short_body):
        async with (
            raw_server(script) as (base, _),
            ChatClient(base_url=base, environ={}) as client,
        ):
            with pytest.raises(ConnectFailed) as info:
                await client.complete(body())
        assert info.value.kind == "connection" and info.value.retryable
        assert info.value.url == f"{base}/chat/completions"

    # Nothing listens on the port of a closed server.
    async with raw_server(hang_up) as (base, _):
        pass
    async with ChatClient(base_url=base, environ={}) as client:
        with pytest.raises(ConnectFailed, match="could not connect to"):
            await client.complete(body())


def test_keys_in_custom_auth_headers_are_redacted_too() -> None:
    secret = "tok-1234567890"
    redact = _errors.redactor([secret])
    assert redact(f"bad token {secret} and sk-proj-abcdef123456") == "bad token sk-*** and sk-***"
    assert redact("a task-based desk-lamp") == "a task-based desk-lamp"


def test_the_v1_hint_is_given_only_when_the_url_lacks_v1() -> None:
    without = error_from_response(404, {}, b"not here", url="http://h:1/chat/completions")
    assert str(without).endswith("Check base_url: OpenAI-compatible servers usually end in /v1.")
    within = error_from_response(404, {}, b"not here", url="http://h:1/v1/chat/completions")
    assert "/v1." not in str(within)
    assert str(within).endswith("the server has nothing at this URL.")


def test_a_non_openai_error_body_is_shown_as_sent_cut_and_masked() -> None:
    key = "sk-test-BODYKEY0123456789abcdefXYZ"
    from runner import redact

    redact.remember([key])
    long = ("Not Found: " + "x" * 500 + f" {key}").encode()
    error = error_from_response(404, {}, long, url="http://h:1/v1/x")
    assert str(error).startswith("404 from http://h:1/v1/x: Not Found: xxx")
    assert "…" in str(error) and key not in str(error)
    assert len(str(error)) < 400
    plain = error_from_response(400, {}, b'{"error": "max_tokens must be at least 1"}', url="u")
    assert "max_tokens must be at least 1" in str(plain)
    detail = error_from_response(422, {}, b'{"detail": "bad things"}', url="u")
    assert "bad things" in str(detail)
