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
        RunnerWarning,
        ServerFailed,
        SpecError,
        StreamBroken,
        TemplateError,
    )
    from .records import Attempt, Cost, Usage
    from .spec import PromptSpec

__all__ = [
    "__version__",
    "Attempt",
    "AuthenticationFailed",
    "BadRequest",
    "BudgetExceeded",
    "CircuitOpen",
    "ConfigError",
    "ConnectFailed",
    "Cost",
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
    "PromptSpec",
    "ProviderError",
    "QuotaExhausted",
    "RateLimited",
    "ReadTimedOut",
    "Rejected",
    "Result",
    "RunnerError",
    "RunnerWarning",
    "ServerFailed",
    "Session",
    "SpecError",
    "StreamBroken",
    "TemplateError",
    "Usage",
    "arun",
    "load",
    "run",
]

# Where each lazily loaded name lives.
_LAZY = {
    "Attempt": "records",
    "AuthenticationFailed": "errors",
    "BadRequest": "errors",
    "BudgetExceeded": "errors",
    "CircuitOpen": "errors",
    "ConfigError": "errors",
    "ConnectFailed": "errors",
    "Cost": "records",
    "DatasetError": "errors",
    "DeadlineExceeded": "errors",
    "HTTPStatusFailure": "errors",
    "InputsInvalid": "errors",
    "LedgerError": "errors",
    "NotFound": "errors",
    "OutputError": "errors",
    "OutputInvalid": "errors",
    "OutputRefused": "errors",
    "OutputTruncated": "errors",
    "PermissionDenied": "errors",
    "PromptSpec": "spec",
    "ProviderError": "errors",
    "QuotaExhausted": "errors",
    "RateLimited": "errors",
    "ReadTimedOut": "errors",
    "Rejected": "errors",
    "Result": "engine",
    "RunnerError": "errors",
    "RunnerWarning": "errors",
    "ServerFailed": "errors",
    "Session": "engine",
    "SpecError": "errors",
    "StreamBroken": "errors",
    "TemplateError": "errors",
    "Usage": "records",
    "arun": "engine",
    "load": "engine",
    "run": "engine",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runner' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
