"""HttpClient: the wire-neutral HTTP layer on httpx2 (its only owner): an OpenAI-compatible
endpoint's headers, key, connection pools, timeouts and cancellation, one exchange per request,
bodies and event streams read within a size cap, every failure mapped once (runner.providers.
_errors). It knows no wire format: paths and bodies come from the caller. It never retries or
waits (runner.policy.retry does) and never reads os.environ for its settings (runner.settings does;
only whether a proxy is set, as httpx2 itself reads it, decides whether a CA bundle is loaded).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn, cast

import httpx2

from runner._version import __version__
from runner.errors import ConfigError, ReadTimedOut, ReplyTooLarge
from runner.providers._asgi import ASGIStreamTransport
from runner.providers._errors import (
    WireErrors,
    error_from_response,
    error_from_transport,
    redactor,
)
from runner.providers._files import BatchAPI
from runner.providers._json import load_json, ratelimit_headers, request_id_of
from runner.providers._pools import Pools
from runner.redact import credential_headers, redact, redact_url, secrets_of_url
from runner.settings import DEFAULT_BASE_URL, openai_env

if TYPE_CHECKING:
    import ssl

__all__ = ["DEFAULT_MAX_REPLY_BYTES", "HttpClient", "Target", "tls_context"]

logger = logging.getLogger("runner.providers")

USER_AGENT = (
    f"runner/{__version__} (python {sys.version_info.major}.{sys.version_info.minor}; "
    f"httpx2 {httpx2.__version__})"
)

_RESERVED_HEADERS = frozenset({"content-type", "accept", "content-length", "host"})

# The largest reply body read, after decompression (streamed: characters of event data). The
# largest real reply is 128 choices of up to 128k output tokens; a usual one is under 1 MiB,
# and 16 choices of 128k tokens as escaped JSON stay well under 32 MiB. Parsed JSON takes up
# to ~25 times its size in memory, so the cap also bounds what one reply can cost.
DEFAULT_MAX_REPLY_BYTES = 32 * 1024 * 1024
_MAX_ERROR_BYTES = 64 * 1024  # of an error reply: its message and a 500-character excerpt


def _request_id(response: httpx2.Response | None) -> str | None:
    """The reply's x-request-id, masked: a server may echo anything there, the key included
    (and one too long to be a request id is not kept)."""
    value = None if response is None else request_id_of(response.headers)
    return None if value is None else redact(value)


def _header_value(name: str, value: str) -> str:
    """Refuse a value that cannot travel in an HTTP header, without echoing it (it may be a key)."""
    if not value.isascii() or any(c in value for c in "\r\n\0"):
        raise ConfigError(
            f"the {name} value contains characters that cannot be sent in an HTTP header "
            "(non-ASCII, or a line break): check for stray quotes or spaces"
        )
    return value


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a request goes: the URL as text (for messages) and parsed once (httpx2 copies a
    URL object faster than it parses a string)."""

    url: str
    parsed: httpx2.URL

    @classmethod
    def of(cls, url: str) -> Target:
        return cls(url, httpx2.URL(url))


def tls_context(base_url: str) -> ssl.SSLContext:
    """The TLS context of a client of `base_url`: the system's CA bundle (httpx2's default), or,
    for a plain http:// endpoint with no proxy in the environment, a context that trusts no
    one. Such a client never makes a TLS connection (it follows no redirect and talks to no
    other host), so loading the bundle (30 to 40 ms of CPU, a tenth of a cold `runner exec`)
    would buy nothing; and were a TLS handshake ever attempted with it, it would fail closed
    (certificates required, none trusted). A proxy (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, as
    httpx2 itself reads them) may be https://, so with one the bundle is loaded."""
    if base_url.startswith("http://"):
        from urllib.request import getproxies

        if not any(getproxies().get(scheme) for scheme in ("http", "https", "all")):
            import ssl

            return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return httpx2.create_ssl_context()


class HttpClient:
    """An OpenAI-compatible endpoint over HTTP: one request per exchange, no retries. The
    constructor's arguments are the whole configuration of a client; every wire's client
    (runner.providers.client) takes the same ones."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 120.0,
        connect_timeout: float = 10.0,
        max_connections: int = 100,
        transport: httpx2.AsyncBaseTransport | None = None,
        asgi_app: Any | None = None,
        environ: Mapping[str, str] | None = None,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
    ) -> None:
        if transport is not None and asgi_app is not None:
            raise ValueError("give transport or asgi_app, not both")
        if max_reply_bytes < 1:
            raise ValueError("max_reply_bytes must be at least 1")
        self.max_reply_bytes = int(max_reply_bytes)
        if timeout <= 0 or connect_timeout <= 0 or max_connections < 1:
            raise ValueError("timeouts must be positive and max_connections at least 1")
        if None in (base_url, api_key, organization, project):
            env = openai_env(environ)
            base_url = env.base_url if base_url is None else base_url
            api_key = env.api_key if api_key is None else api_key
            organization = env.organization if organization is None else organization
            project = env.project if project is None else project
        base = (base_url or DEFAULT_BASE_URL).rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise ConfigError(f"base URL {base!r} must start with http:// or https://")
        self.base_url = base
        self.timeout = float(timeout)
        self._has_key = bool(api_key)
        self.organization = organization or None
        self.project = project or None

        common: dict[str, str] = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"}
        secrets: list[str] = [*secrets_of_url(base), *credential_headers(headers or {})]
        if api_key:
            common["Authorization"] = f"Bearer {_header_value('API key', api_key)}"
            secrets.append(api_key)
        if self.organization:
            common["OpenAI-Organization"] = _header_value("organization", self.organization)
        if self.project:
            common["OpenAI-Project"] = _header_value("project", self.project)
        for name, value in (headers or {}).items():
            lower = name.lower()
            if lower in _RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by the client for each request")
            if lower == "authorization" and api_key:
                raise ValueError("give the key as api_key or as an Authorization header, not both")
            existing = next((k for k in common if k.lower() == lower), name)
            common.pop(existing, None)
            common[name] = _header_value(f"{name} header", value)
        self.redact = redactor(secrets)
        # Parsed once: httpx2 copies a Headers object faster than it parses a dict.
        json_type = {"Content-Type": "application/json"}
        self.json_headers = httpx2.Headers({**common, **json_type, "Accept": "application/json"})
        self.sse_headers = httpx2.Headers({**common, **json_type, "Accept": "text/event-stream"})
        self.get_headers = httpx2.Headers({**common, "Accept": "application/json"})
        self._connect_timeout = float(connect_timeout)
        self._timeouts: dict[float, dict[str, float]] = {}
        if asgi_app is not None:
            transport = ASGIStreamTransport(asgi_app)
        timeouts = httpx2.Timeout(
            timeout, connect=connect_timeout, read=timeout, write=timeout, pool=timeout
        )

        # One TLS context for every pool: each client would otherwise load the CA bundle
        # again (about 30 ms of CPU each).
        tls = tls_context(base) if transport is None else None

        def pool(size: int) -> httpx2.AsyncClient:
            # A transport we build ourselves gets retries=0 (httpx2's default): policy
            # retries, once.
            limits = httpx2.Limits(max_connections=size, max_keepalive_connections=size)
            return httpx2.AsyncClient(
                limits=limits,
                timeout=timeouts,
                transport=transport,
                follow_redirects=False,
                verify=True if tls is None else tls,
            )

        # A given transport does its own pooling: one client over it.
        self._pools = Pools(pool, max_connections, split=transport is None)
        self._http = self._pools.first

    def __repr__(self) -> str:
        key = "<set>" if self._has_key else "<unset>"
        return (
            f"base_url={redact_url(self.base_url)!r}, api_key={key}, "
            f"organization={self.organization!r}, project={self.project!r}"
        )

    def target(self, path: str) -> Target:
        """The Target of `path` below the base URL ("/chat/completions")."""
        return Target.of(f"{self.base_url}{path}")

    async def aclose(self) -> None:
        """Close the connection pools."""
        await self._pools.aclose()

    def _extensions(self, limit: float) -> dict[str, Any]:
        found = self._timeouts.get(limit)
        if found is None:
            found = self._timeouts[limit] = {
                "connect": min(self._connect_timeout, limit),
                "read": limit,
                "write": limit,
                "pool": limit,
            }
        return {"timeout": found}

    def limit(self, timeout: float | None) -> float:
        """The time limit of one exchange: `timeout`, or the client's."""
        if timeout is None:
            return self.timeout
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        return float(timeout)

    @contextlib.asynccontextmanager
    async def exchange(
        self,
        method: str,
        target: Target,
        headers: httpx2.Headers,
        content: bytes | None,
        limit: float,
        *,
        wire: WireErrors | None = None,
    ) -> AsyncIterator[httpx2.Response]:
        """Send one request and yield its open response, a 2xx one (any other status is raised
        as its error, `wire` reading the refusals of its own format); translate every failure,
        and cancel the request (closing the response) when `limit` seconds pass or the caller
        cancels."""
        url = target.url
        request = httpx2.Request(
            method,
            target.parsed,
            content=content,
            headers=headers,
            extensions=self._extensions(limit),
        )
        deadline = asyncio.timeout(limit)
        response: httpx2.Response | None = None
        try:
            async with deadline:
                with self._pools.lease() as http:
                    response = await http.send(request, stream=True)
                    try:
                        if response.status_code >= 300 or response.status_code < 200:
                            await self._raise_for_status(response, url, wire)
                        yield response
                    finally:
                        await response.aclose()
        except TimeoutError as exc:
            if not deadline.expired():
                raise
            raise ReadTimedOut(
                f"no complete reply from {url} within the {limit:g} s timeout; the request was "
                "cancelled. Raise `timeout` if the model needs longer.",
                url=url,
                request_id=_request_id(response),
            ) from exc
        except httpx2.HTTPError as exc:
            request_id = _request_id(response)
            raise error_from_transport(
                exc, url=url, request_id=request_id, limit=limit, redact=self.redact
            ) from exc

    async def read(self, response: httpx2.Response, url: str, *, cap: int | None = None) -> bytes:
        """The body, read as it arrives; ReplyTooLarge past `max_reply_bytes` (announced or
        counted, after decompression). With `cap`, the first `cap` bytes, the rest unread."""
        limit = self.max_reply_bytes if cap is None else cap
        declared = response.headers.get("content-length", "")
        if cap is None and declared.isdigit() and int(declared) > limit:
            self._too_large(response, url, f"announces {int(declared):,} bytes")
        parts, total = [], 0
        async for chunk in response.aiter_bytes():
            parts.append(chunk)
            total += len(chunk)
            if total > limit:
                if cap is not None:
                    return b"".join(parts)[:cap]
                self._too_large(response, url, "is longer")
        return b"".join(parts)

    async def read_json(self, response: httpx2.Response, url: str) -> Any:
        """The body as JSON (StreamBroken when it is not)."""
        return load_json(await self.read(response, url), url, _request_id(response))

    async def feed_events(
        self, response: httpx2.Response, url: str, feed: Callable[[httpx2.ServerSentEvent], bool]
    ) -> None:
        """Hand the server-sent events of a response, decoded by httpx2, to `feed` until it
        returns True or they end; ReplyTooLarge once their data passes `max_reply_bytes`. (A
        loop here rather than an async generator: one hop less for each of a stream's many
        events.)"""
        events = cast(
            "AsyncGenerator[httpx2.ServerSentEvent, None]",
            httpx2.EventSource(response).__aiter__(),
        )
        received, cap = 0, self.max_reply_bytes
        try:
            async for event in events:
                received += len(event.data) + len(event.event)
                if received > cap:
                    self._too_large(response, url, "streams more event data")
                if feed(event):
                    return
        finally:
            await events.aclose()  # now, rather than by a finalizer task later

    def _too_large(self, response: httpx2.Response, url: str, what: str) -> NoReturn:
        raise ReplyTooLarge(
            f"the reply from {url} {what} than the client reads ({self.max_reply_bytes:,} "
            "bytes, max_reply_bytes); it was not read further. Ask for fewer output tokens.",
            url=url,
            request_id=request_id_of(response.headers),
        )

    async def _raise_for_status(
        self, response: httpx2.Response, url: str, wire: WireErrors | None
    ) -> None:
        content = await self.read(response, url, cap=_MAX_ERROR_BYTES)
        raise error_from_response(
            response.status_code,
            response.headers,
            content,
            url=url,
            redact=self.redact,
            reason=response.reason_phrase,
            wire=wire,
        )

    async def get_json(self, path: str) -> Any:
        """GET a JSON document below the base URL (/models)."""
        target = self.target(path)
        async with self.exchange("GET", target, self.get_headers, None, self.timeout) as response:
            return await self.read_json(response, target.url)

    def batch_api(self) -> BatchAPI:
        """The Files and Batches endpoints of this server, on this client's connections."""
        return BatchAPI(self._http, self.base_url, self.get_headers, self.redact, self.timeout)


def request_id(response: httpx2.Response) -> str | None:
    """The reply's x-request-id, masked (see _request_id)."""
    return _request_id(response)


def rate_headers(response: httpx2.Response) -> dict[str, str]:
    return ratelimit_headers(response.headers)
