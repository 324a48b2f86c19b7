"""Resolve configuration: flag > RUNNER_* environment > spec > default, into a frozen Settings.

This is the only module that reads `os.environ`; everything else receives values from here.
It must not import anything heavier than the standard library.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner import redact
from runner.errors import ConfigError

if TYPE_CHECKING:
    from runner.spec.model import PromptSpec

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_LEDGER",
    "NOT_SET",
    "OpenAIEnv",
    "Settings",
    "env_flag",
    "ledger_path",
    "openai_env",
    "project_config_path",
    "resolve",
    "snapshot_environ",
]

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class _NotSet:
    """A flag the user did not pass (different from one explicitly set to None or False)."""

    _instance: _NotSet | None = None

    def __new__(cls) -> _NotSet:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_SET"

    def __bool__(self) -> bool:
        return False


NOT_SET = _NotSet()


@dataclass(frozen=True)
class OpenAIEnv:
    """The OpenAI SDK's environment variables, meaning what they mean there."""

    api_key: str | None
    base_url: str | None
    organization: str | None
    project: str | None

    def __repr__(self) -> str:  # the key must never reach a log or a traceback
        key = "set" if self.api_key else "unset"
        return (
            f"OpenAIEnv(api_key=<{key}>, base_url={self.base_url!r}, "
            f"organization={self.organization!r}, project={self.project!r})"
        )


def _get(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    return value.strip() or None if value is not None else None


def openai_env(
    environ: Mapping[str, str] | None = None, *, api_key_env: str = "OPENAI_API_KEY"
) -> OpenAIEnv:
    """Read OPENAI_API_KEY (or the variable a spec names), OPENAI_BASE_URL, OPENAI_ORG_ID and
    OPENAI_PROJECT_ID. Empty values count as unset, as in OpenAI's SDK."""
    env = os.environ if environ is None else environ
    return OpenAIEnv(
        api_key=_get(env, api_key_env),
        base_url=_get(env, "OPENAI_BASE_URL"),
        organization=_get(env, "OPENAI_ORG_ID"),
        project=_get(env, "OPENAI_PROJECT_ID"),
    )


# --- resolution: flag > RUNNER_* env > spec > default ----------------------------------------

DEFAULT_LEDGER = Path("runs/ledger.jsonl")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True, repr=False)
class Settings:
    """Everything one call needs to know that did not come from the spec file alone."""

    model: str
    mock: bool
    stream: bool
    ledger_path: Path
    ledger_content: bool
    base_url: str
    api_key_env: str
    organization: str | None
    project: str | None
    headers: Mapping[str, str]
    debug: bool
    api_key: str | None = field(default=None, repr=False)  # never printed

    @property
    def is_openai(self) -> bool:
        return _is_openai_url(self.base_url)

    def __repr__(self) -> str:  # no key, no credential header, no URL userinfo
        shown = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for name in self.__dataclass_fields__
            if name not in ("api_key", "headers")
        )
        key = "set" if self.api_key else "unset"
        return redact.redact(
            f"Settings({shown}, headers={sorted(self.headers)!r}, api_key=<{key}>)"
        )

    def secrets(self) -> list[str]:
        """The values that must never leave the process: the key, credential header values
        and the base URL's userinfo."""
        return [
            *([self.api_key] if self.api_key else []),
            *redact.credential_headers(self.headers),
            *redact.secrets_of_url(self.base_url),
        ]


def _is_openai_url(url: str) -> bool:
    return url.rstrip("/").startswith("https://api.openai.com")


def env_flag(environ: Mapping[str, str], name: str) -> bool | None:
    """A RUNNER_* boolean: 1/true/yes/on or 0/false/no/off; None when unset."""
    raw = environ.get(name)
    if raw is None:
        return None
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def ledger_path(given: str | os.PathLike[str] | _NotSet | None, environ: Mapping[str, str]) -> Path:
    """The ledger a command writes or reads: `given` (--ledger, `Session(ledger=)`) >
    RUNNER_LEDGER > runs/ledger.jsonl. Every command resolves it here, and only here."""
    if given is not None and not isinstance(given, _NotSet):
        return Path(given)
    return Path(environ.get("RUNNER_LEDGER") or DEFAULT_LEDGER)


def snapshot_environ() -> dict[str, str]:
    """A copy of the process environment, taken once by the CLI or a Session."""
    return dict(os.environ)


def project_config_path(environ: Mapping[str, str], cwd: Path) -> Path | None:
    """The project config (price overrides): RUNNER_CONFIG, else ./runner.yaml when present.
    A RUNNER_CONFIG that names a missing file is returned anyway, so loading it says so."""
    named = (environ.get("RUNNER_CONFIG") or "").strip()
    if named:
        return Path(named)
    default = cwd / "runner.yaml"
    return default if default.is_file() else None


def _refuse_url_credentials(
    flags: Mapping[str, Any], environ: Mapping[str, str], spec_url: str | None, openai: str | None
) -> None:
    """A base URL with `user:pass@`, wherever it comes from, is a ConfigError naming where (and
    never the URL): exit 2 before anything is sent."""
    flag = flags.get("base_url", NOT_SET)
    for source, url in (
        ("--base-url", None if flag is NOT_SET else flag),
        ("RUNNER_BASE_URL", _get(environ, "RUNNER_BASE_URL")),
        ("the spec's provider.base_url", spec_url),
        ("OPENAI_BASE_URL", openai),
    ):
        if isinstance(url, str) and redact.secrets_of_url(url):
            redact.remember(redact.secrets_of_url(url))
            raise ConfigError(f"{source}: {redact.URL_CREDENTIALS_REFUSED}")


def resolve(flags: Mapping[str, Any], environ: Mapping[str, str], spec: PromptSpec) -> Settings:
    """Merge the flags the user passed (NOT_SET when not passed), RUNNER_* variables, the spec
    and the defaults, in that order."""

    def pick(flag: str, env_value: Any, spec_value: Any, default: Any = None) -> Any:
        """The first value given; a spec setting's default is the spec's own (its schema's)."""
        value = flags.get(flag, NOT_SET)
        if value is not NOT_SET:
            return value
        if env_value is not None:
            return env_value
        if spec_value is not None:
            return spec_value
        return default

    provider = spec.provider
    openai = openai_env(environ, api_key_env=provider.api_key_env)
    _refuse_url_credentials(flags, environ, provider.base_url, openai.base_url)
    settings = Settings(
        # A variant (`runner test --model`, `variants:`) names its model for the run: neither
        # a --model flag nor RUNNER_MODEL replaces it.
        model=spec.model
        if spec.variant is not None
        else pick("model", environ.get("RUNNER_MODEL") or None, spec.model),
        mock=bool(pick("mock", env_flag(environ, "RUNNER_MOCK"), None, False)),
        stream=bool(pick("stream", env_flag(environ, "RUNNER_STREAM"), spec.stream)),
        ledger_path=ledger_path(flags.get("ledger"), environ),
        ledger_content=bool(
            pick("ledger_content", env_flag(environ, "RUNNER_LEDGER_CONTENT"), spec.ledger.content)
        ),
        # --base-url > RUNNER_BASE_URL > the spec > OPENAI_BASE_URL > default. A spec that
        # names its server wins over OPENAI_BASE_URL (the SDK's default for code that says
        # nothing), so that variable cannot silently redirect it; runner's own flag and
        # variable are explicit choices and may.
        base_url=str(
            pick(
                "base_url",
                _get(environ, "RUNNER_BASE_URL"),
                provider.base_url,
                openai.base_url or DEFAULT_BASE_URL,
            )
        ).rstrip("/"),
        api_key_env=provider.api_key_env,
        api_key=openai.api_key,
        organization=provider.organization or openai.organization,
        project=provider.project or openai.project,
        headers=dict(provider.headers),
        debug=bool(pick("debug", env_flag(environ, "RUNNER_DEBUG"), None, False)),
    )
    # The default variable's key too: the process holds it even when the spec names another.
    redact.remember([*settings.secrets(), _get(environ, "OPENAI_API_KEY") or ""])
    return settings
