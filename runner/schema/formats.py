"""The `format`s runner checks itself, the same in both validators: jsonschema checks some only
when optional packages are installed, and `regex` must mean the dialect runner.schema.regex
runs (ECMA-262 on RE2), not Python's.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from runner.schema.regex import pattern_problem

if TYPE_CHECKING:
    import jsonschema

__all__ = ["format_checker", "is_regex"]

_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)
_TIME = re.compile(r"^(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$", re.ASCII)
_DURATION = re.compile(
    r"^P(?!$)(?:\d+Y)?(?:\d+M)?(?:\d+W)?(?:\d+D)?(?:T(?=\d)(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?$",
    re.ASCII,
)
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$", re.ASCII)


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE_TIME.match(value):
        return False
    # datetime has no leap second; 60 is valid in RFC 3339, so check it as 59.
    text = value[:17] + "59" + value[19:] if value[17:19] == "60" else value
    try:
        datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return False
    return True


def _is_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    m = _TIME.match(value)
    if not m:
        return False
    hour, minute, second = int(m[1]), int(m[2]), int(m[3])
    offset_ok = m[4] is None or (int(m[4]) < 24 and int(m[5]) < 60)
    return hour < 24 and minute < 60 and second <= 60 and offset_ok


def _is_duration(value: object) -> bool:
    return not isinstance(value, str) or bool(_DURATION.match(value))


def _is_hostname(value: object) -> bool:
    if not isinstance(value, str):
        return True
    name = value[:-1] if value.endswith(".") else value
    return 0 < len(name) <= 253 and all(_LABEL.match(label) for label in name.split("."))


def is_regex(value: object) -> bool:
    """Whether a string is a pattern runner can run (see runner.schema.regex)."""
    return not isinstance(value, str) or pattern_problem(value) is None


@functools.cache
def format_checker() -> jsonschema.FormatChecker:
    """jsonschema's format checker with runner's own checks (built once, when first needed)."""
    import jsonschema

    checker = jsonschema.FormatChecker()
    # jsonschema checks these only when optional packages are installed; runner must check
    # every format strict mode allows, so it brings its own (stdlib only). `regex` is the
    # pattern dialect of runner.schema.regex, not Python's.
    own: dict[str, Callable[[object], bool]] = {
        "date-time": _is_date_time,
        "time": _is_time,
        "duration": _is_duration,
        "hostname": _is_hostname,
        "regex": is_regex,
    }
    for name, func in own.items():
        checker.checks(name)(func)
    return checker
