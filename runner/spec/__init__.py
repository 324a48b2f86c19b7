"""Prompt specs: YAML with positions -> checks -> a frozen PromptSpec, its sandboxed templates,
its variables and test cases, and the project file `runner.yaml`.

Modules: `yamldoc` (YAML read with positions, the only pyyaml importer), `check` (the spec
schema and every check beyond it), `output` (the output schema block), `testcases` (the
`tests:` block), `templates` (sandboxed Jinja2), `model` (PromptSpec and its config
dataclasses), `load` (files in, PromptSpec or every problem out; vars and `runner.yaml`).
"""

from runner.spec.load import (
    ProjectConfig,
    check_paths,
    find_root,
    load_project_config,
    load_spec,
    load_vars_file,
    parse_var_args,
)
from runner.spec.model import (
    BreakerConfig,
    LedgerConfig,
    MessageTemplate,
    OutputConfig,
    PromptSpec,
    ProviderConfig,
    RateConfig,
    RetryConfig,
    TestCase,
)

__all__ = [
    "BreakerConfig",
    "LedgerConfig",
    "MessageTemplate",
    "OutputConfig",
    "ProjectConfig",
    "PromptSpec",
    "ProviderConfig",
    "RateConfig",
    "RetryConfig",
    "TestCase",
    "check_paths",
    "find_root",
    "load_project_config",
    "load_spec",
    "load_vars_file",
    "parse_var_args",
]
