"""The ledger line's JSON Schema, compiled once for every test that checks lines against it
(`jsonschema.validate` checks the schema itself on every call: about 40 ms each)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

LINE_SCHEMA = json.loads(
    (Path(__file__).resolve().parent.parent / "schemas" / "ledger-line.schema.json").read_text(
        "utf-8"
    )
)
LINE_VALIDATOR = jsonschema.validators.validator_for(LINE_SCHEMA)(LINE_SCHEMA)
