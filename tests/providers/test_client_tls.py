"""HTTPS against a loopback server with a certificate from a test CA (trustme): the pools share
one TLS context that honours SSL_CERT_FILE, and a certificate nobody vouches for is a clean,
unretried connection error — never a call sent in the clear, never a hang."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from test_client_pools import BODY, _CountingServer

from runner.errors import ConnectFailed
from runner.providers import ChatClient


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_server(ca: trustme.CA) -> AsyncIterator[tuple[str, _CountingServer]]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server = _CountingServer(delay=0.02)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=context)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield f"https://127.0.0.1:{port}/v1", server
    finally:
        listener.close()
        await listener.wait_closed()


@pytest.mark.anyio
async def test_a_ca_named_by_ssl_cert_file_is_trusted_by_every_pool(
    ca: trustme.CA,
    tls_server: tuple[str, _CountingServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, server = tls_server
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    async with ChatClient(base_url=url, api_key="sk-test", max_connections=16) as client:
        replies = await asyncio.gather(*(client.complete(BODY) for _ in range(40)))
    assert [r.choices[0].text for r in replies] == ["hi"] * 40
    assert server.peak == 16  # both pools carried calls over TLS


@pytest.mark.anyio
async def test_an_unknown_certificate_is_a_connection_error(
    tls_server: tuple[str, _CountingServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = tls_server
    other = trustme.CA()  # trusted, but not the one that signed the server's certificate
    bundle = tmp_path / "other.pem"
    other.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    async with ChatClient(base_url=url, api_key="sk-test", max_connections=16) as client:
        with pytest.raises(ConnectFailed) as info:
            await asyncio.wait_for(client.complete(BODY), 10)
    assert "certificate" in str(info.value).lower()
    assert "sk-test" not in str(info.value)
