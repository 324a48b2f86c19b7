"""The report's inputs: --by fields, --since/--until, ledger paths and globs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from runner.errors import ConfigError
from runner.report import GROUP_FIELDS, expand_ledgers, parse_by, parse_when

NOW = datetime(2025, 3, 14, 12, 0)


def test_by_takes_commas_and_repeats_keeping_order() -> None:
    assert parse_by(["spec,model", " day ", "spec"]) == ("spec", "model", "day")
    assert parse_by([""]) == ()


def test_an_unknown_by_field_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_by(["spec,colour"])
    assert str(caught.value) == (
        "--by colour: unknown field; the known ones are " + ", ".join(GROUP_FIELDS)
    )
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", datetime(2025, 3, 7, 12, 0)),
        ("12h", datetime(2025, 3, 14, 0, 0)),
        ("90m", datetime(2025, 3, 14, 10, 30)),
        ("1.5d", datetime(2025, 3, 13, 0, 0)),
        ("2025-03-01", datetime(2025, 3, 1)),
        ("2025-03-01T08:30:00", datetime(2025, 3, 1, 8, 30)),
        ("2025-03-01T08:30:00Z", datetime(2025, 3, 1, 8, 30)),
        ("2025-03-01T08:30:00+02:00", datetime(2025, 3, 1, 6, 30)),
        ("2025-03-01 08:30", datetime(2025, 3, 1, 8, 30)),
    ],
)
def test_since(text: str, expected: datetime) -> None:
    assert parse_when(text, what="--since", now=NOW) == expected


def test_until_a_date_includes_that_day() -> None:
    assert parse_when("2025-03-01", what="--until") == datetime(2025, 3, 2)
    assert parse_when("2025-03-01T00:00:00Z", what="--until") == datetime(2025, 3, 1)


@pytest.mark.parametrize("text", ["last week", "7 days", "2025-13-01", "7x", "", "-3d"])
def test_a_time_that_does_not_parse(text: str) -> None:
    with pytest.raises(ConfigError, match="not a duration .* or an ISO date") as caught:
        parse_when(text, what="--since")
    assert str(caught.value).startswith(f"--since {text!r}: ")


def test_paths_and_globs_expand_in_order_once(tmp_path: Path) -> None:
    for name in ("b.jsonl", "a.jsonl", "notes.txt"):
        (tmp_path / name).write_text("", encoding="utf-8")
    (tmp_path / "dir.jsonl").mkdir()
    first = str(tmp_path / "b.jsonl")
    found = expand_ledgers([first, str(tmp_path / "*.jsonl")])
    assert found == [first, str(tmp_path / "a.jsonl")]


def test_a_glob_that_matches_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--ledger .*\*\.jsonl: the pattern matches no file"):
        expand_ledgers([str(tmp_path / "*.jsonl")])


def test_a_missing_path_and_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="^no ledger at .*nope.jsonl$"):
        expand_ledgers([str(tmp_path / "nope.jsonl")])
    with pytest.raises(ConfigError, match="is a directory"):
        expand_ledgers([str(tmp_path)])


def test_a_file_named_like_a_glob_is_that_file(tmp_path: Path) -> None:
    from _report_lines import record, write_lines

    from runner.report import build_report

    path = str(write_lines(tmp_path / "shard[1].jsonl", [record(1)]))
    assert expand_ledgers([path]) == [path]
    assert build_report([path]).calls == 1
