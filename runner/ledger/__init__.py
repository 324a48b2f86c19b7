"""The append-only JSONL ledger: the line (one builder, typed), the store (locked appends, a
tolerant reader), the encoding (canonical JSON, fingerprints, ids) and the spec's git reference.

Modules: `store` (Ledger, read_records and the encoding), `gitref` (spec_ref).
"""

from runner.ledger.gitref import spec_ref
from runner.ledger.store import (
    Ledger,
    canonical_json,
    encode_line,
    new_id,
    read_records,
    request_fingerprint,
    utc_timestamp,
    without_content,
)

__all__ = [
    "Ledger",
    "canonical_json",
    "encode_line",
    "new_id",
    "read_records",
    "request_fingerprint",
    "spec_ref",
    "utc_timestamp",
    "without_content",
]
