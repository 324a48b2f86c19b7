"""runner.probe.verdicts and runner.probe.suggest: what each outcome means, including the
ones the three servers of the other tests never give (a reasoning model's empty reply, JSON
cut by the token limit, a refusal, a 404 about the model), and the settings each set of
verdicts suggests."""

from __future__ import annotations

from decimal import Decimal

import pytest

from runner.engine.results import Result
from runner.errors import (
    BadRequest,
    ConnectFailed,
    NotFound,
    OutputInvalid,
    OutputModeUnsupported,
    OutputRefused,
    OutputTruncated,
    ServerFailed,
)
from runner.probe import suggestions
from runner.probe.verdicts import (
    error_shape_finding,
    n_finding,
    output_finding,
    responses_finding,
    stream_finding,
    tools_finding,
)
from runner.providers.probe import Listing
from runner.types import Cost, Usage


def result(value: object = None, *, text: str = "", choices: int = 1, **usage: int) -> Result:
    return Result(
        value=value,
        text=text,
        usage=Usage(**usage),  # type: ignore[arg-type]
        cost=Cost(Decimal(0), "test"),
        attempts=(),
        latency_ms=1.0,
        request_id=None,
        model="m",
        served_model="m",
        finish_reason="stop",
        choices=tuple(value for _ in range(choices)),
    )


def http_error(cls: type, status: int, body: str) -> Exception:
    return cls(f"{status} from u: x", status=status, body_excerpt=body)


@pytest.mark.parametrize(
    ("outcome", "verdict", "detail"),
    [
        (
            result({"probe_token": "runner-probe"}),
            "enforced",
            'JSON that fits: {"probe_token": "runner-probe"}',
        ),
        (
            http_error(
                OutputModeUnsupported,
                400,
                '{"error": {"message": "json_schema is not supported", "type": "x"}}',
            ),
            "refused",
            "400: json_schema is not supported",
        ),
        (
            OutputInvalid("x", text="Hello there, friend!"),
            "ignored",
            'not the JSON asked for: "Hello there, friend!"',
        ),
        (
            OutputTruncated("x", text="Sure! Here is"),
            "ignored",
            'not the JSON asked for: "Sure! Here is" (stopped at the 64-token limit)',
        ),
        # A reasoning model that spent its tokens thinking: nothing to judge.
        (OutputTruncated("x", text=""), "failed", "no text within 64 tokens: it cannot tell"),
        (OutputInvalid("x", text=None), "failed", "a reply with no text: it cannot tell"),
        # JSON the limit cut may have been the schema's.
        (
            OutputTruncated("x", text='{"probe_tok'),
            "failed",
            'JSON cut at the 64-token limit: "{\\"probe_tok"',
        ),
        (
            OutputRefused("the model refused: no", text=""),
            "failed",
            "refusal: the model refused: no",
        ),
        (
            http_error(
                BadRequest, 400, '{"error": {"message": "temperature is bad", "type": "x"}}'
            ),
            "failed",
            "400: temperature is bad",
        ),
        (ConnectFailed("could not connect to u"), "failed", "connection: could not connect to u"),
    ],
)
def test_output_mode(outcome: object, verdict: str, detail: str) -> None:
    found = output_finding("json_schema", outcome, "sent", 64)  # type: ignore[arg-type]
    assert (found.verdict, found.detail, found.sent) == (verdict, detail, "sent")


def test_stream_usage() -> None:
    honoured = stream_finding(result(text="hi", prompt=12, completion=3), "s")
    assert (honoured.verdict, honoured.detail) == (
        "honoured",
        "usage at the end: 12 prompt + 3 completion tokens",
    )
    counted = stream_finding(result(text="hi", prompt=12, completion=3, estimated=True), "s")
    assert (counted.verdict, counted.detail) == (
        "missing",
        "no usage in the stream: runner counted 12 prompt + 3 completion tokens itself",
    )
    broken = stream_finding(ServerFailed("500 from u: boom", status=500), "s")
    assert (broken.verdict, broken.detail) == ("failed", "500: an empty body")


@pytest.mark.parametrize(
    ("outcome", "verdict", "detail"),
    [
        (result("hi", choices=2), "honoured", "2 choices"),
        (result("hi", choices=1), "ignored", "1 choice"),
        (http_error(BadRequest, 400, '{"detail": "n must be 1"}'), "refused", "400: n must be 1"),
        (None, "n/a", "this API has no n: not asked"),
    ],
)
def test_n(outcome: object, verdict: str, detail: str) -> None:
    found = n_finding(outcome, "s")  # type: ignore[arg-type]
    assert (found.verdict, found.detail) == (verdict, detail)


@pytest.mark.parametrize(
    ("outcome", "verdict", "detail"),
    [
        (
            result([{"name": "runner_probe", "arguments": {"ok": True}}]),
            "honoured",
            'a call of runner_probe({"ok": true})',
        ),
        (result("Hello", text="Hello"), "ignored", 'text, no call: "Hello"'),
        (OutputTruncated("x", text=""), "honoured", "a call, cut at the token limit"),
        (
            http_error(BadRequest, 400, '{"error": "tools are not supported"}'),
            "refused",
            "400: tools are not supported",
        ),
    ],
)
def test_tools(outcome: object, verdict: str, detail: str) -> None:
    found = tools_finding(outcome, "s")  # type: ignore[arg-type]
    assert (found.verdict, found.detail) == (verdict, detail)


@pytest.mark.parametrize(
    ("outcome", "verdict", "detail"),
    [
        (result("Hi", text="Hi"), "works", 'a response: "Hi"'),
        (OutputTruncated("x", text="Hi"), "works", "a response (length)"),
        (http_error(NotFound, 404, "Not Found"), "absent", "404: Not Found"),
        (http_error(BadRequest, 405, "<html>no</html>"), "absent", "405: an HTML page"),
        # A 404 about the model: the endpoint is there, the model is not.
        (
            http_error(
                NotFound, 404, '{"error": {"message": "The model x does not exist", "type": "t"}}'
            ),
            "refused",
            "404: The model x does not exist",
        ),
        (
            http_error(BadRequest, 400, '{"error": {"message": "bad", "type": "t"}}'),
            "refused",
            "400: bad",
        ),
        (http_error(ServerFailed, 502, "bad gateway"), "failed", "502: bad gateway"),
    ],
)
def test_responses(outcome: object, verdict: str, detail: str) -> None:
    found = responses_finding(outcome, "s")  # type: ignore[arg-type]
    assert (found.verdict, found.detail) == (verdict, detail)


def test_error_shape_from_the_call_or_else_the_get() -> None:
    missing = Listing("u", 404, body='{"error": {"message": "no", "type": "t"}}')
    listed = Listing("u", 200, ids=())
    string = http_error(NotFound, 404, '{"error": "model not found"}')
    found = error_shape_finding(string, listed, "s")  # type: ignore[arg-type]
    assert (found.verdict, found.detail) == ("other", '404: {"error": "<string>"}')
    found = error_shape_finding(result("hi"), missing, "s")
    assert (found.verdict, found.detail) == (
        "openai",
        'the model call was answered; the GET: 404: {"error": {"message", "type"}}',
    )
    found = error_shape_finding(ConnectFailed("gone"), missing, "s")
    assert found.detail.startswith("the model call failed (connection); the GET: 404")
    found = error_shape_finding(result("hi"), listed, "s")
    assert (found.verdict, found.detail) == (
        "unknown",
        "the model call was answered, and so was the GET",
    )


ENFORCED = {"json_schema": "enforced", "json_object": "enforced"}


@pytest.mark.parametrize(
    ("verdicts", "settings"),
    [
        (ENFORCED, ["output.mode: json_schema"]),
        ({"json_schema": "refused", "json_object": "enforced"}, ["output.mode: json_object"]),
        ({"json_schema": "refused", "json_object": "refused"}, ["output.mode: prompt"]),
        ({"json_schema": "ignored", "json_object": "ignored"}, ["output.mode: prompt"]),
        ({"json_schema": "ignored", "json_object": "enforced"}, ["output.mode: json_object"]),
        # The probe could not tell: nothing is suggested about the output mode.
        ({"json_schema": "failed", "json_object": "enforced"}, []),
        ({**ENFORCED, "responses": "absent"}, ["output.mode: json_schema", "provider.api: chat"]),
        ({**ENFORCED, "stream_usage": "missing"}, ["output.mode: json_schema", "stream: false"]),
        (
            {**ENFORCED, "n": "ignored", "tools": "refused"},
            ["output.mode: json_schema", "no params.n", "no tools"],
        ),
        ({**ENFORCED, "n": "n/a", "files": "absent"}, ["output.mode: json_schema", "no --batch"]),
        (
            {**ENFORCED, "rate_limit_headers": "absent"},
            ["output.mode: json_schema", "rate: {rpm, tpm, concurrency}"],
        ),
    ],
)
def test_suggestions(verdicts: dict[str, str], settings: list[str]) -> None:
    assert [s.setting for s in suggestions(verdicts, api="chat")] == settings


def test_the_suggestion_for_a_responses_spec_says_why_it_cannot_run() -> None:
    (found,) = suggestions({"responses": "absent"}, api="responses")
    assert found.why == (
        "the server has no Responses API: a spec with provider.api responses cannot run here"
    )
