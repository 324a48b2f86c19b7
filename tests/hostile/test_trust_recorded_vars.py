"""Values JSON cannot carry (NaN, infinities, non-string keys, integers beyond 64 bits, objects
that are not JSON) are refused before anything is sent, on every path a value enters: --var,
--vars-file, a spec's test cases and the Python API. Exit 2, the variable named, no line."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from _trust_recorded import (
    Canned,
    assert_clean,
    canned_server,
    reply,
    run_cli,
    server_env,
    write_spec,
)

from runner.engine.session import Session
from runner.errors import InputsInvalid, SpecError
from runner.spec.load import load_spec


@pytest.mark.parametrize(
    ("var", "named"),
    [
        ("who:=NaN", "who"),
        ("who:=Infinity", "who"),
        ("who:=-Infinity", "who"),
        ("who:=1e999", "who"),
        ('who:={"a": [1, NaN]}', "who"),
        ("who:=" + "9" * 30, "who"),
        ("who:=" + "9" * 5000, "who"),
        ("who:=" + "[" * 100_000 + "]" * 100_000, "who"),
    ],
)
def test_a_var_json_cannot_carry_is_refused_before_sending(
    tmp_path: Path, var: str, named: str
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    with canned_server(Canned(reply())) as server:
        out = run_cli(
            ["exec", str(write_spec(tmp_path)), "--var", var], ledger, env=server_env(server)
        )
        assert server.requests == []
    assert_clean(out, code=2, lines=0)
    assert named in out.stderr


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("vars.json", '{"who": NaN}'),
        ("vars.json", '{"who": {"deep": -Infinity}}'),
        ("vars.json", '{"who": ' + "1" * 25 + "}"),
        ("vars.json", '{"who": ' + "1" * 5000 + "}"),
        ("vars.json", '{"who": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        ("vars.json", '{"who": ' + "[" * 150 + "]" * 150 + "}"),
        ("vars.yaml", "who: 1e999\n"),
        ("vars.yaml", "who: {[1, 2]: a}\n"),
    ],
)
def test_a_vars_file_json_cannot_carry_is_refused_before_sending(
    tmp_path: Path, name: str, text: str
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    (tmp_path / name).write_text(text, encoding="utf-8")
    with canned_server(Canned(reply())) as server:
        args = ["exec", str(write_spec(tmp_path)), "--vars-file", str(tmp_path / name)]
        out = run_cli(args, ledger, env=server_env(server))
        assert server.requests == []
    assert_clean(out, code=2, lines=0)
    assert "who" in out.stderr or name in out.stderr


def test_yaml_nan_in_a_vars_file_stays_a_string(tmp_path: Path) -> None:
    """YAML 1.2 core: `.nan` is not a number here, so it is sent as the text `.nan`."""
    ledger = tmp_path / "ledger.jsonl"
    (tmp_path / "vars.yaml").write_text("who: .nan\n", encoding="utf-8")
    with canned_server(Canned(reply())) as server:
        args = ["exec", str(write_spec(tmp_path)), "--vars-file", str(tmp_path / "vars.yaml")]
        out = run_cli(args, ledger, env=server_env(server))
        assert len(server.requests) == 1
    assert_clean(out, code=0, lines=1)
    assert out.lines[0]["vars"] == {"who": ".nan"}


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        math.inf,
        {"nested": [1.0, -math.inf]},
        {1: "a"},
        {("a", "b"): 1},
        2**64,
        -(2**63) - 1,
        10**5000,
        b"bytes",
        {1, 2},
        object(),
    ],
    ids=lambda v: type(v).__name__,
)
def test_the_python_api_refuses_a_value_json_cannot_carry(tmp_path: Path, value: Any) -> None:
    ledger = tmp_path / "ledger.jsonl"
    spec = load_spec(write_spec(tmp_path))
    with (
        canned_server(Canned(reply())) as server,
        Session(ledger=ledger, environ=server_env(server)) as session,
    ):
        with pytest.raises(InputsInvalid) as info:
            session.run(spec, {"who": value})
        assert server.requests == []
    assert info.value.exit_code == 2
    assert "who" in str(info.value)
    assert not ledger.exists()


def test_a_non_string_variable_name_is_refused(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    spec = load_spec(write_spec(tmp_path))
    session = Session(ledger=ledger, mock=True, environ={})
    with session, pytest.raises(InputsInvalid, match="int"):
        session.run(spec, {"who": "x", 1: "y"})
    assert not ledger.exists()


def test_the_largest_64_bit_integers_are_accepted(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    spec = load_spec(write_spec(tmp_path))
    with Session(ledger=ledger, mock=True, environ={}) as session:
        session.run(spec, {"who": [2**63 - 1, -(2**63), 1.5, None, True]})
    with Session(ledger=ledger, mock=True, environ={}) as session, pytest.raises(InputsInvalid):
        session.run(spec, {"who": 2**63})


def test_a_test_case_with_a_value_json_cannot_carry_fails_to_load(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "tests:\n  - name: big\n    vars: {who: 1e999}\n")
    with pytest.raises(SpecError, match="who"):
        load_spec(path)
