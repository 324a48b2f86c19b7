"""Packaged JSON Schemas and the one jsonschema helper: compiled validators, explanations of
their errors in plain words, and meta-schema checks, all reported as sorted `SchemaIssue`s.

This is the only module that imports jsonschema. It never fetches a remote `$ref` and knows
nothing about specs, files or positions: callers map an issue's pointer to wherever it came from.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema_rs

from runner.schema import regex
from runner.schema.formats import format_checker, is_regex
from runner.schema.patterns import RE2_KEYWORDS, pattern_issues, rs_patterns
from runner.schema.refs import ref_issues
from runner.schema.wording import (
    SchemaIssue,
    issue_at,
    keyword_message,
    quoted_value,
    sorted_issues,
    type_words,
    value_kind,
)

if TYPE_CHECKING:
    import jsonschema.exceptions
    import referencing
    from jsonschema.protocols import Validator

__all__ = ["SchemaValidator", "check_schema", "compile_validator", "packaged_schema"]


# --- packaged schemas -------------------------------------------------------------------------


@functools.cache
def packaged_schema(name: str) -> dict[str, Any]:
    """Read a JSON Schema shipped with runner (the result is shared: do not mutate it)."""
    if "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"not a packaged schema name: {name!r}")
    resource = importlib.resources.files("runner") / "schemas" / name
    if resource.is_file():
        text = resource.read_text(encoding="utf-8")
    else:  # a checkout or an editable install: schemas/ sits beside the package
        text = (Path(__file__).resolve().parents[2] / "schemas" / name).read_text("utf-8")
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"packaged schema {name} is not a JSON object")
    return data


# --- validators -------------------------------------------------------------------------------


def _no_remote(uri: str) -> referencing.Resource[Any]:
    import referencing.exceptions

    # Never fetch a schema over the network: an unresolvable remote $ref is an error.
    raise referencing.exceptions.NoSuchResource(uri)


@functools.cache
def _registry() -> referencing.Registry[Any]:
    import referencing

    return referencing.Registry(retrieve=_no_remote)  # type: ignore[call-arg]


# The dialects runner knows, by `$schema` (without a trailing "#"), in the order of _drafts().
# Python's jsonschema is imported only when it is needed (a "no" to confirm, a failure to
# explain, a meta-schema jsonschema-rs finds fault with): about 90 ms of every cold start.
DIALECTS = (
    "https://json-schema.org/draft/2020-12/schema",
    "https://json-schema.org/draft/2019-09/schema",
    "http://json-schema.org/draft-07/schema",
    "http://json-schema.org/draft-06/schema",
    "http://json-schema.org/draft-04/schema",
)


@functools.cache
def _drafts() -> tuple[type[Validator], ...]:
    """jsonschema's validator classes for DIALECTS, with runner's RE2 keywords."""
    import jsonschema
    import jsonschema.validators

    return tuple(
        jsonschema.validators.extend(cls, RE2_KEYWORDS)  # type: ignore[no-untyped-call]
        for cls in (
            jsonschema.Draft202012Validator,
            jsonschema.Draft201909Validator,
            jsonschema.Draft7Validator,
            jsonschema.Draft6Validator,
            jsonschema.Draft4Validator,
        )
    )


def _dialect(schema: Mapping[str, Any] | bool) -> int | None:
    """The index in DIALECTS of the draft a schema's `$schema` names (2020-12 when it names
    none); None if unknown."""
    if isinstance(schema, bool) or "$schema" not in schema:
        return 0
    dialect = schema["$schema"]
    if not isinstance(dialect, str):
        return None
    try:
        return DIALECTS.index(dialect.rstrip("#"))
    except ValueError:
        return None


def _error_issue(error: jsonschema.exceptions.ValidationError) -> SchemaIssue:
    """Turn one error into an issue; for anyOf/oneOf, use the most relevant sub-error."""
    while error.validator in ("anyOf", "oneOf") and error.context:
        if all(e.validator == "type" and not e.relative_path for e in error.context):
            wanted = ", ".join(repr(e.validator_value) for e in error.context)
            message = f"{error.instance!r} is not of type {wanted}"
            return issue_at(error.absolute_path, message, "type")
        error = _best_branch_error(error)
    return issue_at(error.absolute_path, error.message, str(error.validator))


def _best_branch_error(
    error: jsonschema.exceptions.ValidationError,
) -> jsonschema.exceptions.ValidationError:
    """The sub-error of an anyOf/oneOf failure that explains it best: one from a branch whose
    type the instance matches (a missing key beats "is not of type 'string'")."""
    import jsonschema.exceptions

    context = error.context or []
    typed = [e for e in context if not (e.validator == "type" and not e.relative_path)]
    return jsonschema.exceptions.best_match(typed or context) or error


def _fast_validator(schema: Mapping[str, Any] | bool) -> Any:
    """A jsonschema-rs validator for the schema, or None where it cannot take it (it is then
    simply not used). Remote references are never fetched: a schema with one gets None.

    It runs the same patterns as jsonschema does here: each written out by runner.schema.regex
    for its linear-time engine, so both read them alike (and neither backtracks)."""
    if isinstance(schema, bool):
        return None
    try:
        return jsonschema_rs.validator_for(
            rs_patterns(schema),
            validate_formats=True,
            formats={"regex": is_regex},
            retriever=_no_fetch,
            pattern_options=jsonschema_rs.RegexOptions(),
        )
    except Exception:  # any refusal just means "use jsonschema alone"
        return None


def _no_fetch(uri: str) -> Any:
    raise ValueError(f"runner never fetches remote schemas ({uri})")


_TOO_DEEP = "the value nests too deeply to be checked"


class SchemaValidator:
    """A compiled JSON Schema. Build it with `compile_validator`, which caches instances.

    Validation takes time linear in the instance: patterns run on RE2 (runner.schema.regex),
    and a schema with a pattern that would need backtracking is refused (ValueError), as
    `check_schema` reports it."""

    def __init__(self, schema: Mapping[str, Any] | bool) -> None:
        dialect = _dialect(schema)
        if dialect is None:
            raise ValueError(f"unknown JSON Schema dialect: {schema['$schema']!r}")  # type: ignore[index]
        for issue in pattern_issues(schema):
            raise ValueError(f"the schema cannot be used: {issue}")
        self.schema = schema
        self._dialect = dialect
        self._python: Validator | None = None
        self._fast = _fast_validator(schema)

    def _fast_yes(self, instance: Any) -> bool:
        """jsonschema-rs's "valid" (its "no" is only a reason to ask jsonschema)."""
        if self._fast is None:
            return False
        try:
            return bool(self._fast.is_valid(instance))
        except ValueError:  # a string jsonschema-rs cannot take (a lone surrogate)
            return False

    @property
    def _validator(self) -> Validator:
        """jsonschema's validator, built the first time it is needed."""
        if self._python is None:
            cls = _drafts()[self._dialect]
            self._python = cls(self.schema, format_checker=format_checker(), registry=_registry())
        return self._python

    def is_valid(self, instance: Any) -> bool:
        """Return whether the instance satisfies the schema (stops at the first error).

        jsonschema-rs answers first (about 150x faster; this runs on every call's output and
        variables); a "no" is confirmed by jsonschema, which stays the authority that
        explains failures, so the two can only differ where jsonschema-rs is more lenient.
        A value nested too deeply for jsonschema's recursion is not valid."""
        if self._fast_yes(instance):
            return True
        import referencing.exceptions

        try:
            return bool(self._validator.is_valid(instance))
        except referencing.exceptions.Unresolvable:
            return False
        except RecursionError:
            return False

    def issues(self, instance: Any) -> list[SchemaIssue]:
        """Return every way the instance breaks the schema, sorted by pointer then message."""
        if self._fast_yes(instance):
            return []
        import referencing.exceptions

        try:
            return sorted_issues(_error_issue(e) for e in self._validator.iter_errors(instance))
        except referencing.exceptions.Unresolvable as exc:
            return [issue_at((), f"the schema cannot be used: {exc}", "$ref")]
        except RecursionError:
            return [issue_at((), _TOO_DEEP, "maxDepth")]

    def explain(
        self, instance: Any, *, hints: Mapping[str, str] | None = None
    ) -> list[SchemaIssue]:
        """Like `issues`, in words for people who edit YAML: one issue per unknown key (its
        path is the key's; validator "additionalProperties", or "propertyNames" for a bad
        key), one per missing key (at the parent), and plain messages for the rest.
        `hints` maps a schema `title` to advice shown when a value is not one of those
        (e.g. {"duration": "use e.g. 30s"})."""
        if self._fast_yes(instance):
            return []
        import referencing.exceptions

        try:
            errors = list(self._validator.iter_errors(instance))
        except referencing.exceptions.Unresolvable as exc:
            return [issue_at((), f"the schema cannot be used: {exc}", "$ref")]
        except RecursionError:
            return [issue_at((), _TOO_DEEP, "maxDepth")]
        return sorted_issues(issue for error in errors for issue in _explain(error, hints or {}))


@functools.lru_cache(maxsize=256)
def _compile_canonical(canonical: str) -> SchemaValidator:
    return SchemaValidator(json.loads(canonical))


# The same schema object asks again on every call of a spec: answer by identity first (the
# entry keeps the object alive, so its id cannot be reused), by canonical JSON second.
_BY_IDENTITY: dict[int, tuple[Any, SchemaValidator]] = {}
_IDENTITY_LIMIT = 1024


def compile_validator(schema: Mapping[str, Any] | bool) -> SchemaValidator:
    """Return a validator for a schema (Draft 2020-12 unless `$schema` names another draft,
    formats checked). Equal schemas share one compiled validator; callers must not mutate a
    schema after compiling it."""
    hit = _BY_IDENTITY.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    validator = _compile_by_value(schema)
    if len(_BY_IDENTITY) >= _IDENTITY_LIMIT:
        _BY_IDENTITY.clear()
    _BY_IDENTITY[id(schema)] = (schema, validator)
    return validator


def _compile_by_value(schema: Mapping[str, Any] | bool) -> SchemaValidator:
    try:
        canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not a JSON schema: {exc}") from exc
    return _compile_canonical(canonical)


# --- explanations ---------------------------------------------------------------------------


def _explain(
    error: jsonschema.exceptions.ValidationError, hints: Mapping[str, str]
) -> Iterator[SchemaIssue]:
    path = tuple(error.absolute_path)
    kind, wanted, value = str(error.validator), error.validator_value, error.instance
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if "propertyNames" in error.relative_schema_path and isinstance(value, str):
        # propertyNames checks each key as an instance of its own, reported at the parent.
        inner = keyword_message(kind, wanted, value, error.message)
        yield issue_at(
            path + (value,), f"invalid key {quoted_value(value)}: {inner}", "propertyNames"
        )
    elif kind == "additionalProperties" and wanted is False and isinstance(value, Mapping):
        allowed = [str(k) for k in schema.get("properties", {})]
        patterns = [str(p) for p in schema.get("patternProperties", {})]
        for key in value:
            if key in allowed or any(regex.search(p, str(key)) for p in patterns):
                continue
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            yield issue_at(path + (key,), f"unknown key '{key}'{hint}", kind)
    elif kind == "required" and isinstance(value, Mapping):
        for key in _as_list(wanted):
            if key not in value:
                yield issue_at(path, f"missing required key '{key}'", kind)
    elif kind in ("anyOf", "oneOf") and error.context:
        yield from _explain_union(error, hints)
    else:
        yield issue_at(path, keyword_message(kind, wanted, value, error.message), kind)


def _explain_union(
    error: jsonschema.exceptions.ValidationError, hints: Mapping[str, str]
) -> Iterator[SchemaIssue]:
    path = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    title = schema.get("title")
    context = error.context or []
    if isinstance(title, str) and title in hints:
        yield issue_at(
            path, f"{quoted_value(error.instance)} is not a {title} ({hints[title]})", "anyOf"
        )
        return
    if all(e.validator == "type" and not e.relative_path for e in context):
        wanted = type_words([w for e in context for w in _as_list(e.validator_value)])
        yield issue_at(path, f"expected {wanted}, got {value_kind(error.instance)}", "type")
        return
    branches: dict[Any, list[jsonschema.exceptions.ValidationError]] = {}
    for sub in context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    typed = [
        errs
        for errs in branches.values()
        if not any(e.validator == "type" and not e.relative_path for e in errs)
    ]
    if len(typed) == 1:
        chosen = typed[0]
    else:
        import jsonschema.exceptions

        best = jsonschema.exceptions.best_match([e for errs in typed for e in errs] or context)
        chosen = [best] if best is not None else []
    for sub in chosen:
        yield from _explain(sub, hints)


def _as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value)


# --- meta-schema ------------------------------------------------------------------------------


def check_schema(schema: Any) -> list[SchemaIssue]:
    """Check a schema against its meta-schema, that every pattern can run in linear time (see
    runner.schema.regex), and that every local `$ref` leads somewhere."""
    if isinstance(schema, bool):
        return []
    if not isinstance(schema, Mapping):
        return [issue_at((), "a schema must be a JSON object", "type")]
    try:
        canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        return [issue_at((), f"not a JSON schema: {exc}", "type")]
    return list(_check_canonical(canonical))


@functools.lru_cache(maxsize=256)
def _check_canonical(canonical: str) -> tuple[SchemaIssue, ...]:
    schema = json.loads(canonical)
    dialect = _dialect(schema)
    if dialect is None:
        known = ", ".join(sorted(DIALECTS))
        return (
            issue_at(
                ("$schema",),
                f"unknown JSON Schema dialect {schema['$schema']!r} (known: {known})",
                "$schema",
            ),
        )
    if _meta_valid_fast(schema):
        issues: list[SchemaIssue] = []
    else:  # jsonschema is the authority that confirms the fault and explains it
        cls = _drafts()[dialect]
        meta = cls(cls.META_SCHEMA, format_checker=format_checker())
        issues = [_meta_issue(e) for e in meta.iter_errors(schema)]
    if not issues:
        issues.extend(pattern_issues(schema))
        issues.extend(ref_issues(schema))
    return tuple(sorted_issues(issues))


def _meta_valid_fast(schema: Mapping[str, Any]) -> bool:
    """jsonschema-rs's "yes" to a schema against its meta-schema (formats aside: the one format
    the meta-schemas use that runner checks, `regex`, is checked by pattern_issues)."""
    try:
        return bool(jsonschema_rs.meta.is_valid(dict(schema)))
    except Exception:  # a schema jsonschema-rs cannot take: jsonschema decides
        return False


def _meta_issue(error: jsonschema.exceptions.ValidationError) -> SchemaIssue:
    """A meta-schema error as an issue; a pattern that is not a usable regex says why."""
    if error.validator == "format" and error.validator_value == "regex":
        problem = regex.pattern_problem(error.instance)
        return issue_at(
            error.absolute_path, f"{error.instance!r} is not a valid regex: {problem}", "format"
        )
    return _error_issue(error)
