"""runner: execute prompts kept as YAML files in git.

Public surface only. Names load lazily (PEP 562) so that `runner --help` does not pay for
jinja2, jsonschema, tiktoken or httpx2 before it needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .engine import Result, Session, arun, load, run
    from .errors import (
        AuthenticationFailed,
        BadRequest,
        BudgetExceeded,
        CircuitOpen,
        ConfigError,
        ConnectFailed,
        DatasetError,
        DeadlineExceeded,
        HTTPStatusFailure,
        InputsInvalid,
        LedgerError,
        NotFound,
        OutputError,
        OutputInvalid,
        OutputRefused,
        OutputTruncated,
        PermissionDenied,
        ProviderError,
        QuotaExhausted,
        RateLimited,
        ReadTimedOut,
        Rejected,
        RunnerError,
        ServerFailed,
        SpecError,
        StreamBroken,
        TemplateError,
    )
    from .records import Attempt, Cost, Usage
    from .spec import PromptSpec

_LAZY = {
    "load": "engine",
    "run": "engine",
    "arun": "engine",
    "Session": "engine",
    "Result": "engine",
    "PromptSpec": "spec",
    "Attempt": "records",
    "Cost": "records",
    "Usage": "records",
    **{
        name: "errors"
        for name in (
            "AuthenticationFailed",
            "BadRequest",
            "BudgetExceeded",
            "CircuitOpen",
            "ConfigError",
            "ConnectFailed",
            "DatasetError",
            "DeadlineExceeded",
            "HTTPStatusFailure",
            "InputsInvalid",
            "LedgerError",
            "NotFound",
            "OutputError",
            "OutputInvalid",
            "OutputRefused",
            "OutputTruncated",
            "PermissionDenied",
            "ProviderError",
            "QuotaExhausted",
            "RateLimited",
            "ReadTimedOut",
            "Rejected",
            "RunnerError",
            "ServerFailed",
            "SpecError",
            "StreamBroken",
            "TemplateError",
        )
    },
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runner' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
