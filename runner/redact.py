"""The secrets this process holds (API keys, credential header values, URL userinfo) and the one
function, `redact`, that masks them — plus anything shaped like a key or URL credentials, as a
second net — in every string that leaves the process. Standard library only.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping

__all__ = [
    "MASK",
    "MIN_SECRET_CHARS",
    "URL_CREDENTIALS_REFUSED",
    "credential_headers",
    "forget",
    "may_hold_known",
    "redact",
    "redact_known",
    "redact_url",
    "remember",
    "secrets_of_url",
]

MASK = "sk-***"
# Shorter values are not masked: a 3-letter "key" would blank ordinary words everywhere.
MIN_SECRET_CHARS = 6

# Header names whose values are credentials (Azure-style `api-key`, `x-api-key`, bearer tokens).
_CREDENTIAL_HEADER = re.compile(
    r"(?i)^(authorization|proxy-authorization|api-key|x-api-key|x-auth-token|cookie|"
    r".*(token|secret|password|credential|api-?key).*)$"
)
_KEY_SHAPED = re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_*\-]{6,}")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{16,}")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@\"'<>]+@")

_lock = threading.Lock()
# Each secret as written and as JSON escapes it; longest first, so `user:pass` goes before `pass`.
_known: tuple[tuple[str, str], ...] = ()
# The same, UTF-8 encoded, for text still in bytes; None when a secret cannot be encoded.
_known_bytes: tuple[bytes, ...] | None = ()


def remember(values: Iterable[str | None]) -> None:
    """Add secret values to mask from now on (the process's lifetime; idempotent)."""
    global _known, _known_bytes
    fresh = {v.strip() for v in values if v and len(v.strip()) >= MIN_SECRET_CHARS}
    _install_log_filter()
    with _lock:
        have = {secret for secret, _ in _known}
        if fresh <= have:
            return
        ordered = sorted(have | fresh, key=len, reverse=True)
        import json  # here, not at import: `runner --help` loads this module too

        _known = tuple((s, json.dumps(s, ensure_ascii=False)[1:-1]) for s in ordered)
        try:
            _known_bytes = tuple({f.encode("utf-8") for pair in _known for f in pair})
        except UnicodeEncodeError:  # a lone surrogate: only the text check can look for it
            _known_bytes = None


def forget() -> None:
    """Forget every remembered secret (tests do, between cases; a process never needs to)."""
    global _known, _known_bytes
    with _lock:
        _known, _known_bytes = (), ()


# Why a base URL may not carry `user:pass@`: httpx would send it as Basic auth in place of the
# key, and a server that echoes its headers would put it in the ledger. Never shows the URL.
URL_CREDENTIALS_REFUSED = (
    "a user name or password in the URL (user:pass@host) is refused: it would be sent as "
    "Basic auth instead of the key, and could reach the ledger; keep the URL plain, put the key "
    "in an environment variable named by provider.api_key_env (sent as a bearer token), and "
    "other headers in provider.headers"
)


def secrets_of_url(url: str | None) -> list[str]:
    """The credentials in a URL's userinfo (`user:pass` and the password alone)."""
    if not url or "@" not in url:
        return []
    try:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
    except ValueError:
        return []
    userinfo = parts.netloc.rpartition("@")[0]
    out = [userinfo] if userinfo else []
    if parts.password:
        out.append(parts.password)
    return out


def credential_headers(headers: Mapping[str, str]) -> list[str]:
    """The values of headers that carry credentials, and the token after `Bearer `/`Basic `."""
    out: list[str] = []
    for name, value in headers.items():
        if _CREDENTIAL_HEADER.match(name.strip()) and isinstance(value, str):
            out.append(value)
            scheme, _, token = value.strip().partition(" ")
            if token and scheme.lower() in ("bearer", "basic", "token"):
                out.append(token)
    return out


def redact_known(text: str, mask: str = MASK) -> str:
    """Mask every remembered secret in `text`, as written and as JSON escapes it."""
    for secret, escaped in _known:
        if secret in text:
            text = text.replace(secret, mask)
        if escaped != secret and escaped in text:
            text = text.replace(escaped, mask)
    return text


def may_hold_known(data: bytes) -> bool:
    """Whether UTF-8 `data` may hold a remembered secret, as written or as JSON escapes it
    (False means `redact_known` of its text would change nothing)."""
    known = _known_bytes
    if known is None:
        return True
    for secret in known:  # noqa: SIM110 - a loop with an early exit, not a generator, per line
        if secret in data:
            return True
    return False


def redact(text: str) -> str:
    """Mask every remembered secret in `text`, then anything that looks like a key, a bearer
    token or URL credentials. Mask whole strings before cutting them, never after."""
    text = redact_known(text)
    if "sk-" in text:
        text = _KEY_SHAPED.sub(MASK, text)
    if "earer" in text or "EARER" in text:
        text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    if "@" in text:
        text = _USERINFO.sub(r"\1***@", text)
    return text


def redact_url(url: str) -> str:
    """A URL fit to show: its userinfo, if any, replaced by `***`."""
    return _USERINFO.sub(r"\1***@", url) if "@" in url else url


def _install_log_filter() -> None:
    """Attach the masking filter to runner's loggers and the HTTP library's (once, the first
    time a secret is remembered: before that, no record can hold one we know of). A logger's
    filters only see records logged to that logger itself, so each gets it."""
    global _filter_installed
    if _filter_installed:
        return
    import logging

    class _RedactingFilter(logging.Filter):
        """Masks secrets in log records of the loggers it is attached to."""

        def filter(self, record: logging.LogRecord) -> bool:
            try:
                message = record.getMessage()
            except (TypeError, ValueError):
                return True
            masked = redact(message)
            if masked != message:
                record.msg, record.args = masked, None
            return True

    masking = _RedactingFilter()
    for name in _LOGGERS:
        logging.getLogger(name).addFilter(masking)
    _filter_installed = True


_filter_installed = False
_LOGGERS = (
    "runner",
    "runner.providers",
    "runner.pricing",
    "httpx2",
    "httpcore2.connection",
    "httpcore2.http11",
    "httpcore2.http2",
    "httpcore2.proxy",
    "httpcore2.socks",
)
