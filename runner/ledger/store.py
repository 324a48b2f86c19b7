"""The append-only JSONL ledger: one line per call written under an exclusive lock in one write,
read back line by line (torn or invalid lines are skipped with a warning), plus the pieces each
line carries: ids, timestamps and request fingerprints (the spec's git reference is
runner.ledger.gitref). It never builds a record (runner.engine does) and never reads
settings.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import stat
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path, PurePath
from types import TracebackType
from typing import Any

from runner.errors import LedgerError, RunnerWarning
from runner.types import LEDGER_VERSION

try:
    import fcntl
except ImportError:  # pragma: no cover - no fcntl (Windows): appends rely on O_APPEND alone
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "Ledger",
    "canonical_json",
    "encode_line",
    "new_id",
    "read_records",
    "request_fingerprint",
    "utc_timestamp",
    "without_content",
]

# --- encoding --------------------------------------------------------------------------------

# API keys (sk-..., sk-proj-..., sk-ant-...) and bearer tokens, as they appear in a JSON line.
# Neither pattern can match a backslash or a quote, so a redacted line is still valid JSON.
_SECRET = re.compile(r"(?i)\bsk-[a-z0-9_-]{20,}|\bbearer\s+[a-z0-9._~+/=-]{16,}")
_REDACTED = "[redacted]"


def utc_timestamp(when: datetime | None = None) -> str:
    """Format `when` (default: now) as the ledger's `ts`: UTC, milliseconds, a trailing Z."""
    when = datetime.now(UTC) if when is None else when
    if when.tzinfo is None:
        raise ValueError("a ledger timestamp needs a timezone-aware datetime")
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _to_json(value: Any) -> Any:
    """Map the non-JSON values a record may hold; anything else is the caller's mistake."""
    if isinstance(value, Decimal):
        # Costs are Decimals; float() keeps every digit of values up to 15 significant
        # digits (all real costs), and readers get an ordinary JSON number.
        return float(value)
    if isinstance(value, datetime):
        return utc_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return value.as_posix()
    to_dict = getattr(value, "to_dict", None)  # runner.types values: Usage, Cost, Attempt
    if callable(to_dict):
        return to_dict()
    raise TypeError(f"a ledger record cannot hold a {type(value).__name__} value")


# Built once: data-set runs encode thousands of lines.
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_to_json
)


def encode_line(record: Mapping[str, Any]) -> bytes:
    """Serialize `record` as one UTF-8 JSON line ending in a newline, secrets redacted."""
    try:
        text = _ENCODER.encode(record)
    except ValueError as exc:  # NaN or infinity: JSON has no spelling for them
        raise ValueError(f"a ledger record cannot hold {exc}") from exc
    # Cheap substring test first: the regex only runs on lines that might hold a secret.
    if ("sk-" in text or "earer" in text or "EARER" in text) and _SECRET.search(text):
        text = _SECRET.sub(_REDACTED, text)
        warnings.warn(
            f"ledger record {record.get('id', '?')}: a value that looks like an API key or "
            "bearer token was redacted",
            RunnerWarning,
            stacklevel=3,
        )
    return (text + "\n").encode("utf-8")


def canonical_json(value: Any) -> str:
    """Serialize `value` canonically: sorted keys, no spaces, UTF-8 text, 1.0 written as 1."""
    return json.dumps(
        _canonical(value),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_to_json,
    )


def _canonical(value: Any) -> Any:
    # Exact type checks first: this walks every request body, and ABC isinstance checks
    # (Mapping) cost more than the rest of the walk.
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is dict:
        return {key: _canonical(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [_canonical(item) for item in value]
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**53:
            return int(value)  # YAML's `temperature: 1` and `1.0` are the same request
        return value
    if isinstance(value, Mapping):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    return value


_NOT_FINGERPRINTED = frozenset({"stream", "stream_options"})


def request_fingerprint(body: Mapping[str, Any], *, known: Mapping[str, str] | None = None) -> str:
    """Return the sha256 (hex) of the canonical request body, streaming options and nulls left out.

    The same request sent streamed or not, with keys in any order, has the same fingerprint.
    `known` maps top-level keys to `canonical_json` of their values, already computed by the
    caller (a spec's response_format and tools are the same on every call); the result is the
    same as without it.
    """
    parts = []
    for key in sorted(body):
        value = body[key]
        if key in _NOT_FINGERPRINTED or value is None:
            continue
        text = known.get(key) if known else None
        parts.append(f"{canonical_json(key)}:{text if text is not None else canonical_json(value)}")
    return hashlib.sha256(("{" + ",".join(parts) + "}").encode("utf-8")).hexdigest()


def without_content(record: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of `record` without prompt or output content (the privacy switch).

    `vars` and `messages` become null; the output keeps only a sha256 of its text; validation
    errors keep only their JSON pointers (their messages quote the output); `content` is false.
    """
    out = dict(record)
    out["vars"] = None
    out["messages"] = None
    output = record.get("output")
    if output is not None:
        text = output.get("text")
        if text is None and output.get("json") is not None:
            text = canonical_json(output["json"])
        digest = None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()
        out["output"] = {"text": None, "json": None, "sha256": digest}
        if "finish_reason" in output:  # a figure, not content
            out["output"]["finish_reason"] = output["finish_reason"]
    error = record.get("error")
    if error and error.get("errors"):
        pointers = [f"{str(e).partition(': ')[0]}: (withheld)" for e in error["errors"]]
        out["error"] = {**error, "errors": pointers}
    out["content"] = False
    return out


# --- writing ---------------------------------------------------------------------------------

_REOPEN_TRIES = 5


class Ledger:
    """An append-only JSONL file that several threads and processes can append to at once.

    Each append takes an exclusive `flock`, writes the whole line with `os.write` and unlocks.
    The file stays open between appends; it is reopened after a fork or when the path has been
    replaced (rotated, deleted) so a line never goes to an unlinked file. With `fsync=True`
    each line is flushed to the disk before `append` returns (survives power loss, not only
    process crashes), at the price of one disk flush per call.
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.path = os.fspath(path)
        self.fsync = fsync
        self._fd: int | None = None
        self._pid = 0
        self._readable = True  # False when only write access was granted: no torn-line check
        self._mutex = threading.Lock()  # flock does not exclude threads sharing one fd

    def __repr__(self) -> str:
        return f"Ledger({self.path!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled for a process pool: the receiver opens its own descriptor and lock.
        return (functools.partial(Ledger, fsync=self.fsync), (self.path,))

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing useful to do
            pass

    def append(self, record: Mapping[str, Any]) -> None:
        """Write `record` as one line. LedgerError when the file cannot take it; TypeError or
        ValueError when the record holds something JSON cannot (see `encode_line`)."""
        line = encode_line(record)
        with self._mutex:
            for _ in range(_REOPEN_TRIES):
                fd = self._open()
                self._lock(fd)
                try:
                    current = self._current(fd)
                    if current is not None:
                        self._write(fd, line, current)
                        return
                finally:
                    _unlock(fd)
                self._close_fd()  # the path now names another file: follow it
            raise LedgerError(f"cannot write the ledger {self.path}: the file keeps being replaced")

    def close(self) -> None:
        """Close the file; a later append opens it again."""
        with self._mutex:
            self._close_fd()

    def _error(self, action: str, exc: OSError) -> LedgerError:
        reason = exc.strerror or exc.__class__.__name__
        return LedgerError(
            f"cannot {action} the ledger {self.path}: {reason} "
            "(choose another file with --ledger or RUNNER_LEDGER)"
        )

    def _open(self) -> int:
        if self._fd is not None and self._pid == os.getpid():
            return self._fd
        # After a fork the inherited descriptor shares its lock with the parent: reopen.
        self._close_fd()
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
                self._readable = True
            except PermissionError:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
                self._readable = False
            if self.fsync:  # make the file's directory entry durable too
                _fsync_dir(os.path.dirname(os.path.abspath(self.path)))
        except OSError as exc:
            raise self._error("open", exc) from exc
        self._fd, self._pid = fd, os.getpid()
        return fd

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:  # in a forked child this closes only the child's copy
            os.close(fd)

    def _lock(self, fd: int) -> None:
        if fcntl is None:  # pragma: no cover - see the module's fcntl import
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            self._close_fd()
            raise self._error("lock", exc) from exc

    def _current(self, fd: int) -> os.stat_result | None:
        """fstat of `fd` when the path still names the open file, else None."""
        try:
            named = os.stat(self.path)
            opened = os.fstat(fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._error("write", exc) from exc
        if (named.st_dev, named.st_ino) != (opened.st_dev, opened.st_ino):
            return None
        return opened

    def _write(self, fd: int, line: bytes, st: os.stat_result) -> None:
        regular = stat.S_ISREG(st.st_mode)
        size = st.st_size
        # An earlier writer killed mid-line left a fragment: end it, so this line stays whole.
        if regular and size and self._readable and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        view = memoryview(line)
        written = 0
        try:
            while written < len(line):
                n = os.write(fd, view[written:])
                if n <= 0:
                    raise OSError(0, "the file accepted no more bytes")
                written += n
            if self.fsync:
                os.fsync(fd)
        except OSError as exc:
            if written and regular:
                try:  # we hold the lock, so nothing was appended after our fragment
                    os.ftruncate(fd, size)
                except OSError:
                    pass
            raise self._error("write", exc) from exc


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- reading ---------------------------------------------------------------------------------


def _warn(message: str) -> None:
    warnings.warn(message, RunnerWarning, stacklevel=2)


def read_records(
    path: str | os.PathLike[str], *, warn: Callable[[str], None] | None = None
) -> Iterator[dict[str, Any]]:
    """Yield the ledger's records in file order, streaming; unusable lines are skipped with
    `warn(message)` (default: a RunnerWarning). A missing file raises LedgerError at once."""
    name = os.fspath(path)
    try:
        st = os.stat(name)
    except FileNotFoundError as exc:
        raise LedgerError(f"no ledger at {name}") from exc
    except OSError as exc:
        raise LedgerError(f"cannot read the ledger {name}: {exc.strerror}") from exc
    if stat.S_ISDIR(st.st_mode):
        raise LedgerError(f"cannot read the ledger {name}: it is a directory")
    try:  # surface an unreadable file now, not at the first record
        open(name, "rb").close()
    except OSError as exc:
        raise LedgerError(f"cannot read the ledger {name}: {exc.strerror}") from exc
    return _iter_records(name, warn or _warn)


def _iter_records(name: str, warn: Callable[[str], None]) -> Iterator[dict[str, Any]]:
    newer_seen: set[int] = set()
    try:
        with open(name, "rb") as f:
            for number, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                where = f"{name}:{number}"
                try:
                    value = json.loads(raw.rstrip(b"\n").decode("utf-8"))
                except (ValueError, RecursionError) as exc:
                    if not raw.endswith(b"\n"):  # only the last line can lack its newline
                        warn(f"{where}: incomplete last line skipped (a write was interrupted?)")
                    else:
                        warn(f"{where}: line skipped: {_why(exc)}")
                    continue
                record = _check_record(value, where, warn, newer_seen)
                if record is not None:
                    yield record
    except OSError as exc:
        raise LedgerError(f"cannot read the ledger {name}: {exc.strerror}") from exc


def _why(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not valid UTF-8"
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON ({exc.msg.removesuffix(' at')} at column {exc.colno})"
    return "not valid JSON"


def _check_record(
    value: Any, where: str, warn: Callable[[str], None], newer_seen: set[int]
) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        warn(f"{where}: line skipped: not a JSON object")
        return None
    version = value.get("v")
    if type(version) is not int or version < 1:
        warn(f"{where}: line skipped: no ledger format version `v`")
        return None
    if version > LEDGER_VERSION and version not in newer_seen:
        newer_seen.add(version)  # once per version: a big ledger must not drown stderr
        warn(
            f"{where}: written by a newer runner (ledger format v{version}, this runner reads "
            f"v{LEDGER_VERSION}); such lines are read as far as their fields are known"
        )
    return value


# --- ids -------------------------------------------------------------------------------------

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80


class _IdFactory:
    """ULIDs: 48-bit millisecond time + 80 random bits, Crockford base32, 26 characters.

    Within one millisecond the random part counts up, so ids sort in creation order in a
    process; a clock that steps back does not break that order.
    """

    def __init__(self, clock_ms: Callable[[], int], entropy: Callable[[], int]) -> None:
        self._clock_ms = clock_ms
        self._entropy = entropy
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def new(self) -> str:
        with self._lock:
            ms = max(self._clock_ms(), self._last_ms)
            if ms == self._last_ms:
                random_part = self._last_random + 1
                if random_part >> _RANDOM_BITS:  # 2**80 ids in one millisecond: borrow the next
                    ms, random_part = ms + 1, self._entropy()
            else:
                random_part = self._entropy()
            self._last_ms, self._last_random = ms, random_part
        value = (ms << _RANDOM_BITS) | random_part
        chars = [_CROCKFORD[(value >> shift) & 31] for shift in range(125, -5, -5)]
        return "".join(chars)

    def reset(self) -> None:
        """Forget the last id: a forked child must not count on from its parent's random part."""
        self._lock = threading.Lock()  # another thread may have held it at fork time
        self._last_ms = -1


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _random80() -> int:
    return int.from_bytes(os.urandom(10), "big")


_ids = _IdFactory(_now_ms, _random80)
if hasattr(os, "register_at_fork"):  # POSIX; elsewhere there is no fork to guard against
    os.register_at_fork(after_in_child=_ids.reset)


def new_id() -> str:
    """Return a new unique, time-sortable id (a 26-character ULID)."""
    return _ids.new()
