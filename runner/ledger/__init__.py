"""The append-only JSONL ledger: the line (one builder, typed), the store (locked appends), the
reader (tolerant, line by line), the encoding (canonical JSON, fingerprints, ids) and the spec's
git reference.

Modules: `line` (LedgerRecord, build_line over Asked, Outcome, Recording), `store` (Ledger),
`reading` (read_records and the readers under it), `encoding` (encode_line, canonical_json,
new_id, utc_timestamp, without_content), `fingerprint` (request_fingerprint, Fingerprinter),
`gitref` (spec_ref).
"""

from runner.ledger.encoding import (
    canonical_json,
    encode_line,
    new_id,
    utc_timestamp,
    without_content,
)
from runner.ledger.fingerprint import Fingerprinter, request_fingerprint
from runner.ledger.gitref import spec_ref
from runner.ledger.line import LEDGER_VERSION, Asked, LedgerRecord, Outcome, Recording, build_line
from runner.ledger.reading import read_records
from runner.ledger.store import Ledger

__all__ = [
    "LEDGER_VERSION",
    "Asked",
    "Fingerprinter",
    "Ledger",
    "LedgerRecord",
    "Outcome",
    "Recording",
    "build_line",
    "canonical_json",
    "encode_line",
    "new_id",
    "read_records",
    "request_fingerprint",
    "spec_ref",
    "utc_timestamp",
    "without_content",
]
