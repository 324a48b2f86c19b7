"""Client cost per call, on both wire APIs: runner's ChatClient (Chat Completions) and
ResponsesClient (the Responses API) each against a bare httpx2.AsyncClient loop on the same
endpoint (the baseline) and the official openai SDK, all in the same run against `runner
mock-server` on loopback.

For 0 ms and 100 ms server latency and 1, 32 and 256 calls in flight: 2000 chat completions per
client and configuration (200 at concurrency 1 with latency, where every call waits out the
latency; --quick: 60 calls, no 256 in flight and none at 1 with latency). Streamed calls are
measured too, at 0 ms. Reported: wall time and this process's CPU time per call
(time.process_time; the server runs in its own process). Each configuration runs in rounds
with the clients in a shuffled (seeded) order, and every round starts with a warm-up that
opens the connections, so no client is measured cold or always last.
Target: runner's CPU per call within 10% of bare httpx2, and below the SDK's.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
from _mockproc import mock_server
from _table import Headline

from runner.providers import ChatClient, ResponsesClient, WireRequest
from runner.providers.openai_chat import build_body
from runner.providers.openai_responses import body_for

LATENCIES = ("0ms", "100ms")
CONCURRENCY = (1, 32, 256)
BASELINE = "bare httpx2"
API_KEY = "sk-bench"
MODEL = "gpt-4o-mini"
MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a precise geography assistant."},
    {"role": "user", "content": "Tell me about Paris."},
]
PARAMS: dict[str, Any] = {"temperature": 0.3, "max_tokens": 100}
RESPONSES_PARAMS: dict[str, Any] = {"temperature": 0.3, "max_output_tokens": 100}


def _responses_body(stream: bool = False) -> dict[str, Any]:
    request = WireRequest(MODEL, MESSAGES, params=RESPONSES_PARAMS, stream=stream)
    return body_for(request)


Call = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Contender:
    complete: Call
    stream: Call
    close: Callable[[], Awaitable[object]]


def _limits() -> httpx2.Limits:
    # The same pool for everyone, big enough that no client queues for a connection.
    top = max(CONCURRENCY)
    return httpx2.Limits(max_connections=top, max_keepalive_connections=top)


def _bare(base_url: str) -> Contender:
    """What a careful hand-written loop does: post the JSON, check the status, read the text."""
    client = httpx2.AsyncClient(limits=_limits(), timeout=120)
    url = f"{base_url}/chat/completions"
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    body = build_body(MODEL, MESSAGES, params=PARAMS)
    sbody = build_body(MODEL, MESSAGES, params=PARAMS, stream=True)

    async def complete() -> object:
        response = await client.post(url, content=json.dumps(body).encode(), headers=headers)
        response.raise_for_status()
        return response.json()["choices"][0]["message"]["content"]

    async def stream() -> object:
        content = json.dumps(sbody).encode()
        async with client.stream("POST", url, content=content, headers=headers) as response:
            response.raise_for_status()
            parts: list[str] = []
            events = httpx2.EventSource(response).__aiter__()
            try:
                async for event in events:
                    if event.data == "[DONE]":
                        break
                    for choice in json.loads(event.data)["choices"]:
                        parts.append(choice["delta"].get("content") or "")
            finally:
                await events.aclose()  # type: ignore[attr-defined]
            return "".join(parts)

    return Contender(complete, stream, client.aclose)


def _runner(base_url: str) -> Contender:
    client = ChatClient(
        base_url=base_url, api_key=API_KEY, max_connections=max(CONCURRENCY), environ={}
    )
    body = build_body(MODEL, MESSAGES, params=PARAMS)
    sbody = build_body(MODEL, MESSAGES, params=PARAMS, stream=True)

    async def complete() -> object:
        return (await client.complete(body)).text

    async def stream() -> object:
        return (await client.stream(sbody)).text

    return Contender(complete, stream, client.aclose)


def _sdk(base_url: str) -> Contender:
    """The SDK with its own defaults except the pool size, and no retries (runner has none)."""
    client = openai.AsyncOpenAI(
        api_key=API_KEY,
        base_url=base_url,
        max_retries=0,
        http_client=openai.DefaultAsyncHttpx2Client(limits=_limits()),
    )

    messages: Any = MESSAGES  # the SDK's TypedDict message params, in substance
    temperature, max_tokens = PARAMS["temperature"], PARAMS["max_tokens"]

    async def complete() -> object:
        reply = await client.chat.completions.create(
            model=MODEL, messages=messages, temperature=temperature, max_tokens=max_tokens
        )
        return reply.choices[0].message.content

    async def stream() -> object:
        chunks = await client.chat.completions.create(
            model=MODEL,
            messages=messages,
            temperature=temperature,
            max_tokens=max_tokens,
            stream=True,
            stream_options={"include_usage": True},
        )
        parts = [c.delta.content or "" async for chunk in chunks for c in chunk.choices]
        return "".join(parts)

    return Contender(complete, stream, client.close)


def _bare_responses(base_url: str) -> Contender:
    """The hand-written loop on the Responses API: post, check, read the output text."""
    client = httpx2.AsyncClient(limits=_limits(), timeout=120)
    url = f"{base_url}/responses"
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    body, sbody = _responses_body(), _responses_body(stream=True)

    async def complete() -> object:
        response = await client.post(url, content=json.dumps(body).encode(), headers=headers)
        response.raise_for_status()
        output = response.json()["output"]
        return "".join(
            part["text"]
            for item in output
            if item["type"] == "message"
            for part in item["content"]
            if part["type"] == "output_text"
        )

    async def stream() -> object:
        content = json.dumps(sbody).encode()
        async with client.stream("POST", url, content=content, headers=headers) as response:
            response.raise_for_status()
            parts: list[str] = []
            events = httpx2.EventSource(response).__aiter__()
            try:
                async for event in events:
                    data = json.loads(event.data)
                    if data["type"] == "response.output_text.delta":
                        parts.append(data["delta"])
                    elif data["type"] in ("response.completed", "response.incomplete"):
                        break
            finally:
                await events.aclose()  # type: ignore[attr-defined]
            return "".join(parts)

    return Contender(complete, stream, client.aclose)


def _runner_responses(base_url: str) -> Contender:
    client = ResponsesClient(
        base_url=base_url, api_key=API_KEY, max_connections=max(CONCURRENCY), environ={}
    )
    body, sbody = _responses_body(), _responses_body(stream=True)

    async def complete() -> object:
        return (await client.complete(body)).text

    async def stream() -> object:
        return (await client.stream(sbody)).text

    return Contender(complete, stream, client.aclose)


def _sdk_responses(base_url: str) -> Contender:
    client = openai.AsyncOpenAI(
        api_key=API_KEY,
        base_url=base_url,
        max_retries=0,
        http_client=openai.DefaultAsyncHttpx2Client(limits=_limits()),
    )
    body = _responses_body()
    instructions, items = body["instructions"], body["input"]

    async def complete() -> object:
        reply = await client.responses.create(
            model=MODEL,
            instructions=instructions,
            input=items,
            temperature=0.3,
            max_output_tokens=100,
            store=False,
        )
        return reply.output_text

    async def stream() -> object:
        events = await client.responses.create(
            model=MODEL,
            instructions=instructions,
            input=items,
            temperature=0.3,
            max_output_tokens=100,
            store=False,
            stream=True,
        )
        parts = [e.delta async for e in events if e.type == "response.output_text.delta"]
        return "".join(parts)

    return Contender(complete, stream, client.close)


# Each API's contenders; the first is that API's baseline.
APIS: dict[str, dict[str, Callable[[str], Contender]]] = {
    "chat": {BASELINE: _bare, "runner ChatClient": _runner, "openai SDK": _sdk},
    "responses": {
        BASELINE: _bare_responses,
        "runner ResponsesClient": _runner_responses,
        "openai SDK": _sdk_responses,
    },
}
CLIENTS = APIS["chat"]


async def _drive(call: Call, calls: int, concurrency: int) -> tuple[float, float]:
    """Run `calls` calls with `concurrency` in flight; (CPU s, wall s) of this process."""
    remaining = iter(range(calls))

    async def worker() -> None:
        for _ in remaining:
            await call()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, calls))))
    return time.process_time() - cpu, time.perf_counter() - wall


async def _configuration(
    base_url: str,
    mode: str,
    concurrency: int,
    calls: int,
    rounds: int,
    clients: dict[str, Callable[[str], Contender]],
) -> dict[str, tuple[float, float]]:
    """Total (CPU s, wall s) per client over `calls` calls split into shuffled rounds. Each client
    lives for one round only, so no kept-alive connection idles while the others run (uvicorn
    closes idle ones after 5 s, which would race with the client's own 5 s expiry)."""
    totals = dict.fromkeys(clients, (0.0, 0.0))
    order = list(clients)
    rng = random.Random(f"{mode}/{concurrency}")
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            contender = clients[name](base_url)
            try:
                call = contender.complete if mode == "complete" else contender.stream
                await _drive(call, concurrency, concurrency)  # warm-up: open the connections
                cpu, wall = await _drive(call, calls // rounds, concurrency)
            finally:
                await contender.close()
            before = totals[name]
            totals[name] = (before[0] + cpu, before[1] + wall)
    return totals


async def _latency_rows(
    base_url: str,
    latency: str,
    calls: int,
    slow_calls: int,
    rounds: int,
    concurrencies: tuple[int, ...],
) -> list[list[object]]:
    rows: list[list[object]] = []
    for api, clients in APIS.items():
        for mode in ("complete", "stream") if latency == "0ms" else ("complete",):
            for concurrency in concurrencies:
                if concurrency == 1 and latency != "0ms" and not slow_calls:
                    continue
                n = slow_calls if concurrency == 1 and latency != "0ms" else calls
                n -= n % rounds
                totals = await _configuration(base_url, mode, concurrency, n, rounds, clients)
                rows += _rows(api, latency, concurrency, mode, n, totals)
    return rows


def _rows(
    api: str,
    latency: str,
    concurrency: int,
    mode: str,
    n: int,
    totals: dict[str, tuple[float, float]],
) -> list[list[object]]:
    base_cpu, base_wall = totals[BASELINE]
    rows: list[list[object]] = []
    for name, (cpu, wall) in totals.items():
        rows.append(
            [
                latency,
                concurrency,
                f"{api} {mode}",
                n,
                name,
                wall,
                wall / n * 1000,
                cpu / n * 1e6,
                f"{cpu / base_cpu:.2f}x",
                f"{wall / base_wall:.2f}x",
            ]
        )
    return rows


def _cpu(row: list[object]) -> float:
    value = row[7]
    assert isinstance(value, float)
    return value


def _verdict(rows: list[list[object]]) -> tuple[list[str], list[Headline]]:
    notes, headlines = _api_verdict(rows, "runner ChatClient", "")
    more_notes, more = _api_verdict(rows, "runner ResponsesClient", "Responses API ")
    return notes + more_notes, headlines + more


def _api_verdict(
    rows: list[list[object]], client: str, label: str
) -> tuple[list[str], list[Headline]]:
    ours = [r for r in rows if r[4] == client]
    bare = {tuple(r[:3]): _cpu(r) for r in rows if r[4] == BASELINE}
    sdk = {tuple(r[:3]): _cpu(r) for r in rows if r[4] == "openai SDK"}
    worst = max(ours, key=lambda r: _cpu(r) / bare[tuple(r[:3])])
    worst_sdk = max(ours, key=lambda r: _cpu(r) / sdk[tuple(r[:3])])
    ahead = sum(1 for r in ours if _cpu(r) < sdk[tuple(r[:3])])

    def where(row: list[object]) -> str:
        return f"{row[2]}, {row[0]}, {row[1]} in flight"

    ratio = _cpu(worst) / bare[tuple(worst[:3])]
    sdk_ratio = _cpu(worst_sdk) / sdk[tuple(worst_sdk[:3])]
    notes = [
        f"{client}'s worst CPU ratio to bare httpx2: {ratio:.2f}x ({where(worst)}); "
        "target <= 1.10x",
        f"{client} uses less CPU per call than the SDK in {ahead} of {len(ours)} configurations",
    ]
    headlines = [
        Headline(
            f"{label}client CPU per call, worst of {len(ours)} configurations ({where(worst)})",
            f"{_cpu(worst):,.0f} µs",
            f"bare httpx2: {bare[tuple(worst[:3])]:,.0f} µs",
            ratio,
            "<= 1.10x",
            ratio <= 1.10,
        ),
        Headline(
            f"{label}client CPU per call vs the openai SDK, worst case ({where(worst_sdk)})",
            f"{_cpu(worst_sdk):,.0f} µs",
            f"openai SDK: {sdk[tuple(worst_sdk[:3])]:,.0f} µs",
            sdk_ratio,
            "< 1.00x",
            sdk_ratio < 1.0,
        ),
    ]
    return notes, headlines


def run(
    quick: bool = False,
) -> tuple[str, list[str], list[list[object]], list[str], list[Headline]]:
    # --quick: a smoke run of about ten seconds (no 256 in flight, one round); full: 2000 calls
    # per configuration in 4 rounds, 200 at concurrency 1 with latency (0.1 s per call).
    calls = 60 if quick else 2000
    slow_calls = 0 if quick else 200  # --quick: none
    rounds = 1 if quick else 4
    concurrencies = CONCURRENCY[:2] if quick else CONCURRENCY
    rows: list[list[object]] = []
    for latency in LATENCIES:
        with mock_server("--latency", latency) as base_url:
            rows += asyncio.run(
                _latency_rows(base_url, latency, calls, slow_calls, rounds, concurrencies)
            )
    version = sys.version_info
    verdict_notes, headlines = _verdict(rows)
    notes = [
        f"runner mock-server on loopback in its own process; {rounds} round(s) per configuration, "
        "clients in a shuffled order, each round after a warm-up of one call per connection",
        "CPU: this process's time.process_time() per call; wall: the batch's wall time per call "
        "(1 / throughput); ratios against bare httpx2 in the same configuration",
        f"python {version.major}.{version.minor}, httpx2 {httpx2.__version__}, "
        f"openai {openai.__version__}",
        *verdict_notes,
    ]
    if quick:
        notes.append(
            "--quick: 1 and 32 in flight only (only 32 with latency), one round; report a full "
            "run's figures"
        )
    columns = [
        "latency",
        "in flight",
        "call",
        "calls",
        "client",
        "wall s",
        "wall ms/call",
        "CPU µs/call",
        "CPU vs bare",
        "wall vs bare",
    ]
    return "Client cost per call against the mock server", columns, rows, notes, headlines
