"""Data-set input: JSONL, CSV (header row, cells typed through the spec's `inputs` schema) or
`-` for JSONL on stdin, read as a stream of `Item`s. A first streaming pass checks the whole
file (syntax, UTF-8, columns, unique row keys, values JSON can carry — no lone surrogate, no
integer past 64 bits) and counts the rows before anything is sent. Stdin and pipes are spooled
(they can be read only once); devices are refused.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Generator, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, NoReturn, cast

from runner.engine.loop import Item
from runner.errors import DatasetError
from runner.fastjson import UNREAD, plain_loads
from runner.ledger.encoding import MAX_LINE_BYTES
from runner.ledger.reading import iter_lines
from runner.spec.values import json_value_issues

if TYPE_CHECKING:
    from runner.spec.model import PromptSpec

__all__ = ["RowStream", "open_rows", "read_rows"]

KEY_FIELD = "id"
_SPOOL_BYTES = 8 * 1024 * 1024  # stdin beyond this goes to a temporary file, not memory


def read_rows(
    source: str | Path, *, spec: PromptSpec, stdin: IO[str] | None = None
) -> Iterator[Item]:
    """The rows of a JSONL or CSV file (or `-`: JSONL on `stdin`), one `Item` each, streamed.

    The whole file is checked first (DatasetError, naming the line, before any row is
    returned); a row that merely breaks the spec's `inputs` schema is returned as it is and
    fails on its own when run."""
    return open_rows(source, spec=spec, stdin=stdin)


def open_rows(source: str | Path, *, spec: PromptSpec, stdin: IO[str] | None = None) -> RowStream:
    """`read_rows`, with the row count of the first pass at hand (`.count`)."""
    return RowStream(source, spec=spec, stdin=stdin)


class RowStream(Iterator[Item]):
    """The rows of one input, checked and counted on construction, then read lazily."""

    def __init__(
        self, source: str | Path, *, spec: PromptSpec, stdin: IO[str] | None = None
    ) -> None:
        self.name = "<stdin>" if str(source) == "-" else str(source)
        self._spool: IO[bytes] | None = None
        self._rows: Generator[Item, None, None] | None = None
        self._yielded = 0
        if str(source) == "-":
            self._spool = _spool_stdin(stdin if stdin is not None else sys.stdin, self.name)
            self.format = "jsonl"
        else:
            self.format = "csv" if str(source).lower().endswith(".csv") else "jsonl"
            if _is_pipe(source, self.name):  # `--input <(...)`: it can be read only once
                with self._open_path(Path(source)) as pipe:
                    self._spool = _spool_stdin(pipe, self.name)
        self._path = Path(source)
        self._spec = spec
        self._types = _property_types(spec.inputs)
        self._keep_id = KEY_FIELD in spec.variables or KEY_FIELD in self._types
        try:
            self.count = sum(1 for _ in self._scan(check=True))
            if self.count == 0:
                raise DatasetError(f"{self.name}: no rows (the file is empty)", path=self.name)
        except BaseException:
            self.close()
            raise
        self._rows = self._scan(check=False)

    def __next__(self) -> Item:
        # No more rows than the first pass counted and checked: a file that grows while it is
        # read (the ledger given as the input) cannot feed the run for ever.
        if self._rows is None or self._yielded >= self.count:
            self.close()
            raise StopIteration
        try:
            item = next(self._rows)
        except StopIteration:
            self.close()
            raise
        self._yielded += 1
        return item

    def close(self) -> None:
        rows = self._rows
        if rows is not None:
            rows.close()
        if self._spool is not None:
            self._spool.close()

    # -- reading --

    def _open(self) -> IO[bytes]:
        if self._spool is not None:
            self._spool.seek(0)
            return cast(IO[bytes], _Unclosed(self._spool))
        return self._open_path(self._path)

    def _open_path(self, path: Path) -> IO[bytes]:
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise DatasetError(f"{self.name}: no such file", path=self.name) from None
        except IsADirectoryError:
            raise DatasetError(f"{self.name}: is a directory, not a file", path=self.name) from None
        except OSError as exc:
            message = f"{self.name}: cannot read: {exc.strerror}"
            raise DatasetError(message, path=self.name) from None

    def _scan(self, *, check: bool) -> Generator[Item, None, None]:
        """Every row as an Item; with `check`, also refuse duplicate keys."""
        seen: set[str] | None = set() if check else None
        with self._open() as raw:
            items = self._csv(raw) if self.format == "csv" else self._jsonl(raw)
            try:
                for item in items:
                    if seen is not None:
                        if item.key in seen:
                            self._fail(item.line, f"the row key {item.key!r} is used twice")

                        seen.add(item.key)
                        issues = json_value_issues({KEY_FIELD: item.key, **item.vars})
                        if issues:
                            self._fail(item.line, "a value JSON cannot carry: " + issues[0])
                    yield item
            finally:
                items.close()  # before the file it reads is closed (Ctrl-C mid-run)

    def _fail(self, line: int, message: str) -> NoReturn:
        where = f"{self.name}:{line}" if line else self.name
        raise DatasetError(f"{where}: {message}", path=self.name, line=line)

    def _jsonl(self, raw: IO[bytes]) -> Generator[Item, None, None]:
        def too_long(number: int) -> None:
            self._fail(number, f"a line longer than {MAX_LINE_BYTES:,} bytes")

        for number, data in iter_lines(cast(BinaryIO, raw), on_long=too_long):
            text = self._decode(data, number)
            if not text.strip():
                continue
            try:
                value = _loads(text)
            except _NotJSON as exc:
                self._fail(number, f"{exc} is not a JSON value; write a number or null")
            except json.JSONDecodeError as exc:
                self._fail(number, f"not valid JSON ({exc.msg} at column {exc.colno})")
            except RecursionError:
                self._fail(number, "not valid JSON (nested too deeply)")
            if not isinstance(value, dict):
                kind = type(value).__name__.replace("dict", "object").replace("list", "array")
                self._fail(number, f"a row must be a JSON object, not {kind}")
            yield self._item(value, number)

    def _csv(self, raw: IO[bytes]) -> Generator[Item, None, None]:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")
        reader = csv.reader(text)
        try:
            header = next(reader, None)
            if header is None:
                return
            self._check_header(header, reader.line_num)
            start = reader.line_num + 1
            for cells in reader:
                line, start = start, reader.line_num + 1
                if not any(cells):
                    continue
                if len(cells) != len(header):
                    self._fail(line, f"{len(cells)} cells, but the header has {len(header)}")
                row = {
                    name: self._typed(name, cell)
                    for name, cell in zip(header, cells, strict=True)
                    if cell != ""
                }
                yield self._item(row, line)
        except UnicodeDecodeError:
            self._fail(reader.line_num + 1, "not valid UTF-8 (save the file as UTF-8)")
        except csv.Error as exc:
            self._fail(reader.line_num, f"not valid CSV ({exc})")
        finally:
            try:
                text.detach()  # leave the file to its owner
            except ValueError:  # it is closed already
                pass

    def _check_header(self, header: list[str], line: int) -> None:
        names = [name.strip() for name in header]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            self._fail(line, f"the header names a column twice: {', '.join(twice)}")
        required = (self._spec.inputs or {}).get("required")
        if self._spec.inputs is None:
            needed = sorted(self._spec.variables)
        else:
            needed = [n for n in required or () if isinstance(n, str)]
        missing = [n for n in needed if n not in names]
        if missing:
            self._fail(line, f"no column for {', '.join(missing)} (the spec needs it)")
        header[:] = names

    def _decode(self, data: bytes, number: int) -> str:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            self._fail(number, "not valid UTF-8 (save the file as UTF-8)")
        return text.removeprefix("\ufeff") if number == 1 else text

    def _typed(self, name: str, cell: str) -> Any:
        """A CSV cell as the `inputs` schema types it: "3" is 3 where it says integer; a cell
        that does not convert stays a string, so the row fails the schema on its own."""
        types = self._types.get(name, ())
        if "integer" in types:
            try:
                return int(cell)
            except ValueError:
                pass
        if "number" in types:
            try:
                number = float(cell)
            except ValueError:
                pass
            else:
                if number == number and number not in (float("inf"), float("-inf")):
                    return number
        if "boolean" in types and cell.strip().lower() in ("true", "false"):
            return cell.strip().lower() == "true"
        if "string" not in types and ("object" in types or "array" in types):
            try:
                return _loads(cell)
            except (ValueError, RecursionError):
                pass
        return cell

    def _item(self, row: dict[str, Any], line: int) -> Item:
        if KEY_FIELD not in row:
            return Item(str(line), row, line)
        key = row[KEY_FIELD]
        if isinstance(key, bool) or not isinstance(key, str | int):
            self._fail(line, f"the row key `{KEY_FIELD}` must be a string or an integer")
        if not self._keep_id:
            row = {k: v for k, v in row.items() if k != KEY_FIELD}
        return Item(str(key), row, line)


def _property_types(inputs: Mapping[str, Any] | None) -> dict[str, tuple[str, ...]]:
    """The JSON types each top-level property of `inputs` allows."""
    properties = (inputs or {}).get("properties")
    if not isinstance(properties, Mapping):
        return {}
    found: dict[str, tuple[str, ...]] = {}
    for name, sub in properties.items():
        if isinstance(sub, Mapping):
            kind = sub.get("type")
            found[name] = (kind,) if isinstance(kind, str) else tuple(kind or ())
    return found


class _NotJSON(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotJSON(name)


# Built once: json.loads given an argument builds a new decoder for every row.
_ROW_JSON = json.JSONDecoder(parse_constant=_refuse_constant)


def _loads(text: str) -> Any:
    """json.loads(text, parse_constant=_refuse_constant): orjson's value where it reads what
    `json` reads (fastjson.plain_loads, which leaves NaN, Infinity, big integers, lone
    surrogates and a byte order mark to `json`), else the decoder built once."""
    value = plain_loads(text)
    if value is not UNREAD:
        return value
    if text.startswith("\ufeff"):  # what json.loads says of a byte order mark
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _ROW_JSON.decode(text)


class _Unclosed(io.BufferedIOBase):
    """A view of the spooled stdin that the reader may close without losing the spool."""

    def __init__(self, inner: IO[bytes]) -> None:
        super().__init__()
        self._inner = inner

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._inner.read(-1 if size is None else size)

    def read1(self, size: int = -1) -> bytes:
        return self._inner.read(size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._inner.readline(-1 if size is None else size)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._inner.readline, b"")


def _spool_stdin(stdin: IO[Any] | None, name: str) -> IO[bytes]:
    """Copy stdin (or a pipe) to a spool (memory up to a bound, then a temporary file): two
    passes need a source that can be read twice. A closed stdin is a DatasetError."""
    if stdin is None or getattr(stdin, "closed", False):
        raise DatasetError(f"{name}: stdin is closed: pipe the rows in, or name a file", path=name)
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115
    try:
        binary = getattr(stdin, "buffer", None)
        if binary is not None:
            shutil.copyfileobj(binary, spool)
        elif isinstance(stdin, io.RawIOBase | io.BufferedIOBase):
            shutil.copyfileobj(stdin, spool)
        else:
            for chunk in iter(lambda: stdin.read(1 << 16), ""):
                spool.write(chunk.encode("utf-8", errors="surrogateescape"))
    except OSError as exc:
        spool.close()
        raise DatasetError(f"{name}: cannot read: {exc.strerror}", path=name) from None
    except BaseException:
        spool.close()
        raise
    return spool


def _is_pipe(source: str | Path, name: str) -> bool:
    """Whether the input is a pipe (read once, so spooled); a device or a socket is refused
    (/dev/zero would be read for ever)."""
    try:
        mode = os.stat(source).st_mode
    except OSError:
        return False  # opening it says what is wrong
    if stat.S_ISFIFO(mode):
        return True
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
        raise DatasetError(
            f"{name}: not a file (a device or a socket); name a JSONL or CSV file, or pipe the "
            "rows in with --input -",
            path=name,
        )
    return False
