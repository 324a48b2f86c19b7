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
from runner.providers.http import tls_context


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


# --- a plain http:// endpoint loads no CA bundle ----------------------------------------------


def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)


def test_a_plain_http_client_trusts_no_one_and_loads_no_bundle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _no_proxies(monkeypatch)

    def refuse(*args: object, **kwargs: object) -> ssl.SSLContext:
        raise AssertionError("the CA bundle was loaded for a plain http:// endpoint")

    monkeypatch.setattr("runner.providers.http.httpx2.create_ssl_context", refuse)
    context = tls_context("http://127.0.0.1:8000/v1")
    assert context.cert_store_stats()["x509_ca"] == 0
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    ChatClient(base_url="http://127.0.0.1:8000/v1", api_key="sk-test")  # builds without it
    with pytest.raises(AssertionError, match="bundle"):
        ChatClient(base_url="https://127.0.0.1:8000/v1", api_key="sk-test")


@pytest.mark.anyio
async def test_the_empty_context_fails_closed_on_a_tls_server(
    tls_server: tuple[str, _CountingServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were a TLS handshake ever attempted with it, no certificate would pass."""
    _no_proxies(monkeypatch)
    url, server = tls_server
    port = int(url.split(":")[2].split("/")[0])
    context = tls_context("http://127.0.0.1:8000/v1")
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.open_connection("127.0.0.1", port, ssl=context)
    assert server.peak == 0


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "ALL_PROXY"])
def test_with_a_proxy_in_the_environment_the_bundle_is_loaded(
    variable: str, ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy may itself be https://: its certificate must be checked."""
    _no_proxies(monkeypatch)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    assert tls_context("http://127.0.0.1:8000/v1").cert_store_stats()["x509_ca"] == 0
    monkeypatch.setenv(variable, "https://proxy.example:3128")
    assert tls_context("http://127.0.0.1:8000/v1").cert_store_stats()["x509_ca"] == 1
    assert tls_context("https://api.example/v1").cert_store_stats()["x509_ca"] == 1
