"""`runner probe`: ask a server, with a handful of tiny requests, what it really does —
structured output enforced, ignored or refused, usage in streams, `n`, tools, the Responses,
Files, Batches and Models endpoints, the shape of its errors, rate-limit headers — and which
spec settings fit it. Its model calls run through the engine (one ledger line each, with its
cost); its GETs go through runner.providers.probe and are not recorded.

Modules: `specs` (the probe's calls as tiny specs), `run` (the probe and its dry run),
`verdicts` (an outcome -> a Finding), `suggest` (verdicts -> settings), `findings` (the
values handed back), `render` (the table and the dry run as text).
"""

from runner.probe.findings import (
    CAPABILITIES,
    Finding,
    PlannedRequest,
    ProbeReport,
    Suggestion,
)
from runner.probe.render import plan_text, report_text
from runner.probe.run import OnStep, planned_requests, run_probe
from runner.probe.specs import (
    DEFAULT_MODEL,
    UNKNOWN_MODEL,
    probe_environ,
    probe_specs,
    wanted_model,
)
from runner.probe.suggest import suggestions

__all__ = [
    "CAPABILITIES",
    "DEFAULT_MODEL",
    "UNKNOWN_MODEL",
    "Finding",
    "OnStep",
    "PlannedRequest",
    "ProbeReport",
    "Suggestion",
    "plan_text",
    "planned_requests",
    "probe_environ",
    "probe_specs",
    "report_text",
    "run_probe",
    "suggestions",
    "wanted_model",
]
