"""The SQL of the report, as text (no DuckDB here): the shape read from each ledger line, the
columns of the `ledger` view, which lines count, and the figures computed per group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from runner.ledger.line import LEDGER_VERSION
from runner.report.model import GROUP_FIELDS

__all__ = [
    "BREAKDOWNS",
    "COLUMNS",
    "LEDGER_COLUMNS",
    "PRICING_SQL",
    "PRIVATE",
    "column",
    "grouped_sql",
    "literal",
    "lines_sql",
    "set_fields",
    "set_mask",
    "time_filter",
]

# The columns read from each line, with their types (DuckDB's JSON reader). A value that does
# not fit its type becomes NULL, and numbers and booleans would be converted leniently ("12" to
# 12, "yes" to true), so they are read as JSON text and checked by `_integer`, `_number` and
# `_boolean`. Strings are read as text, whatever they hold.
SHAPE = {
    "v": "JSON",
    "id": "VARCHAR",
    "ts": "VARCHAR",
    "spec": {
        "path": "VARCHAR",
        "name": "VARCHAR",
        "sha256": "VARCHAR",
        "commit": "VARCHAR",
        "dirty": "JSON",
    },
    "request_sha256": "VARCHAR",
    "case": "VARCHAR",
    "row": "VARCHAR",
    "model": "VARCHAR",
    "served_model": "VARCHAR",
    "api": "VARCHAR",
    "status": "VARCHAR",
    "error": {"kind": "VARCHAR"},
    "attempts": [{"n": "JSON"}],
    "usage": {
        "prompt": "JSON",
        "completion": "JSON",
        "cached": "JSON",
        "reasoning": "JSON",
        "implausible": "JSON",
    },
    "cost": {"usd": "JSON", "source": "VARCHAR", "estimated": "JSON"},
    "latency_ms": "JSON",
    "ttft_ms": "JSON",
    "request_id": "VARCHAR",
    "mock": "JSON",
    "provider": "JSON",
    "replayed": "JSON",
    "batch_id": "VARCHAR",
    "event": "VARCHAR",
    "variant": "VARCHAR",
    # Read only by `--price-as` (DuckDB reads a column only when a query uses it).
    "messages": "JSON",
    "output": {"text": "VARCHAR"},
}


def _f(*path: str) -> str:
    """A field of the line: _f("spec", "name") -> "spec"."name"."""
    return ".".join(f'"{part}"' for part in path)


def _numeric(text: str) -> str:
    """JSON text that starts like a number: '-' or a digit (a string starts with a quote, an
    object with a brace). A comparison, not an IN list, which DuckDB would turn into a join."""
    return f"(ascii({text}) = 45 OR ascii({text}) BETWEEN 48 AND 57)"


def _number(raw: str, cast: str) -> str:
    """A JSON number as `cast` (DOUBLE, DECIMAL), else NULL (checked on the text: no reparse)."""
    text = f"{raw}::VARCHAR"
    return f"CASE WHEN {_numeric(text)} THEN try_cast({text} AS {cast}) END"


def _integer(raw: str) -> str:
    """A JSON integer as BIGINT, else NULL: 12 counts, "12", 1.5 and 1e3 do not."""
    text = f"{raw}::VARCHAR"
    value = f"try_cast({text} AS BIGINT)"
    return f"CASE WHEN {_numeric(text)} AND {value}::VARCHAR = {text} THEN {value} END"


def _boolean(raw: str) -> str:
    """A JSON boolean, else NULL."""
    return f"CASE {raw}::VARCHAR WHEN 'true' THEN true WHEN 'false' THEN false END"


def _sql_type(shape: object) -> str:
    if isinstance(shape, dict):
        return "STRUCT(" + ", ".join(f'"{k}" {_sql_type(v)}' for k, v in shape.items()) + ")"
    if isinstance(shape, list):
        return _sql_type(shape[0]) + "[]"
    return str(shape)


# Nullable fields whose value, when present, must still have the right type.
CHECKED = {"cost_usd": _f("cost", "usd"), "ttft_ms": _f("ttft_ms")}
_MOCK = _boolean(_f("mock"))
# `replayed` ({from, id}) marks a call answered from a recorded ledger: absent or null on the
# others. Any other value leaves it NULL, so the line is unreadable.
_REPLAYED = (
    f"CASE WHEN {_f('replayed')} IS NULL OR json_type({_f('replayed')}) = 'NULL' THEN false "
    f"WHEN json_type({_f('replayed')}) = 'OBJECT' THEN true END"
)
# A line of a batch state file (runs/batches.jsonl, where earlier versions kept it and a glob
# such as runs/*.jsonl matches it, or runs/batches/state.jsonl; runner/batch/state.py): an
# `event` (created, ended, collected), and no `id`, which every call line has.
STATE = f"({_f('event')} IS NOT NULL AND {_f('id')} IS NULL)"
_PROVIDER = _f("provider") + "->>'$'"
_TS = f"try_cast({_f('ts')} AS TIMESTAMPTZ)"

# The columns of the `ledger` view (documented in docs/report.md), each with its expression over
# the fields of the line.
COLUMNS: dict[str, str] = {
    "id": _f("id"),
    "ts": f"{_TS}::TIMESTAMP",
    "day": f"{_TS}::DATE",
    "file": "filename",
    "v": _integer(_f("v")),
    "spec_name": _f("spec", "name"),
    "spec_path": _f("spec", "path"),
    "spec_sha256": _f("spec", "sha256"),
    "commit": _f("spec", "commit"),
    "dirty": _boolean(_f("spec", "dirty")),
    "request_sha256": _f("request_sha256"),
    "case": _f("case"),
    "row": _f("row"),
    "model": _f("model"),
    "served_model": _f("served_model"),
    # Lines written before runner spoke both wire APIs have no `api`: they were chat.
    "api": f"coalesce({_f('api')}, 'chat')",
    "provider": f"CASE WHEN {_MOCK} THEN 'mock' WHEN json_type({_f('provider')}) = 'VARCHAR' "
    f"THEN lower(coalesce(nullif(regexp_extract({_PROVIDER}, '://([^/:?#@]+)', 1), ''), "
    f"{_PROVIDER})) END",
    "status": _f("status"),
    "error_kind": _f("error", "kind"),
    "attempts": f"len({_f('attempts')})",
    "prompt_tokens": _integer(_f("usage", "prompt")),
    "completion_tokens": _integer(_f("usage", "completion")),
    "cached_tokens": _integer(_f("usage", "cached")),
    "reasoning_tokens": _integer(_f("usage", "reasoning")),
    "total_tokens": f"{_integer(_f('usage', 'prompt'))} + {_integer(_f('usage', 'completion'))}",
    "cost_usd": _number(_f("cost", "usd"), "DECIMAL(38, 12)"),
    "cost_estimated": _boolean(_f("cost", "estimated")),
    "cost_source": _f("cost", "source"),
    "latency_ms": _number(_f("latency_ms"), "DOUBLE"),
    "ttft_ms": _number(_f("ttft_ms"), "DOUBLE"),
    "request_id": _f("request_id"),
    "mock": _MOCK,
    "replayed": _REPLAYED,
    "batch_id": _f("batch_id"),
    "variant": _f("variant"),
}
LEDGER_COLUMNS: tuple[str, ...] = tuple(COLUMNS)
# Columns of `_lines` that the `ledger` view leaves out: what `--price-as` groups and
# re-counts by.
PRIVATE: dict[str, str] = {
    "_batch": f"({_f('batch_id')} IS NOT NULL)",
    "_implausible": f"coalesce(json_type({_f('usage', 'implausible')}) = 'ARRAY', false)",
    "_messages": f"{_f('messages')}::VARCHAR",
    "_output_text": _f("output", "text"),
}

# A line counts when it is a known version with every required field readable.
REQUIRED = [
    "ts",
    "spec_name",
    "model",
    "status",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost_estimated",
    "latency_ms",
    "mock",
    "attempts",
    "replayed",
]
KIND = (
    "CASE WHEN _state THEN 'state' "
    "WHEN v IS NULL OR v < 1 THEN 'bad' "
    f"WHEN v > {LEDGER_VERSION} THEN 'newer' "
    f"WHEN {' OR '.join(f'{c} IS NULL' for c in REQUIRED)} "
    f"OR {' OR '.join(f'({c} IS NULL AND {c}_raw IS NOT NULL)' for c in CHECKED)} THEN 'bad' "
    "ELSE 'ok' END"
)

# Replayed calls (answered from a recorded ledger: nothing sent, nothing spent) are in no
# figure but their own count, `replayed`; `lines` counts every line of a part.
_CALL = "(replayed IS NOT DISTINCT FROM false)"
FIGURES_SQL = f"""
    count(*) AS lines,
    count(*) FILTER (WHERE replayed) AS replayed,
    count(*) FILTER (WHERE {_CALL}) AS calls,
    count(*) FILTER (WHERE {_CALL} AND status = 'ok') AS ok,
    sum(prompt_tokens) FILTER (WHERE {_CALL}) AS prompt_tokens,
    sum(completion_tokens) FILTER (WHERE {_CALL}) AS completion_tokens,
    sum(cached_tokens) FILTER (WHERE {_CALL}) AS cached_tokens,
    sum(cost_usd) FILTER (WHERE {_CALL} AND NOT cost_estimated) AS cost_usd,
    count(*) FILTER (WHERE {_CALL} AND cost_usd IS NULL) AS unpriced_calls,
    sum(cost_usd) FILTER (WHERE {_CALL} AND cost_estimated) AS estimated_cost_usd,
    count(*) FILTER (WHERE {_CALL} AND cost_estimated AND cost_usd IS NOT NULL)
        AS estimated_calls,
    quantile_cont(latency_ms, [0.5, 0.95]) FILTER (WHERE {_CALL}) AS latency,
    max(latency_ms) FILTER (WHERE {_CALL}) AS latency_ms_max,
    quantile_cont(ttft_ms, 0.5) FILTER (WHERE {_CALL}) AS ttft_ms_p50,
    min(ts) FILTER (WHERE {_CALL}) AS first_ts,
    max(ts) FILTER (WHERE {_CALL}) AS last_ts,
    max(v) AS newest"""

# Extra groupings the HTML page charts.
BREAKDOWNS: tuple[tuple[str, ...], ...] = (("day", "model"), ("spec",), ("day",))


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def lines_sql(files: Mapping[str, str], max_line_bytes: int) -> list[str]:
    """Statements creating `_lines`: one row per non-blank line of the files, with the COLUMNS
    and `line_kind` (ok, bad, newer or state). `files` maps each path to read to the name the
    `file` column shows (a copy without over-long lines is shown as its original). The JSON
    reader gives a line it cannot parse (not JSON, not an object, not UTF-8, cut short, longer
    than `max_line_bytes`) a row of NULLs, so it is counted as bad, not fatal."""
    names = "[" + ", ".join(literal(f) for f in files) + "]"
    types = ", ".join(f"{literal(k)}: {literal(_sql_type(v))}" for k, v in SHAPE.items())
    source = (
        f"read_json({names}, format = 'newline_delimited', columns = {{{types}}}, "
        f"ignore_errors = true, filename = true, maximum_object_size = {int(max_line_bytes)})"
    )
    renamed = {path: name for path, name in files.items() if path != name}
    expressions = COLUMNS | PRIVATE
    if renamed:
        cases = " ".join(f"WHEN {literal(p)} THEN {literal(n)}" for p, n in renamed.items())
        expressions["file"] = f"CASE filename {cases} ELSE filename END"
    columns = ",\n  ".join(f'{expr} AS "{name}"' for name, expr in expressions.items())
    public = ", ".join(f'"{name}"' for name in COLUMNS | PRIVATE)
    raw = ", ".join(f"{expr} AS {name}_raw" for name, expr in CHECKED.items())
    return [
        f"CREATE TEMP VIEW _parsed AS SELECT {columns}, {raw}, {STATE} AS _state FROM {source}",
        f"CREATE TEMP VIEW _lines AS SELECT {public}, {KIND} AS line_kind FROM _parsed",
    ]


def time_filter(since: datetime | None, until: datetime | None) -> str:
    """The condition since <= ts < until (either may be absent)."""
    parts = []
    if since is not None:
        parts.append(f"ts >= TIMESTAMP '{since.isoformat(sep=' ')}'")
    if until is not None:
        parts.append(f"ts < TIMESTAMP '{until.isoformat(sep=' ')}'")
    return " AND ".join(parts) or "true"


def set_fields(sets: Sequence[Sequence[str]]) -> list[str]:
    """Every --by field of `sets`, once, in the order the GROUPING() bitmask uses."""
    fields: list[str] = []
    for fields_of_set in sets:
        fields += [f for f in fields_of_set if f not in fields]
    return fields


def set_mask(fields: Sequence[str], grouped: Sequence[str]) -> int:
    """The GROUPING() value of a set: one bit per field of `fields`, 1 where it is not grouped."""
    bits = [0 if f in grouped else 1 for f in fields]
    return int("".join(map(str, bits)) or "0", 2)


# What `--price-as` prices: the tokens of every counted call but those with implausible usage
# (never priced), by kind, and how many calls were estimates or left out.
_PRICED = f"{_CALL} AND NOT _implausible"
PRICING_SQL = f""",
    sum(prompt_tokens - least(cached_tokens, prompt_tokens)) FILTER (WHERE {_PRICED})
        AS priced_uncached,
    sum(least(cached_tokens, prompt_tokens)) FILTER (WHERE {_PRICED}) AS priced_cached,
    sum(completion_tokens) FILTER (WHERE {_PRICED}) AS priced_completion,
    count(*) FILTER (WHERE {_PRICED}) AS priced_calls,
    count(*) FILTER (WHERE {_PRICED} AND cost_estimated) AS priced_estimated,
    count(*) FILTER (WHERE {_CALL} AND _implausible) AS implausible_calls"""


def column(field: str) -> str:
    """The `_lines` column a --by field (or a private grouping such as `_batch`) groups on."""
    return GROUP_FIELDS.get(field, field)


def grouped_sql(
    source: str, sets: Sequence[Sequence[str]], when: str, *, pricing: bool = False
) -> str:
    """The figures per part of the lines (ok, outside the time range, bad, newer) and per group
    of each `sets` entry within each part, in one scan of `source`. `grouping_set` tells the
    rows apart: set_mask(set_fields(sets), fields of the set); a part alone has every bit set.
    `pricing` adds the token sums `--price-as` prices (PRICING_SQL)."""
    fields = set_fields(sets)
    keys = [f'"{column(name)}"' for name in fields]
    unique = {frozenset(s): s for s in sets if s}.values()  # (model, day) is (day, model)
    grouping = ["(part)"] + [
        "(part, " + ", ".join(f'"{column(f)}"' for f in s) + ")" for s in unique
    ]
    marker = f"GROUPING({', '.join(keys)})" if keys else "0"
    figures = FIGURES_SQL + (PRICING_SQL if pricing else "")
    return f"""
        SELECT {marker} AS grouping_set, part{"".join(f", {k}" for k in keys)},{figures}
        FROM (SELECT *, CASE WHEN line_kind = 'ok' AND NOT ({when}) THEN 'outside'
                             ELSE line_kind END AS part FROM {source})
        GROUP BY GROUPING SETS ({", ".join(grouping)})"""
