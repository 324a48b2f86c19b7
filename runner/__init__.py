"""runner: execute prompts kept as YAML files in git.

Public surface only. Names load lazily (PEP 562) so that `runner --help` does not pay for
jinja2, jsonschema, tiktoken or httpx2 before it needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from runner._version import __version__

if TYPE_CHECKING:
    from runner.engine.session import Result, Session, arun, load, run
    from runner.errors import (
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
    from runner.spec.model import PromptSpec
    from runner.types import Attempt, Cost, Usage

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
    "Attempt": "types",
    "AuthenticationFailed": "errors",
    "BadRequest": "errors",
    "BudgetExceeded": "errors",
    "CircuitOpen": "errors",
    "ConfigError": "errors",
    "ConnectFailed": "errors",
    "Cost": "types",
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
    "PromptSpec": "spec.model",
    "ProviderError": "errors",
    "QuotaExhausted": "errors",
    "RateLimited": "errors",
    "ReadTimedOut": "errors",
    "Rejected": "errors",
    "Result": "engine.results",
    "RunnerError": "errors",
    "RunnerWarning": "errors",
    "ServerFailed": "errors",
    "Session": "engine.session",
    "SpecError": "errors",
    "StreamBroken": "errors",
    "TemplateError": "errors",
    "Usage": "types",
    "arun": "engine.session",
    "load": "engine.session",
    "run": "engine.session",
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
