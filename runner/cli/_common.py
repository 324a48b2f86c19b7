"""What every command shares: error and warning reporting (exit codes 0 ok, 1 a call or test
failed, 2 bad usage or spec, 130 interrupted; 143/129 for SIGTERM/SIGHUP, which
`interrupt_signals` turns into Ctrl-C), the variable options, spec loading and the Session.
Only click is imported at module level so that `runner --help` stays fast.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import click

from runner.cli import _heap
from runner.errors import MAX_LISTED, RunnerError, RunnerWarning, listed
from runner.redact import redact

if TYPE_CHECKING:
    from runner.ledger.cache import CacheSource
    from runner.spec.model import PromptSpec

__all__ = [
    "EXIT_INTERRUPTED",
    "CacheSettings",
    "cache_options",
    "cache_settings",
    "Interruption",
    "check_base_url",
    "colour",
    "endpoint_options",
    "interrupt_signals",
    "collect_vars",
    "debug_enabled",
    "exit_with_error",
    "json_text",
    "load_spec_file",
    "open_session",
    "print_warning",
    "project_prices",
    "var_options",
]

EXIT_INTERRUPTED = 130
# What CI systems and terminals send on cancel, handled like Ctrl-C (exit 128 + the signal).
_CANCEL_SIGNALS = ("SIGTERM", "SIGHUP")


# --- process signals --------------------------------------------------------------------------


class Interruption:
    """Which signal interrupted the command, if any; `exit_code` is 128 + its number (130 for
    Ctrl-C, 143 for SIGTERM, 129 for SIGHUP)."""

    def __init__(self) -> None:
        self.signal: int | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_INTERRUPTED if self.signal is None else 128 + self.signal


@contextlib.contextmanager
def interrupt_signals() -> Iterator[Interruption]:
    """Turn SIGTERM and SIGHUP into Ctrl-C while the block runs: each is handed to the current
    SIGINT handler, so a running asyncio.Runner cancels its task (the call in flight writes
    its ledger line) and KeyboardInterrupt follows, as for Ctrl-C. The yielded Interruption
    remembers the signal for the exit code. Outside the main thread it does nothing."""
    from runner import interrupts

    seen = Interruption()
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return
    interrupts.reset()

    def as_ctrl_c(signum: int, frame: Any) -> None:
        if _importing(frame):
            # KeyboardInterrupt inside an import can break a C extension's set-up (a crash,
            # not an exit): take the signal again once the import is done.
            _deliver_again(signum)
            return
        if seen.signal is None:
            seen.signal = signum
        interrupts.request_stop()  # a render that starts before the cancel arrives stops too
        on_ctrl_c = signal.getsignal(signal.SIGINT)
        if callable(on_ctrl_c):  # asyncio.Runner's (cancels the task) or Python's default
            on_ctrl_c(signal.SIGINT, frame)
        else:  # SIGINT ignored (a background job of a shell script): still stop
            raise KeyboardInterrupt

    previous = {}
    for name in _CANCEL_SIGNALS:
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, as_ctrl_c)
    try:
        yield seen
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        interrupts.reset()


def _importing(frame: Any) -> bool:
    """Whether the interrupted code is inside an import (importlib's frames are on the stack)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _deliver_again(signum: int) -> None:
    import os

    timer = threading.Timer(0.02, os.kill, (os.getpid(), signum))
    timer.daemon = True
    timer.start()


# --- error and warning reporting --------------------------------------------------------------


def debug_enabled(ctx: click.Context | None) -> bool:
    from runner.settings import env_flag, snapshot_environ

    root = ctx.find_root() if ctx is not None else None
    if root is not None and root.params.get("debug"):
        return True
    try:
        return bool(env_flag(snapshot_environ(), "RUNNER_DEBUG"))
    except RunnerError:
        return False


def exit_with_error(exc: RunnerError, ctx: click.Context | None, *, after: str = "") -> NoReturn:
    if debug_enabled(ctx):
        import traceback

        # Chained foreign exceptions are printed too: mask the whole text, not only ours.
        click.echo(redact("".join(traceback.format_exception(exc))), err=True, nl=False)
    text = redact(str(exc))
    lines = text.splitlines() or [type(exc).__name__]
    click.echo(f"{colour('Error:', 'red', err=True, bold=True)} {lines[0]}", err=True)
    for line in lines[1:]:
        click.echo(f"  {line}", err=True)
    # The error's list (validation errors), but not what its message already says.
    errors = getattr(exc, "errors", [])
    counted = f"... and {len(errors) - MAX_LISTED} more" in text  # the message lists them
    extras = [] if counted else [e for e in errors if str(e) not in text]
    for extra in listed(extras):
        click.echo(redact(f"  {extra}"), err=True)
    unrecorded = getattr(exc, "unrecorded", None)
    if unrecorded:  # a call that was sent but not recorded: its line, as a last resort
        click.echo("The line that could not be written (secrets redacted):", err=True)
        click.echo(redact(unrecorded), err=True)
    if after:
        click.echo(after, err=True)
    raise SystemExit(exc.exit_code)


def colour(text: str, colour_name: str, *, err: bool = False, bold: bool = False) -> str:
    """`text` in a colour when the stream it goes to (stderr with `err`, else stdout) is a
    terminal and NO_COLOR is not set (no-color.org: present and not empty); plain otherwise."""
    if not _colour_on(err):
        return text
    return click.style(text, fg=colour_name, bold=bold)


def _colour_on(err: bool) -> bool:
    import os

    from runner.settings import snapshot_environ

    environ = snapshot_environ()
    if environ.get("NO_COLOR") or environ.get("TERM") == "dumb":
        return False
    stream = sys.stderr if err else sys.stdout
    try:
        return stream is not None and stream.isatty() and os.isatty(stream.fileno())
    except (AttributeError, ValueError, OSError):  # a test's buffer, a closed descriptor
        return False


def print_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    if issubclass(category, RunnerWarning):
        click.echo(f"{colour('Warning:', 'yellow', err=True)} {redact(str(message))}", err=True)
    else:  # not ours: the default format, so nothing is hidden (but secrets are)
        sys.stderr.write(redact(warnings.formatwarning(message, category, filename, lineno, line)))


# --- shared options ---------------------------------------------------------------------------


def var_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--vars-file",
        "vars_files",
        multiple=True,
        metavar="FILE",
        help="A YAML or JSON mapping of variables (repeatable; --var wins over files).",
    )(f)
    f = click.option(
        "--var",
        "var_args",
        multiple=True,
        metavar="K=V|K:=JSON",
        help="A variable: k=v gives a string, k:=JSON a typed value (repeatable; later wins).",
    )(f)
    return f


def collect_vars(var_args: Sequence[str], vars_files: Sequence[str]) -> dict[str, Any]:
    from runner.spec.load import load_vars_file, parse_var_args

    merged: dict[str, Any] = {}
    for path in vars_files:
        merged.update(load_vars_file(path))
    merged.update(parse_var_args(var_args))
    return merged


def check_base_url(value: str | None) -> str | None:
    """--base-url must be an http:// or https:// URL (an empty one would mean the default)."""
    if value is not None and not value.strip().lower().startswith(("http://", "https://")):
        raise click.BadParameter(
            f"{value!r} is not an http:// or https:// URL", param_hint="'--base-url'"
        )
    return value


def endpoint_options(base_url_help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--model` and `--base-url` (checked by check_base_url), as exec and render take them."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option(
            "--base-url",
            default=None,
            metavar="URL",
            callback=lambda ctx, param, value: check_base_url(value),
            help=base_url_help,
        )(f)
        return click.option("--model", default=None, help="Use this model instead of the spec's.")(
            f
        )

    return decorate


def load_spec_file(path: str) -> PromptSpec:
    from runner.spec.load import load_spec

    return load_spec(path)


def open_session(**kw: Any) -> Any:
    """A Session with the flags given (None: not given), the project's prices and, as
    `environ=`, the environment it sees (default: the process's)."""
    from runner.engine.session import Session
    from runner.settings import snapshot_environ

    environ = kw.pop("environ", None)
    flags = {k: v for k, v in kw.items() if v is not None}
    config = project_prices()
    session = Session(
        environ=snapshot_environ() if environ is None else environ,
        prices=config[0],
        prices_source=config[1],
        **flags,
    )
    _heap.settle()  # the command's work begins (runner.cli._heap)
    return session


def project_prices() -> tuple[dict[str, Any] | None, str]:
    """Price overrides from runner.yaml (RUNNER_CONFIG, else ./runner.yaml if present)."""
    from pathlib import Path

    from runner.settings import project_config_path, snapshot_environ

    path = project_config_path(snapshot_environ(), Path.cwd())
    if path is None:
        return None, "runner.yaml"
    from runner.spec.load import load_project_config

    config = load_project_config(path)
    return dict(config.prices), str(path)


def json_text(value: Any) -> str:
    import json

    return redact(json.dumps(value, indent=2, ensure_ascii=False, default=str))


# --- --cache ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheSettings:
    """--cache, --cache-from and --cache-max-age as given (any of them turns the cache on)."""

    ledger: str | None  # --cache-from; None: the run's own ledger
    max_age: float | None  # seconds

    def source(self, run_ledger: str | None) -> CacheSource:
        """The cache: --cache-from's ledger, else the run's own (--ledger > RUNNER_LEDGER >
        runs/ledger.jsonl), read once now."""
        from runner.ledger.cache import CacheSource
        from runner.settings import ledger_path, snapshot_environ

        path = self.ledger or str(ledger_path(run_ledger, snapshot_environ()))
        return CacheSource(path, max_age=self.max_age, missing_ok=self.ledger is None)


def cache_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--cache, --cache-from LEDGER and --cache-max-age AGE, as exec and test take them."""
    f = click.option(
        "--cache-max-age",
        "cache_max_age",
        default=None,
        metavar="AGE",
        help="With --cache: reuse only answers recorded within AGE (7d, 12h, 30m).",
    )(f)
    f = click.option(
        "--cache-from",
        "cache_from",
        default=None,
        metavar="LEDGER",
        help="With --cache: reuse the answers of this ledger (default: the run's own).",
    )(f)
    return click.option(
        "--cache/--no-cache",
        "cache",
        default=False,
        help="Answer a request that has an ok line in the ledger from that line: no key, no "
        "network, nothing spent (marked replayed, reason cache).",
    )(f)


def cache_settings(flags: Mapping[str, Any]) -> CacheSettings | None:
    """The cache the flags ask for, or None; a bad --cache-max-age is a usage error (exit 2)."""
    given_from, given_age = flags.get("cache_from"), flags.get("cache_max_age")
    if not flags.get("cache") and given_from is None and given_age is None:
        return None
    if not flags.get("cache"):
        flag = "--cache-from" if given_from is not None else "--cache-max-age"
        raise click.UsageError(f"{flag} needs --cache")
    max_age = None
    if given_age is not None:
        max_age = _age(given_age)
        if max_age is None:
            raise click.BadParameter(
                f"{given_age!r} is not an age (7d, 12h, 30m, 90s)", param_hint="'--cache-max-age'"
            )
    return CacheSettings(given_from, max_age)


def _age(text: str) -> float | None:
    """Seconds in an age as specs write durations, plus days ("7d")."""
    from runner.durations import parse_duration

    value = text.strip()
    try:
        if value.endswith("d") and value[:-1]:
            return parse_duration(value[:-1] + "h") * 24
        return parse_duration(value)
    except ValueError:
        return None
