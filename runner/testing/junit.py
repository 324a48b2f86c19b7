"""JUnit XML for CI: one `<testsuite>` per spec, one `<testcase>` per case (classname the spec's
name, name the case's), a `<failure>` with expected vs actual, the time in seconds and the cost
in `<properties>`. Built with xml.etree.ElementTree, and every string is first made XML 1.0-safe
(control characters, lone surrogates, U+FFFE and U+FFFF become U+FFFD), so the file is always
well-formed whatever a spec, a case or a reply holds.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from runner.errors import ConfigError
from runner.testing.suite import CaseResult

__all__ = ["junit_xml", "write_junit"]


def junit_xml(results: Sequence[CaseResult]) -> bytes:
    """The JUnit XML document of these results (UTF-8, with an XML declaration)."""
    root = ET.Element("testsuites", name="runner test")
    suites: dict[str, ET.Element] = {}
    totals: dict[str, list[float]] = {}  # spec -> [tests, failures, skipped, seconds]
    for result in results:
        suite = suites.get(result.spec)
        if suite is None:
            suite = suites[result.spec] = ET.SubElement(
                root, "testsuite", name=_clean(result.spec), file=_clean(result.path)
            )
            totals[result.spec] = [0, 0, 0, 0.0]
        seconds = (result.latency_ms or 0.0) / 1000
        case = ET.SubElement(
            suite,
            "testcase",
            classname=_clean(result.spec),
            # `case[variant]`, as pytest names a parametrized test.
            name=_clean(result.case + ("" if result.variant is None else f"[{result.variant}]")),
            time=f"{seconds:.3f}",
            file=_clean(result.path),
            line=str(result.line),
        )
        properties = ET.SubElement(case, "properties")
        cost = "" if result.cost_usd is None else f"{result.cost_usd:.6f}"
        ET.SubElement(properties, "property", name="cost_usd", value=cost)
        ET.SubElement(
            properties, "property", name="cost_estimated", value=str(result.cost_estimated).lower()
        )
        ET.SubElement(properties, "property", name="tokens", value=str(result.tokens))
        if result.replayed:
            ET.SubElement(properties, "property", name="replayed", value="true")
        if result.variant is not None:
            ET.SubElement(properties, "property", name="variant", value=_clean(result.variant))
            ET.SubElement(properties, "property", name="model", value=_clean(result.model or ""))
        if result.runs > 1:
            low, high = result.interval or (0.0, 1.0)
            for key, value in (
                ("runs", str(result.runs)),
                ("passes", str(result.passes)),
                ("min_pass_rate", f"{result.min_pass_rate:g}"),
                ("pass_rate_95_low", f"{low:.4f}"),
                ("pass_rate_95_high", f"{high:.4f}"),
            ):
                ET.SubElement(properties, "property", name=key, value=value)
        if result.status == "skipped":
            ET.SubElement(case, "skipped", message=_clean(result.skip_reason or ""))
        if result.failures:
            first = result.failures[0]
            failure = ET.SubElement(
                case, "failure", message=_clean(str(first)), type=_clean(first.what)
            )
            failure.text = _clean(
                "\n".join(
                    f"{f.what}\n  expected: {f.expected}\n  actual:   {f.actual}"
                    + (f"\n{f.detail}" if f.detail else "")
                    for f in result.failures
                )
            )
        counts = totals[result.spec]
        counts[0] += 1
        counts[1] += 1 if result.failed else 0
        counts[2] += 1 if result.status == "skipped" else 0
        counts[3] += seconds
    for name, suite in suites.items():
        tests, failures, skipped, seconds = totals[name]
        suite.set("tests", str(int(tests)))
        suite.set("failures", str(int(failures)))
        suite.set("errors", "0")
        suite.set("skipped", str(int(skipped)))
        suite.set("time", f"{seconds:.3f}")
    root.set("tests", str(len(results)))
    root.set("failures", str(sum(1 for r in results if r.failed)))
    root.set("skipped", str(sum(1 for r in results if r.status == "skipped")))
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def write_junit(path: str, results: Sequence[CaseResult]) -> None:
    """Write the JUnit XML file (its folder must exist); ConfigError when it cannot be."""
    try:
        with open(path, "wb") as f:
            f.write(junit_xml(results))
    except OSError as exc:
        raise ConfigError(f"--junit {path}: cannot write: {exc.strerror}") from exc


# What XML 1.0 cannot hold, even escaped: most C0 controls, lone surrogates, U+FFFE and U+FFFF.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    """The text with every character XML 1.0 cannot hold replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", text)
