"""Hostile requests to the mock server: schemas that ask for enormous values get a clean 400
(OpenAI's error shape) at once, and a slow request never blocks another client."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Iterator
from random import Random
from typing import Any

import httpx2
import pytest

from runner.mock.generate import generate_instance
from runner.mock.regex import pattern_sample
from runner.mock.server import serve


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    ready: list[int] = []
    started = threading.Event()
    stop = threading.Event()

    def on_ready(port: int) -> None:
        ready.append(port)
        started.set()

    thread = threading.Thread(
        target=serve, kwargs={"port": 0, "ready": on_ready, "stop": stop}, daemon=True
    )
    thread.start()
    assert started.wait(30)
    yield f"http://127.0.0.1:{ready[0]}/v1"
    stop.set()
    thread.join(30)


def _request(schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "go"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        **extra,
    }


def _post(base: str, body: dict[str, Any]) -> tuple[httpx2.Response, float]:
    started = time.perf_counter()
    with httpx2.Client(timeout=60) as client:
        response = client.post(f"{base}/chat/completions", json=body)
    return response, time.perf_counter() - started


HUGE = {
    "minLength": {"type": "string", "minLength": 1_000_000_000},
    "minItems": {"type": "array", "items": {"type": "string"}, "minItems": 1_000_000_000},
    "minProperties": {"type": "object", "minProperties": 1_000_000_000},
    "nested minItems": {
        "type": "array",
        "minItems": 5_000,
        "items": {"type": "array", "minItems": 5_000, "items": {"type": "integer"}},
    },
    "long strings": {
        "type": "array", "minItems": 5_000, "items": {"type": "string", "minLength": 90_000}
    },
    "pattern repeat": {"type": "string", "pattern": "^a{1000000000}$"},
    "pattern span": {"type": "string", "pattern": "^(?:(?:a{0,1000}){0,1000}){0,1000}$"},
    "huge multipleOf range": {
        "type": "number", "minimum": 0, "maximum": 1e300, "multipleOf": 1e-300
    },
    "infinite bounds": {"type": "integer", "minimum": -1e308, "maximum": 1e308},
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(HUGE))
def test_a_huge_schema_answers_fast_with_an_openai_error(server: str, case: str) -> None:
    response, seconds = _post(server, _request(HUGE[case]))
    assert seconds < 10, seconds
    if response.status_code == 200:  # what can be made is made quickly, and small
        assert len(response.content) < 10_000_000
        return
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_json_schema"
    assert "mock server" in error["message"]


def test_a_huge_request_body_is_refused_unread(server: str) -> None:
    with httpx2.Client(timeout=60) as client:
        response = client.post(
            f"{server}/chat/completions",
            content=b"x" * (40 * 1024 * 1024),
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def test_a_slow_request_does_not_block_another_client(server: str) -> None:
    """64 choices of about 160,000 characters each (within the caps, so it is answered,
    slowly);
    meanwhile a small request from another client is answered at once."""
    slow = _request(
        {"type": "array", "minItems": 1_500, "items": {"type": "string", "minLength": 99}}, n=64
    )
    huge = _request(HUGE["minLength"])
    small = _request({"type": "object", "properties": {"city": {"type": "string"}}})
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        slow_call = pool.submit(_post, server, slow)
        time.sleep(0.3)  # the slow one is being built
        refused, refused_s = pool.submit(_post, server, huge).result()
        answered, answered_s = pool.submit(_post, server, small).result()
        assert not slow_call.done(), "the slow request must still be running for this to show"
        slow_response, slow_s = slow_call.result()
    assert refused.status_code == 400 and refused_s < 3, refused_s
    assert answered.status_code == 200 and answered_s < 3, answered_s
    assert slow_response.status_code == 200 and slow_s > answered_s


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/$defs/d0",
         "$defs": {f"d{i}": {"anyOf": [{"$ref": f"#/$defs/d{j}"} for j in range(12)]}
                   for i in range(12)}},
        {"type": "string", "pattern": "(x+x+)+y^"},
        {"const": 1, "x": [[[[[[[[[[]]]]]]]]]]},
    ],
    ids=["tangled refs", "backtracking sample check", "deep const"],
)  # fmt: skip
def test_the_generator_stops_quickly(schema: dict[str, Any]) -> None:
    started = time.perf_counter()
    try:
        generate_instance(schema, Random(0))
    except ValueError:
        pass
    assert time.perf_counter() - started < 5


def test_a_sample_check_never_backtracks() -> None:
    """A pattern whose samples never match (an anchor in the middle) over nested repetitions:
    Python's re would backtrack for ages on each sample; RE2 refuses them at once."""
    started = time.perf_counter()
    with pytest.raises(ValueError, match="cannot make a string"):
        pattern_sample("(?:a{1,30}){1,30}b^", Random(0))
    assert time.perf_counter() - started < 10
