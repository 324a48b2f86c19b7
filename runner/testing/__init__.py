"""`runner test`: a spec's `tests:` cases run and checked, for CI regression runs.

Modules: `suite` (collect and run cases on the data-set row loop: CaseResult), `expectations`
(each `expect:` check), `judge` (a spec that judges a case), `replay` (the diff of a request
that changed, and --record-missing), `compare` (outputs against a baseline ledger), `formats`
(text, json, github, markdown) and `junit` (JUnit XML). The replay client itself is
runner.ledger.replay, so that the engine can use it without importing this package.
"""

from runner.testing.suite import CaseResult, Collection, Suite, collect

__all__ = ["CaseResult", "Collection", "Suite", "collect"]
