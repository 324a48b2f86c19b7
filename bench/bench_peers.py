"""Peers: the same data-set run done by runner, by `promptfoo eval` and by a LiteLLM script.

2000 rows (50 with --quick) of the city example, {"id": ..., "city": ...}, against one
`runner mock-server --latency 100ms` in its own process, 50 calls in flight, every tool as a
whole command in a fresh process (so each pays its start-up): wall clock and the child's CPU
(user + system, from os.wait4, children of the child included). In a full run each tool first
runs once on 20 rows, not measured, so that cold page caches are out of the figures (--quick
skips that: it would cost more than the run). Every figure is a ratio against runner, measured
in the same run; afterwards each tool's own record is read back to count the rows that came back ok.

Finding the peers (a peer that is not found is a "not installed" row, never a crash):
- promptfoo: $BENCH_PROMPTFOO, else `promptfoo` on PATH.
  Install: `npm install -g promptfoo` (or `npm install --prefix DIR promptfoo` and
  BENCH_PROMPTFOO=DIR/node_modules/.bin/promptfoo).
- LiteLLM: $BENCH_LITELLM_PYTHON (a python that can import litellm), else this interpreter if
  it can. Install outside the project's venv: `python3 -m venv DIR && DIR/bin/pip install
  litellm`, then BENCH_LITELLM_PYTHON=DIR/bin/python.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from _mockproc import mock_server
from _table import Headline

import runner
from runner.engine.session import Session
from runner.ledger import read_records

ROOT = Path(__file__).resolve().parent.parent
CITIES = ["Paris", "Lima", "Osaka", "Nairobi", "Oslo", "Quito", "Hanoi", "Perth"]
IN_FLIGHT = 50
WARM_ROWS = 20
API_KEY = "sk-mock"
RUNNER_EXE = shutil.which("runner") or f"{sys.prefix}/bin/runner"
NOT_INSTALLED = "not installed"

# Keep every peer off the network: no telemetry, update checks, sharing or price-map fetches.
QUIET_ENV = {
    "PROMPTFOO_DISABLE_TELEMETRY": "1",
    "PROMPTFOO_DISABLE_UPDATE": "1",
    "PROMPTFOO_DISABLE_SHARING": "1",
    "PROMPTFOO_DISABLE_REMOTE_GENERATION": "1",
    "PROMPTFOO_DISABLE_REDTEAM_REMOTE_GENERATION": "1",
    "PROMPTFOO_DISABLE_RUNTIME_WARNINGS": "1",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_TELEMETRY": "False",
    "NO_PROXY": "127.0.0.1,localhost",
}

# The LiteLLM peer: what a user would write — acompletion with a semaphore, each reply parsed
# and checked against the schema with jsonschema (litellm's own dependency).
LITELLM_SCRIPT = """\
import asyncio, json, sys
import jsonschema, litellm
litellm.telemetry = False
litellm.suppress_debug_info = True
rows_path, request_path, base_url, api_key, in_flight = sys.argv[1:5] + [int(sys.argv[5])]
request = json.load(open(request_path, encoding="utf-8"))
schema = request["response_format"]["json_schema"]["schema"]
validator = jsonschema.Draft202012Validator(schema)
rows = [json.loads(line) for line in open(rows_path, encoding="utf-8") if line.strip()]

def messages(row):
    return [{**m, "content": m["content"].replace("{{ city }}", row["city"])}
            for m in request["messages"]]

async def main():
    gate = asyncio.Semaphore(in_flight)
    async def one(row):
        async with gate:
            try:
                reply = await litellm.acompletion(
                    model="openai/" + request["model"], api_base=base_url, api_key=api_key,
                    messages=messages(row), response_format=request["response_format"],
                    **request["params"])
                validator.validate(json.loads(reply.choices[0].message.content))
                return True
            except Exception as exc:
                print(f"row {row['id']}: {type(exc).__name__}: {exc}"[:300], file=sys.stderr)
                return False
    done = await asyncio.gather(*(one(r) for r in rows))
    print(json.dumps({"ok": sum(done), "rows": len(rows)}))

asyncio.run(main())
"""


def _spec(folder: Path, base_url: str) -> Path:
    """The city example in a work tree of its own, sent to `base_url`, 50 calls at a time."""
    (folder / ".git").mkdir(exist_ok=True)
    shutil.copytree(ROOT / "schemas", folder / "schemas", dirs_exist_ok=True)
    (folder / "prompts").mkdir(exist_ok=True)
    text = (ROOT / "prompts" / "city.yaml").read_text(encoding="utf-8")
    text = text.replace("https://api.openai.com/v1", base_url)
    rate = f"rate: {{concurrency: {IN_FLIGHT}}}"
    text = text.replace("rate: {rpm: 500, tpm: 200000, concurrency: 8}", rate)
    path = folder / "prompts" / "city-peers.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _write_rows(folder: Path, count: int, tag: str) -> tuple[Path, Path]:
    """The same rows twice: JSONL for runner and the LiteLLM script, CSV for promptfoo."""
    rows = [{"id": f"r{i}", "city": CITIES[i % len(CITIES)]} for i in range(1, count + 1)]
    jsonl = folder / f"rows-{tag}.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with (folder / f"rows-{tag}.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["city"])
        writer.writerows([r["city"]] for r in rows)
    return jsonl, folder / f"rows-{tag}.csv"


def _request(spec_path: Path) -> dict[str, Any]:
    """The spec's request (model, messages as templates, params, response_format), the one
    the peers are given so that all three send the same bodies."""
    spec = runner.load(spec_path)
    with Session(environ={}, ledger=spec_path.parent / "unused.jsonl") as session:
        body = session.preflight(spec, {"city": "{{ city }}"}).body
    params = {k: body[k] for k in ("temperature", "max_tokens", "top_p", "seed", "stop")}
    return {
        "model": body["model"],
        "messages": body["messages"],
        "params": params,
        "response_format": body["response_format"],
    }


def _timed(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Run one command in a fresh process: wall s, CPU s (user + system, its own children
    included), exit code, stdout and the tail of stderr. Killed (with its group) at `timeout`."""
    out_path, err_path = cwd / "child.out", cwd / "child.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            start_new_session=True,
        )  # fmt: skip
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.01)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "code": proc.returncode,
        "timed_out": wall > timeout,
        "stdout": out_path.read_text(encoding="utf-8", errors="replace"),
        "stderr": err_path.read_text(encoding="utf-8", errors="replace")[-2000:],
    }


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **QUIET_ENV, **extra}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    return env


# --- runner ------------------------------------------------------------------------------


def _runner(spec: Path, rows: Path, folder: Path, tag: str, timeout: float) -> dict[str, Any]:
    ledger = folder / f"ledger-{tag}.jsonl"
    cmd = [RUNNER_EXE, "exec", str(spec), "--input", str(rows), "--ledger", str(ledger)]
    cmd += ["--output", str(folder / f"runner-{tag}.out"), "-q"]
    cmd += ["--concurrency", str(IN_FLIGHT)]
    result = _timed(cmd, folder, _env(OPENAI_API_KEY=API_KEY), timeout)
    records = list(read_records(ledger)) if ledger.exists() else []
    ok_rows = {r["row"] for r in records if r["status"] == "ok"}
    lines = len(records)
    result["ok"] = len(ok_rows)
    result["detail"] = f"{lines} ledger lines, {len(ok_rows)} distinct rows ok"
    return result


def _runner_version() -> str:
    return getattr(runner, "__version__", "?")


# --- promptfoo -----------------------------------------------------------------------------


def _promptfoo_exe() -> str | None:
    exe = os.environ.get("BENCH_PROMPTFOO") or shutil.which("promptfoo")
    if exe and (os.sep in exe and os.access(exe, os.X_OK) or shutil.which(exe)):
        return exe
    return None


def _promptfoo_config(folder: Path, request: dict[str, Any], base_url: str, tag: str) -> Path:
    prompt = folder / "prompt.json"
    messages = [
        {**m, "content": m["content"].replace("{{ city }}", "{{city}}")}
        for m in request["messages"]
    ]
    prompt.write_text(json.dumps(messages, indent=1), encoding="utf-8")
    # ajv (promptfoo's validator) has no draft 2020-12 meta-schema loaded by default.
    schema = dict(request["response_format"]["json_schema"]["schema"])
    schema.pop("$schema", None)
    config = {
        "description": "runner peer benchmark: city data set",
        "prompts": [f"file://{prompt}"],
        "providers": [
            {
                "id": f"openai:chat:{request['model']}",
                "config": {
                    "apiBaseUrl": base_url,
                    "apiKey": API_KEY,
                    **request["params"],
                    "response_format": request["response_format"],
                },
            }
        ],
        "defaultTest": {"assert": [{"type": "is-json", "value": schema}]},
        "tests": f"file://{folder / f'rows-{tag}.csv'}",
        "sharing": False,
    }
    path = folder / f"promptfooconfig-{tag}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def _promptfoo(
    exe: str, request: dict[str, Any], base_url: str, folder: Path, tag: str, timeout: float
) -> dict[str, Any]:
    config = _promptfoo_config(folder, request, base_url, tag)
    out = folder / f"promptfoo-{tag}.json"
    cmd = [exe, "eval", "-c", str(config), "--max-concurrency", str(IN_FLIGHT), "--no-cache"]
    cmd += ["--no-share", "--no-progress-bar", "--no-table", "-o", str(out)]
    env = _env(
        PROMPTFOO_CONFIG_DIR=str(folder / "promptfoo-home"),
        OPENAI_API_KEY=API_KEY,
        OPENAI_BASE_URL=base_url,
    )
    result = _timed(cmd, folder, env, timeout)
    try:
        results = json.loads(out.read_text(encoding="utf-8"))["results"]
        outcomes = results["results"]
        stats = results.get("stats", {})
    except (OSError, ValueError, KeyError):
        outcomes, stats = [], {}
    ok = 0
    for outcome in outcomes:
        text = (outcome.get("response") or {}).get("output")
        if outcome.get("success") and text:
            ok += 1
    result["ok"] = ok
    result["detail"] = (
        f"{len(outcomes)} results in -o JSON, {ok} passed with output;"
        f" stats: {stats.get('successes', '?')} successes, {stats.get('failures', '?')}"
        f" failures, {stats.get('errors', '?')} errors"
    )
    return result


def _promptfoo_version(exe: str) -> str:
    """From the package.json above the resolved executable (no second start-up of node); else
    `promptfoo --version`."""
    found = shutil.which(exe)
    for folder in Path(os.path.realpath(found or exe)).parents:
        try:
            package = json.loads((folder / "package.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if package.get("name") == "promptfoo":
            return str(package.get("version", "?"))
    try:
        done = subprocess.run(
            [exe, "--version"], capture_output=True, text=True, timeout=60, env=_env()
        )
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else "?"


# --- LiteLLM -------------------------------------------------------------------------------


def _litellm_python() -> str | None:
    override = os.environ.get("BENCH_LITELLM_PYTHON")
    if override:
        return override if shutil.which(override) or os.access(override, os.X_OK) else None
    return sys.executable if importlib.util.find_spec("litellm") is not None else None


def _litellm(
    python: str, request_path: Path, rows: Path, base_url: str, folder: Path, timeout: float
) -> dict[str, Any]:
    script = folder / "litellm_peer.py"
    script.write_text(LITELLM_SCRIPT, encoding="utf-8")
    cmd = [python, str(script), str(rows), str(request_path), base_url, API_KEY, str(IN_FLIGHT)]
    result = _timed(cmd, folder, _env(), timeout)
    try:
        counts = json.loads(result["stdout"].strip().splitlines()[-1])
    except (IndexError, ValueError):
        counts = {"ok": 0, "rows": "?"}
    result["ok"] = counts["ok"]
    result["detail"] = f"the script counted {counts['ok']} of {counts['rows']} rows ok"
    return result


def _litellm_version(python: str) -> str:
    code = "import importlib.metadata as m; print(m.version('litellm'))"
    try:
        done = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=60, env=_env()
        )
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return done.stdout.strip() or "?"


# --- the table -----------------------------------------------------------------------------


def _headlines(label: str, got: dict[str, Any], base: dict[str, Any], count: int) -> list[Headline]:
    """Information, not targets: how much longer and how much more CPU the peer took."""
    tool = label.split()[0]
    return [
        Headline(
            f"peers, {count:,} rows: {label} wall",
            f"{got['wall']:.2f} s ({got['ok']}/{count} ok)",
            f"runner exec --input: {base['wall']:.2f} s",
            got["wall"] / base["wall"],
        ),
        Headline(
            f"peers: {tool} CPU",
            f"{got['cpu']:.2f} s",
            f"runner exec --input: {base['cpu']:.2f} s",
            got["cpu"] / base["cpu"],
        ),
    ]


def run(
    quick: bool = False,
) -> tuple[str, list[str], list[list[object]], list[str], list[Headline]]:
    count = 50 if quick else 2000
    timeout = 60.0 if quick else 180.0
    promptfoo = _promptfoo_exe()
    litellm_python = _litellm_python()
    results: dict[str, dict[str, Any] | None] = {}
    versions = {"runner": _runner_version()}
    with tempfile.TemporaryDirectory() as tmp, mock_server("--latency", "100ms") as base_url:
        folder = Path(tmp)
        spec = _spec(folder, base_url)
        request = _request(spec)
        request_path = folder / "request.json"
        request_path.write_text(json.dumps(request), encoding="utf-8")
        warm_jsonl, _ = _write_rows(folder, WARM_ROWS, "warm")
        rows_jsonl, _ = _write_rows(folder, count, "run")

        def runner_run(tag: str, rows: Path) -> dict[str, Any]:
            return _runner(spec, rows, folder, tag, timeout)

        def promptfoo_run(tag: str, rows: Path) -> dict[str, Any]:
            assert promptfoo is not None
            return _promptfoo(promptfoo, request, base_url, folder, tag, timeout)

        def litellm_run(tag: str, rows: Path) -> dict[str, Any]:
            assert litellm_python is not None
            return _litellm(litellm_python, request_path, rows, base_url, folder, timeout)

        tools = {
            "runner exec --input (baseline)": runner_run,
            "promptfoo eval": promptfoo_run if promptfoo else None,
            "LiteLLM acompletion script": litellm_run if litellm_python else None,
        }
        for label, go in tools.items():
            if go is None:
                results[label] = None
                continue
            if not quick:
                go("warm", warm_jsonl)
            results[label] = go("run", rows_jsonl)
        if promptfoo:
            versions["promptfoo"] = _promptfoo_version(promptfoo)
        if litellm_python:
            versions["litellm"] = _litellm_version(litellm_python)

    base = results["runner exec --input (baseline)"]
    assert base is not None
    rows: list[list[object]] = []
    headlines: list[Headline] = []
    notes = [
        f"{count} rows, {IN_FLIGHT} in flight, mock server (100 ms latency) in its own process;"
        f" ideal wall {count / IN_FLIGHT * 0.1:.1f} s; each tool is one fresh process, start-up"
        " included" + ("" if quick else f", after an unmeasured warm-up run of {WARM_ROWS} rows"),
        "CPU = user + system of the tool's process and its children (os.wait4)",
    ]
    for label, got in results.items():
        if got is None:
            rows.append([label, NOT_INSTALLED, "", "", "", ""])
            continue
        failed = got["timed_out"] or got["ok"] != count
        rows.append(
            [
                label,
                f"{got['wall']:.2f}",
                f"{got['wall'] / base['wall']:.2f}x",
                f"{got['cpu']:.2f}",
                f"{got['cpu'] / base['cpu']:.2f}x",
                f"{got['ok']}/{count}" + (" (timed out)" if got["timed_out"] else ""),
            ]
        )
        notes.append(f"{label}: exit {got['code']}; {got['detail']}")
        if got is not base:
            headlines += _headlines(label, got, base, count)
        if failed:
            notes.append(f"{label} stderr tail: {got['stderr'][-500:]!r}")
    notes += [
        "versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        "per row — runner: renders the spec, counts tokens, checks guards, validates the reply"
        " against the schema, prices it and appends one ledger line (exact tokens and cost);"
        " promptfoo: renders the prompt (nunjucks), calls, runs an is-json assertion with the"
        " schema (ajv), keeps the result for its database and the -o JSON file (--no-cache);"
        " LiteLLM: acompletion with a semaphore, json.loads and jsonschema validation, nothing"
        " written",
        "all three send the same body: the spec's messages, params and response_format"
        " (json_schema, strict)",
    ]
    if promptfoo is None:
        notes.append(
            "promptfoo not installed: `npm install -g promptfoo` (or `npm install --prefix DIR"
            " promptfoo` and BENCH_PROMPTFOO=DIR/node_modules/.bin/promptfoo)"
        )
    if litellm_python is None:
        notes.append(
            "LiteLLM not installed: `python3 -m venv DIR && DIR/bin/pip install litellm`, then"
            " BENCH_LITELLM_PYTHON=DIR/bin/python"
        )
    columns = ["tool", "wall s", "wall vs runner", "CPU s", "CPU vs runner", "rows ok"]
    return "Peers: one data-set run, three tools", columns, rows, notes, headlines
