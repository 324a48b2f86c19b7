"""Data-set rows from a JSONL file (or `-` for stdin): one Item per line, keyed by its `id` or
its line number. A minimal stand-in (JSONL only) until the data-set reader lands; it keeps that
reader's signature.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from runner.dataset.loop import Item
from runner.errors import DatasetError

if TYPE_CHECKING:
    from runner.spec.model import PromptSpec

__all__ = ["read_rows"]


def read_rows(
    source: str | Path, *, spec: PromptSpec, stdin: IO[str] | None = None
) -> Iterator[Item]:
    """Yield the rows of a JSONL file (`-`: stdin), each an object of variables; the key is the
    row's `id` (left out of the variables unless the spec uses it), else its line number."""
    name = str(source)
    if name == "-":
        yield from _rows(stdin or sys.stdin, "<stdin>", spec)
        return
    try:
        f = open(name, encoding="utf-8")  # noqa: SIM115 (closed below, after the generator)
    except OSError as exc:
        raise DatasetError(f"cannot read {name}: {exc.strerror}", path=name) from exc
    with f:
        yield from _rows(f, name, spec)


def _rows(lines: IO[str], name: str, spec: PromptSpec) -> Iterator[Item]:
    keep_id = "id" in spec.variables
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise DatasetError(
                f"{name}:{number}: not valid JSON ({exc})", path=name, line=number
            ) from None
        if not isinstance(value, dict):
            raise DatasetError(
                f"{name}:{number}: a row must be a JSON object", path=name, line=number
            )
        key = str(value["id"]) if "id" in value else str(number)
        if not keep_id:
            value.pop("id", None)
        yield Item(key, value, number)
