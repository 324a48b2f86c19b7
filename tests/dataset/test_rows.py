"""runner.dataset.rows: JSONL, CSV and stdin input, keys, typing through `inputs`, and every
bad file refused with its line before anything could be sent."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from runner.dataset import Item, open_rows, read_rows
from runner.dataset import rows as rows_module
from runner.errors import DatasetError
from runner.spec import load_spec
from runner.spec.model import PromptSpec

SPEC = (
    "name: rows\nmodel: gpt-4o-mini\nparams: {max_tokens: 20}\n"
    "inputs:\n  type: object\n  properties:\n"
    "    n: {type: integer}\n    x: {type: number}\n    flag: {type: boolean}\n"
    "    tags: {type: array}\n    name: {type: string}\n"
    "  required: [n]\n"
    "messages: [{role: user, content: 'Say {{ n }}.'}]\n"
)


@pytest.fixture
def spec(tmp_path: Path) -> PromptSpec:
    path = tmp_path / "rows.yaml"
    path.write_text(SPEC, encoding="utf-8")
    return load_spec(path)


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def test_jsonl_keys_are_the_id_else_the_line_number(tmp_path: Path, spec: PromptSpec) -> None:
    path = write(tmp_path, "a.jsonl", '{"id": "x", "n": 1}\n\n{"n": 2}\n{"id": 7, "n": 3}\n')
    rows = list(read_rows(path, spec=spec))
    assert rows == [
        Item("x", {"n": 1}, 1),
        Item("3", {"n": 2}, 3),
        Item("7", {"n": 3}, 4),
    ]


def test_the_id_stays_a_variable_when_the_spec_uses_it(tmp_path: Path) -> None:
    text = "name: s\nmodel: gpt-4o-mini\nmessages: [{role: user, content: '{{ id }}'}]\n"
    spec_path = write(tmp_path, "s.yaml", text)
    path = write(tmp_path, "a.jsonl", '{"id": "x"}\n')
    [row] = read_rows(path, spec=load_spec(spec_path))
    assert row == Item("x", {"id": "x"}, 1)


def test_csv_cells_are_typed_by_the_inputs_schema(tmp_path: Path, spec: PromptSpec) -> None:
    path = write(
        tmp_path,
        "a.csv",
        '\ufeffid,n,x,flag,tags,name\nr1,3,2.5,true,"[1,2]",007\nr2,4,,false,,\nr3,five,,,,\n',
    )
    rows = list(read_rows(path, spec=spec))
    assert [r.key for r in rows] == ["r1", "r2", "r3"]
    assert rows[0].vars == {"n": 3, "x": 2.5, "flag": True, "tags": [1, 2], "name": "007"}
    assert rows[1].vars == {"n": 4, "flag": False}  # an empty cell is absent
    assert rows[2].vars == {"n": "five"}  # stays a string: the row fails the schema alone


def test_csv_keys_without_an_id_are_file_line_numbers(tmp_path: Path, spec: PromptSpec) -> None:
    path = write(tmp_path, "a.csv", 'n,name\n1,"two\nlines"\n2,b\n')
    assert [(r.key, r.vars["n"]) for r in read_rows(path, spec=spec)] == [("2", 1), ("4", 2)]


def test_stdin_is_jsonl_and_counted(spec: PromptSpec) -> None:
    rows = open_rows("-", spec=spec, stdin=io.StringIO('{"n": 1}\n{"n": 2}\n'))
    assert rows.count == 2
    assert [r.vars for r in rows] == [{"n": 1}, {"n": 2}]


def test_rows_stream_after_the_first_pass(tmp_path: Path, spec: PromptSpec) -> None:
    """The first pass only counts; items are built again lazily, not held in a list."""
    path = write(tmp_path, "a.jsonl", "".join(f'{{"n": {i}}}\n' for i in range(1000)))
    rows = open_rows(path, spec=spec)
    assert rows.count == 1000
    assert next(rows).vars == {"n": 0}
    rows.close()


BAD = {
    "malformed line": ("a.jsonl", '{"n": 1}\n{"n": 2\n', "a.jsonl:2: not valid JSON"),
    "not an object": ("a.jsonl", '{"n": 1}\n[1, 2]\n', "a.jsonl:2: a row must be a JSON object"),
    "NaN": ("a.jsonl", '{"n": NaN}\n', "a.jsonl:1: NaN is not a JSON value"),
    "Infinity": ("a.jsonl", '{"n": 1}\n{"n": -Infinity}\n', "a.jsonl:2: -Infinity is not"),
    "byte order mark past the first line": (
        "a.jsonl",
        '{"n": 1}\n\ufeff{"n": 2}\n',
        "a.jsonl:2: not valid JSON (Unexpected UTF-8 BOM (decode using utf-8-sig) at column 1)",
    ),
    "empty": ("a.jsonl", "", "a.jsonl: no rows (the file is empty)"),
    "blank lines only": ("a.jsonl", "\n\n", "no rows"),
    "empty csv": ("a.csv", "", "no rows"),
    "header only": ("a.csv", "n\n", "no rows"),
    "not utf-8": ("a.jsonl", b'{"n": 1}\n{"n": "\xff\xfe"}\n', "a.jsonl:2: not valid UTF-8"),
    "csv not utf-8": ("a.csv", b"n,name\n1,\xe9t\xe9\n", "not valid UTF-8"),
    "duplicate ids": (
        "a.jsonl",
        '{"id": "a", "n": 1}\n{"id": "a", "n": 2}\n',
        "a.jsonl:2: the row key 'a' is used twice",
    ),
    "id clashes with a line number": ("a.jsonl", '{"n": 1}\n{"id": 1, "n": 2}\n', "used twice"),
    "missing column": ("a.csv", "id,name\nr1,b\n", "a.csv:1: no column for n"),
    "ragged csv": ("a.csv", "n,name\n1,a,extra\n", "a.csv:2: 3 cells, but the header has 2"),
    "bad id type": ("a.jsonl", '{"id": [1], "n": 1}\n', "must be a string or an integer"),
    "duplicate header": ("a.csv", "n,n\n1,2\n", "names a column twice: n"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_files_are_refused_with_their_line(tmp_path: Path, spec: PromptSpec, case: str) -> None:
    name, data, message = BAD[case]
    path = write(tmp_path, name, data)
    with pytest.raises(DatasetError) as caught:
        read_rows(path, spec=spec)  # raised at once: before a single row is handed out
    assert message in str(caught.value)
    assert caught.value.exit_code == 2


def test_a_missing_file_is_a_dataset_error(tmp_path: Path, spec: PromptSpec) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        read_rows(tmp_path / "nope.jsonl", spec=spec)
    with pytest.raises(DatasetError, match="is a directory"):
        read_rows(tmp_path, spec=spec)


_ROW_TEXTS = [
    '{"n": 1, "name": "Zürich", "tags": ["a", {"b": null}], "x": 1.5e-7}',
    '{"n": 18446744073709551616}',  # past 64 bits: an int, as json reads it, not a float
    '{"n": -0.0, "n2": 1e400}',  # 1e400 is inf to json; orjson refuses it
    '{"n": "\\ud800"}',  # a lone surrogate escape: json's string (the row check refuses it)
    '{"n": 1, "n": 2}',
    '{"n": ' + "[" * 300 + "]" * 300 + "}",  # deep: json's to read
]


@pytest.mark.parametrize("text", _ROW_TEXTS)
def test_a_row_reads_as_json_reads_it(text: str) -> None:
    # Rows go through orjson where it reads what json reads (fastjson.plain_loads).
    expected = json.loads(text)
    got = rows_module._loads(text)
    assert got == expected or (got != got and expected != expected)
    assert type(got["n"]) is type(expected["n"])
    assert json.dumps(got) == json.dumps(expected)


def test_an_ordinary_row_is_read_without_the_standard_decoder(monkeypatch: Any) -> None:
    # The fast path: were it never taken, every row would pay json's decoder again.
    def refuse(text: str) -> Any:
        raise AssertionError("the standard decoder was used for a plain row")

    monkeypatch.setattr(rows_module._ROW_JSON, "decode", refuse)
    assert rows_module._loads('{"id": "r1", "city": "Paris", "n": 3}') == {
        "id": "r1",
        "city": "Paris",
        "n": 3,
    }
    with pytest.raises(AssertionError):  # NaN is json's to refuse
        rows_module._loads('{"n": NaN}')
