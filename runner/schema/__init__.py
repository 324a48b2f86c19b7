"""The JSON Schema helper: compile validators (jsonschema-rs for the fast yes, jsonschema to
explain every no), check schemas against their meta-schema and local `$ref`s, OpenAI's strict
subset, and the wording of every problem as `pointer: message`.

Modules: `validator` (compile, validate, packaged schemas), `refs` (local `$ref`s), `strict`
(OpenAI strict mode), `wording` (SchemaIssue, pointers and messages).
"""

from runner.schema.strict import STRICT_FORMATS, strict_mode_issues
from runner.schema.validator import (
    SchemaValidator,
    check_schema,
    compile_validator,
    packaged_schema,
)
from runner.schema.wording import SchemaIssue, json_pointer, value_kind

__all__ = [
    "STRICT_FORMATS",
    "SchemaIssue",
    "SchemaValidator",
    "check_schema",
    "compile_validator",
    "json_pointer",
    "packaged_schema",
    "strict_mode_issues",
    "value_kind",
]
