"""The command printed after an interrupted data-set run: it continues the same run — the same
ledger, mode, endpoint and model, wherever they came from (flags, RUNNER_*/OPENAI_* variables,
the spec) — and holds no secret: URL userinfo is dropped, a secret-looking --var is a placeholder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

__all__ = ["resume_command"]


# Flags re-added from the effective settings (so the environment is spelled out).
_FROM_SETTINGS = {"--ledger", "--mock", "--no-mock", "--base-url", "--model", "--resume", "--wait"}
_SECRET_NAME = ("key", "token", "secret", "password", "passwd", "credential", "auth")


def resume_command(
    *,
    spec_path: str,
    given: Sequence[tuple[str, str | None]],
    ledger: str | os.PathLike[str],
    mock: bool,
    base_url: str,
    model: str,
) -> tuple[str, list[str]]:
    """The command that continues an interrupted data-set run, and notes for the user. It
    spells out every setting that decides where calls go and which rows are done — the
    ledger, mock or not, the base URL, the model — wherever it came from (flag, RUNNER_* or
    OPENAI_* variable, spec), and holds no secret: the URL loses its userinfo, and a --var whose
    value looks like a secret is printed as a placeholder, with a note saying what to fill in."""
    import shlex

    from runner import redact

    words = ["runner", "exec", spec_path]
    notes: list[str] = []
    for flag, value in given:
        if flag in _FROM_SETTINGS:
            continue
        if flag == "--var" and value is not None:
            name, sep, rest = value.partition("=")
            bare = name.removesuffix(":")
            if sep and _looks_secret(bare, rest):
                value = f"{bare}=<{bare}>"
                notes.append(
                    f"Fill in the value of --var {bare} (not printed: it looks like a secret), "
                    "or put it in a --vars-file."
                )
        words.append(flag)
        if value is not None:
            words.append(value)
    if ("--input", "-") in given:
        notes.append("Pipe the same rows in again: --input - reads them from stdin.")
    words += ["--ledger", os.fspath(ledger)]
    if mock:
        words.append("--mock")
    else:
        words += ["--no-mock", "--base-url", _without_userinfo(base_url)]
        if _without_userinfo(base_url) != base_url:
            notes.append(
                "The base URL's user:password part is left out; give the credentials with the "
                "spec's provider.headers or api_key_env."
            )
    words += ["--model", model, "--resume"]
    return redact.redact(shlex.join(words)), notes


def _looks_secret(name: str, value: str) -> bool:
    from runner import redact

    lowered = name.lower()
    return redact.redact(value) != value or any(word in lowered for word in _SECRET_NAME)


def _without_userinfo(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host))
